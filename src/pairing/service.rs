//! The remote side of semi-automatic setup: authorize a caller's public key for a local
//! user, and revoke it. The order of each operation errs towards *less* access than the
//! event log records, never more:
//! - pairing: sudo drop-in checked and installed → `AuthorizedKeyAdded` committed (with
//!   the `(user, fingerprint)` reservation that makes a second pairing of the same key
//!   find the first) → line written. A failed write is recorded as a revocation
//!   (`not_written`) and the drop-in removed.
//! - revoking: line removed → drop-in removed → `AuthorizedKeyRevoked` committed. A crash
//!   in between leaves a live record whose line is missing, which the list shows
//!   (`present: false`) and a second revoke finishes.

use std::path::PathBuf;

use russh::keys::ssh_key::{HashAlg, PublicKey};
use uuid::Uuid;

use super::accounts::{AccountRefusal, LocalAccount, pairable_account};
use super::aggregate::{
    AuthorizedKey, AuthorizedKeyCommand, AuthorizedKeyError, PairedKey, RevocationReason,
};
use super::authorized_keys::{KeyFile, KeyFileError, Owner, tag_of};
use super::host_keys::read_host_keys;
use super::sudoers::{self, SudoersError};
use super::token::RevocationToken;
use super::view::AuthorizedKeyView;
use crate::auth::SecretDigest;
use crate::config::PairingSettings;
use crate::names::Name;
use crate::ssh::Username;
use crate::store::{
    Aggregates, Change, CommandError, CommandMetadata, CommitError, Page, Store, StoreError, View,
    Writer,
};

/// One live pairing per user and key: reserved under this kind as `user fingerprint`.
pub const PAIRING_KIND: &str = "authorized-key";

#[derive(Debug, thiserror::Error)]
pub enum PairingFailure {
    #[error(transparent)]
    Account(#[from] AccountRefusal),
    #[error("this host has no readable host keys that credgate accepts (pairing.host_key_files)")]
    NoHostKeys,
    #[error("the authorized_keys file could not be changed: {0}")]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    Sudoers(#[from] SudoersError),
    #[error("no such pairing")]
    NotFound,
    #[error("the revocation token does not revoke this pairing")]
    TokenRefused,
    #[error(transparent)]
    Command(CommandError<AuthorizedKeyError>),
}

impl From<CommandError<AuthorizedKeyError>> for PairingFailure {
    fn from(err: CommandError<AuthorizedKeyError>) -> Self {
        match err {
            CommandError::Rejected(AuthorizedKeyError::NotFound) => Self::NotFound,
            other => Self::Command(other),
        }
    }
}

impl From<StoreError> for PairingFailure {
    fn from(err: StoreError) -> Self {
        Self::Command(CommandError::Store(err))
    }
}

impl From<CommitError> for PairingFailure {
    fn from(err: CommitError) -> Self {
        match err {
            CommitError::Store(e) => e.into(),
            other => StoreError::Fault(other.to_string()).into(),
        }
    }
}

/// A pairing request, parsed.
pub struct PairRequest {
    pub username: Username,
    pub public_key: PublicKey,
    pub label: Option<Name>,
    pub sudo: bool,
}

/// What the caller needs back.
pub struct Paired {
    pub id: Uuid,
    /// `false` when the same key was already paired for the user (same id back).
    pub created: bool,
    pub token: RevocationToken,
    pub ssh_port: u16,
    pub host_keys: Vec<String>,
    pub sudo_granted: bool,
}

pub struct PairingService {
    keys: Aggregates<AuthorizedKey>,
    store: Store,
    settings: PairingSettings,
}

impl PairingService {
    pub fn new(writer: &Writer, settings: PairingSettings) -> Self {
        Self {
            keys: Aggregates::new(writer, ()),
            store: writer.store().clone(),
            settings,
        }
    }

    fn key_file(&self, account: &LocalAccount) -> KeyFile {
        let path = self
            .settings
            .authorized_keys_path
            .replace("{home}", &account.home.display().to_string())
            .replace("{user}", account.name.as_str());
        KeyFile {
            path: PathBuf::from(path),
            owner: Owner {
                uid: account.uid,
                gid: account.gid,
            },
        }
    }

    fn stored_key_file(key: &PairedKey) -> KeyFile {
        KeyFile {
            path: PathBuf::from(&key.authorized_keys_file),
            owner: Owner {
                uid: key.uid,
                gid: key.gid,
            },
        }
    }

    /// The authorized_keys line of a pairing: options, the key, the pairing's tag.
    fn line(&self, key: &PairedKey, id: &Uuid) -> String {
        match &self.settings.key_options {
            Some(options) => format!("{options} {} {}", key.public_key, tag_of(id)),
            None => format!("{} {}", key.public_key, tag_of(id)),
        }
    }

    pub async fn pair(
        &self,
        request: PairRequest,
        metadata: &CommandMetadata,
    ) -> Result<Paired, PairingFailure> {
        let allowed = self.settings.allowed_users.clone();
        let username = request.username.clone();
        let account = blocking(move || pairable_account(&username, &allowed)).await??;
        let files = self.settings.host_key_files.clone();
        let host_keys = blocking(move || read_host_keys(&files)).await?;
        if host_keys.is_empty() {
            return Err(PairingFailure::NoHostKeys);
        }
        let fingerprint = request.public_key.fingerprint(HashAlg::Sha256).to_string();
        let mut public_key = request.public_key.clone();
        public_key.set_comment("");
        let public_key = public_key
            .to_openssh()
            .map_err(|e| StoreError::Fault(format!("cannot encode the public key: {e}")))?
            .trim()
            .to_owned();
        let file = self.key_file(&account);
        let key = PairedKey {
            username: request.username.clone(),
            public_key,
            fingerprint,
            label: request.label,
            // Granted only where this host offers it (`pairing.sudoers_dir`).
            sudo_granted: request.sudo && self.settings.sudoers_dir.is_some(),
            authorized_keys_file: file.path.display().to_string(),
            uid: account.uid,
            gid: account.gid,
        };
        let reservation = format!("{} {}", key.username.as_str(), key.fingerprint);
        let token = RevocationToken::generate();
        let paired = |id, created, sudo_granted, token| Paired {
            id,
            created,
            token,
            ssh_port: self.settings.ssh_port,
            host_keys: host_keys.clone(),
            sudo_granted,
        };
        if let Some(existing) = self.live_pairing(&reservation).await? {
            let sudo = self.pair_again(existing, &token.digest(), metadata).await?;
            return Ok(paired(existing, false, sudo, token));
        }
        let id = Uuid::new_v4();
        self.grant_sudo(&key, &id).await?;
        let mut change = Change::new();
        self.keys
            .decide(
                &mut change,
                &id.to_string(),
                AuthorizedKeyCommand::Add {
                    key: key.clone(),
                    token_sha256: token.digest().0,
                },
                metadata,
                None,
            )
            .await?;
        change.hold_name(PAIRING_KIND, &id.to_string(), &reservation);
        match self.keys.writer().commit(&change).await {
            Ok(()) => {}
            Err(CommitError::NameTaken { .. }) => {
                // The same key was paired for the user meanwhile (another request or
                // process): answer with that pairing.
                self.ungrant_sudo(&key, &id).await;
                let existing = self
                    .live_pairing(&reservation)
                    .await?
                    .ok_or_else(|| StoreError::Fault("a reserved pairing vanished".into()))?;
                let sudo = self.pair_again(existing, &token.digest(), metadata).await?;
                return Ok(paired(existing, false, sudo, token));
            }
            Err(other) => {
                self.ungrant_sudo(&key, &id).await;
                return Err(other.into());
            }
        }
        let line = self.line(&key, &id);
        let tag = tag_of(&id);
        let written = {
            let file = file.clone();
            blocking(move || file.add(&line, &tag)).await?
        };
        if let Err(error) = written {
            self.ungrant_sudo(&key, &id).await;
            let mut undo = Change::new();
            self.keys
                .decide(
                    &mut undo,
                    &id.to_string(),
                    AuthorizedKeyCommand::Revoke {
                        reason: RevocationReason::NotWritten,
                    },
                    metadata,
                    None,
                )
                .await?;
            undo.release_names(PAIRING_KIND, &id.to_string());
            self.keys.writer().commit(&undo).await?;
            return Err(error.into());
        }
        Ok(paired(id, true, key.sudo_granted, token))
    }

    /// The live pairing holding `reservation`, if any.
    async fn live_pairing(&self, reservation: &str) -> Result<Option<Uuid>, PairingFailure> {
        let owner = self.store.name_owner(PAIRING_KIND, reservation).await?;
        Ok(owner.and_then(|o| o.parse().ok()))
    }

    /// A second pairing of the same key: one more revocation token, and the line written
    /// again if someone removed it by hand. Returns whether sudo was granted.
    async fn pair_again(
        &self,
        id: Uuid,
        token: &SecretDigest,
        metadata: &CommandMetadata,
    ) -> Result<bool, PairingFailure> {
        let committed = self
            .keys
            .execute(
                &id.to_string(),
                AuthorizedKeyCommand::AddToken {
                    token_sha256: token.0.clone(),
                },
                metadata,
            )
            .await?;
        let key = committed.state.key.ok_or(PairingFailure::NotFound)?;
        let file = Self::stored_key_file(&key);
        let line = self.line(&key, &id);
        let tag = tag_of(&id);
        blocking(move || file.add(&line, &tag)).await??;
        Ok(key.sudo_granted)
    }

    /// Where this pairing's sudo drop-in goes, when it has one.
    fn sudoers_dir(&self, key: &PairedKey) -> Option<PathBuf> {
        self.settings
            .sudoers_dir
            .clone()
            .filter(|_| key.sudo_granted)
    }

    async fn grant_sudo(&self, key: &PairedKey, id: &Uuid) -> Result<(), PairingFailure> {
        let Some(dir) = self.sudoers_dir(key) else {
            return Ok(());
        };
        let (id, user) = (*id, key.username.clone());
        blocking(move || sudoers::grant(&dir, &id, &user)).await??;
        Ok(())
    }

    /// Best effort: a drop-in that cannot be removed is logged (it names the pairing).
    async fn ungrant_sudo(&self, key: &PairedKey, id: &Uuid) {
        let Some(dir) = self.sudoers_dir(key) else {
            return;
        };
        let id = *id;
        let outcome = blocking(move || sudoers::revoke(&dir, &id).map_err(SudoersError::Io))
            .await
            .and_then(|removed| removed.map_err(PairingFailure::from));
        if let Err(error) = outcome {
            tracing::error!(%error, pairing = %id, "cannot remove the sudoers drop-in");
        }
    }

    /// Revokes with the pairing's revocation token. An unknown id and a wrong token get
    /// the same answer, so the endpoint tells nothing to someone without the token.
    pub async fn revoke_with_token(
        &self,
        id: Uuid,
        token: &SecretDigest,
        metadata: &CommandMetadata,
    ) -> Result<(), PairingFailure> {
        let loaded = self.keys.load(&id.to_string()).await?;
        match loaded {
            Some(loaded) if loaded.state.accepts(token) => {
                self.revoke(
                    id,
                    loaded.state,
                    RevocationReason::RevocationToken,
                    metadata,
                )
                .await
            }
            _ => Err(PairingFailure::TokenRefused),
        }
    }

    /// Revokes any pairing (an administrator of this host).
    pub async fn revoke_as_admin(
        &self,
        id: Uuid,
        metadata: &CommandMetadata,
    ) -> Result<(), PairingFailure> {
        let state = self
            .keys
            .load(&id.to_string())
            .await?
            .map(|loaded| loaded.state)
            .filter(|state| state.key.is_some())
            .ok_or(PairingFailure::NotFound)?;
        self.revoke(id, state, RevocationReason::Admin, metadata)
            .await
    }

    async fn revoke(
        &self,
        id: Uuid,
        state: AuthorizedKey,
        reason: RevocationReason,
        metadata: &CommandMetadata,
    ) -> Result<(), PairingFailure> {
        let key = state.key.clone().ok_or(PairingFailure::NotFound)?;
        if state.revoked.is_some() {
            return Err(CommandError::Rejected(AuthorizedKeyError::AlreadyRevoked).into());
        }
        let file = Self::stored_key_file(&key);
        let tag = tag_of(&id);
        blocking(move || file.remove(&tag)).await??;
        if let Some(dir) = self.sudoers_dir(&key) {
            blocking(move || sudoers::revoke(&dir, &id))
                .await?
                .map_err(SudoersError::Io)?;
        }
        let mut change = Change::new();
        self.keys
            .decide(
                &mut change,
                &id.to_string(),
                AuthorizedKeyCommand::Revoke { reason },
                metadata,
                None,
            )
            .await?;
        change.release_names(PAIRING_KIND, &id.to_string());
        self.keys.writer().commit(&change).await?;
        Ok(())
    }

    pub async fn list(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Page<(AuthorizedKeyView, Option<bool>)>, PairingFailure> {
        let page: Page<AuthorizedKeyView> = self
            .store
            .view_list(AuthorizedKeyView::PROJECTION, after, limit)
            .await?;
        let next_after = page.next_after;
        let views = page.items;
        let items = blocking(move || {
            views
                .into_iter()
                .map(|view| {
                    let present = view.id.parse::<Uuid>().ok().and_then(|id| {
                        Self::stored_key_file(&view.key).contains(&tag_of(&id)).ok()
                    });
                    (view, present)
                })
                .collect()
        })
        .await?;
        Ok(Page { items, next_after })
    }
}

/// Runs file-system and user-database work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PairingFailure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Fault(format!("a blocking task failed: {e}")).into())
}
