//! The transaction a projection batch runs in: read and lock the checkpoint, read the
//! events after it, put or delete documents, move the checkpoint. One SQL text per
//! operation serves both databases: `$n` placeholders, `CAST(… AS TEXT)` to read JSON
//! and `json($n)` to write it (a function in SQLite, a function-style cast in
//! PostgreSQL).

use sqlx::{Postgres, Sqlite, Transaction};

use super::event_log::{self, EventRow, Position, StoredEvent};
use super::views::{self, DocRow, ViewDoc};
use super::{Store, StoreError};

/// An open transaction on whichever database the store has.
pub(super) enum ProjectionTx {
    Postgres(Transaction<'static, Postgres>),
    /// Opened with `BEGIN IMMEDIATE`: the write lock is taken up front, so the
    /// transaction never has to upgrade a read lock (which SQLite may refuse with
    /// SQLITE_BUSY).
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs `$body` with `$conn` bound to the open transaction's connection.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            ProjectionTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
            ProjectionTx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// An upsert that always touches the row, so it also locks it (PostgreSQL) until the
/// transaction ends: two processes never apply the same events to the same view at once.
const LOCK_CHECKPOINT: &str = "INSERT INTO projection_checkpoints (projection, position) \
     VALUES ($1, 0) ON CONFLICT (projection) \
     DO UPDATE SET position = projection_checkpoints.position RETURNING position";

const PUT_DOC: &str = "INSERT INTO view_documents (projection, view_id, version, sort_key, payload) \
     VALUES ($1, $2, $3, $4, json($5)) \
     ON CONFLICT (projection, view_id) DO UPDATE \
     SET version = EXCLUDED.version, sort_key = EXCLUDED.sort_key, payload = EXCLUDED.payload";

impl ProjectionTx {
    pub(super) async fn begin(store: &Store) -> Result<Self, StoreError> {
        Ok(match store {
            Store::Postgres(pool) => Self::Postgres(pool.begin().await?),
            Store::Sqlite(pool) => Self::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Reads (creating if needed) and locks the projection's checkpoint.
    pub(super) async fn lock_checkpoint(
        &mut self,
        projection: &str,
    ) -> Result<Position, StoreError> {
        let position: i64 = on_tx!(self, |conn| sqlx::query_scalar(LOCK_CHECKPOINT)
            .bind(projection)
            .fetch_one(conn)
            .await?);
        Ok(Position(position))
    }

    pub(super) async fn events_after(
        &mut self,
        at: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventRow> = on_tx!(self, |conn| sqlx::query_as(event_log::EVENTS_AFTER)
            .bind(at.0)
            .bind(limit)
            .fetch_all(conn)
            .await?);
        rows.into_iter().map(event_log::from_row).collect()
    }

    pub(super) async fn load_doc(
        &mut self,
        projection: &str,
        view_id: &str,
    ) -> Result<Option<ViewDoc>, StoreError> {
        let row: Option<DocRow> = on_tx!(self, |conn| sqlx::query_as(views::GET_DOC)
            .bind(projection)
            .bind(view_id)
            .fetch_optional(conn)
            .await?);
        row.map(views::from_row).transpose()
    }

    pub(super) async fn put_doc(
        &mut self,
        projection: &str,
        doc: &ViewDoc,
    ) -> Result<(), StoreError> {
        on_tx!(self, |conn| sqlx::query(PUT_DOC)
            .bind(projection)
            .bind(&doc.view_id)
            .bind(doc.version)
            .bind(doc.sort_key)
            .bind(doc.payload.to_string())
            .execute(conn)
            .await
            .map(drop)?);
        Ok(())
    }

    pub(super) async fn delete_doc(
        &mut self,
        projection: &str,
        view_id: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, |conn| sqlx::query(
            "DELETE FROM view_documents WHERE projection = $1 AND view_id = $2"
        )
        .bind(projection)
        .bind(view_id)
        .execute(conn)
        .await
        .map(drop)?);
        Ok(())
    }

    pub(super) async fn save_checkpoint(
        &mut self,
        projection: &str,
        at: Position,
    ) -> Result<(), StoreError> {
        on_tx!(self, |conn| sqlx::query(
            "UPDATE projection_checkpoints SET position = $2 WHERE projection = $1"
        )
        .bind(projection)
        .bind(at.0)
        .execute(conn)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Forgets every document and the checkpoint, for a rebuild.
    pub(super) async fn reset(&mut self, projection: &str) -> Result<(), StoreError> {
        self.lock_checkpoint(projection).await?;
        on_tx!(self, |conn| sqlx::query(
            "DELETE FROM view_documents WHERE projection = $1"
        )
        .bind(projection)
        .execute(conn)
        .await
        .map(drop)?);
        self.save_checkpoint(projection, Position::default()).await
    }

    pub(super) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(tx) => tx.commit().await?,
            Self::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
