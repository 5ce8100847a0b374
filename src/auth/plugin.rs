//! The `api-keys` plugin: always enabled, since every other route needs keys.

use std::sync::Arc;

use utoipa_actix_web::service_config::ServiceConfig;

use super::http;
use super::view::ApiKeyView;
use crate::gateway::{Plugin, Runtime};
use crate::store::{Projection, ViewProjection};

pub struct ApiKeysPlugin;

impl Plugin for ApiKeysPlugin {
    fn name(&self) -> &'static str {
        "api-keys"
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![ViewProjection::<ApiKeyView>::shared()]
    }

    fn audit_lenses(&self) -> Vec<Arc<dyn crate::audit::AuditLens>> {
        vec![super::audit::lens()]
    }

    fn routes(&self, cfg: &mut ServiceConfig, _runtime: Option<&Runtime>) {
        // The ApiKeyService itself is registered by the gateway: authentication needs it
        // on every route, not only these.
        cfg.service(http::create_api_key)
            .service(http::list_api_keys)
            .service(http::get_api_key)
            .service(http::revoke_api_key);
    }
}
