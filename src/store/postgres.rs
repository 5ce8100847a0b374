//! PostgreSQL side of the store: its connection options and its schema.

use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{StoreError, migrations};
use crate::config::DatabaseSettings;

pub(super) fn pool(url: &str, settings: &DatabaseSettings) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Fault(format!("database_url is not a valid PostgreSQL URL: {e}")))?
        .application_name("credgate");
    // Lazy: connections are made on demand, so an outage surfaces as quick 503s
    // (bounded by `acquire_timeout`) and recovery needs no restart.
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // Two processes starting together must not race on CREATE ... IF NOT EXISTS.
    sqlx::query("SELECT pg_advisory_xact_lock(7245100100)")
        .execute(&mut *tx)
        .await?;
    for statement in migrations::POSTGRES.iter().chain(super::side_tables::DDL) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
