//! The keypairs read model: everything about a keypair except its private key.

use chrono::{DateTime, Utc};
use cqrs_es::EventEnvelope;
use serde::{Deserialize, Serialize};

use super::aggregate::{KeypairEvent, SshKeypair};
use super::material::KeyAlgorithm;
use crate::names::Name;
use crate::store::{CommandMetadata, View};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeypairView {
    pub id: String,
    pub name: Name,
    pub algorithm: KeyAlgorithm,
    pub bits: u32,
    pub comment: String,
    pub public_key: String,
    pub fingerprint: String,
    pub has_private_key: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The sequence number of the keypair's last edit (the `ETag`; an export is not one).
    pub version: usize,
}

impl View for KeypairView {
    type Aggregate = SshKeypair;
    /// `.v2`: the version counts edits only (rebuilt from the log on first start).
    const PROJECTION: &'static str = "ssh_keypairs.v2";

    fn apply(current: Option<Self>, event: &EventEnvelope<SshKeypair>) -> Option<Self> {
        let at = CommandMetadata::from_map(&event.metadata).occurred_at;
        let version = event.sequence;
        match (&event.payload, current) {
            (KeypairEvent::KeypairGenerated(new) | KeypairEvent::KeypairImported(new), _) => {
                Some(Self {
                    id: event.aggregate_id.clone(),
                    name: new.name.clone(),
                    algorithm: new.algorithm,
                    bits: new.bits,
                    comment: new.comment.clone(),
                    public_key: new.public_key.clone(),
                    fingerprint: new.fingerprint.clone(),
                    has_private_key: new.private_key.is_some(),
                    created_at: at,
                    updated_at: at,
                    version,
                })
            }
            (KeypairEvent::KeypairDeleted { .. }, _) | (_, None) => None,
            (KeypairEvent::KeypairRenamed { new_name, .. }, Some(view)) => Some(Self {
                name: new_name.clone(),
                updated_at: at,
                version,
                ..view
            }),
            (
                KeypairEvent::KeypairCommentChanged {
                    comment,
                    public_key,
                },
                Some(view),
            ) => Some(Self {
                comment: comment.clone(),
                public_key: public_key.clone(),
                updated_at: at,
                version,
                ..view
            }),
            // An export is history, not an edit: the ETag stays.
            (KeypairEvent::PrivateKeyExported { .. }, Some(view)) => Some(view),
        }
    }
}
