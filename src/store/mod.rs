//! The event store and read models, on PostgreSQL or SQLite behind one type.
//!
//! The backend is chosen once, from `database_url`. Everything that differs between the
//! two databases lives in `postgres.rs` and `sqlite.rs`; the rest of credgate sees
//! [`Store`], [`Aggregates`] and [`ProjectionRunner`].

mod aggregates;
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
pub use change::{Change, CommitError, CommitStep};
pub use error::{CommandError, StoreError};
pub use event_log::{Position, StoredEvent};
pub use failpoints::Failpoints;
pub use metadata::CommandMetadata;
pub use projections::{Projection, ProjectionRunner, View, ViewProjection};
pub use side_tables::Dependant;

pub use views::{ViewChange, ViewDoc};

use sqlx::{PgPool, SqlitePool};

use crate::config::{DatabaseSettings, DatabaseUrl};
use projections::ProjectionTx;

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

    /// The position of the newest event (0 for an empty log).
    pub async fn newest_position(&self) -> Result<i64, StoreError> {
        let newest: Option<i64> = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT MAX(position) FROM events")
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar("SELECT MAX(position) FROM events")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(newest.unwrap_or(0))
    }

    /// Whether any event of this aggregate type was ever written.
    pub async fn has_events_of(&self, aggregate_type: &str) -> Result<bool, StoreError> {
        match self {
            Self::Postgres(pool) => postgres::has_events_of(pool, aggregate_type).await,
            Self::Sqlite(pool) => sqlite::has_events_of(pool, aggregate_type).await,
        }
    }

    pub async fn view_get(
        &self,
        projection: &str,
        view_id: &str,
    ) -> Result<Option<ViewDoc>, StoreError> {
        match self {
            Self::Postgres(pool) => postgres::view_get(pool, projection, view_id).await,
            Self::Sqlite(pool) => sqlite::view_get(pool, projection, view_id).await,
        }
    }

    /// Up to `limit` documents whose sort key is greater than `after_sort_key`, in order.
    pub async fn view_page(
        &self,
        projection: &str,
        after_sort_key: i64,
        limit: i64,
    ) -> Result<Vec<ViewDoc>, StoreError> {
        match self {
            Self::Postgres(pool) => {
                postgres::view_page(pool, projection, after_sort_key, limit).await
            }
            Self::Sqlite(pool) => sqlite::view_page(pool, projection, after_sort_key, limit).await,
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

    async fn begin_projection_tx(&self) -> Result<Box<dyn ProjectionTx>, StoreError> {
        Ok(match self {
            Self::Postgres(pool) => Box::new(postgres::PgProjectionTx(pool.begin().await?)),
            Self::Sqlite(pool) => Box::new(sqlite::SqliteProjectionTx(
                pool.begin_with("BEGIN IMMEDIATE").await?,
            )),
        })
    }
}
