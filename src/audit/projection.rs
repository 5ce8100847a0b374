//! The audit projection: every event of every aggregate becomes one audit record.
//!
//! Besides the records, it keeps one small document per resource with the audited
//! fields' current values (`audit` documents, id `type/id`), which is how a record can
//! show before → after and the resource's name at the time. Everything comes from the
//! event and its metadata (time included), so a rebuild gives the same records.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lens::{AuditFacts, AuditLens, Category};
use super::record::{Actor, AuditRecord, FieldChange};
use crate::store::{
    AuditRow, CommandMetadata, Projected, Projection, StoreError, StoredEvent, ViewChange, ViewDoc,
};

/// The projection's name: its checkpoint and resource documents. A persisted contract.
pub const PROJECTION: &str = "audit";

/// What the projection remembers of one resource.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Subject {
    fields: Map<String, Value>,
    #[serde(default)]
    removed: bool,
}

pub struct AuditProjection {
    lenses: HashMap<&'static str, Arc<dyn AuditLens>>,
}

impl AuditProjection {
    pub fn new(lenses: Vec<Arc<dyn AuditLens>>) -> Self {
        Self {
            lenses: lenses
                .into_iter()
                .map(|lens| (lens.aggregate_type(), lens))
                .collect(),
        }
    }

    /// The API's name for an aggregate type (`SshKeypair` → `ssh_keypair`).
    pub fn resource_type_of(&self, aggregate_type: &str) -> String {
        self.lenses.get(aggregate_type).map_or_else(
            || snake_case(aggregate_type),
            |lens| lens.resource_type().to_owned(),
        )
    }

    fn facts(&self, event: &StoredEvent) -> Result<AuditFacts, StoreError> {
        match self.lenses.get(event.aggregate_type.as_str()) {
            Some(lens) => lens.describe(event),
            // An aggregate no plugin describes still gets its record (who, when, what
            // type), with nothing of its payload: it may hold anything.
            None => Ok(AuditFacts::new(Category::Change)),
        }
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        PROJECTION
    }

    fn reads(&self, _aggregate_type: &str) -> bool {
        true
    }

    fn document_id(&self, event: &StoredEvent) -> String {
        format!("{}/{}", event.aggregate_type, event.aggregate_id)
    }

    fn writes_audit_records(&self) -> bool {
        true
    }

    fn project(
        &self,
        current: Option<&ViewDoc>,
        event: &StoredEvent,
    ) -> Result<Projected, StoreError> {
        if current.is_some_and(|doc| doc.version >= event.sequence) {
            // Applied before: its record exists, and the document is past it.
            return Ok(ViewChange::Unchanged.into());
        }
        let mut subject: Subject = current
            .map(|doc| serde_json::from_value(doc.payload.clone()))
            .transpose()?
            .unwrap_or_default();
        let facts = self.facts(event)?;
        let mut changes = Vec::new();
        for (field, after) in facts.sets {
            let before = subject.fields.get(field).cloned().unwrap_or(Value::Null);
            if before != after {
                changes.push(FieldChange {
                    field: field.to_owned(),
                    before,
                    after: after.clone(),
                });
            }
            subject.fields.insert(field.to_owned(), after);
        }
        subject.removed |= facts.removes;
        let metadata = CommandMetadata::from_map(&event.metadata);
        let resource_type = self.resource_type_of(&event.aggregate_type);
        let record = AuditRecord {
            position: event.at.0,
            occurred_at: metadata.occurred_at,
            resource_type: resource_type.clone(),
            resource_id: event.aggregate_id.clone(),
            resource_name: subject
                .fields
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            category: facts.category,
            actor: Actor {
                id: metadata.actor_id.clone(),
                name: metadata.actor_name.clone(),
            },
            request_id: metadata.request_id.clone(),
            source_address: metadata.source_address.clone(),
            user_agent: metadata.user_agent.clone(),
            changes,
            details: facts.details,
        };
        let row = AuditRow {
            position: event.at.0,
            occurred_at: metadata
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            resource_type,
            resource_id: event.aggregate_id.clone(),
            event_type: event.event_type.clone(),
            actor: metadata.actor_id.unwrap_or(metadata.actor_name),
            request_id: metadata.request_id,
            record: serde_json::to_value(&record)?,
        };
        let document = ViewDoc {
            view_id: self.document_id(event),
            version: event.sequence,
            sort_key: current.map_or(event.at.0, |doc| doc.sort_key),
            payload: serde_json::to_value(&subject)?,
        };
        Ok(Projected {
            document: ViewChange::Put(document),
            record: Some(row),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_types_become_snake_case_resource_types() {
        assert_eq!(snake_case("SshKeypair"), "ssh_keypair");
        assert_eq!(snake_case("ApiKey"), "api_key");
        assert_eq!(snake_case("x"), "x");
    }
}
