//! SQLite side of the store: the embedded default.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::event_log::{self, EventRow, Position, StoredEvent};
use super::projections::ProjectionTx;
use super::views::ViewDoc;
use super::{StoreError, migrations};
use crate::config::DatabaseSettings;

/// How long a writer waits for another writer's lock before the request is told the
/// store is busy (503).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn pool(url: &str, settings: &DatabaseSettings) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Fault(format!("database_url is not a valid SQLite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // An acknowledged write must survive a power cut.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Fault(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for statement in migrations::SQLITE.iter().chain(super::side_tables::DDL) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn view_get(
    pool: &SqlitePool,
    projection: &str,
    view_id: &str,
) -> Result<Option<ViewDoc>, StoreError> {
    let row: Option<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT view_id, version, sort_key, payload FROM view_documents \
         WHERE projection = ?1 AND view_id = ?2",
    )
    .bind(projection)
    .bind(view_id)
    .fetch_optional(pool)
    .await?;
    row.map(to_doc).transpose()
}

pub(super) async fn view_page(
    pool: &SqlitePool,
    projection: &str,
    after_sort_key: i64,
    limit: i64,
) -> Result<Vec<ViewDoc>, StoreError> {
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT view_id, version, sort_key, payload FROM view_documents \
         WHERE projection = ?1 AND sort_key > ?2 ORDER BY sort_key LIMIT ?3",
    )
    .bind(projection)
    .bind(after_sort_key)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(to_doc).collect()
}

pub(super) async fn has_events_of(
    pool: &SqlitePool,
    aggregate_type: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM events WHERE aggregate_type = ?1 LIMIT 1")
            .bind(aggregate_type)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

fn to_doc(
    (view_id, version, sort_key, payload): (String, i64, i64, String),
) -> Result<ViewDoc, StoreError> {
    Ok(ViewDoc {
        view_id,
        version,
        sort_key,
        payload: serde_json::from_str(&payload)?,
    })
}

/// Opened with `BEGIN IMMEDIATE`: the write lock is taken up front, so the transaction
/// never has to upgrade a read lock (which SQLite may refuse with SQLITE_BUSY).
pub(super) struct SqliteProjectionTx(pub Transaction<'static, Sqlite>);

#[async_trait::async_trait]
impl ProjectionTx for SqliteProjectionTx {
    async fn lock_checkpoint(&mut self, projection: &str) -> Result<Position, StoreError> {
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, position) VALUES (?1, 0) \
             ON CONFLICT (projection) DO NOTHING",
        )
        .bind(projection)
        .execute(&mut *self.0)
        .await?;
        let position: i64 =
            sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = ?1")
                .bind(projection)
                .fetch_one(&mut *self.0)
                .await?;
        Ok(Position(position))
    }

    async fn events_after(
        &mut self,
        at: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(event_log::SQLITE_EVENTS_AFTER)
            .bind(at.0)
            .bind(limit)
            .fetch_all(&mut *self.0)
            .await?;
        rows.into_iter().map(event_log::from_row).collect()
    }

    async fn load_doc(
        &mut self,
        projection: &str,
        view_id: &str,
    ) -> Result<Option<ViewDoc>, StoreError> {
        let row: Option<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT view_id, version, sort_key, payload FROM view_documents \
             WHERE projection = ?1 AND view_id = ?2",
        )
        .bind(projection)
        .bind(view_id)
        .fetch_optional(&mut *self.0)
        .await?;
        row.map(to_doc).transpose()
    }

    async fn put_doc(&mut self, projection: &str, doc: &ViewDoc) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO view_documents (projection, view_id, version, sort_key, payload) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (projection, view_id) DO UPDATE \
             SET version = excluded.version, sort_key = excluded.sort_key, payload = excluded.payload",
        )
        .bind(projection)
        .bind(&doc.view_id)
        .bind(doc.version)
        .bind(doc.sort_key)
        .bind(doc.payload.to_string())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn delete_doc(&mut self, projection: &str, view_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM view_documents WHERE projection = ?1 AND view_id = ?2")
            .bind(projection)
            .bind(view_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn save_checkpoint(&mut self, projection: &str, at: Position) -> Result<(), StoreError> {
        sqlx::query("UPDATE projection_checkpoints SET position = ?2 WHERE projection = ?1")
            .bind(projection)
            .bind(at.0)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn reset(&mut self, projection: &str) -> Result<(), StoreError> {
        self.lock_checkpoint(projection).await?;
        sqlx::query("DELETE FROM view_documents WHERE projection = ?1")
            .bind(projection)
            .execute(&mut *self.0)
            .await?;
        self.save_checkpoint(projection, Position::default()).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await?;
        Ok(())
    }
}
