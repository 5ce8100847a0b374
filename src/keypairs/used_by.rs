//! Used-by: which objects depend on a keypair, and how to remove them for a cascading
//! delete. Dependants record themselves (`Change::depend_on`) in the change that creates
//! or updates them, and register a [`DependantRemover`] for their kind; keypairs know
//! nothing else about them.

use std::sync::{Arc, RwLock};

use crate::store::{Change, CommandMetadata};

#[async_trait::async_trait]
pub trait DependantRemover: Send + Sync + 'static {
    /// The `dependant_kind` this remover handles (e.g. `ssh-connection`).
    fn kind(&self) -> &'static str;
    /// Stages the deletion of one dependant (its event and its side-table edits) in
    /// `change`, the keypair delete's own change: both commit together or neither does.
    async fn stage_removal(
        &self,
        change: &mut Change,
        id: &str,
        metadata: &CommandMetadata,
    ) -> Result<(), String>;
}

/// The removers of every dependant kind, registered at start-up.
#[derive(Default)]
pub struct DependantRegistry(RwLock<Vec<Arc<dyn DependantRemover>>>);

impl DependantRegistry {
    pub fn register(&self, remover: Arc<dyn DependantRemover>) {
        let mut removers = self.0.write().unwrap_or_else(|p| p.into_inner());
        removers.retain(|r| r.kind() != remover.kind());
        removers.push(remover);
    }

    pub fn remover(&self, kind: &str) -> Option<Arc<dyn DependantRemover>> {
        let removers = self.0.read().unwrap_or_else(|p| p.into_inner());
        removers.iter().find(|r| r.kind() == kind).cloned()
    }
}
