//! Services plugins share, by type: a plugin's `start` provides what it offers (the
//! keypairs plugin provides its service and its used-by registry) and a plugin that
//! depends on another takes it from here. The gateway only carries the registry; it
//! knows no capability's types.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::RwLock;

use actix_web::web;

#[derive(Default)]
pub struct SharedServices(RwLock<HashMap<TypeId, Box<dyn Any + Send + Sync>>>);

impl SharedServices {
    /// Offers `service` to the plugins started after this one.
    pub fn provide<T: Send + Sync + 'static>(&self, service: web::Data<T>) {
        let mut services = self.0.write().unwrap_or_else(|p| p.into_inner());
        services.insert(TypeId::of::<T>(), Box::new(service));
    }

    /// The service of type `T`, or a start-up error naming it.
    pub fn get<T: Send + Sync + 'static>(&self) -> anyhow::Result<web::Data<T>> {
        let services = self.0.read().unwrap_or_else(|p| p.into_inner());
        services
            .get(&TypeId::of::<T>())
            .and_then(|s| s.downcast_ref::<web::Data<T>>())
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no plugin provides {} (is the plugin that offers it enabled?)",
                    std::any::type_name::<T>()
                )
            })
    }
}
