//! API keys: the `ApiKey` aggregate, scopes, authentication of requests, bootstrap of the
//! first admin key, and the `api-keys` plugin's routes.

mod aggregate;
mod audit;
pub mod bootstrap;
pub mod codes;
mod http;
mod middleware;
mod plugin;
mod scope;
mod service;
mod throttle;
mod token;
mod view;

pub use aggregate::{ApiKey, ApiKeyCommand, ApiKeyError, ApiKeyEvent};
pub use middleware::require_api_key;
pub use plugin::ApiKeysPlugin;
pub use scope::{RequiredScope, Scope, grants, require};
pub use service::{ApiKeyService, AuthFailure, Principal};
pub use throttle::{FailureThrottle, SecretReadLimit};

/// 429 while `key` has used up its secret reads for this minute; counts the read
/// otherwise. Call it where a private key is about to leave the service.
pub fn admit_secret_read(
    limit: &SecretReadLimit,
    key: uuid::Uuid,
) -> Result<(), crate::gateway::ApiError> {
    let now = std::time::Instant::now();
    if let Some(wait) = limit.blocked(key, now) {
        return Err(crate::gateway::ApiError::too_many_requests(
            codes::TOO_MANY_SECRET_READS,
            format!(
                "this API key has taken out its secrets for this minute (limits.secret_reads_per_minute); retry in {wait} s"
            ),
            wait,
        ));
    }
    limit.count(key, now);
    Ok(())
}
pub use token::{ApiKeySecret, SecretDigest, digest_of};
pub use view::ApiKeyView;
