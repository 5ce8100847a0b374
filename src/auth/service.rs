//! API keys as the rest of credgate uses them: authenticate a presented secret, create,
//! revoke, read and list.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::aggregate::{ApiKey, ApiKeyCommand, ApiKeyError, Rejection};
use super::scope::Scope;
use super::token::{ApiKeySecret, digest_of};
use super::view::ApiKeyView;
use crate::clock::Clock;
use crate::names::Name;
use crate::store::{
    Aggregates, Change, CommandError, CommandMetadata, CommitError, Page, Store, StoreError, View,
    Writer,
};

/// The caller a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("API key rejected: {0:?}")]
    Rejected(Rejection),
    /// A real key, but revoked or expired: which one is worth an audit record.
    #[error("API key {key_id} refused: {rejection:?}")]
    KeyRefused {
        rejection: Rejection,
        key_id: Uuid,
        name: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The side-table kind whose holders are the active admin keys (each holds its own id).
pub const ADMIN_KEYS: &str = "admin-key";

pub struct ApiKeyService {
    keys: Aggregates<ApiKey>,
    store: Store,
    clock: Arc<dyn Clock>,
}

impl ApiKeyService {
    pub fn new(writer: &Writer, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: Aggregates::new(writer, ()),
            store: writer.store().clone(),
            clock,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Checks a presented secret against the event log itself (not a view), so a key
    /// revoked through any process is refused by every process on its next request.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, AuthFailure> {
        // No key can be this (too short, or with spaces or control characters): refused
        // without asking the store, so garbage gets 401 even while the store is down.
        if ApiKeySecret::from_external(presented).is_err() {
            return Err(AuthFailure::Rejected(Rejection::Unknown));
        }
        let digest = digest_of(presented);
        let key_id = digest.key_id();
        let Some(loaded) = self.keys.load(&key_id.to_string()).await? else {
            return Err(AuthFailure::Rejected(Rejection::Unknown));
        };
        loaded
            .state
            .check(&digest, self.clock.now())
            .map_err(|rejection| match rejection {
                Rejection::Unknown => AuthFailure::Rejected(rejection),
                _ => AuthFailure::KeyRefused {
                    rejection,
                    key_id,
                    name: loaded.state.name.clone(),
                },
            })?;
        Ok(Principal {
            key_id,
            name: loaded.state.name,
            scopes: loaded.state.scopes,
        })
    }

    /// Creates a key with `secret` (a fresh one when `None`); returns its id and secret.
    pub async fn create(
        &self,
        name: Name,
        scopes: Vec<Scope>,
        expires_at: Option<DateTime<Utc>>,
        secret: Option<ApiKeySecret>,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, ApiKeySecret, ApiKey), CommandError<ApiKeyError>> {
        let secret = secret.unwrap_or_else(ApiKeySecret::generate);
        let is_admin = scopes.contains(&Scope::Admin);
        let digest = secret.digest();
        let id = digest.key_id();
        let command = ApiKeyCommand::Create {
            name,
            scopes,
            secret_sha256: digest.0,
            expires_at,
            now: metadata.occurred_at,
        };
        let mut change = Change::new();
        let committed = self
            .keys
            .decide(&mut change, &id.to_string(), command, metadata, None)
            .await?;
        if is_admin {
            change.hold_name(ADMIN_KEYS, &id.to_string(), &id.to_string());
        }
        self.commit(&change).await?;
        Ok((id, secret, committed.state))
    }

    /// Revokes a key. The last active admin key cannot be revoked (`LastAdminKey`):
    /// nobody could manage keys over the API any more. The check is a guard in the
    /// revocation's own transaction, so two concurrent revocations cannot both pass.
    pub async fn revoke(
        &self,
        id: Uuid,
        metadata: &CommandMetadata,
    ) -> Result<(), CommandError<ApiKeyError>> {
        let command = ApiKeyCommand::Revoke {
            now: metadata.occurred_at,
        };
        let mut change = Change::new();
        self.keys
            .decide(&mut change, &id.to_string(), command, metadata, None)
            .await?;
        change.release_names(ADMIN_KEYS, &id.to_string());
        change.require_held(ADMIN_KEYS);
        self.commit(&change).await
    }

    async fn commit(&self, change: &Change) -> Result<(), CommandError<ApiKeyError>> {
        self.keys
            .writer()
            .commit(change)
            .await
            .map_err(|e| match e {
                CommitError::NoneLeft { .. } => CommandError::Rejected(ApiKeyError::LastAdminKey),
                CommitError::Store(e) => CommandError::Store(e),
                other => CommandError::Store(StoreError::Fault(other.to_string())),
            })
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<ApiKeyView>, StoreError> {
        self.store
            .view_find(ApiKeyView::PROJECTION, &id.to_string())
            .await
    }

    pub async fn list(&self, after: i64, limit: i64) -> Result<Page<ApiKeyView>, StoreError> {
        self.store
            .view_list(ApiKeyView::PROJECTION, after, limit)
            .await
    }

    /// Whether any API key was ever created (revoked ones count: the store is not new).
    pub async fn any_exist(&self) -> Result<bool, StoreError> {
        self.store
            .has_events_of(<ApiKey as cqrs_es::Aggregate>::TYPE)
            .await
    }
}
