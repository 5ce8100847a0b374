//! Reading the event log in global order, for projections and rebuilds.

use std::collections::HashMap;

use serde_json::Value;

use super::StoreError;

/// Where an event sits in the global order. On PostgreSQL the order is
/// (`commit_tx`, `position`): every event a reader has not seen yet was written by a
/// transaction whose id is at least the oldest one still running when the reader looked,
/// so it sorts after everything already read. On SQLite `commit_tx` is always 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub commit_tx: i64,
    pub position: i64,
}

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

/// The columns every event query selects, in this order (payload and metadata as text
/// so both databases hand back the same type).
pub(super) const PG_EVENT_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload::text, metadata::text, commit_tx, position";
pub(super) const SQLITE_EVENT_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata, 0, position";

pub(super) type EventRow = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

pub(super) fn from_row(row: EventRow) -> Result<StoredEvent, StoreError> {
    let (
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        tx,
        pos,
    ) = row;
    Ok(StoredEvent {
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload: serde_json::from_str(&payload)?,
        metadata: serde_json::from_str(&metadata)?,
        at: Position {
            commit_tx: tx,
            position: pos,
        },
    })
}

/// Events after `after`, oldest first, at most `limit`. On PostgreSQL only events of
/// transactions older than every running one are returned (see [`Position`]).
pub(super) fn pg_events_after_sql() -> String {
    format!(
        "SELECT {PG_EVENT_COLUMNS} FROM events \
         WHERE (commit_tx, position) > ($1, $2) \
           AND commit_tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
         ORDER BY commit_tx, position LIMIT $3"
    )
}

pub(super) fn sqlite_events_after_sql() -> String {
    format!(
        "SELECT {SQLITE_EVENT_COLUMNS} FROM events WHERE position > ?1 \
         ORDER BY position LIMIT ?2"
    )
}
