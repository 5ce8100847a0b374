//! The problem codes of API-key authentication and the `api-keys` plugin.

use crate::gateway::problem_codes;

problem_codes! {
    /// Every code authentication and the `api-keys` plugin answer with.
    pub AUTH_CODES {
        MISSING_API_KEY = "missing_api_key": "The operation needs an API key: send `Authorization: Bearer <key>`.",
        INVALID_AUTHORIZATION_HEADER = "invalid_authorization_header": "The `Authorization` header is not of the form `Bearer <key>`.",
        INVALID_API_KEY = "invalid_api_key": "No API key has this secret.",
        API_KEY_REVOKED = "api_key_revoked": "The API key was revoked; ask an admin for a new one.",
        API_KEY_EXPIRED = "api_key_expired": "The API key is past its `expires_at`; ask an admin for a new one.",
        TOO_MANY_FAILED_AUTHENTICATIONS = "too_many_failed_authentications": "Too many failed authentications from this address; wait `Retry-After` seconds.",
        TOO_MANY_SECRET_READS = "too_many_secret_reads": "This API key has taken out `limits.secret_reads_per_minute` secrets this minute; wait `Retry-After` seconds.",
        ALREADY_EXISTS = "already_exists": "An API key with this secret already exists.",
        LAST_ADMIN_KEY = "last_admin_key": "The last active admin key cannot be revoked: create another admin key first (or recover one with `credgate api-keys create` on the host).",
    }
}
