//! View documents: the read models projections keep, one JSON document per id, with the
//! aggregate version it reflects and a sort key (the global position of the event that
//! created it) for stable cursor pagination.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct ViewDoc {
    pub view_id: String,
    /// The sequence number of the last event of the aggregate applied to this document.
    pub version: i64,
    pub sort_key: i64,
    pub payload: Value,
}

/// What applying one event does to one document.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewChange {
    Unchanged,
    Put(ViewDoc),
    Delete,
}
