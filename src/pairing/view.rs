//! Pairings as this host's administrators list them (never a token or its digest).

use chrono::{DateTime, Utc};
use cqrs_es::EventEnvelope;
use serde::{Deserialize, Serialize};

use super::aggregate::{AuthorizedKey, AuthorizedKeyEvent, PairedKey, RevocationReason};
use crate::store::{CommandMetadata, View};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizedKeyView {
    pub id: String,
    pub key: PairedKey,
    pub paired_at: DateTime<Utc>,
    /// The API key (its name) that paired it.
    pub paired_by: String,
    pub paired_from: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_because: Option<RevocationReason>,
}

impl View for AuthorizedKeyView {
    type Aggregate = AuthorizedKey;
    const PROJECTION: &'static str = "authorized_keys";

    fn apply(current: Option<Self>, event: &EventEnvelope<AuthorizedKey>) -> Option<Self> {
        let metadata = CommandMetadata::from_map(&event.metadata);
        match (&event.payload, current) {
            (AuthorizedKeyEvent::AuthorizedKeyAdded { key, .. }, _) => Some(Self {
                id: event.aggregate_id.clone(),
                key: key.clone(),
                paired_at: metadata.occurred_at,
                paired_by: metadata.actor_name,
                paired_from: metadata.source_address,
                revoked_at: None,
                revoked_because: None,
            }),
            (AuthorizedKeyEvent::AuthorizedKeyRevoked { reason }, Some(view)) => Some(Self {
                revoked_at: Some(metadata.occurred_at),
                revoked_because: Some(*reason),
                ..view
            }),
            (AuthorizedKeyEvent::AuthorizedKeyPairedAgain { .. }, view) => view,
            (AuthorizedKeyEvent::AuthorizedKeyRevoked { .. }, None) => None,
        }
    }
}
