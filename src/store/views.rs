//! View documents: the read models projections keep, one JSON document per id, with the
//! aggregate version it reflects and a sort key (the global position of the event that
//! created it) for stable cursor pagination. The SQL is the same on both databases.

use serde_json::Value;

use super::{Store, StoreError};

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

/// A document row: id, version, sort key, payload as text.
pub(super) type DocRow = (String, i64, i64, String);

/// One document (`$1` projection, `$2` id).
pub(super) const GET_DOC: &str = "SELECT view_id, version, sort_key, CAST(payload AS TEXT) \
     FROM view_documents WHERE projection = $1 AND view_id = $2";

/// Documents after a sort key, in order (`$1` projection, `$2` sort key, `$3` limit).
const PAGE: &str = "SELECT view_id, version, sort_key, CAST(payload AS TEXT) \
     FROM view_documents WHERE projection = $1 AND sort_key > $2 ORDER BY sort_key LIMIT $3";

pub(super) fn from_row(
    (view_id, version, sort_key, payload): DocRow,
) -> Result<ViewDoc, StoreError> {
    Ok(ViewDoc {
        view_id,
        version,
        sort_key,
        payload: serde_json::from_str(&payload)?,
    })
}

impl Store {
    pub async fn view_get(
        &self,
        projection: &str,
        view_id: &str,
    ) -> Result<Option<ViewDoc>, StoreError> {
        let row: Option<DocRow> = on_pool!(self, |pool| sqlx::query_as(GET_DOC)
            .bind(projection)
            .bind(view_id)
            .fetch_optional(pool)
            .await?);
        row.map(from_row).transpose()
    }

    /// Up to `limit` documents whose sort key is greater than `after_sort_key`, in order.
    pub async fn view_page(
        &self,
        projection: &str,
        after_sort_key: i64,
        limit: i64,
    ) -> Result<Vec<ViewDoc>, StoreError> {
        let rows: Vec<DocRow> = on_pool!(self, |pool| sqlx::query_as(PAGE)
            .bind(projection)
            .bind(after_sort_key)
            .bind(limit)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(from_row).collect()
    }

    /// Whether any event of this aggregate type was ever written.
    pub async fn has_events_of(&self, aggregate_type: &str) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1)"
        )
        .bind(aggregate_type)
        .fetch_one(pool)
        .await?))
    }

    /// Each projection's checkpoint: the position it has applied up to.
    pub async fn projection_checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT projection, position FROM projection_checkpoints"
        )
        .fetch_all(pool)
        .await?))
    }

    /// How many connections the pool holds now, how many of them are idle, and the most
    /// it opens.
    pub fn pool_usage(&self) -> PoolUsage {
        on_pool!(self, |pool| PoolUsage {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        })
    }

    /// The position of the newest event (0 for an empty log).
    pub async fn newest_position(&self) -> Result<i64, StoreError> {
        let newest: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT MAX(position) FROM events"
        )
        .fetch_one(pool)
        .await?);
        Ok(newest.unwrap_or(0))
    }
}

/// A snapshot of the connection pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}
