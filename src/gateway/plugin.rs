//! Capabilities are plugins: each brings its routes (documented through utoipa), and the
//! projections it owns. Which ones run is configuration (`plugins`).

use std::sync::Arc;

use utoipa::openapi::{RefOr, Schema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::Runtime;
use crate::config::ConfigError;
use crate::store::Projection;

pub trait Plugin: Send + Sync + 'static {
    /// The name used in the `plugins` setting.
    fn name(&self) -> &'static str;
    /// Other plugins that must be enabled with this one.
    fn requires(&self) -> &'static [&'static str] {
        &[]
    }
    /// The read models this plugin owns; the projection runner keeps them current.
    fn projections(&self) -> Vec<Arc<dyn Projection>>;
    /// The problem codes this plugin's operations answer with, beside the gateway's
    /// ([`super::GATEWAY_CODES`]): the document lists them all as `Problem.code`'s enum
    /// (declare them with [`super::problem_codes!`]).
    fn problem_codes(&self) -> Vec<super::ProblemCode> {
        Vec::new()
    }
    /// The members this plugin's problems add to the body (`dependants`, `phase`, …),
    /// each with its schema, for the document's `Problem`.
    fn problem_members(&self) -> Vec<(&'static str, RefOr<Schema>)> {
        Vec::new()
    }
    /// How this plugin's events read in the audit trail, one lens per aggregate.
    fn audit_lenses(&self) -> Vec<Arc<dyn crate::audit::AuditLens>> {
        Vec::new()
    }
    /// Stages the rebuild of the plugin's side tables (name reservations, dependencies)
    /// from its views in `change`, after `projections rebuild` has rebuilt the views;
    /// every plugin's part then commits as one transaction.
    fn rebuild_side_tables<'a>(
        &'a self,
        _store: &'a crate::store::Store,
        _change: &'a mut crate::store::Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::store::StoreError>> {
        Box::pin(async { Ok(()) })
    }
    /// Stages, at every start, what the plugin's side tables lack for data written
    /// before a rule existed (additive only: `hold_name_if_unheld`); every plugin's part
    /// commits as one transaction.
    fn backfill_side_tables<'a>(
        &'a self,
        _store: &'a crate::store::Store,
        _change: &'a mut crate::store::Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::store::StoreError>> {
        Box::pin(async { Ok(()) })
    }
    /// Called once when the service starts, before any route is served: build the
    /// plugin's services, provide what it offers other plugins
    /// ([`Runtime::services`]), take what it needs from the plugins before it.
    fn start(&self, _runtime: &Runtime) -> anyhow::Result<()> {
        Ok(())
    }
    /// Registers the plugin's handlers under `/api/v1` (behind authentication). Every
    /// handler goes through `.service(...)` so it is documented. `runtime` is `None`
    /// when the app is built only to produce the OpenAPI document.
    fn routes(&self, cfg: &mut ServiceConfig, runtime: Option<&Runtime>);
    /// Routes that are *not* behind API-key authentication (each authenticates its
    /// caller some other way, e.g. a revocation token). They are mounted before the
    /// `/api/v1` scope, with full paths, as scopes narrow enough not to shadow it
    /// (an actix scope that matches a path does not pass it on). Declare them in
    /// OpenAPI with `security(())`.
    fn public_routes(&self, _cfg: &mut ServiceConfig, _runtime: Option<&Runtime>) {}
}

/// Plugins that are always on, whatever the configuration says.
const ALWAYS_ON: &[&str] = &["api-keys", "audit"];

/// The plugins of `all` that `enabled` asks for (all when `None`), checked for unknown
/// names and missing dependencies.
pub fn select_plugins(
    enabled: Option<&[String]>,
    all: Vec<Arc<dyn Plugin>>,
) -> Result<Vec<Arc<dyn Plugin>>, ConfigError> {
    let Some(enabled) = enabled else {
        return Ok(all);
    };
    let known: Vec<&str> = all.iter().map(|p| p.name()).collect();
    if let Some(unknown) = enabled.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(ConfigError::new(
            "plugins",
            &format!("unknown plugin `{unknown}` (known: {})", known.join(", ")),
        ));
    }
    let chosen: Vec<Arc<dyn Plugin>> = all
        .into_iter()
        .filter(|p| ALWAYS_ON.contains(&p.name()) || enabled.iter().any(|n| n == p.name()))
        .collect();
    for plugin in &chosen {
        for needed in plugin.requires() {
            if !chosen.iter().any(|p| p.name() == *needed) {
                return Err(ConfigError::new(
                    "plugins",
                    &format!("`{}` requires `{needed}`", plugin.name()),
                ));
            }
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_plugins_are_refused_and_api_keys_is_always_on() {
        let err = select_plugins(Some(&["nope".to_owned()]), crate::plugins::all())
            .err()
            .unwrap();
        assert!(err.to_string().contains("`plugins`"));
        let chosen = select_plugins(Some(&[]), crate::plugins::all()).unwrap();
        assert_eq!(
            chosen.iter().map(|p| p.name()).collect::<Vec<_>>(),
            vec!["api-keys", "audit"]
        );
    }

    #[test]
    fn connections_need_keypairs() {
        let err = select_plugins(Some(&["connections".to_owned()]), crate::plugins::all())
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("`connections` requires `keypairs`"),
            "{err}"
        );
        let both = select_plugins(
            Some(&["connections".to_owned(), "keypairs".to_owned()]),
            crate::plugins::all(),
        )
        .unwrap();
        assert_eq!(both.len(), 4);
    }
}
