//! The application: which plugins credgate has, in mounting order. This is the one
//! place that names every capability; the gateway mounts whatever list it is given.

use std::sync::Arc;

use crate::audit::AuditPlugin;
use crate::auth::ApiKeysPlugin;
use crate::clock::SystemClock;
use crate::connections::ConnectionsPlugin;
use crate::gateway::{Plugin, StartOptions, api_document};
use crate::keypairs::KeypairsPlugin;
use crate::pairing::PairingPlugin;

/// Every plugin, in mounting order (a plugin comes after the ones it requires: its
/// `start` takes their services).
pub fn all() -> Vec<Arc<dyn Plugin>> {
    let capabilities: Vec<Arc<dyn Plugin>> = vec![
        Arc::new(ApiKeysPlugin),
        Arc::new(KeypairsPlugin::default()),
        Arc::new(ConnectionsPlugin::default()),
        Arc::new(PairingPlugin::default()),
    ];
    let lenses = capabilities.iter().flat_map(|p| p.audit_lenses()).collect();
    // Audit comes right after api-keys: its history routes must be mounted before the
    // keypairs and connections scopes.
    let mut all = capabilities;
    all.insert(1, Arc::new(AuditPlugin::new(lenses)));
    all
}

/// The document of every plugin, as `credgate openapi` prints it.
pub fn full_api_document() -> utoipa::openapi::OpenApi {
    api_document(&all())
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            bootstrap_admin_key: None,
            master_key: None,
            clock: Arc::new(SystemClock),
            plugins: all(),
        }
    }
}
