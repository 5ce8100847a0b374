//! One request, one transaction: a [`Change`] collects the events a request decided on
//! (of one aggregate or several) and the side-table edits they imply, and
//! [`Store::commit`] writes all of it in one database transaction, or nothing.
//!
//! Why not postgres-es's / sqlite-es's own `persist`: it opens its own transaction, so
//! a name reservation or a data key written beside it could outlive a failed command
//! (or go missing after a crash). Reading and folding events still goes through
//! cqrs-es (`PersistedEventStore` on the postgres-es / sqlite-es repositories, with
//! upcasters); only the final insert is ours, into the same `events` table with the
//! same columns, so either side reads what the other wrote.
//!
//! Inside the transaction, in this order:
//! 1. PostgreSQL: the advisory lock every event-writing transaction takes (see
//!    `migrations.rs`), taken first so the checks below cannot race another writer.
//!    SQLite: `BEGIN IMMEDIATE` takes the database's write lock at once.
//! 2. the events; a duplicate `(aggregate_type, aggregate_id, sequence)` means another
//!    writer got there first ([`StoreError::Conflict`]);
//! 3. the side-table edits, in the order they were staged; guards (`require_*`) are
//!    checked where they were staged, so a guard staged last sees every edit before it.

use cqrs_es::persist::SerializedEvent;

use super::chain::{self, ChainKey};
use super::side_tables::Dependant;
use super::{Store, StoreError};

/// The events and side-table edits of one request, not yet written.
#[derive(Debug, Default)]
pub struct Change {
    pub(super) events: Vec<SerializedEvent>,
    pub(super) edits: Vec<SideEdit>,
    /// Link every event the audit chain does not cover yet (see
    /// `Store::adopt_unchained_events`).
    pub(super) adopt_events: bool,
}

/// One edit of the tables beside the event log. Each is idempotent, so a change can be
/// retried as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SideEdit {
    /// `owner` holds `normalized` among the names of `kind`, and no other name of it.
    /// When another owner holds it already, the change is refused with `NameTaken`,
    /// unless `if_free` (a rebuild over data older than a reservation, which may hold
    /// duplicates: the first keeps the name).
    HoldName {
        kind: &'static str,
        owner: String,
        normalized: String,
        if_free: bool,
    },
    /// Backfill for data older than a reservation: `owner` holds `normalized` among the
    /// names of `kind` if it holds none of that kind yet, the name is free, and (with
    /// `alive_in`) it holds a name of that kind (it is alive now, not only in a view
    /// read before the transaction). Never takes anything from anyone.
    HoldNameIfUnheld {
        kind: &'static str,
        owner: String,
        normalized: String,
        alive_in: Option<&'static str>,
    },
    /// `owner` holds no name of `kind` any more.
    ReleaseNames {
        kind: &'static str,
        owner: String,
    },
    /// No name of `kind` is held (before a rebuild refills them).
    ForgetNames {
        kind: &'static str,
    },
    /// No dependant of `kind` uses anything (before a rebuild refills them).
    ForgetDependants {
        kind: &'static str,
    },
    /// `dependant` uses `target`, and nothing else.
    DependOn {
        target: String,
        dependant: Dependant,
    },
    /// `dependant` uses nothing.
    DropDependant {
        kind: String,
        id: String,
    },
    PutDataKey {
        owner: String,
        wrapped: String,
    },
    DestroyDataKey {
        owner: String,
    },
    /// Refuses the change unless `owner` holds a name of `kind`: it is alive.
    RequireLive {
        kind: &'static str,
        owner: String,
    },
    /// Refuses the change while anything depends on `target`.
    RequireUnused {
        target: String,
    },
    /// Refuses the change unless some owner still holds a name of `kind` at this point
    /// of it (e.g. some admin key stays active).
    RequireHeld {
        kind: &'static str,
    },
}

/// Why a change was not written.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another object of the same kind holds the name.
    #[error("the name is taken by another {kind}")]
    NameTaken { kind: &'static str },
    /// A required object is gone (deleted meanwhile, or never existed).
    #[error("no such {kind}")]
    NotLive { kind: &'static str, owner: String },
    /// Something still depends on the object being deleted.
    #[error("in use by {} object(s)", .0.len())]
    InUse(Vec<Dependant>),
    /// The change would leave no holder of a name of `kind`.
    #[error("it would leave no {kind}")]
    NoneLeft { kind: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CommitError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

impl Change {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.edits.is_empty()
    }

    pub(super) fn add_events(&mut self, events: Vec<SerializedEvent>) {
        self.events.extend(events);
    }

    /// `owner` is known by `normalized` among names of `kind` (its old name, if any, is
    /// given up in the same transaction; holding the same name again changes nothing).
    pub fn hold_name(&mut self, kind: &'static str, owner: &str, normalized: &str) {
        self.edits.push(SideEdit::HoldName {
            kind,
            owner: owner.to_owned(),
            normalized: normalized.to_owned(),
            if_free: false,
        });
    }

    /// Holds the name unless another owner has it already (see `SideEdit::HoldName`).
    pub fn hold_name_if_free(&mut self, kind: &'static str, owner: &str, normalized: &str) {
        self.edits.push(SideEdit::HoldName {
            kind,
            owner: owner.to_owned(),
            normalized: normalized.to_owned(),
            if_free: true,
        });
    }

    /// See `SideEdit::HoldNameIfUnheld`: additive backfill at start.
    pub fn hold_name_if_unheld(
        &mut self,
        kind: &'static str,
        owner: &str,
        normalized: &str,
        alive_in: Option<&'static str>,
    ) {
        self.edits.push(SideEdit::HoldNameIfUnheld {
            kind,
            owner: owner.to_owned(),
            normalized: normalized.to_owned(),
            alive_in,
        });
    }

    pub fn release_names(&mut self, kind: &'static str, owner: &str) {
        self.edits.push(SideEdit::ReleaseNames {
            kind,
            owner: owner.to_owned(),
        });
    }

    /// Forgets every name of `kind` (a rebuild stages this, then every live name).
    pub fn forget_names(&mut self, kind: &'static str) {
        self.edits.push(SideEdit::ForgetNames { kind });
    }

    /// Forgets what every dependant of `kind` uses (a rebuild, like [`Change::forget_names`]).
    pub fn forget_dependants(&mut self, kind: &'static str) {
        self.edits.push(SideEdit::ForgetDependants { kind });
    }

    /// `dependant` uses `target` from now on (replacing what it used before).
    pub fn depend_on(&mut self, target: &str, dependant: Dependant) {
        self.edits.push(SideEdit::DependOn {
            target: target.to_owned(),
            dependant,
        });
    }

    pub fn drop_dependant(&mut self, kind: &str, id: &str) {
        self.edits.push(SideEdit::DropDependant {
            kind: kind.to_owned(),
            id: id.to_owned(),
        });
    }

    pub fn put_data_key(&mut self, owner: &str, wrapped: String) {
        self.edits.push(SideEdit::PutDataKey {
            owner: owner.to_owned(),
            wrapped,
        });
    }

    pub fn destroy_data_key(&mut self, owner: &str) {
        self.edits.push(SideEdit::DestroyDataKey {
            owner: owner.to_owned(),
        });
    }

    /// The change commits only if `owner` is a live object of `kind` at commit time.
    pub fn require_live(&mut self, kind: &'static str, owner: &str) {
        self.edits.push(SideEdit::RequireLive {
            kind,
            owner: owner.to_owned(),
        });
    }

    /// The change commits only if some owner still holds a name of `kind` at this point
    /// of it.
    pub fn require_held(&mut self, kind: &'static str) {
        self.edits.push(SideEdit::RequireHeld { kind });
    }

    /// The change commits only if nothing depends on `target` at this point of it.
    pub fn require_unused(&mut self, target: &str) {
        self.edits.push(SideEdit::RequireUnused {
            target: target.to_owned(),
        });
    }
}

/// Where a test can make a commit fail, to stand in for a crash at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitStep {
    /// Before the transaction begins.
    Begin,
    /// After the events are inserted, before the side tables are edited.
    AfterEvents,
    /// After the side-table edits, before the transaction commits.
    AfterSideTables,
    /// After the transaction committed, before the projections catch up.
    AfterCommit,
}

/// Applies one [`SideEdit`] on `$tx`, returning early with a [`CommitError`] when a
/// guard fails or a name is taken.
macro_rules! apply_edit {
    ($tx:ident, $edit:expr) => {
        match $edit {
            SideEdit::HoldName {
                kind,
                owner,
                normalized,
                if_free,
            } => {
                sqlx::query(
                    "DELETE FROM name_reservations WHERE kind = $1 AND owner = $2 \
                     AND normalized <> $3",
                )
                .bind(*kind)
                .bind(owner)
                .bind(normalized)
                .execute(&mut *$tx)
                .await?;
                sqlx::query(
                    "INSERT INTO name_reservations (kind, normalized, owner) VALUES ($1, $2, $3) \
                     ON CONFLICT (kind, normalized) DO NOTHING",
                )
                .bind(*kind)
                .bind(normalized)
                .bind(owner)
                .execute(&mut *$tx)
                .await?;
                let holder: Option<String> = sqlx::query_scalar(
                    "SELECT owner FROM name_reservations WHERE kind = $1 AND normalized = $2",
                )
                .bind(*kind)
                .bind(normalized)
                .fetch_optional(&mut *$tx)
                .await?;
                if !*if_free && holder.as_deref() != Some(owner.as_str()) {
                    return Err(CommitError::NameTaken { kind });
                }
            }
            SideEdit::HoldNameIfUnheld {
                kind,
                owner,
                normalized,
                alive_in,
            } => {
                sqlx::query(
                    "INSERT INTO name_reservations (kind, normalized, owner) \
                     SELECT $1, $2, $3 WHERE NOT EXISTS \
                     (SELECT 1 FROM name_reservations WHERE kind = $1 AND owner = $3) \
                     AND ($4 IS NULL OR EXISTS \
                     (SELECT 1 FROM name_reservations WHERE kind = $4 AND owner = $3)) \
                     ON CONFLICT (kind, normalized) DO NOTHING",
                )
                .bind(*kind)
                .bind(normalized)
                .bind(owner)
                .bind(*alive_in)
                .execute(&mut *$tx)
                .await?;
            }
            SideEdit::ReleaseNames { kind, owner } => {
                sqlx::query("DELETE FROM name_reservations WHERE kind = $1 AND owner = $2")
                    .bind(*kind)
                    .bind(owner)
                    .execute(&mut *$tx)
                    .await?;
            }
            SideEdit::ForgetNames { kind } => {
                sqlx::query("DELETE FROM name_reservations WHERE kind = $1")
                    .bind(*kind)
                    .execute(&mut *$tx)
                    .await?;
            }
            SideEdit::ForgetDependants { kind } => {
                sqlx::query("DELETE FROM dependencies WHERE dependant_kind = $1")
                    .bind(*kind)
                    .execute(&mut *$tx)
                    .await?;
            }
            SideEdit::DependOn { target, dependant } => {
                sqlx::query(
                    "DELETE FROM dependencies WHERE dependant_kind = $1 AND dependant_id = $2",
                )
                .bind(&dependant.kind)
                .bind(&dependant.id)
                .execute(&mut *$tx)
                .await?;
                sqlx::query(
                    "INSERT INTO dependencies (target, dependant_kind, dependant_id, \
                     dependant_name) VALUES ($1, $2, $3, $4)",
                )
                .bind(target)
                .bind(&dependant.kind)
                .bind(&dependant.id)
                .bind(&dependant.name)
                .execute(&mut *$tx)
                .await?;
            }
            SideEdit::DropDependant { kind, id } => {
                sqlx::query(
                    "DELETE FROM dependencies WHERE dependant_kind = $1 AND dependant_id = $2",
                )
                .bind(kind)
                .bind(id)
                .execute(&mut *$tx)
                .await?;
            }
            SideEdit::PutDataKey { owner, wrapped } => {
                sqlx::query("INSERT INTO data_keys (owner, wrapped) VALUES ($1, $2)")
                    .bind(owner)
                    .bind(wrapped)
                    .execute(&mut *$tx)
                    .await?;
            }
            SideEdit::DestroyDataKey { owner } => {
                sqlx::query("DELETE FROM data_keys WHERE owner = $1")
                    .bind(owner)
                    .execute(&mut *$tx)
                    .await?;
            }
            SideEdit::RequireLive { kind, owner } => {
                let live: Option<String> = sqlx::query_scalar(
                    "SELECT owner FROM name_reservations WHERE kind = $1 AND owner = $2",
                )
                .bind(*kind)
                .bind(owner)
                .fetch_optional(&mut *$tx)
                .await?;
                if live.is_none() {
                    return Err(CommitError::NotLive {
                        kind,
                        owner: owner.clone(),
                    });
                }
            }
            SideEdit::RequireHeld { kind } => {
                let any: Option<String> = sqlx::query_scalar(
                    "SELECT owner FROM name_reservations WHERE kind = $1 LIMIT 1",
                )
                .bind(*kind)
                .fetch_optional(&mut *$tx)
                .await?;
                if any.is_none() {
                    return Err(CommitError::NoneLeft { kind });
                }
            }
            SideEdit::RequireUnused { target } => {
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT dependant_kind, dependant_id, dependant_name FROM dependencies \
                     WHERE target = $1 ORDER BY dependant_kind, dependant_name, dependant_id",
                )
                .bind(target)
                .fetch_all(&mut *$tx)
                .await?;
                if !rows.is_empty() {
                    return Err(CommitError::InUse(
                        rows.into_iter()
                            .map(|(kind, id, name)| Dependant { kind, id, name })
                            .collect(),
                    ));
                }
            }
        }
    };
}

/// Runs `$body` with `$tx` bound to an open transaction on whichever database the store
/// has, then commits. The SQL in `$body` must work on both (`$n` placeholders do). An
/// early return from `$body` drops the transaction, which rolls it back.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:block) => {
        match $store {
            Store::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(super::migrations::EVENT_WRITE_LOCK)
                    .execute(&mut *$tx)
                    .await?;
                $body
                $tx.commit().await?;
            }
            Store::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                $body
                $tx.commit().await?;
            }
        }
    };
}

/// One event; `json($n)` stores the text as JSON on both databases. It hands back the
/// columns as stored (SQLite's `json()` may respell the text), which the chain covers.
const INSERT_EVENT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata) \
     VALUES ($1, $2, $3, $4, $5, json($6), json($7)) \
     RETURNING position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
     CAST(payload AS TEXT), CAST(metadata AS TEXT)";

use chain::RawEventRow;

/// Appends the audit chain's links for `$written` (raw events in position order) on
/// `$tx`, after the newest link there is.
macro_rules! link_events {
    ($tx:ident, $key:expr, $written:expr) => {{
        let head: Option<(i64, String)> = sqlx::query_as(chain::HEAD)
            .fetch_optional(&mut *$tx)
            .await?;
        let mut linker = chain::Linker::after($key, head);
        for event in $written {
            let (position, previous, envelope, payload, metadata, mac) = linker.link(event);
            sqlx::query(chain::INSERT_LINK)
                .bind(position)
                .bind(previous)
                .bind(envelope)
                .bind(payload)
                .bind(metadata)
                .bind(mac)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// Called at each [`CommitStep`]; an error stops the commit there (a test's failpoint).
pub type StepHook<'a> = &'a (dyn Fn(CommitStep) -> Result<(), StoreError> + Send + Sync);

impl Store {
    /// Writes the side-table edits of `change` in one transaction. A change that holds
    /// events needs the audit chain's key: commit it through a [`super::Writer`].
    pub async fn commit(&self, change: &Change) -> Result<(), CommitError> {
        self.commit_with_chain(change, None, &|_| Ok(()))
            .await
            .map(drop)
    }

    /// Writes every event of `change` with its audit-chain link, and every side-table
    /// edit, in one transaction, calling `hook` at every step (tests make it fail
    /// there). A failure anywhere rolls all of it back. Returns how many links were
    /// written.
    pub(super) async fn commit_with_chain(
        &self,
        change: &Change,
        chain_key: Option<&ChainKey>,
        hook: StepHook<'_>,
    ) -> Result<u64, CommitError> {
        let needs_key = !change.events.is_empty() || change.adopt_events;
        let key = match chain_key {
            Some(key) => Some(key),
            None if needs_key => {
                return Err(StoreError::Fault(
                    "events can only be written with the audit chain's key".into(),
                )
                .into());
            }
            None => None,
        };
        hook(CommitStep::Begin)?;
        let linked: u64;
        in_transaction!(self, |tx| {
            let mut written: Vec<chain::RawEvent> = Vec::with_capacity(change.events.len());
            for event in &change.events {
                let sequence = i64::try_from(event.sequence)
                    .map_err(|_| StoreError::Fault("event sequence out of range".into()))?;
                let row: RawEventRow = sqlx::query_as(INSERT_EVENT)
                    .bind(&event.aggregate_type)
                    .bind(&event.aggregate_id)
                    .bind(sequence)
                    .bind(&event.event_type)
                    .bind(&event.event_version)
                    .bind(event.payload.to_string())
                    .bind(event.metadata.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                written.push(row.into());
            }
            if change.adopt_events {
                let mut after = 0i64;
                loop {
                    let rows: Vec<RawEventRow> = sqlx::query_as(chain::RAW_EVENTS_AFTER)
                        .bind(after)
                        .bind(1000i64)
                        .fetch_all(&mut *tx)
                        .await?;
                    let Some(last) = rows.last().map(|r| r.0) else {
                        break;
                    };
                    written.extend(rows.into_iter().map(chain::RawEvent::from));
                    after = last;
                }
            }
            if let Some(key) = key {
                link_events!(tx, key, &written);
            }
            linked = written.len() as u64;
            hook(CommitStep::AfterEvents)?;
            for edit in &change.edits {
                apply_edit!(tx, edit);
            }
            hook(CommitStep::AfterSideTables)?;
        });
        hook(CommitStep::AfterCommit)?;
        Ok(linked)
    }
}
