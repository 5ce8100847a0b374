//! Keypairs as the API uses them. Each operation stages its events and side-table edits
//! (name reservation, data key, dependency guard) in one [`Change`] and commits it once:
//! all of it is written or none. Every secret is sealed before its event is staged.
//! `stage_*` functions let another capability put a keypair operation into its own
//! change (a connection that generates its keypair in the same call).

use std::sync::Arc;

use russh::keys::ssh_key::{PrivateKey, PublicKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::{KeypairCommand, KeypairError, NewComment, NewKeypair, SshKeypair};
use super::comment::Comment;
use super::material::{self, KeyAlgorithm, KeyProblem};
use super::used_by::DependantRegistry;
use super::view::KeypairView;
use crate::names::Name;
use crate::secrets::{Secrets, SecretsError};
use crate::store::{
    Aggregates, Change, CommandError, CommandMetadata, CommitError, Committed, Dependant, Page,
    Store, StoreError, View, Writer,
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

impl From<CommitError> for KeypairFailure {
    fn from(err: CommitError) -> Self {
        match err {
            CommitError::NameTaken { .. } => Self::NameTaken,
            CommitError::NotLive { .. } => Self::NotFound,
            CommitError::InUse(dependants) => Self::InUse(dependants),
            // Keypair changes stage no `require_held`.
            e @ CommitError::NoneLeft { .. } => StoreError::Fault(e.to_string()).into(),
            CommitError::Store(e) => e.into(),
        }
    }
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

/// The parts of a new keypair, before its secret is sealed.
struct NewKeypairParts<'a> {
    name: Name,
    comment: String,
    facts: material::KeyFacts,
    private: Option<&'a PrivateKey>,
}

/// An import request, already checked for shape.
pub struct ImportRequest {
    pub name: Name,
    pub private_key: Option<Zeroizing<String>>,
    pub public_key: Option<String>,
    pub passphrase: Option<Zeroizing<String>>,
    pub comment: Option<Comment>,
}

/// A rename, a new comment, or both; `None` keeps the current value.
pub struct KeypairChanges {
    pub name: Option<Name>,
    pub comment: Option<Comment>,
}

/// What a generated keypair is asked to be.
pub struct GenerateRequest {
    pub name: Name,
    pub algorithm: KeyAlgorithm,
    pub bits: Option<u32>,
    pub comment: Comment,
}

pub struct KeypairService {
    keypairs: Aggregates<SshKeypair>,
    store: Store,
    secrets: Secrets,
    dependants: Arc<DependantRegistry>,
}

impl KeypairService {
    pub fn new(writer: &Writer, secrets: Secrets, dependants: Arc<DependantRegistry>) -> Self {
        Self {
            keypairs: Aggregates::new(writer, ()),
            store: writer.store().clone(),
            secrets,
            dependants,
        }
    }

    async fn commit(&self, change: &Change) -> Result<(), KeypairFailure> {
        Ok(self.keypairs.writer().commit(change).await?)
    }

    pub async fn generate(
        &self,
        request: GenerateRequest,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshKeypair>), KeypairFailure> {
        let mut change = Change::new();
        let created = self.stage_generate(&mut change, request, metadata).await?;
        self.commit(&change).await?;
        Ok(created)
    }

    /// Generates a keypair into `change` (written when the change commits).
    pub async fn stage_generate(
        &self,
        change: &mut Change,
        request: GenerateRequest,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshKeypair>), KeypairFailure> {
        let (id, committed, _) = self
            .stage_generate_with_key(change, request, metadata)
            .await?;
        Ok((id, committed))
    }

    /// Like [`Self::stage_generate`], also handing back the key itself, for a caller
    /// that must use it before the change commits (semi-automatic setup proves the
    /// pairing by logging in with it; if that fails the keypair is never recorded).
    pub async fn stage_generate_with_key(
        &self,
        change: &mut Change,
        request: GenerateRequest,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshKeypair>, PrivateKey), KeypairFailure> {
        let bits = material::generation_bits(request.algorithm, request.bits)?;
        let comment = request.comment.into_string();
        let key = material::generate(request.algorithm, bits, comment.clone()).await?;
        let facts = material::facts(key.public_key(), "algorithm")?;
        let new = NewKeypairParts {
            name: request.name,
            comment,
            facts,
            private: Some(&key),
        };
        let (id, committed) = self
            .stage_new(change, new, metadata, KeypairCommand::Generate)
            .await?;
        Ok((id, committed, key))
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
        let mut public: PublicKey = match (&private, public) {
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
            .map_or_else(|| public.comment().to_string(), Comment::into_string);
        public.set_comment(comment.as_str());
        let new = NewKeypairParts {
            name: request.name,
            comment,
            facts: material::facts(&public, "public_key")?,
            private: private.as_ref(),
        };
        let mut change = Change::new();
        let created = self
            .stage_new(&mut change, new, metadata, KeypairCommand::Import)
            .await?;
        self.commit(&change).await?;
        Ok(created)
    }

    /// A new keypair: its name reserved, its data key created and its secret sealed,
    /// its creation event, all in `change`.
    async fn stage_new(
        &self,
        change: &mut Change,
        new: NewKeypairParts<'_>,
        metadata: &CommandMetadata,
        command: fn(NewKeypair) -> KeypairCommand,
    ) -> Result<(Uuid, Committed<SshKeypair>), KeypairFailure> {
        let id = Uuid::new_v4();
        let owner = id.to_string();
        let sealed = match new.private {
            Some(key) => {
                let text = material::to_sealable(key).map_err(KeypairFailure::Secret)?;
                Some(
                    self.secrets
                        .seal_new(change, &owner, PRIVATE_KEY_PURPOSE, text.as_bytes())?,
                )
            }
            None => None,
        };
        change.hold_name(NAME_KIND, &owner, &new.name.normalized());
        let keypair = NewKeypair::new(new.name, new.comment, new.facts, sealed);
        let committed = self
            .keypairs
            .decide(change, &owner, command(keypair), metadata, None)
            .await?;
        Ok((id, committed))
    }

    /// Renames and/or re-comments the keypair in one command.
    pub async fn update(
        &self,
        id: Uuid,
        changes: KeypairChanges,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<Committed<SshKeypair>, KeypairFailure> {
        let owner = id.to_string();
        let comment = match changes.comment {
            Some(comment) => Some(self.recommented(id, comment.into_string()).await?),
            None => None,
        };
        let mut change = Change::new();
        if let Some(name) = &changes.name {
            change.hold_name(NAME_KIND, &owner, &name.normalized());
        }
        let command = KeypairCommand::Update {
            name: changes.name,
            comment,
        };
        let committed = self
            .keypairs
            .decide(&mut change, &owner, command, metadata, expected)
            .await?;
        self.commit(&change).await?;
        Ok(committed)
    }

    /// The keypair's public key line carrying `comment`.
    async fn recommented(&self, id: Uuid, comment: String) -> Result<NewComment, KeypairFailure> {
        let current = self.load_existing(id).await?;
        let mut public = PublicKey::from_openssh(&current.public_key)
            .map_err(|e| KeypairFailure::Secret(format!("stored public key unreadable: {e}")))?;
        public.set_comment(comment.as_str());
        let public_key = public
            .to_openssh()
            .map_err(|e| KeypairFailure::Secret(e.to_string()))?;
        Ok(NewComment {
            comment,
            public_key,
        })
    }

    /// Deletes the keypair and destroys its data key, in one transaction. While
    /// something uses it the delete is refused, unless `cascade`: then its dependants
    /// are deleted in the same transaction. A dependant added meanwhile refuses the
    /// whole change (the `require_unused` guard runs after the cascade's removals).
    pub async fn delete(
        &self,
        id: Uuid,
        cascade: bool,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<(), KeypairFailure> {
        let owner = id.to_string();
        let mut change = Change::new();
        if cascade {
            for dependant in self.store.dependants_of(&owner).await? {
                let remover = self.dependants.remover(&dependant.kind).ok_or_else(|| {
                    KeypairFailure::Cascade(format!("nothing can delete a `{}`", dependant.kind))
                })?;
                remover
                    .stage_removal(&mut change, &dependant.id, metadata)
                    .await
                    .map_err(KeypairFailure::Cascade)?;
            }
        }
        self.keypairs
            .decide(
                &mut change,
                &owner,
                KeypairCommand::Delete { cascade },
                metadata,
                expected,
            )
            .await?;
        change.require_unused(&owner);
        change.release_names(NAME_KIND, &owner);
        self.secrets.shred(&mut change, &owner);
        self.commit(&change).await
    }

    /// The private key in OpenSSH format (encrypted with `passphrase` if given). The
    /// export is recorded before the key is handed out; if it cannot be recorded, the
    /// key is not handed out.
    pub async fn export(
        &self,
        id: Uuid,
        passphrase: Option<String>,
        metadata: &CommandMetadata,
    ) -> Result<(Zeroizing<String>, Committed<SshKeypair>), KeypairFailure> {
        let owner = id.to_string();
        let key = self.private_key(id).await?;
        let encrypted = passphrase.is_some();
        let text = material::export_openssh(key, passphrase)
            .await
            .map_err(KeypairFailure::Secret)?;
        let committed = self
            .keypairs
            .execute(&owner, KeypairCommand::RecordExport { encrypted }, metadata)
            .await?;
        Ok((text, committed))
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

    /// The keypair, if it exists (is not deleted).
    pub async fn load_existing(&self, id: Uuid) -> Result<SshKeypair, KeypairFailure> {
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
