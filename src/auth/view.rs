//! The list of API keys, as admins see it (never the secret or its digest).

use chrono::{DateTime, Utc};
use cqrs_es::EventEnvelope;
use serde::{Deserialize, Serialize};

use super::aggregate::{ApiKey, ApiKeyEvent};
use super::scope::Scope;
use crate::store::{CommandMetadata, View};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl View for ApiKeyView {
    type Aggregate = ApiKey;
    const PROJECTION: &'static str = "api_keys";

    fn apply(current: Option<Self>, event: &EventEnvelope<ApiKey>) -> Option<Self> {
        match (&event.payload, current) {
            (
                ApiKeyEvent::ApiKeyCreated {
                    name,
                    scopes,
                    created_at,
                    expires_at,
                    ..
                },
                _,
            ) => Some(Self {
                id: event.aggregate_id.clone(),
                name: name.clone(),
                scopes: scopes.clone(),
                created_at: *created_at,
                created_by: CommandMetadata::from_map(&event.metadata).actor_name,
                expires_at: *expires_at,
                revoked_at: None,
            }),
            (ApiKeyEvent::ApiKeyRevoked { revoked_at }, Some(view)) => Some(Self {
                revoked_at: Some(*revoked_at),
                ..view
            }),
            (ApiKeyEvent::ApiKeyRevoked { .. }, None) => None,
        }
    }
}
