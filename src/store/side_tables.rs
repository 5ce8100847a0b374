//! The few mutable tables beside the event log, written *before* a command runs because
//! an aggregate cannot see other aggregates: wrapped data keys (see `secrets`), name
//! reservations (uniqueness per kind) and dependencies (used-by). The SQL is the same on
//! both databases (`$n` placeholders work in SQLite too).

use super::{Store, StoreError};

/// Runs `$body` with `$pool` bound to whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Postgres($pool) => $body,
            Store::Sqlite($pool) => $body,
        }
    };
}

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
    /// Stores a wrapped data key unless the owner already has one.
    pub async fn insert_data_key(&self, owner: &str, wrapped: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO data_keys (owner, wrapped) VALUES ($1, $2) ON CONFLICT (owner) DO NOTHING"
        )
        .bind(owner)
        .bind(wrapped)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn get_data_key(&self, owner: &str) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT wrapped FROM data_keys WHERE owner = $1"
        )
        .bind(owner)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn delete_data_key(&self, owner: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM data_keys WHERE owner = $1"
        )
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Any one stored data key, to check the master key at start-up.
    pub async fn sample_data_key(&self) -> Result<Option<(String, String)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT owner, wrapped FROM data_keys ORDER BY owner LIMIT 1"
        )
        .fetch_optional(pool)
        .await?))
    }

    /// Reserves `normalized` for `owner` among names of `kind`. Returns the current owner
    /// when another one holds it.
    pub async fn reserve_name(
        &self,
        kind: &str,
        normalized: &str,
        owner: &str,
    ) -> Result<Option<String>, StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO name_reservations (kind, normalized, owner) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, normalized) DO NOTHING"
        )
        .bind(kind)
        .bind(normalized)
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ())?);
        let holder: Option<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT owner FROM name_reservations WHERE kind = $1 AND normalized = $2"
        )
        .bind(kind)
        .bind(normalized)
        .fetch_optional(pool)
        .await?);
        Ok(holder.filter(|h| h != owner))
    }

    /// Releases `normalized` if `owner` holds it.
    pub async fn release_name(
        &self,
        kind: &str,
        normalized: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM name_reservations WHERE kind = $1 AND normalized = $2 AND owner = $3"
        )
        .bind(kind)
        .bind(normalized)
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Forgets every reservation of `kind` (before rebuilding them from the views).
    pub async fn clear_names(&self, kind: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM name_reservations WHERE kind = $1"
        )
        .bind(kind)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Forgets every dependency recorded by dependants of `kind`.
    pub async fn clear_dependencies(&self, kind: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM dependencies WHERE dependant_kind = $1"
        )
        .bind(kind)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Records that `dependant` uses `target`.
    pub async fn add_dependency(
        &self,
        target: &str,
        dependant: &Dependant,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO dependencies (target, dependant_kind, dependant_id, dependant_name) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (target, dependant_kind, dependant_id) \
             DO UPDATE SET dependant_name = excluded.dependant_name"
        )
        .bind(target)
        .bind(&dependant.kind)
        .bind(&dependant.id)
        .bind(&dependant.name)
        .execute(pool)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn remove_dependency(
        &self,
        target: &str,
        kind: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
            "DELETE FROM dependencies WHERE target = $1 AND dependant_kind = $2 AND dependant_id = $3"
        )
        .bind(target)
        .bind(kind)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())?
        });
        Ok(())
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
