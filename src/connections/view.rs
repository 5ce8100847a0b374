//! The connections read model.

use chrono::{DateTime, Utc};
use cqrs_es::EventEnvelope;
use serde::{Deserialize, Serialize};

use super::aggregate::{
    ConnectionEvent, ConnectionSettings, SetupMethod, SshConnection, TestOutcome,
};
use crate::store::{CommandMetadata, View};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub id: String,
    pub settings: ConnectionSettings,
    pub setup: SetupMethod,
    pub last_test: Option<TestOutcome>,
    pub last_tested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: usize,
}

impl View for ConnectionView {
    type Aggregate = SshConnection;
    const PROJECTION: &'static str = "ssh_connections";

    fn apply(current: Option<Self>, event: &EventEnvelope<SshConnection>) -> Option<Self> {
        let at = CommandMetadata::from_map(&event.metadata).occurred_at;
        let version = event.sequence;
        match (&event.payload, current) {
            (ConnectionEvent::ConnectionCreated { settings, setup }, _) => Some(Self {
                id: event.aggregate_id.clone(),
                settings: settings.clone(),
                setup: *setup,
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
            (ConnectionEvent::ConnectionTested(outcome), Some(view)) => Some(Self {
                last_test: Some(outcome.clone()),
                last_tested_at: Some(at),
                version,
                ..view
            }),
            (_, Some(view)) => Some(Self { version, ..view }),
        }
    }
}
