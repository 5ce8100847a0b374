//! SQLite side of the store (the embedded default): its connection options and its
//! schema.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};

use super::{StoreError, migrations};
use crate::config::DatabaseSettings;

/// How long a writer waits for another writer's lock before the request is told the
/// store is busy (503).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening the store waits for another process's lock on the file.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) fn pool(url: &str, settings: &DatabaseSettings) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Fault(format!("database_url is not a valid SQLite URL: {e}")))?
        .create_if_missing(true)
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

/// Brings the schema up to date, waiting for a live service that shares the file.
///
/// A busy database is retried until `OPEN_TIMEOUT`: SQLite answers some lock conflicts
/// at once instead of waiting out `BUSY_TIMEOUT` (a connection that first meets the file
/// while another holds its lock), and a second process opening a live store
/// (`credgate audit verify` beside the service) must wait for it, not fail.
pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    loop {
        match try_migrate(pool).await {
            Err((_, e)) if is_busy(&e) && started.elapsed() < OPEN_TIMEOUT => {
                tracing::debug!(error = %e, "the database is busy; opening it again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err((step, e)) => {
                return Err(StoreError::Unavailable(format!(
                    "{step} (after {} ms): {e}",
                    started.elapsed().as_millis()
                )));
            }
            Ok(()) => return Ok(()),
        }
    }
}

/// The schema brought up to date, or the step that failed.
async fn try_migrate(pool: &SqlitePool) -> Result<(), (&'static str, sqlx::Error)> {
    use_write_ahead_log(pool)
        .await
        .map_err(|e| ("setting WAL mode", e))?;
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| ("taking the write lock", e))?;
    for statement in migrations::SQLITE.iter().chain(super::side_tables::DDL) {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(|e| ("updating the schema", e))?;
    }
    tx.commit().await.map_err(|e| ("committing the schema", e))
}

/// Puts the database in write-ahead-log mode, once: the mode is stored in the file.
///
/// Not a connect option on purpose: switching the mode needs an exclusive lock that
/// SQLite does not wait for (no busy timeout), and every new connection of every
/// process would ask for it again.
async fn use_write_ahead_log(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await?;
    // An in-memory database reports "memory" and has no log to keep.
    if !(mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory")) {
        sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await?;
    }
    Ok(())
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), with or without an extended code.
fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::store::Store;

    fn settings() -> DatabaseSettings {
        DatabaseSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// What `credgate audit verify` does beside a running service: open the same file
    /// while it commits. Every open must succeed (it once failed with "database is
    /// locked" when each new connection asked for WAL mode again).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_live_database_opens_beside_a_busy_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(format!("sqlite://{}/live.db", dir.path().display()));
        let Store::Sqlite(service) = Store::open(&url, &settings()).await.unwrap() else {
            unreachable!("a sqlite URL opens a SQLite store")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&service)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        sqlx::query("CREATE TABLE busy (n INTEGER)")
            .execute(&service)
            .await
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut commits = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    sqlx::query("INSERT INTO busy (n) VALUES (1)")
                        .execute(&service)
                        .await
                        .unwrap();
                    commits += 1;
                }
                service.close().await;
                commits
            }
        });
        let mut failures = Vec::new();
        for _ in 0..40 {
            match Store::open(&url, &settings()).await {
                Ok(other) => {
                    other.ping().await.unwrap();
                    other.close().await;
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let commits = writer.await.unwrap();
        assert!(commits > 0, "the writer never committed");
        assert_eq!(failures, Vec::<String>::new());
    }
}
