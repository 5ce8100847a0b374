//! The `api-keys` plugin: always enabled, since every other route needs keys.

use std::sync::Arc;

use utoipa_actix_web::service_config::ServiceConfig;

use super::http;
use super::scope::Scope;
use super::service::ADMIN_KEYS;
use super::view::ApiKeyView;
use crate::gateway::ProblemCode;
use crate::gateway::{Plugin, Runtime};
use crate::store::{Change, Projection, Store, StoreError, View, ViewProjection};

pub struct ApiKeysPlugin;

impl Plugin for ApiKeysPlugin {
    fn name(&self) -> &'static str {
        "api-keys"
    }

    fn problem_codes(&self) -> Vec<ProblemCode> {
        super::codes::AUTH_CODES.to_vec()
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![ViewProjection::<ApiKeyView>::shared()]
    }

    fn audit_lenses(&self) -> Vec<Arc<dyn crate::audit::AuditLens>> {
        vec![super::audit::lens()]
    }

    fn rebuild_side_tables<'a>(
        &'a self,
        store: &'a Store,
        change: &'a mut Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            change.forget_names(ADMIN_KEYS);
            for key in store
                .all_views::<ApiKeyView>(ApiKeyView::PROJECTION)
                .await?
            {
                if key.revoked_at.is_none() && key.scopes.contains(&Scope::Admin) {
                    change.hold_name(ADMIN_KEYS, &key.id, &key.id);
                }
            }
            Ok(())
        })
    }

    /// Marks the active admin keys of a store older than the last-admin rule. (A key
    /// revoked by another instance between the view read and this commit would be
    /// marked again: a window of milliseconds at start, once per upgrade.)
    fn backfill_side_tables<'a>(
        &'a self,
        store: &'a Store,
        change: &'a mut Change,
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let active: Vec<ApiKeyView> = store
                .all_views::<ApiKeyView>(ApiKeyView::PROJECTION)
                .await?
                .into_iter()
                .filter(|key| key.revoked_at.is_none() && key.scopes.contains(&Scope::Admin))
                .collect();
            // As many marks as active admin keys: nothing is missing (every start after
            // the first of this version).
            if store.names_held(ADMIN_KEYS).await? >= active.len() as i64 {
                return Ok(());
            }
            for key in active {
                change.hold_name_if_unheld(ADMIN_KEYS, &key.id, &key.id, None);
            }
            Ok(())
        })
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
