//! The `keypairs` plugin.

use std::sync::{Arc, OnceLock};

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use super::http;
use super::service::KeypairService;
use super::view::KeypairView;
use crate::gateway::{BodyLimit, Plugin, Runtime};
use crate::store::{Projection, ViewProjection};

/// Keys are small; a larger body is not a key (and 413 says so early).
pub const KEYPAIR_BODY_LIMIT: usize = 64 * 1024;

#[derive(Default)]
pub struct KeypairsPlugin {
    service: OnceLock<web::Data<KeypairService>>,
}

impl KeypairsPlugin {
    /// The running service, for plugins that depend on keypairs.
    pub fn service(&self) -> Option<web::Data<KeypairService>> {
        self.service.get().cloned()
    }
}

impl Plugin for KeypairsPlugin {
    fn name(&self) -> &'static str {
        "keypairs"
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![ViewProjection::<KeypairView>::shared()]
    }

    fn start(&self, runtime: &Runtime) {
        let service = KeypairService::new(
            &runtime.store,
            runtime.secrets.clone(),
            Some(runtime.projections.clone()),
            runtime.dependants.clone(),
        );
        let _ = self.service.set(web::Data::new(service));
    }

    fn routes(&self, cfg: &mut ServiceConfig, _runtime: Option<&Runtime>) {
        let mut scope =
            utoipa_actix_web::scope("/ssh-keypairs").app_data(BodyLimit(KEYPAIR_BODY_LIMIT));
        if let Some(service) = self.service.get() {
            scope = scope.app_data(service.clone());
        }
        cfg.service(
            scope
                .service(http::generate_keypair)
                .service(http::import_keypair)
                .service(http::list_keypairs)
                .service(http::get_keypair)
                .service(http::update_keypair)
                .service(http::delete_keypair)
                .service(http::keypair_used_by)
                .service(http::download_public_key)
                .service(http::export_private_key),
        );
    }
}
