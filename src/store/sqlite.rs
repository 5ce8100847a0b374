//! SQLite side of the store (the embedded default): its connection options and its
//! schema.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

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
    let file = options.get_filename();
    if let Some(dir) = file.parent() {
        crate::files::create_private_dir(dir)
            .map_err(|e| StoreError::Fault(format!("cannot create {}: {e}", dir.display())))?;
    }
    // An in-memory database has no file to create.
    if file != std::path::Path::new(":memory:") {
        crate::files::create_private_file(file)
            .map_err(|e| StoreError::Fault(format!("cannot create {}: {e}", file.display())))?;
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
