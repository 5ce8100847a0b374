//! Keypairs as the API uses them. Every secret is sealed before its event is written;
//! uniqueness of names is a reservation taken before the command and given back if the
//! command fails.

use std::sync::Arc;

use russh::keys::ssh_key::{PrivateKey, PublicKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::{KeypairCommand, KeypairError, NewKeypair, SshKeypair};
use super::material::{self, KeyAlgorithm, KeyProblem};
use super::used_by::DependantRegistry;
use super::view::KeypairView;
use crate::names::Name;
use crate::secrets::{Secrets, SecretsError};
use crate::store::{
    Aggregates, CommandError, CommandMetadata, Committed, Dependant, Page, ProjectionRunner, Store,
    StoreError, View,
};

/// The kind under which keypair names are reserved.
pub const NAME_KIND: &str = "ssh-keypair";
/// What sealed private keys are bound to.
pub const PRIVATE_KEY_PURPOSE: &str = "ssh-private-key";

#[derive(Debug, thiserror::Error)]
pub enum KeypairFailure {
    #[error(transparent)]
    Invalid(#[from] KeyProblem),
    #[error("the name is taken by another keypair")]
    NameTaken,
    #[error("no such keypair")]
    NotFound,
    #[error("the keypair has no private key")]
    NoPrivateKey,
    #[error("the keypair is in use")]
    InUse(Vec<Dependant>),
    #[error("cannot remove a dependant: {0}")]
    Cascade(String),
    #[error("the keypair's secret could not be used: {0}")]
    Secret(String),
    #[error(transparent)]
    Command(CommandError<KeypairError>),
}

impl From<CommandError<KeypairError>> for KeypairFailure {
    fn from(err: CommandError<KeypairError>) -> Self {
        match err {
            CommandError::Rejected(KeypairError::NotFound) => Self::NotFound,
            CommandError::Rejected(KeypairError::NoPrivateKey) => Self::NoPrivateKey,
            other => Self::Command(other),
        }
    }
}

impl From<StoreError> for KeypairFailure {
    fn from(err: StoreError) -> Self {
        Self::Command(CommandError::Store(err))
    }
}

impl From<SecretsError> for KeypairFailure {
    fn from(err: SecretsError) -> Self {
        match err {
            SecretsError::Store(e) => e.into(),
            other => Self::Secret(other.to_string()),
        }
    }
}

/// An import request, already checked for shape.
pub struct ImportRequest {
    pub name: Name,
    pub private_key: Option<Zeroizing<String>>,
    pub public_key: Option<String>,
    pub passphrase: Option<Zeroizing<String>>,
    pub comment: Option<String>,
}

pub struct KeypairService {
    keypairs: Aggregates<SshKeypair>,
    store: Store,
    secrets: Secrets,
    dependants: Arc<DependantRegistry>,
}

impl KeypairService {
    pub fn new(
        store: &Store,
        secrets: Secrets,
        projections: Option<Arc<ProjectionRunner>>,
        dependants: Arc<DependantRegistry>,
    ) -> Self {
        Self {
            keypairs: Aggregates::new(store, (), projections),
            store: store.clone(),
            secrets,
            dependants,
        }
    }

    pub async fn generate(
        &self,
        name: Name,
        algorithm: KeyAlgorithm,
        bits: Option<u32>,
        comment: String,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshKeypair>), KeypairFailure> {
        let bits = material::generation_bits(algorithm, bits)?;
        let key = material::generate(algorithm, bits, comment.clone()).await?;
        let facts = material::facts(key.public_key(), "algorithm")?;
        self.create(
            name,
            comment,
            facts,
            Some(&key),
            metadata,
            KeypairCommand::Generate,
        )
        .await
    }

    pub async fn import(
        &self,
        request: ImportRequest,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshKeypair>), KeypairFailure> {
        let private = match &request.private_key {
            Some(text) => Some(
                material::read_private_key(text, request.passphrase.as_ref().map(|p| p.as_str()))
                    .await?,
            ),
            None => None,
        };
        let public = match &request.public_key {
            Some(text) => Some(material::read_public_key(text)?),
            None => None,
        };
        let public: PublicKey = match (&private, public) {
            (Some(private), Some(public)) => {
                if private.public_key().key_data() != public.key_data() {
                    return Err(KeyProblem {
                        field: "public_key",
                        message: "does not belong to the private key".into(),
                    }
                    .into());
                }
                public
            }
            (Some(private), None) => private.public_key().clone(),
            (None, Some(public)) => public,
            (None, None) => {
                return Err(KeyProblem {
                    field: "private_key",
                    message: "give a private key, a public key, or both".into(),
                }
                .into());
            }
        };
        let comment = request
            .comment
            .unwrap_or_else(|| public.comment().to_string());
        let mut public = public;
        public.set_comment(comment.as_str());
        let facts = material::facts(&public, "public_key")?;
        self.create(
            request.name,
            comment,
            facts,
            private.as_ref(),
            metadata,
            KeypairCommand::Import,
        )
        .await
    }

    async fn create(
        &self,
        name: Name,
        comment: String,
        facts: material::KeyFacts,
        private: Option<&PrivateKey>,
        metadata: &CommandMetadata,
        command: fn(NewKeypair) -> KeypairCommand,
    ) -> Result<(Uuid, Committed<SshKeypair>), KeypairFailure> {
        let id = Uuid::new_v4();
        let owner = id.to_string();
        if self
            .store
            .reserve_name(NAME_KIND, &name.normalized(), &owner)
            .await?
            .is_some()
        {
            return Err(KeypairFailure::NameTaken);
        }
        let outcome = async {
            let sealed = match private {
                Some(key) => {
                    let text = material::to_sealable(key).map_err(KeypairFailure::Secret)?;
                    Some(
                        self.secrets
                            .seal(&owner, PRIVATE_KEY_PURPOSE, text.as_bytes())
                            .await?,
                    )
                }
                None => None,
            };
            let new = NewKeypair::new(name.as_str().to_owned(), comment, facts, sealed);
            Ok(self
                .keypairs
                .execute(&owner, command(new), metadata)
                .await?)
        }
        .await;
        match outcome {
            Ok(committed) => Ok((id, committed)),
            Err(failure) => {
                // Undo what was set aside for it; nothing refers to this id yet.
                let _ = self.secrets.shred(&owner).await;
                let _ = self
                    .store
                    .release_name(NAME_KIND, &name.normalized(), &owner)
                    .await;
                Err(failure)
            }
        }
    }

    pub async fn rename(
        &self,
        id: Uuid,
        name: Name,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<Committed<SshKeypair>, KeypairFailure> {
        let owner = id.to_string();
        let current = self.load_existing(id).await?;
        if self
            .store
            .reserve_name(NAME_KIND, &name.normalized(), &owner)
            .await?
            .is_some()
        {
            return Err(KeypairFailure::NameTaken);
        }
        let command = KeypairCommand::Rename {
            name: name.as_str().to_owned(),
        };
        match self
            .keypairs
            .execute_expecting(&owner, command, metadata, expected)
            .await
        {
            Ok(committed) => {
                let old = Name::parse(&current.name)
                    .map(|n| n.normalized())
                    .unwrap_or_default();
                if old != name.normalized() {
                    self.store.release_name(NAME_KIND, &old, &owner).await?;
                }
                Ok(committed)
            }
            Err(e) => {
                let old = Name::parse(&current.name)
                    .map(|n| n.normalized())
                    .unwrap_or_default();
                if old != name.normalized() {
                    let _ = self
                        .store
                        .release_name(NAME_KIND, &name.normalized(), &owner)
                        .await;
                }
                Err(e.into())
            }
        }
    }

    pub async fn change_comment(
        &self,
        id: Uuid,
        comment: String,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<Committed<SshKeypair>, KeypairFailure> {
        let current = self.load_existing(id).await?;
        let mut public = PublicKey::from_openssh(&current.public_key)
            .map_err(|e| KeypairFailure::Secret(format!("stored public key unreadable: {e}")))?;
        public.set_comment(comment.as_str());
        let public_key = public
            .to_openssh()
            .map_err(|e| KeypairFailure::Secret(e.to_string()))?;
        let command = KeypairCommand::ChangeComment {
            comment,
            public_key,
        };
        Ok(self
            .keypairs
            .execute_expecting(&id.to_string(), command, metadata, expected)
            .await?)
    }

    /// Deletes the keypair, refusing while something uses it unless `cascade`, which
    /// deletes the dependants first (each its own command). Then its data key is
    /// destroyed. A retry after an interruption finishes the job.
    pub async fn delete(
        &self,
        id: Uuid,
        cascade: bool,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<(), KeypairFailure> {
        let owner = id.to_string();
        let Some(loaded) = self.keypairs.load(&owner).await? else {
            return Err(KeypairFailure::NotFound);
        };
        if loaded.state.deleted {
            // An earlier delete was recorded; make sure its secret and name are gone too.
            self.forget(&owner, &loaded.state.name).await?;
            return Err(KeypairFailure::NotFound);
        }
        let dependants = self.store.dependants_of(&owner).await?;
        if !dependants.is_empty() {
            if !cascade {
                return Err(KeypairFailure::InUse(dependants));
            }
            for dependant in &dependants {
                let remover = self.dependants.remover(&dependant.kind).ok_or_else(|| {
                    KeypairFailure::Cascade(format!("nothing can delete a `{}`", dependant.kind))
                })?;
                remover
                    .remove(&dependant.id, metadata)
                    .await
                    .map_err(KeypairFailure::Cascade)?;
                self.store
                    .remove_dependency(&owner, &dependant.kind, &dependant.id)
                    .await?;
            }
        }
        self.keypairs
            .execute_expecting(
                &owner,
                KeypairCommand::Delete { cascade },
                metadata,
                expected,
            )
            .await?;
        self.forget(&owner, &loaded.state.name).await
    }

    async fn forget(&self, owner: &str, name: &str) -> Result<(), KeypairFailure> {
        self.secrets.shred(owner).await?;
        if let Ok(name) = Name::parse(name) {
            self.store
                .release_name(NAME_KIND, &name.normalized(), owner)
                .await?;
        }
        Ok(())
    }

    /// The private key in OpenSSH format (encrypted with `passphrase` if given). The
    /// export is recorded before the key is handed out; if it cannot be recorded, the
    /// key is not handed out.
    pub async fn export(
        &self,
        id: Uuid,
        passphrase: Option<String>,
        metadata: &CommandMetadata,
    ) -> Result<Zeroizing<String>, KeypairFailure> {
        let owner = id.to_string();
        let key = self.private_key(id).await?;
        let encrypted = passphrase.is_some();
        let text = material::export_openssh(key, passphrase)
            .await
            .map_err(KeypairFailure::Secret)?;
        self.keypairs
            .execute(&owner, KeypairCommand::RecordExport { encrypted }, metadata)
            .await?;
        Ok(text)
    }

    /// The decrypted private key, for callers inside credgate that use it (connection
    /// tests, credential bundles). Not audited here: the caller records its own event.
    pub async fn private_key(&self, id: Uuid) -> Result<PrivateKey, KeypairFailure> {
        let owner = id.to_string();
        let current = self.load_existing(id).await?;
        let sealed = current.private_key.ok_or(KeypairFailure::NoPrivateKey)?;
        let plain = self
            .secrets
            .open_sealed(&owner, PRIVATE_KEY_PURPOSE, &sealed)
            .await?;
        material::from_sealed(&plain).map_err(KeypairFailure::Secret)
    }

    async fn load_existing(&self, id: Uuid) -> Result<SshKeypair, KeypairFailure> {
        match self.keypairs.load(&id.to_string()).await? {
            Some(loaded) if loaded.state.exists() => Ok(loaded.state),
            _ => Err(KeypairFailure::NotFound),
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<KeypairView>, StoreError> {
        self.store
            .view_find(KeypairView::PROJECTION, &id.to_string())
            .await
    }

    pub async fn list(&self, after: i64, limit: i64) -> Result<Page<KeypairView>, StoreError> {
        self.store
            .view_list(KeypairView::PROJECTION, after, limit)
            .await
    }

    pub async fn used_by(&self, id: Uuid) -> Result<Vec<Dependant>, KeypairFailure> {
        self.load_existing(id).await?;
        Ok(self.store.dependants_of(&id.to_string()).await?)
    }
}
