//! Running commands against event-sourced aggregates.
//!
//! This is cqrs-es's `CqrsFramework::execute_with_metadata` minus the in-process queries
//! (projections run from the log instead, see `projections.rs`), plus what the HTTP
//! layer needs back: the aggregate's new state and version (for the response and its
//! `ETag`). After a commit the projection runner catches up, so the caller's next read
//! sees its own write.

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;

use super::{CommandError, CommandMetadata, ProjectionRunner, Store, StoreError};

/// The outcome of a successful command.
#[derive(Debug, Clone)]
pub struct Committed<A: Aggregate> {
    pub state: A,
    /// The sequence number of the aggregate's last event (0 when it has none).
    pub version: usize,
    pub events: Vec<EventEnvelope<A>>,
}

/// An aggregate as loaded from its events.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    pub version: usize,
}

enum Backend<A: Aggregate> {
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
    Sqlite(PersistedEventStore<SqliteEventRepository, A>),
}

/// Commands and loads for one aggregate type.
pub struct Aggregates<A: Aggregate> {
    backend: Backend<A>,
    services: A::Services,
    projections: Option<Arc<ProjectionRunner>>,
}

impl<A> Aggregates<A>
where
    A: Aggregate + Clone,
{
    /// `projections`, when given, is caught up after every successful command.
    pub fn new(
        store: &Store,
        services: A::Services,
        projections: Option<Arc<ProjectionRunner>>,
    ) -> Self {
        let backend = match store {
            Store::Postgres(pool) => Backend::Postgres(PersistedEventStore::new_event_store(
                PostgresEventRepository::new(pool.clone()),
            )),
            Store::Sqlite(pool) => Backend::Sqlite(PersistedEventStore::new_event_store(
                SqliteEventRepository::new(pool.clone()),
            )),
        };
        Self {
            backend,
            services,
            projections,
        }
    }

    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        self.execute_expecting(aggregate_id, command, metadata, None)
            .await
    }

    /// Like [`Aggregates::execute`], refused with [`CommandError::Stale`] unless the
    /// aggregate is at version `expected` (an HTTP `If-Match`). A writer racing past the
    /// check still loses at commit time ([`StoreError::Conflict`]).
    pub async fn execute_expecting(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        expected: Option<usize>,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let services = &self.services;
        let committed = match &self.backend {
            Backend::Postgres(es) => {
                execute_on(es, aggregate_id, command, services, metadata, expected).await
            }
            Backend::Sqlite(es) => {
                execute_on(es, aggregate_id, command, services, metadata, expected).await
            }
        }?;
        if let Some(runner) = &self.projections {
            // The write is durable; a failed catch-up only delays the views until the
            // next periodic pass, so it is logged, not returned.
            if let Err(error) = runner.catch_up().await {
                tracing::warn!(%error, "projection catch-up after a command failed");
            }
        }
        Ok(committed)
    }

    /// The aggregate, or `None` if it has no events.
    pub async fn load(&self, aggregate_id: &str) -> Result<Option<Loaded<A>>, StoreError> {
        let context = match &self.backend {
            Backend::Postgres(es) => es.load_aggregate(aggregate_id).await,
            Backend::Sqlite(es) => es.load_aggregate(aggregate_id).await,
        }
        .map_err(store_error::<A>)?;
        Ok((context.current_sequence > 0).then_some(Loaded {
            state: context.aggregate,
            version: context.current_sequence,
        }))
    }

    /// Every event of one aggregate, oldest first, with its metadata.
    pub async fn history(&self, aggregate_id: &str) -> Result<Vec<EventEnvelope<A>>, StoreError> {
        match &self.backend {
            Backend::Postgres(es) => es.load_events(aggregate_id).await,
            Backend::Sqlite(es) => es.load_events(aggregate_id).await,
        }
        .map_err(store_error::<A>)
    }
}

fn store_error<A: Aggregate>(err: AggregateError<A::Error>) -> StoreError {
    match CommandError::from(err) {
        CommandError::Store(e) => e,
        CommandError::Rejected(e) => StoreError::Fault(e.to_string()),
        CommandError::Stale { .. } => StoreError::Conflict,
    }
}

async fn execute_on<A, ES>(
    store: &ES,
    aggregate_id: &str,
    command: A::Command,
    services: &A::Services,
    metadata: &CommandMetadata,
    expected: Option<usize>,
) -> Result<Committed<A>, CommandError<A::Error>>
where
    A: Aggregate + Clone,
    ES: EventStore<A, AC = EventStoreAggregateContext<A>>,
{
    let mut context = store.load_aggregate(aggregate_id).await?;
    let previous_version = context.current_sequence;
    if let Some(expected) = expected
        && expected != previous_version
    {
        return Err(CommandError::Stale {
            current: previous_version,
        });
    }
    let sink = EventSink::default();
    context
        .aggregate
        .handle(command, services, &sink)
        .await
        .map_err(CommandError::Rejected)?;
    let state = context.aggregate.clone();
    let events = store
        .commit(sink.collect().await, context, metadata.to_map())
        .await?;
    let version = events.last().map_or(previous_version, |e| e.sequence);
    Ok(Committed {
        state,
        version,
        events,
    })
}
