//! Who asked for a change, and from where. Stored with every event the command writes,
//! so each aggregate's events are its own audit trail.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMetadata {
    /// The API key that made the request (`None` for the local CLI and bootstrap).
    pub actor_id: Option<String>,
    /// A readable name for the actor: the API key's name, `cli` or `bootstrap`.
    pub actor_name: String,
    pub request_id: String,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl CommandMetadata {
    /// Metadata for work started on this machine rather than over HTTP.
    pub fn local(actor_name: &str, occurred_at: DateTime<Utc>) -> Self {
        Self {
            actor_id: None,
            actor_name: actor_name.to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            source_address: None,
            user_agent: None,
            occurred_at,
        }
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        if let Some(id) = &self.actor_id {
            map.insert("actor_id".to_owned(), id.clone());
        }
        map.insert("actor_name".to_owned(), self.actor_name.clone());
        map.insert("request_id".to_owned(), self.request_id.clone());
        if let Some(addr) = &self.source_address {
            map.insert("source_address".to_owned(), addr.clone());
        }
        if let Some(agent) = &self.user_agent {
            map.insert("user_agent".to_owned(), agent.clone());
        }
        map.insert(
            "occurred_at".to_owned(),
            self.occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        );
        map
    }

    /// Reads back what [`CommandMetadata::to_map`] wrote; missing fields become empty.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let get = |k: &str| map.get(k).cloned();
        Self {
            actor_id: get("actor_id"),
            actor_name: get("actor_name").unwrap_or_default(),
            request_id: get("request_id").unwrap_or_default(),
            source_address: get("source_address"),
            user_agent: get("user_agent"),
            occurred_at: get("occurred_at")
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_event_metadata_map() {
        let meta = CommandMetadata {
            actor_id: Some("k1".into()),
            actor_name: "ops".into(),
            request_id: "r1".into(),
            source_address: Some("10.0.0.1".into()),
            user_agent: Some("curl/8".into()),
            occurred_at: DateTime::from_timestamp(1_700_000_000, 123_000).unwrap_or_default(),
        };
        assert_eq!(CommandMetadata::from_map(&meta.to_map()), meta);
    }
}
