//! The `keypairs` plugin.

use std::sync::{Arc, OnceLock};

use actix_web::web;

use utoipa_actix_web::service_config::ServiceConfig;

use super::http;
use super::service::{KeypairService, NAME_KIND};
use super::used_by::DependantRegistry;
use super::view::KeypairView;
use crate::gateway::ProblemCode;
use crate::gateway::{BodyLimit, Plugin, Runtime};
use crate::store::{Change, Projection, Store, StoreError, View, ViewProjection};
use utoipa::openapi::{Ref, RefOr, Schema};

/// Keys are small; a larger body is not a key (and 413 says so early).
pub const KEYPAIR_BODY_LIMIT: usize = 64 * 1024;

/// Provides its service and its used-by registry to other plugins (connections, pairing)
/// through [`Runtime::services`].
#[derive(Default)]
pub struct KeypairsPlugin {
    service: OnceLock<web::Data<KeypairService>>,
}

impl Plugin for KeypairsPlugin {
    fn name(&self) -> &'static str {
        "keypairs"
    }

    fn problem_codes(&self) -> Vec<ProblemCode> {
        super::codes::KEYPAIR_CODES.to_vec()
    }

    fn problem_members(&self) -> Vec<(&'static str, RefOr<Schema>)> {
        use utoipa::openapi::schema::ArrayBuilder;
        let dependants = ArrayBuilder::new()
            .items(Ref::from_schema_name("DependantResponse"))
            .description(Some(
                "`in_use`: the objects that use the keypair (what `GET …/used-by` lists)",
            ))
            .build();
        vec![("dependants", RefOr::T(Schema::Array(dependants)))]
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![ViewProjection::<KeypairView>::shared()]
    }

    fn audit_lenses(&self) -> Vec<Arc<dyn crate::audit::AuditLens>> {
        vec![super::audit::lens()]
    }

    fn start(&self, runtime: &Runtime) -> anyhow::Result<()> {
        let dependants = web::Data::new(DependantRegistry::default());
        let service = web::Data::new(KeypairService::new(
            &runtime.writer,
            runtime.secrets.clone(),
            dependants.clone().into_inner(),
        ));
        runtime.services.provide(dependants);
        runtime.services.provide(service.clone());
        self.service
            .set(service)
            .map_err(|_| anyhow::anyhow!("the {} plugin was started twice", self.name()))?;
        Ok(())
    }

    fn rebuild_side_tables<'a>(
        &'a self,
        store: &'a Store,
        change: &'a mut Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            change.forget_names(NAME_KIND);
            for keypair in store
                .all_views::<KeypairView>(KeypairView::PROJECTION)
                .await?
            {
                change.hold_name(NAME_KIND, &keypair.id, &keypair.name.normalized());
            }
            Ok(())
        })
    }

    fn routes(&self, cfg: &mut ServiceConfig, runtime: Option<&Runtime>) {
        let mut scope =
            utoipa_actix_web::scope("/ssh-keypairs").app_data(BodyLimit(KEYPAIR_BODY_LIMIT));
        if let (Some(_), Some(service)) = (runtime, self.service.get()) {
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
                .service(http::get_keypair_used_by)
                .service(http::export_public_key)
                .service(http::export_private_key),
        );
    }
}
