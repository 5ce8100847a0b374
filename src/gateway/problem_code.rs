//! Stable problem codes. A code is part of the contract: clients branch on it, the
//! OpenAPI document lists every one as the `Problem.code` enum, and the README explains
//! each. So a code cannot be made up at the place an error is raised: [`ApiError`]
//! takes a [`ProblemCode`], and a `ProblemCode` exists only as a constant declared
//! with [`problem_codes!`], which also lists it in its module's catalogue. Each plugin
//! hands its catalogues to the gateway ([`Plugin::problem_codes`]); the gateway's own
//! (below) covers what every operation can answer. A code declared nowhere does not
//! compile, and a catalogue left out of its plugin fails the document test.
//!
//! [`ApiError`]: super::ApiError
//! [`Plugin::problem_codes`]: super::Plugin::problem_codes

/// One stable, machine-readable error code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProblemCode {
    name: &'static str,
    meaning: &'static str,
}

impl ProblemCode {
    /// Only for [`problem_codes!`]: a code made anywhere else would be missing from
    /// every catalogue.
    #[doc(hidden)]
    pub const fn declared(name: &'static str, meaning: &'static str) -> Self {
        Self { name, meaning }
    }

    /// The code as clients see it, e.g. `name_taken`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// One sentence for people: what happened and what to do.
    pub fn meaning(&self) -> &'static str {
        self.meaning
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq<&str> for ProblemCode {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

/// Declares problem codes as constants and a catalogue (`CODES`) listing each of them:
///
/// ```ignore
/// problem_codes! {
///     /// The keypairs plugin's codes.
///     pub KEYPAIR_CODES {
///         IN_USE = "in_use": "the keypair is used by connections (`dependants`)…",
///     }
/// }
/// ```
macro_rules! problem_codes {
    ($(#[$doc:meta])* $vis:vis $catalogue:ident { $($const:ident = $name:literal : $meaning:literal,)* }) => {
        $(
            #[doc = $meaning]
            $vis const $const: $crate::gateway::ProblemCode =
                $crate::gateway::ProblemCode::declared($name, $meaning);
        )*
        $(#[$doc])*
        $vis const $catalogue: &[$crate::gateway::ProblemCode] = &[$($const),*];
    };
}

pub(crate) use problem_codes;

problem_codes! {
    /// What any operation can answer, whichever plugin serves it.
    pub GATEWAY_CODES {
        VALIDATION_FAILED = "validation_failed": "One or more fields are missing, unknown, of the wrong type or not valid; `errors` names each field and why.",
        MALFORMED_JSON = "malformed_json": "The request body is empty or not valid JSON.",
        UNREADABLE_BODY = "unreadable_body": "The request body could not be read (the connection broke or the encoding is wrong).",
        UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type": "The request body must be sent as `Content-Type: application/json`.",
        PAYLOAD_TOO_LARGE = "payload_too_large": "The request body is larger than `limits.body_bytes`.",
        INVALID_PATH_PARAMETER = "invalid_path_parameter": "A path parameter is not of its declared form (an id that is not a UUID); `errors` names it.",
        INVALID_QUERY = "invalid_query": "The query string cannot be read (an unknown parameter, a value of the wrong type).",
        INVALID_IF_MATCH = "invalid_if_match": "`If-Match` is not `*`, a quoted version (`\"3\"`) or a bare one (`3`).",
        METHOD_NOT_ALLOWED = "method_not_allowed": "The path exists but not with this method; `Allow` lists the methods it has.",
        ROUTE_NOT_FOUND = "route_not_found": "No operation has this path.",
        NOT_FOUND = "not_found": "The resource does not exist, or no longer does.",
        STALE_VERSION = "stale_version": "`If-Match` names an older version of the resource; read it again and retry with its new `ETag`.",
        CONCURRENT_MODIFICATION = "concurrent_modification": "Another request changed the resource at the same moment; read it again and retry.",
        NAME_TAKEN = "name_taken": "Another resource of this kind has this name (names are compared ignoring case); `errors` names the field.",
        ALREADY_REVOKED = "already_revoked": "The API key or pairing was revoked before; nothing changed.",
        REFUSED = "refused": "The resource's current state does not allow this change; `detail` says why.",
        INSUFFICIENT_SCOPE = "insufficient_scope": "The API key lacks the scope this operation needs (see the operation's `x-required-scopes`).",
        STORE_UNAVAILABLE = "store_unavailable": "The data store did not answer in time; retry after `Retry-After` seconds.",
        REQUEST_TIMEOUT = "request_timeout": "The request took longer than `limits.request_timeout` and was stopped; what it had not committed was not written.",
        INTERNAL_ERROR = "internal_error": "An unexpected error; the log line with the problem's `request_id` says what it was.",
    }
}
