"""Checks scripts/fuzz adds to schemathesis's own (loaded with SCHEMATHESIS_HOOKS=hooks).

CREDGATE_FUZZ_EXPECT says what the run's key may do:
  any           the admin key: schemathesis's checks decide;
  unauthorized  no key: every operation that names required scopes answers 401;
  forbidden     a key holding only `pairing`: every operation needing another scope
                answers 403 (whatever else is wrong with the request: a caller without
                the scope learns nothing about the request's validity).
"""

import os

import schemathesis

EXPECT = os.environ.get("CREDGATE_FUZZ_EXPECT", "any")
HELD_SCOPES = {"pairing"}


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    """The fuzzer is not told about the audit export's `follow`: `follow=true` keeps the
    stream open until the client leaves, a stream and not a request it can wait for (the
    API tests cover it)."""
    export = raw_schema["paths"]["/api/v1/audit-events/export"]["get"]
    export["parameters"] = [p for p in export["parameters"] if p.get("name") != "follow"]


def required_scopes(case):
    return case.operation.definition.raw.get("x-required-scopes")


@schemathesis.check
def refused_for_the_key_it_lacks(ctx, response, case):
    """A protected operation refuses a caller without a key (401) or without its scope (403)."""
    scopes = required_scopes(case)
    if EXPECT == "any" or scopes is None:
        return None
    sent_key = (response.request.headers.get("Authorization") or "").startswith("Bearer ")
    if EXPECT == "unauthorized" or not sent_key:
        # The fuzzer also tries each operation without the run's key.
        expected = 401
    elif HELD_SCOPES & set(scopes):
        return None
    else:
        expected = 403
    # A request with an unknown method or path never reaches an operation.
    if response.status_code == 405 or case.method.upper() not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        return None
    if response.status_code != expected:
        raise AssertionError(
            f"{case.method} {case.formatted_path} needs {scopes}: expected {expected} for this "
            f"caller, got {response.status_code}: {response.text[:300]}"
        )
    return None
