//! Projections and the runner that keeps them current.
//!
//! cqrs-es hands events to in-process queries only after the commit and loses the update
//! if the process stops in between, so credgate does not use its queries. Instead every
//! process runs one [`ProjectionRunner`] that reads the event log after each view's
//! checkpoint and applies the events in the same transaction that moves the checkpoint.
//! It runs at start (catch-up), after each command, and periodically (to see writes of
//! other processes). A view document also records the aggregate version it reflects, so
//! applying an event twice changes nothing.

use std::marker::PhantomData;
use std::sync::Arc;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::audit_records::AuditRow;
use super::event_log::StoredEvent;
use super::projection_tx::ProjectionTx;
use super::views::{ViewChange, ViewDoc};
use super::{Store, StoreError};

/// How many events one transaction applies at most.
const BATCH: i64 = 500;

/// A read model fed from the event log.
pub trait Projection: Send + Sync + 'static {
    /// The name its checkpoint and documents are stored under. A persisted contract.
    fn name(&self) -> &'static str;
    /// Whether it reads events of this aggregate type; others only move its checkpoint.
    fn reads(&self, aggregate_type: &str) -> bool;
    /// The document `event` changes (by default: the one of its aggregate).
    fn document_id(&self, event: &StoredEvent) -> String {
        event.aggregate_id.clone()
    }
    /// What `event` does to its document (`current`, if there is one).
    fn project(
        &self,
        current: Option<&ViewDoc>,
        event: &StoredEvent,
    ) -> Result<Projected, StoreError>;
    /// Whether it writes audit records (a rebuild then starts them over too).
    fn writes_audit_records(&self) -> bool {
        false
    }
}

/// What one event does to a projection: its document, and an audit record if the
/// projection keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub document: ViewChange,
    pub record: Option<AuditRow>,
}

impl From<ViewChange> for Projected {
    fn from(document: ViewChange) -> Self {
        Self {
            document,
            record: None,
        }
    }
}

impl StoredEvent {
    /// The event as `A`'s event type, after `A`'s upcasters.
    pub fn envelope<A: super::Upcasted>(&self) -> Result<EventEnvelope<A>, StoreError> {
        let stored = SerializedEvent::new(
            self.aggregate_id.clone(),
            usize::try_from(self.sequence).unwrap_or_default(),
            self.aggregate_type.clone(),
            self.event_type.clone(),
            self.event_version.clone(),
            self.payload.clone(),
            serde_json::to_value(&self.metadata)?,
        );
        EventEnvelope::<A>::try_from(super::upcast(stored, &A::upcasters()))
            .map_err(|e| StoreError::Fault(format!("stored event could not be read: {e}")))
    }
}

/// A typed view of one aggregate: the usual way to write a projection.
pub trait View: Serialize + DeserializeOwned + Send + Sync + 'static {
    type Aggregate: super::Upcasted;
    /// See [`Projection::name`].
    const PROJECTION: &'static str;
    /// The view after `event`; `None` removes it.
    fn apply(current: Option<Self>, event: &EventEnvelope<Self::Aggregate>) -> Option<Self>;
}

/// Adapts a [`View`] to a [`Projection`].
pub struct ViewProjection<V>(PhantomData<fn() -> V>);

impl<V: View> ViewProjection<V> {
    pub fn shared() -> Arc<dyn Projection> {
        Arc::new(Self(PhantomData))
    }
}

impl<V: View> Projection for ViewProjection<V> {
    fn name(&self) -> &'static str {
        V::PROJECTION
    }

    fn reads(&self, aggregate_type: &str) -> bool {
        aggregate_type == V::Aggregate::TYPE
    }

    fn project(
        &self,
        current: Option<&ViewDoc>,
        event: &StoredEvent,
    ) -> Result<Projected, StoreError> {
        if current.is_some_and(|doc| doc.version >= event.sequence) {
            return Ok(ViewChange::Unchanged.into());
        }
        let envelope = event.envelope::<V::Aggregate>()?;
        let view: Option<V> = current
            .map(|doc| serde_json::from_value(doc.payload.clone()))
            .transpose()?;
        Ok(match V::apply(view, &envelope) {
            Some(updated) => ViewChange::Put(ViewDoc {
                view_id: event.aggregate_id.clone(),
                version: event.sequence,
                sort_key: current.map_or(event.at.0, |doc| doc.sort_key),
                payload: serde_json::to_value(updated)?,
            }),
            None if current.is_some() => ViewChange::Delete,
            None => ViewChange::Unchanged,
        }
        .into())
    }
}

/// Keeps every projection of this process up to date with the event log.
pub struct ProjectionRunner {
    store: Store,
    projections: Vec<Arc<dyn Projection>>,
    /// One pass at a time within this process; across processes the checkpoint lock
    /// does the same.
    serial: tokio::sync::Mutex<()>,
    /// The newest event position every projection had applied after the last complete
    /// pass. Positions are handed out in commit order, so while the log's newest
    /// position is still this one there is nothing to do: an idle poll costs one
    /// index lookup instead of a transaction per projection.
    applied_through: std::sync::atomic::AtomicI64,
}

impl ProjectionRunner {
    pub fn new(store: Store, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self {
            store,
            projections,
            serial: tokio::sync::Mutex::new(()),
            applied_through: std::sync::atomic::AtomicI64::new(-1),
        }
    }

    pub fn projection_names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// Applies every event not yet applied; returns how many events were read.
    pub async fn catch_up(&self) -> Result<u64, StoreError> {
        use std::sync::atomic::Ordering;
        let _one_pass = self.serial.lock().await;
        let head = self.store.newest_position().await?;
        if head == self.applied_through.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut total = 0;
        for projection in &self.projections {
            loop {
                let mut tx = ProjectionTx::begin(&self.store).await?;
                let read = apply_batch(&mut tx, projection.as_ref()).await?;
                tx.commit().await?;
                total += read;
                if read < BATCH as u64 {
                    break;
                }
            }
        }
        // Everything up to `head` (read before the pass) is applied now.
        self.applied_through.store(head, Ordering::Release);
        Ok(total)
    }

    /// Replays the whole log into fresh views; returns the number of events in the log.
    /// Each view is rebuilt in one transaction,
    /// so readers see the old view until the new one is complete.
    pub async fn rebuild(&self, mut progress: impl FnMut(&str, u64)) -> Result<u64, StoreError> {
        let _one_pass = self.serial.lock().await;
        self.applied_through
            .store(-1, std::sync::atomic::Ordering::Release);
        let mut total = 0;
        for projection in &self.projections {
            let mut tx = ProjectionTx::begin(&self.store).await?;
            tx.reset(projection.name()).await?;
            if projection.writes_audit_records() {
                tx.forget_audit_records().await?;
            }
            let mut applied = 0;
            loop {
                let read = apply_batch(&mut tx, projection.as_ref()).await?;
                applied += read;
                progress(projection.name(), applied);
                if read < BATCH as u64 {
                    break;
                }
            }
            tx.commit().await?;
            // Every projection reads the whole log; report the log's size, not a sum.
            total = total.max(applied);
        }
        Ok(total)
    }
}

async fn apply_batch(
    tx: &mut ProjectionTx,
    projection: &dyn Projection,
) -> Result<u64, StoreError> {
    let name = projection.name();
    let from = tx.lock_checkpoint(name).await?;
    let events = tx.events_after(from, BATCH).await?;
    let Some(last) = events.last().map(|e| e.at) else {
        return Ok(0);
    };
    for event in events
        .iter()
        .filter(|e| projection.reads(&e.aggregate_type))
    {
        let document_id = projection.document_id(event);
        let current = tx.load_doc(name, &document_id).await?;
        let projected = projection.project(current.as_ref(), event)?;
        match projected.document {
            ViewChange::Unchanged => {}
            ViewChange::Put(doc) => tx.put_doc(name, &doc).await?,
            ViewChange::Delete => tx.delete_doc(name, &document_id).await?,
        }
        if let Some(record) = projected.record {
            tx.put_audit_record(&record).await?;
        }
    }
    tx.save_checkpoint(name, last).await?;
    Ok(events.len() as u64)
}
