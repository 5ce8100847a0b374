//! The `audit` plugin: always on. Its projection turns every event into an audit
//! record; its routes read them; it records refused requests; it logs the audit
//! chain's head so an outside system can keep it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use super::denials::{DENIALS_PER_MINUTE, DenialRecorder};
use super::http;
use super::lens::AuditLens;
use super::projection::AuditProjection;
use super::service::AuditService;
use crate::gateway::ProblemCode;
use crate::gateway::{Plugin, RefusalLog, Runtime};
use crate::store::{Projection, Store};

/// How often the chain head is logged (when it moved).
const HEAD_LOG_INTERVAL: Duration = Duration::from_secs(60);

pub struct AuditPlugin {
    lenses: Vec<Arc<dyn AuditLens>>,
    service: OnceLock<web::Data<AuditService>>,
}

impl AuditPlugin {
    /// `lenses`: how every other plugin's events read (their `audit_lenses`), whether
    /// those plugins are enabled or not: a store may hold events of any of them.
    pub fn new(mut lenses: Vec<Arc<dyn AuditLens>>) -> Self {
        lenses.push(super::denials::lens());
        Self {
            lenses,
            service: OnceLock::new(),
        }
    }
}

impl Plugin for AuditPlugin {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn problem_codes(&self) -> Vec<ProblemCode> {
        super::codes::AUDIT_CODES.to_vec()
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![Arc::new(AuditProjection::new(self.lenses.clone()))]
    }

    fn start(&self, runtime: &Runtime) -> anyhow::Result<()> {
        let resource_types = self.lenses.iter().map(|l| l.resource_type()).collect();
        let service = web::Data::new(AuditService::new(
            &runtime.writer,
            runtime.projections.clone(),
            resource_types,
        ));
        self.service
            .set(service)
            .map_err(|_| anyhow::anyhow!("the {} plugin was started twice", self.name()))?;
        let recorder =
            DenialRecorder::new(&runtime.writer, DENIALS_PER_MINUTE, runtime.clock.clone());
        runtime
            .services
            .provide(web::Data::new(RefusalLog(Arc::new(recorder))));
        spawn_head_logger(runtime.store.clone());
        Ok(())
    }

    fn routes(&self, cfg: &mut ServiceConfig, runtime: Option<&Runtime>) {
        if let (Some(_), Some(service)) = (runtime, self.service.get()) {
            cfg.app_data(service.clone());
        }
        // Plain resources, mounted before the keypairs and connections scopes: an
        // actix scope that matches `/ssh-keypairs` would not pass `…/history` on.
        cfg.service(http::list_audit_events)
            .service(http::export_audit_events)
            .service(http::verify_audit_chain)
            .service(http::get_keypair_history)
            .service(http::get_connection_history);
    }
}

/// Logs the chain head at info level whenever it moved, every [`HEAD_LOG_INTERVAL`]
/// (the service logs it once more on shutdown).
fn spawn_head_logger(store: Store) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(HEAD_LOG_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        loop {
            ticker.tick().await;
            match store.chain_head().await {
                Ok(Some(head)) if last.as_ref() != Some(&head) => {
                    tracing::info!(head = %head, position = head.position, "audit chain head");
                    last = Some(head);
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "could not read the audit chain head"),
            }
        }
    });
}
