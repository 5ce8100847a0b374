"""The manual flow through the Python client generated from openapi/openapi.json, and
nothing else: no hand-written HTTP. Run by tests/api/clients.rs against a live
credgate and a test sshd (whose authorized_keys file this script may append to, as an
operator would). Prints one line per step; any failure raises.

Then the semi-automatic setup against a second instance B serving pairing for the same
sshd (B's own generated client, with B's keys, checks its side), and the audit trail.

Environment: CREDGATE_URL, CREDGATE_KEY, SSHD_PORT, SSH_USER, AUTHORIZED_KEYS,
REMOTE_URL, REMOTE_PAIRING_KEY, REMOTE_ADMIN_KEY.
"""

import os
import sys

from credgate_client import AuthenticatedClient
from credgate_client.api.audit import get_connection_history, get_keypair_history, list_audit_events
from credgate_client.api.pairing import list_authorized_keys
from credgate_client.api.ssh_connections import (
    create_connection,
    create_semi_automatic_connection,
    delete_connection,
    export_credentials,
    get_connection,
    scan_host_keys,
    test_connection,
    update_connection,
)
from credgate_client.api.ssh_keypairs import delete_keypair, generate_keypair, get_keypair
from credgate_client.models import (
    CreateConnectionRequest,
    DeletedWithRemote,
    GenerateKeypairOption,
    GenerateKeypairRequest,
    HostKeyScanRequest,
    KeypairResponse,
    Problem,
    SemiAutomaticRequestBody,
    UpdateConnectionRequest,
)

steps = 0


def step(name, response, status):
    global steps
    assert response.status_code == status, (name, response.status_code, response.content)
    steps += 1
    print(f"step {steps}: {name}: {status}", flush=True)
    return response.parsed


client = AuthenticatedClient(
    base_url=os.environ["CREDGATE_URL"],
    token=os.environ["CREDGATE_KEY"],
    raise_on_unexpected_status=True,
)
port = int(os.environ["SSHD_PORT"])

keypair = step(
    "generate a keypair",
    generate_keypair.sync_detailed(client=client, body=GenerateKeypairRequest(name="python job key")),
    201,
)
assert isinstance(keypair, KeypairResponse)
with open(os.environ["AUTHORIZED_KEYS"], "a") as authorized:
    authorized.write(keypair.public_key + "\n")

scanned = step(
    "scan the host keys",
    scan_host_keys.sync_detailed(client=client, body=HostKeyScanRequest(host="127.0.0.1", port=port)),
    200,
)
assert len(scanned.keys) == 3

connection = step(
    "create a manual connection",
    create_connection.sync_detailed(
        client=client,
        body=CreateConnectionRequest(
            name="python offsite",
            host="127.0.0.1",
            port=port,
            username=os.environ["SSH_USER"],
            keypair_id=keypair.id,
            remote_host_key=scanned.remote_host_key,
        ),
    ),
    201,
)

tested = step("test it", test_connection.sync_detailed(connection.id, client=client), 200)
assert tested.ok, tested

read = get_connection.sync_detailed(connection.id, client=client)
etag = read.headers["etag"]
step("read it (ETag)", read, 200)

renamed = step(
    "rename it with If-Match",
    update_connection.sync_detailed(
        connection.id,
        client=client,
        body=UpdateConnectionRequest(name="python offsite renamed"),
        if_match=etag,
    ),
    200,
)
assert renamed.name == "python offsite renamed"

stale = step(
    "a stale If-Match is refused",
    update_connection.sync_detailed(
        connection.id,
        client=client,
        body=UpdateConnectionRequest(name="never"),
        if_match=etag,
    ),
    412,
)
assert isinstance(stale, Problem) and stale.code == "stale_version", stale

bundle = step(
    "fetch the credentials bundle",
    export_credentials.sync_detailed(connection.id, client=client),
    200,
)
assert "PRIVATE KEY" in bundle.private_key

keypair_etag = get_keypair.sync_detailed(keypair.id, client=client).headers["etag"]
step(
    "delete the keypair with cascade",
    delete_keypair.sync_detailed(keypair.id, client=client, cascade=True, if_match=keypair_etag),
    204,
)
step("the connection went with it", get_connection.sync_detailed(connection.id, client=client), 404)

history = step("the keypair's history", get_keypair_history.sync_detailed(keypair.id, client=client), 200)
types = [record.event_type for record in history.items]
assert types == ["KeypairGenerated", "KeypairDeleted"], types

# Semi-automatic: A pairs with B, which writes A's new key into the sshd's
# authorized_keys and hands over the host keys.
remote_admin = AuthenticatedClient(
    base_url=os.environ["REMOTE_URL"],
    token=os.environ["REMOTE_ADMIN_KEY"],
    raise_on_unexpected_status=True,
)
paired = step(
    "semi-automatic setup with B",
    create_semi_automatic_connection.sync_detailed(
        client=client,
        body=SemiAutomaticRequestBody(
            name="python paired",
            url=os.environ["REMOTE_URL"],
            remote_api_key=os.environ["REMOTE_PAIRING_KEY"],
            username=os.environ["SSH_USER"],
            generate_keypair=GenerateKeypairOption(),
        ),
    ),
    201,
)
assert paired.setup == "semi_automatic", paired.setup
assert paired.host_keys and all(k.provenance == "paired" for k in paired.host_keys), paired.host_keys
pairing_id = paired.remote.pairing_id

on_b = step("B's admin lists the pairing", list_authorized_keys.sync_detailed(client=remote_admin), 200)
mine = [k for k in on_b.items if k.id == pairing_id]
assert len(mine) == 1 and mine[0].present is True and not mine[0].revoked_at, mine

tested = step("test the paired connection", test_connection.sync_detailed(paired.id, client=client), 200)
assert tested.ok, tested
step("fetch its credentials", export_credentials.sync_detailed(paired.id, client=client), 200)

deleted = step("delete it (revokes B's line)", delete_connection.sync_detailed(paired.id, client=client), 200)
assert isinstance(deleted, DeletedWithRemote) and deleted.remote_revocation.outcome == "revoked", deleted

on_b = step("B shows the pairing revoked", list_authorized_keys.sync_detailed(client=remote_admin), 200)
mine = [k for k in on_b.items if k.id == pairing_id]
assert len(mine) == 1 and mine[0].revoked_at, mine

history = step("the connection's history", get_connection_history.sync_detailed(paired.id, client=client), 200)
types = [record.event_type for record in history.items]
assert types == [
    "ConnectionCreated",
    "ConnectionTested",
    "CredentialsIssued",
    "RemotePairingRevoked",
    "ConnectionDeleted",
], types
assert all(record.actor.name for record in history.items), history.items

attempts = step(
    "the audit trail holds the pairing attempt",
    list_audit_events.sync_detailed(client=client, event_type="PairingAttemptCompleted"),
    200,
)
assert len(attempts.items) == 1, attempts.items

print(f"python client flow: {steps} steps passed", flush=True)
sys.exit(0)
