//! API keys: the `ApiKey` aggregate, scopes, authentication of requests, bootstrap of the
//! first admin key, and the `api-keys` plugin's routes.

mod aggregate;
mod audit;
pub mod bootstrap;
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
pub use throttle::FailureThrottle;
pub use token::{ApiKeySecret, SecretDigest, digest_of};
pub use view::ApiKeyView;
