//! The event store and read models, on PostgreSQL or SQLite behind one type.
//!
//! The backend is chosen once, from `database_url`. The SQL is written once and runs on
//! both (`on_pool!`, `$n` placeholders); only connection options and the schema differ,
//! in `postgres.rs` and `sqlite.rs`. The rest of credgate sees [`Store`], [`Aggregates`]
//! and [`ProjectionRunner`].

/// Runs `$body` with `$pool` bound to whichever pool the store has; the SQL in `$body`
/// must work on both databases (`$n` placeholders do).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Postgres($pool) => $body,
            Store::Sqlite($pool) => $body,
        }
    };
}

#[macro_use]
mod projection_tx;
mod aggregates;
mod audit_records;
mod chain;
mod change;
mod error;
mod event_log;
mod failpoints;
mod metadata;
mod migrations;
mod postgres;
mod projections;
mod side_tables;
mod sqlite;
mod views;

pub use aggregates::{Aggregates, Committed, Loaded, Upcasted, Writer, upcast};
pub use audit_records::{AuditQuery, AuditRow};
pub use chain::{ChainFault, ChainHead, ChainKey, ChainReport};
pub use change::{Change, CommitError, CommitStep};
pub use error::{CommandError, StoreError};
pub use event_log::{Position, StoredEvent};
pub use failpoints::Failpoints;
pub use metadata::CommandMetadata;
pub use projections::{Projected, Projection, ProjectionRunner, View, ViewProjection};
pub use side_tables::Dependant;
pub use views::PoolUsage;

pub use views::{ViewChange, ViewDoc};

use sqlx::{PgPool, SqlitePool};

use crate::config::{DatabaseSettings, DatabaseUrl};

/// A page of a list and the sort key the next page starts after.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<i64>,
}

#[derive(Clone)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Store {
    /// Opens the store and brings its schema up to date.
    pub async fn open(url: &DatabaseUrl, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let store = match url {
            DatabaseUrl::Postgres(url) => Self::Postgres(postgres::pool(url, settings)?),
            DatabaseUrl::Sqlite(url) => Self::Sqlite(sqlite::pool(url, settings)?),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => postgres::migrate(pool).await,
            Self::Sqlite(pool) => sqlite::migrate(pool).await,
        }
    }

    /// Succeeds when the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }

    /// One page of a view's documents as `V`, oldest first, and where the next starts.
    pub async fn view_list<V: serde::de::DeserializeOwned>(
        &self,
        projection: &str,
        after_sort_key: i64,
        limit: i64,
    ) -> Result<Page<V>, StoreError> {
        let mut docs = self
            .view_page(projection, after_sort_key, limit + 1)
            .await?;
        let more = docs.len() as i64 > limit;
        docs.truncate(usize::try_from(limit).unwrap_or(0));
        let next_after = if more {
            docs.last().map(|d| d.sort_key)
        } else {
            None
        };
        let items = docs
            .into_iter()
            .map(|d| serde_json::from_value(d.payload))
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next_after })
    }

    /// Every document of a view as `V`, in order (for rebuilding side tables).
    pub async fn all_views<V: serde::de::DeserializeOwned>(
        &self,
        projection: &str,
    ) -> Result<Vec<V>, StoreError> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = self.view_list::<V>(projection, after, 500).await?;
            all.extend(page.items);
            match page.next_after {
                Some(next) => after = next,
                None => return Ok(all),
            }
        }
    }

    /// One document of a view as `V`.
    pub async fn view_find<V: serde::de::DeserializeOwned>(
        &self,
        projection: &str,
        view_id: &str,
    ) -> Result<Option<V>, StoreError> {
        match self.view_get(projection, view_id).await? {
            Some(doc) => Ok(Some(serde_json::from_value(doc.payload)?)),
            None => Ok(None),
        }
    }
}
