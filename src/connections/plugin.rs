//! The `connections` plugin (requires `keypairs`): it registers itself as a dependant
//! kind of keypairs, so a cascading keypair delete can remove connections.

use std::sync::{Arc, OnceLock};

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use super::attempt::OpenAttemptView;
use super::exports;
use super::service::{ALIAS_KIND, ConnectionFailure, ConnectionService, NAME_KIND};
use super::view::ConnectionView;
use super::{http, scan_http};
use crate::clock::Clock;
use crate::gateway::ProblemCode;
use crate::gateway::{Plugin, Runtime};
use crate::keypairs::{DependantRegistry, DependantRemover, KeypairService};
use crate::ssh::OutboundPolicy;
use crate::store::{
    Change, CommandMetadata, Dependant, Projection, Store, StoreError, View, ViewProjection,
};
use utoipa::openapi::{RefOr, Schema};

#[derive(Default)]
pub struct ConnectionsPlugin {
    service: OnceLock<web::Data<ConnectionService>>,
}

struct RemoveConnection(web::Data<ConnectionService>);

#[async_trait::async_trait]
impl DependantRemover for RemoveConnection {
    fn kind(&self) -> &'static str {
        NAME_KIND
    }

    async fn stage_removal(
        &self,
        change: &mut Change,
        id: &str,
        metadata: &CommandMetadata,
    ) -> Result<(), String> {
        match self.0.stage_delete(change, id, None, metadata).await {
            Ok(()) => Ok(()),
            // Already deleted, with a used-by row an older version left behind: drop it.
            Err(ConnectionFailure::NotFound) => {
                change.drop_dependant(NAME_KIND, id);
                Ok(())
            }
            Err(other) => Err(other.to_string()),
        }
    }
}

impl Plugin for ConnectionsPlugin {
    fn name(&self) -> &'static str {
        "connections"
    }

    fn problem_codes(&self) -> Vec<ProblemCode> {
        super::codes::CONNECTION_CODES.to_vec()
    }

    fn problem_members(&self) -> Vec<(&'static str, RefOr<Schema>)> {
        super::problems::members()
    }

    fn requires(&self) -> &'static [&'static str] {
        &["keypairs"]
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![
            ViewProjection::<ConnectionView>::shared(),
            ViewProjection::<OpenAttemptView>::shared(),
        ]
    }

    fn audit_lenses(&self) -> Vec<Arc<dyn crate::audit::AuditLens>> {
        super::audit::lenses()
    }

    fn start(&self, runtime: &Runtime) -> anyhow::Result<()> {
        let service = web::Data::new(ConnectionService::new(
            &runtime.writer,
            runtime.services.get::<KeypairService>()?,
            OutboundPolicy::new(&runtime.settings.outbound),
            runtime.secrets.clone(),
        ));
        runtime
            .services
            .get::<DependantRegistry>()?
            .register(Arc::new(RemoveConnection(service.clone())));
        spawn_attempt_sweeper(
            service.clone(),
            runtime.clock.clone(),
            runtime.settings.limits.request_timeout,
        );
        self.service
            .set(service)
            .map_err(|_| anyhow::anyhow!("the {} plugin was started twice", self.name()))?;
        Ok(())
    }

    /// Reserves the ssh_config alias of connections older than alias reservations
    /// (only for a live connection that holds none; the first of two sharing one keeps
    /// it), so no `projections rebuild` is needed after the upgrade.
    fn backfill_side_tables<'a>(
        &'a self,
        store: &'a Store,
        change: &'a mut Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // Every live connection holds its name; when as many hold an alias, none
            // is missing (the usual case: a start costs two counts, not a scan).
            if store.names_held(ALIAS_KIND).await? >= store.names_held(NAME_KIND).await? {
                return Ok(());
            }
            for connection in store
                .all_views::<ConnectionView>(ConnectionView::PROJECTION)
                .await?
            {
                change.hold_name_if_unheld(
                    ALIAS_KIND,
                    &connection.id,
                    &exports::slug(connection.settings.name.as_str(), &connection.id),
                    Some(NAME_KIND),
                );
            }
            Ok(())
        })
    }

    fn rebuild_side_tables<'a>(
        &'a self,
        store: &'a Store,
        change: &'a mut Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            change.forget_names(NAME_KIND);
            change.forget_names(ALIAS_KIND);
            change.forget_dependants(NAME_KIND);
            for connection in store
                .all_views::<ConnectionView>(ConnectionView::PROJECTION)
                .await?
            {
                let settings = &connection.settings;
                change.hold_name(NAME_KIND, &connection.id, &settings.name.normalized());
                // Connections older than the alias reservation may share one; the first
                // keeps it.
                change.hold_name_if_free(
                    ALIAS_KIND,
                    &connection.id,
                    &exports::slug(settings.name.as_str(), &connection.id),
                );
                let dependant = Dependant {
                    kind: NAME_KIND.to_owned(),
                    id: connection.id.clone(),
                    name: settings.name.as_str().to_owned(),
                };
                change.depend_on(&settings.keypair_id.to_string(), dependant);
            }
            Ok(())
        })
    }

    fn routes(&self, cfg: &mut ServiceConfig, _runtime: Option<&Runtime>) {
        let mut scan = utoipa_actix_web::scope("/ssh");
        let mut connections = utoipa_actix_web::scope("/ssh-connections");
        if let Some(service) = self.service.get() {
            scan = scan.app_data(service.clone());
            connections = connections.app_data(service.clone());
        }
        cfg.service(scan.service(scan_http::scan_host_keys));
        cfg.service(
            connections
                .service(http::create_connection)
                .service(http::create_semi_automatic_connection)
                .service(http::list_connections)
                .service(http::get_connection)
                .service(http::update_connection)
                .service(http::delete_connection)
                .service(http::test_connection)
                .service(http::export_credentials)
                .service(http::export_known_hosts)
                .service(http::export_ssh_config),
        );
    }
}

/// Every `request_timeout`, undoes semi-automatic attempts that started more than two
/// request timeouts ago and never ended: no request can still be running them (the
/// time limit cancels a request), so their process stopped or their request timed out.
/// Every instance sweeps; a second sweeper finds the attempt already ended.
fn spawn_attempt_sweeper(
    service: web::Data<ConnectionService>,
    clock: Arc<dyn Clock>,
    request_timeout: std::time::Duration,
) {
    let age = chrono::Duration::from_std(request_timeout * 2).unwrap_or(chrono::Duration::MAX);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(request_timeout);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = clock.now();
            let Some(cutoff) = now.checked_sub_signed(age) else {
                continue;
            };
            let metadata = CommandMetadata::local("pairing sweeper", now);
            match service.sweep_abandoned_attempts(cutoff, &metadata).await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "undid abandoned semi-automatic setups"),
                Err(error) => {
                    tracing::warn!(%error, "sweeping abandoned semi-automatic setups failed")
                }
            }
        }
    });
}
