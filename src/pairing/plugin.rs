//! The `pairing` plugin: the remote side of semi-automatic setup. A host that is only a
//! backup target runs it alone (`plugins = ["pairing"]`).

use std::sync::{Arc, OnceLock};

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use super::http;
use super::service::{PAIRING_KIND, PairingService};
use super::view::AuthorizedKeyView;
use crate::gateway::ProblemCode;
use crate::gateway::{Plugin, Runtime};
use crate::store::{Change, Projection, Store, StoreError, View, ViewProjection};

#[derive(Default)]
pub struct PairingPlugin {
    service: OnceLock<web::Data<PairingService>>,
}

impl Plugin for PairingPlugin {
    fn name(&self) -> &'static str {
        "pairing"
    }

    fn problem_codes(&self) -> Vec<ProblemCode> {
        super::codes::PAIRING_CODES.to_vec()
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![ViewProjection::<AuthorizedKeyView>::shared()]
    }

    fn audit_lenses(&self) -> Vec<Arc<dyn crate::audit::AuditLens>> {
        vec![super::audit::lens()]
    }

    fn start(&self, runtime: &Runtime) -> anyhow::Result<()> {
        let service = web::Data::new(PairingService::new(
            &runtime.writer,
            runtime.settings.pairing.clone(),
        ));
        self.service
            .set(service)
            .map_err(|_| anyhow::anyhow!("the {} plugin was started twice", self.name()))
    }

    fn rebuild_side_tables<'a>(
        &'a self,
        store: &'a Store,
        change: &'a mut Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            change.forget_names(PAIRING_KIND);
            for view in store
                .all_views::<AuthorizedKeyView>(AuthorizedKeyView::PROJECTION)
                .await?
                .into_iter()
                .filter(|v| v.revoked_at.is_none())
            {
                let reservation =
                    format!("{} {}", view.key.username.as_str(), view.key.fingerprint);
                change.hold_name_if_free(PAIRING_KIND, &view.id, &reservation);
            }
            Ok(())
        })
    }

    fn routes(&self, cfg: &mut ServiceConfig, _runtime: Option<&Runtime>) {
        let mut pairing = utoipa_actix_web::scope("/pairing");
        let mut admin = utoipa_actix_web::scope("/authorized-keys");
        if let Some(service) = self.service.get() {
            pairing = pairing.app_data(service.clone());
            admin = admin.app_data(service.clone());
        }
        cfg.service(pairing.service(http::pair_ssh));
        cfg.service(
            admin
                .service(http::list_authorized_keys)
                .service(http::revoke_authorized_key),
        );
    }

    fn public_routes(&self, cfg: &mut ServiceConfig, _runtime: Option<&Runtime>) {
        let mut revoke = utoipa_actix_web::scope("/api/v1/pairing/ssh/{id}");
        if let Some(service) = self.service.get() {
            revoke = revoke.app_data(service.clone());
        }
        cfg.service(revoke.service(http::revoke_pairing));
    }
}
