//! Running commands against event-sourced aggregates.
//!
//! A command is *decided* into a [`Change`] (load the aggregate through cqrs-es's
//! persisted event store, let it handle the command, stage the resulting events), and
//! the change is *committed* by the [`Writer`] in one transaction with whatever
//! side-table edits the same request staged. After a commit the projection runner
//! catches up, so the caller's next read sees its own write; the caller's answer is
//! built from the [`Committed`] state, not from a view read back.

use std::sync::Arc;

use cqrs_es::persist::{EventUpcaster, PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use super::chain::ChainKey;
use super::change::{Change, CommitError};
use super::failpoints::Failpoints;
use super::{CommandError, CommandMetadata, ProjectionRunner, Store, StoreError, View};

/// An aggregate whose stored events may need upcasting before they are read. Every
/// place that turns stored events into `A::Event` (loading an aggregate, projections)
/// applies [`Upcasted::upcasters`], so an old payload is read the same way everywhere.
pub trait Upcasted: Aggregate {
    /// Upcasters for events stored in older shapes; none while every event is at its
    /// first version.
    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        Vec::new()
    }

    /// Whether `event` changes what a client edits (and so moves the `ETag`). Events
    /// that are history, not edits (a connection test, a credentials fetch, an export),
    /// leave the version where it was, so they never make a concurrent edit fail.
    fn is_edit(_event: &Self::Event) -> bool {
        true
    }
}

/// The sequence number of the last edit among `history` (0 when there is none): the
/// version an `If-Match` names and an `ETag` carries.
fn edit_version<A: Upcasted>(history: &[EventEnvelope<A>]) -> usize {
    history
        .iter()
        .rev()
        .find(|e| A::is_edit(&e.payload))
        .map_or(0, |e| e.sequence)
}

/// Runs `event` through `upcasters` (the ones that apply to its type and version).
pub fn upcast(event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    upcasters.iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    })
}

/// An aggregate after a command: its new state and version, and its whole history
/// (earlier events plus the new ones), from which its view is built without reading
/// the view table back.
#[derive(Debug, Clone)]
pub struct Committed<A: Aggregate> {
    pub state: A,
    /// The sequence number of the aggregate's last edit (see [`Upcasted::is_edit`]).
    pub version: usize,
    history: Vec<EventEnvelope<A>>,
}

impl<A: Aggregate> Committed<A> {
    /// The view `V` of this aggregate as the projection will store it.
    pub fn view<V: View<Aggregate = A>>(&self) -> Option<V> {
        self.history
            .iter()
            .fold(None, |current, event| V::apply(current, event))
    }
}

/// An aggregate as loaded from its events.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The sequence number of the aggregate's last edit (see [`Upcasted::is_edit`]).
    pub version: usize,
}

/// Commits [`Change`]s and then brings this process's projections up to date.
#[derive(Clone)]
pub struct Writer {
    store: Store,
    projections: Option<Arc<ProjectionRunner>>,
    failpoints: Failpoints,
    /// Every event is written with its audit-chain link (see `chain.rs`).
    chain_key: Arc<ChainKey>,
}

impl Writer {
    /// `projections`, when given, is caught up after every successful commit.
    pub fn new(
        store: &Store,
        projections: Option<Arc<ProjectionRunner>>,
        chain_key: Arc<ChainKey>,
    ) -> Self {
        Self {
            store: store.clone(),
            projections,
            failpoints: Failpoints::default(),
            chain_key,
        }
    }

    /// The key the audit chain is written and verified with.
    pub fn chain_key(&self) -> &ChainKey {
        &self.chain_key
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The failpoints of this writer's commits (tests arm them).
    pub fn failpoints(&self) -> &Failpoints {
        &self.failpoints
    }

    /// Writes `change` in one transaction, then catches the projections up.
    pub async fn commit(&self, change: &Change) -> Result<(), CommitError> {
        let failpoints = &self.failpoints;
        self.store
            .commit_with_chain(change, Some(&self.chain_key), &|step| {
                failpoints.check(step)
            })
            .await?;
        if let Some(runner) = &self.projections {
            // The write is durable and the answer is built from the committed state;
            // a failed catch-up only delays the views until the next periodic pass.
            if let Err(error) = runner.catch_up().await {
                tracing::warn!(%error, "projection catch-up after a command failed");
            }
        }
        Ok(())
    }
}

enum Backend<A: Aggregate> {
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
}

/// Commands and loads for one aggregate type.
pub struct Aggregates<A: Aggregate> {
    backend: Backend<A>,
    services: A::Services,
    writer: Writer,
}

impl<A> Aggregates<A>
where
    A: Upcasted + Clone,
{
    pub fn new(writer: &Writer, services: A::Services) -> Self {
        let backend = match writer.store() {
            Store::Postgres(pool) => Backend::Postgres(
                PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()))
                    .with_upcasters(A::upcasters()),
            ),
            Store::Sqlite(pool) => Backend::Sqlite(
                PersistedEventStore::new_event_store(SqliteEventRepository::new(pool.clone()))
                    .with_upcasters(A::upcasters()),
            ),
        };
        Self {
            backend,
            services,
            writer: writer.clone(),
        }
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Decides `command` and commits it on its own.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let mut change = Change::new();
        let decided = self
            .decide(&mut change, aggregate_id, command, metadata, None)
            .await?;
        self.writer.commit(&change).await.map_err(|e| match e {
            CommitError::Store(e) => CommandError::Store(e),
            // A lone command stages no side-table edits, so no guard can fail.
            other => CommandError::Store(StoreError::Fault(other.to_string())),
        })?;
        Ok(decided)
    }

    /// Loads the aggregate, lets it handle `command`, and stages the resulting events in
    /// `change` (nothing is written until the change is committed). With `expected`
    /// (an HTTP `If-Match`), refused with [`CommandError::Stale`] unless the aggregate is
    /// at that version; a writer racing past the check still loses at commit time
    /// ([`StoreError::Conflict`]).
    pub async fn decide(
        &self,
        change: &mut Change,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        expected: Option<usize>,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let mut history = self.events(aggregate_id).await?;
        let mut state = A::default();
        for envelope in &history {
            state.apply(envelope.payload.clone());
        }
        let previous = history.last().map_or(0, |e| e.sequence);
        let edited = edit_version(&history);
        if let Some(expected) = expected
            && expected != edited
        {
            return Err(CommandError::Stale { current: edited });
        }
        let sink = cqrs_es::event_sink::EventSink::default();
        state
            .handle(command, &self.services, &sink)
            .await
            .map_err(CommandError::Rejected)?;
        let metadata = metadata.to_map();
        let new: Vec<EventEnvelope<A>> = sink
            .collect()
            .await
            .into_iter()
            .zip(previous + 1..)
            .map(|(payload, sequence)| EventEnvelope {
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        let serialized = new
            .iter()
            .map(SerializedEvent::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Fault(format!("event could not be serialised: {e}")))?;
        change.add_events(serialized);
        history.extend(new);
        let version = edit_version(&history);
        Ok(Committed {
            state,
            version,
            history,
        })
    }

    /// The aggregate, or `None` if it has no events.
    pub async fn load(&self, aggregate_id: &str) -> Result<Option<Loaded<A>>, StoreError> {
        let history = self.events(aggregate_id).await?;
        if history.is_empty() {
            return Ok(None);
        }
        let version = edit_version(&history);
        let mut state = A::default();
        for envelope in history {
            state.apply(envelope.payload);
        }
        Ok(Some(Loaded { state, version }))
    }

    /// Every event of one aggregate, oldest first, upcast.
    async fn events(&self, aggregate_id: &str) -> Result<Vec<EventEnvelope<A>>, StoreError> {
        match &self.backend {
            Backend::Postgres(es) => es.load_events(aggregate_id).await,
            Backend::Sqlite(es) => es.load_events(aggregate_id).await,
        }
        .map_err(|e| match CommandError::from(e) {
            CommandError::Store(e) => e,
            other => StoreError::Fault(other.to_string()),
        })
    }
}
