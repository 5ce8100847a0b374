//! The connections read model.

use chrono::{DateTime, Utc};
use cqrs_es::EventEnvelope;
use serde::{Deserialize, Serialize};

use super::aggregate::{
    ConnectionEvent, ConnectionSettings, RemotePairing, SetupMethod, SshConnection, TestOutcome,
};
use crate::store::{CommandMetadata, View};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub id: String,
    pub settings: ConnectionSettings,
    pub setup: SetupMethod,
    /// Semi-automatic connections: the remote they were paired with (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteSummary>,
    pub last_test: Option<TestOutcome>,
    pub last_tested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: usize,
}

impl View for ConnectionView {
    type Aggregate = SshConnection;
    /// `.v2`: the version counts edits only (rebuilt from the log on first start).
    const PROJECTION: &'static str = "ssh_connections.v2";

    fn apply(current: Option<Self>, event: &EventEnvelope<SshConnection>) -> Option<Self> {
        let at = CommandMetadata::from_map(&event.metadata).occurred_at;
        let version = event.sequence;
        match (&event.payload, current) {
            (
                ConnectionEvent::ConnectionCreated {
                    settings,
                    setup,
                    remote,
                },
                _,
            ) => Some(Self {
                id: event.aggregate_id.clone(),
                settings: settings.clone(),
                setup: *setup,
                remote: remote.as_deref().map(RemoteSummary::of),
                last_test: None,
                last_tested_at: None,
                created_at: at,
                updated_at: at,
                version,
            }),
            (ConnectionEvent::ConnectionDeleted, _) | (_, None) => None,
            (ConnectionEvent::ConnectionUpdated { settings }, Some(view)) => Some(Self {
                settings: settings.clone(),
                updated_at: at,
                version,
                ..view
            }),
            // A test is history, not an edit: the ETag stays.
            (ConnectionEvent::ConnectionTested(outcome), Some(view)) => Some(Self {
                last_test: Some(outcome.clone()),
                last_tested_at: Some(at),
                ..view
            }),
            (ConnectionEvent::HostKeysRepinned { .. }, Some(view)) => Some(Self {
                updated_at: at,
                version,
                ..view
            }),
            (_, Some(view)) => Some(view),
        }
    }
}

/// What a semi-automatic connection's readers see of its pairing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemoteSummary {
    pub url: String,
    pub pairing_id: uuid::Uuid,
    pub sudo_granted: bool,
    pub tls_verified: bool,
}

impl RemoteSummary {
    fn of(remote: &RemotePairing) -> Self {
        Self {
            url: remote.endpoint.as_str().to_owned(),
            pairing_id: remote.pairing_id,
            sudo_granted: remote.sudo_granted,
            tls_verified: remote.endpoint.is_https() && remote.tls.verify,
        }
    }
}
