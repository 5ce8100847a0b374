//! The `connections` plugin (requires `keypairs`): it registers itself as a dependant
//! kind of keypairs, so a cascading keypair delete can remove connections.

use std::sync::{Arc, OnceLock};

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::service::{ConnectionService, NAME_KIND};
use super::view::ConnectionView;
use super::{http, scan_http};
use crate::gateway::{Plugin, Runtime};
use crate::keypairs::DependantRemover;
use crate::names::Name;
use crate::ssh::OutboundPolicy;
use crate::store::{
    CommandMetadata, Dependant, Projection, Store, StoreError, View, ViewProjection,
};

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

    async fn remove(&self, id: &str, metadata: &CommandMetadata) -> Result<(), String> {
        let id = Uuid::parse_str(id).map_err(|e| e.to_string())?;
        self.0
            .delete(id, None, metadata, true)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Plugin for ConnectionsPlugin {
    fn name(&self) -> &'static str {
        "connections"
    }

    fn requires(&self) -> &'static [&'static str] {
        &["keypairs"]
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![ViewProjection::<ConnectionView>::shared()]
    }

    fn start(&self, runtime: &Runtime) {
        let service = web::Data::new(ConnectionService::new(
            &runtime.store,
            runtime.keypairs.clone(),
            OutboundPolicy::new(&runtime.settings.outbound),
            Some(runtime.projections.clone()),
        ));
        runtime
            .dependants
            .register(Arc::new(RemoveConnection(service.clone())));
        let _ = self.service.set(service);
    }

    fn rebuild_side_tables<'a>(
        &'a self,
        store: &'a Store,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            store.clear_names(NAME_KIND).await?;
            store.clear_dependencies(NAME_KIND).await?;
            for connection in store
                .all_views::<ConnectionView>(ConnectionView::PROJECTION)
                .await?
            {
                let settings = &connection.settings;
                if let Ok(name) = Name::parse(&settings.name) {
                    store
                        .reserve_name(NAME_KIND, &name.normalized(), &connection.id)
                        .await?;
                }
                let dependant = Dependant {
                    kind: NAME_KIND.to_owned(),
                    id: connection.id.clone(),
                    name: settings.name.clone(),
                };
                store
                    .add_dependency(&settings.keypair_id, &dependant)
                    .await?;
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
                .service(http::list_connections)
                .service(http::get_connection)
                .service(http::update_connection)
                .service(http::delete_connection)
                .service(http::test_connection)
                .service(http::connection_credentials)
                .service(http::export_known_hosts)
                .service(http::export_ssh_config),
        );
    }
}
