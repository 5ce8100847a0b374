//! The audit record as the API returns it and the export writes it, one per event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::lens::Category;

/// Who caused the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    /// The API key's id; absent for work done on the machine (`cli`, `bootstrap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The API key's name at the time, or `cli` / `bootstrap`.
    pub name: String,
}

/// One field of the resource that this event changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    pub field: String,
    /// The value before (null when the field was not set): a string, number, boolean
    /// or list. Secrets show as `"<sealed>"`.
    pub before: Value,
    /// The value after. Secrets show as `"<sealed>"`.
    pub after: Value,
}

/// One event of the log, as an auditor reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"position": 42, "occurred_at": "2026-12-01T09:42:17Z", "resource_type": "ssh_keypair", "resource_id": "3f6b2a1e-8c4d-4b7a-9e21-5d0c7f4a9b13", "resource_name": "offsite backup (2026)", "event_type": "KeypairRenamed", "event_version": "1", "category": "change", "actor": {"id": "9a4f0c6e-1d2b-4e8f-b3a7-6c5d8e2f1a04", "name": "admin"}, "request_id": "b3c1f0e2-6d4a-4f8e-9a27-1c5e8d0b4f6a", "source_address": "192.0.2.10", "user_agent": "curl/8.5.0", "changes": [{"field": "name", "before": "offsite backup", "after": "offsite backup (2026)"}], "details": {}})))]
pub struct AuditRecord {
    /// The event's global position: the record's id and sort key.
    pub position: i64,
    /// When the command ran (from the event's metadata, not when it was projected).
    pub occurred_at: DateTime<Utc>,
    /// `ssh_keypair`, `ssh_connection`, `api_key`, `authorized_key`,
    /// `pairing_attempt`, `access_denial`.
    pub resource_type: String,
    pub resource_id: String,
    /// The resource's name at that time (absent for resources without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// The stored event type, e.g. `KeypairRenamed`.
    pub event_type: String,
    pub event_version: String,
    pub category: Category,
    pub actor: Actor,
    /// The `X-Request-Id` of the response to the request that caused it.
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Field-level changes, before → after.
    pub changes: Vec<FieldChange>,
    /// Facts of the event that are not fields of the resource (e.g. `cascade`,
    /// `encrypted`, a failed setup's `phase`).
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}
