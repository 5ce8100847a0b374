//! Reading the event log in global order, for projections and rebuilds.

use std::collections::HashMap;

use serde_json::Value;

use super::StoreError;

/// Where an event sits in the global order: the `position` column. Positions are handed
/// out in commit order on both stores (see `migrations.rs`), so once a reader has seen a
/// position, no event with a lower one can still appear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(pub i64);

/// An event as stored, not yet turned into an aggregate's event type.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: HashMap<String, String>,
    pub at: Position,
}

/// One row of an event query: the columns of [`StoredEvent`] in order, with payload
/// and metadata as text so both databases hand back the same types.
pub(super) type EventRow = (String, String, i64, String, String, String, String, i64);

/// Events after a position, oldest first, at most a limit (`$1`, `$2`); the same SQL
/// on both databases.
pub(super) const EVENTS_AFTER: &str = "SELECT aggregate_type, aggregate_id, sequence, \
     event_type, event_version, CAST(payload AS TEXT), CAST(metadata AS TEXT), position \
     FROM events WHERE position > $1 ORDER BY position LIMIT $2";

pub(super) fn from_row(row: EventRow) -> Result<StoredEvent, StoreError> {
    let (
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        position,
    ) = row;
    Ok(StoredEvent {
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload: serde_json::from_str(&payload)?,
        metadata: serde_json::from_str(&metadata)?,
        at: Position(position),
    })
}
