//! The few mutable tables beside the event log, for what an aggregate cannot see on its
//! own: wrapped data keys (see `secrets`), name reservations (uniqueness per kind; a
//! reservation also says its owner is alive) and dependencies (used-by). They are only
//! ever written by [`Store::commit`](super::Store::commit), in the transaction of the
//! events that imply them (see `change.rs`); this file reads them. The SQL is the same on
//! both databases (`$n` placeholders work in SQLite too).

use super::{Store, StoreError};

pub const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS data_keys (
        owner   text PRIMARY KEY,
        wrapped text NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS name_reservations (
        kind       text NOT NULL,
        normalized text NOT NULL,
        owner      text NOT NULL,
        PRIMARY KEY (kind, normalized)
    )",
    "CREATE TABLE IF NOT EXISTS dependencies (
        target         text NOT NULL,
        dependant_kind text NOT NULL,
        dependant_id   text NOT NULL,
        dependant_name text NOT NULL,
        PRIMARY KEY (target, dependant_kind, dependant_id)
    )",
];

/// Something that depends on another object (e.g. a connection using a keypair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependant {
    pub kind: String,
    pub id: String,
    pub name: String,
}

impl Store {
    pub async fn get_data_key(&self, owner: &str) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT wrapped FROM data_keys WHERE owner = $1"
        )
        .bind(owner)
        .fetch_optional(pool)
        .await?))
    }

    /// Any one stored data key, to check the master key at start-up.
    pub async fn sample_data_key(&self) -> Result<Option<(String, String)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT owner, wrapped FROM data_keys ORDER BY owner LIMIT 1"
        )
        .fetch_optional(pool)
        .await?))
    }

    /// How many names of `kind` are held (a start-up backfill skips its work when the
    /// counts say nothing is missing).
    pub async fn names_held(&self, kind: &str) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM name_reservations WHERE kind = $1"
        )
        .bind(kind)
        .fetch_one(pool)
        .await?))
    }

    /// Who holds the name `normalized` of `kind`, if anyone (a reservation also says
    /// its owner is alive, so this finds a live object by a unique key).
    pub async fn name_owner(
        &self,
        kind: &str,
        normalized: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT owner FROM name_reservations WHERE kind = $1 AND normalized = $2"
        )
        .bind(kind)
        .bind(normalized)
        .fetch_optional(pool)
        .await?))
    }

    /// What depends on `target`, by kind then name.
    pub async fn dependants_of(&self, target: &str) -> Result<Vec<Dependant>, StoreError> {
        let rows: Vec<(String, String, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT dependant_kind, dependant_id, dependant_name FROM dependencies \
             WHERE target = $1 ORDER BY dependant_kind, dependant_name, dependant_id"
        )
        .bind(target)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(kind, id, name)| Dependant { kind, id, name })
            .collect())
    }
}
