//! Reading the audit trail: records by filter, a resource's history, a streamed
//! export that can follow new records, and the chain check.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use chrono::Utc;
use futures_util::Stream;

use super::record::AuditRecord;
use crate::store::{
    AuditQuery, AuditRow, ChainHead, ChainReport, ProjectionRunner, Store, StoreError, Writer,
};

/// Records per query of an export (memory stays at one page, whatever the total).
const EXPORT_PAGE: i64 = 500;
/// How often a following export looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// A following export with nothing new sends a heartbeat line this often, so proxies
/// and log shippers keep the connection open.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// How many following exports one instance serves at once (each polls the store).
pub const MAX_FOLLOWERS: usize = 16;

pub struct AuditService {
    store: Store,
    runner: Arc<ProjectionRunner>,
    writer: Writer,
    resource_types: Vec<&'static str>,
    /// Following exports now open; each holds a [`FollowerSlot`].
    followers: Arc<std::sync::atomic::AtomicUsize>,
    /// One chain check at a time: it reads the whole log.
    verifying: tokio::sync::Mutex<()>,
}

/// A following export's place among [`MAX_FOLLOWERS`]; freed when the stream ends or
/// the client goes away (the stream, and this with it, is dropped).
pub struct FollowerSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for FollowerSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Why an audit operation could not start now.
#[derive(Debug, thiserror::Error)]
pub enum Busy {
    #[error("{MAX_FOLLOWERS} following exports are open on this instance already")]
    TooManyFollowers,
    #[error("a chain check is running on this instance already")]
    Verifying,
}

impl AuditService {
    pub fn new(
        writer: &Writer,
        runner: Arc<ProjectionRunner>,
        resource_types: Vec<&'static str>,
    ) -> Self {
        Self {
            store: writer.store().clone(),
            runner,
            writer: writer.clone(),
            resource_types,
            followers: Arc::default(),
            verifying: tokio::sync::Mutex::new(()),
        }
    }

    /// A place for one more following export, if there is one.
    pub fn follower_slot(&self) -> Result<FollowerSlot, Busy> {
        use std::sync::atomic::Ordering;
        let taken = self.followers.fetch_add(1, Ordering::AcqRel);
        let slot = FollowerSlot(self.followers.clone());
        if taken >= MAX_FOLLOWERS {
            return Err(Busy::TooManyFollowers);
        }
        Ok(slot)
    }

    /// The resource types records can have (for validating the filter).
    pub fn resource_types(&self) -> &[&'static str] {
        &self.resource_types
    }

    /// One page of records and the position the next page continues after.
    pub async fn page(
        &self,
        query: &AuditQuery,
        limit: i64,
    ) -> Result<(Vec<AuditRecord>, Option<i64>), StoreError> {
        let mut rows = self.store.audit_records(query, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more {
            rows.last().map(|r| r.position)
        } else {
            None
        };
        let records = rows
            .into_iter()
            .map(|row| serde_json::from_value(row.record))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, next))
    }

    /// Checks the audit chain against the event log (and against `expected`, a head
    /// recorded earlier).
    pub async fn verify(
        &self,
        expected: Option<ChainHead>,
    ) -> Result<Result<ChainReport, Busy>, StoreError> {
        let Ok(_one_at_a_time) = self.verifying.try_lock() else {
            return Ok(Err(Busy::Verifying));
        };
        self.store
            .verify_chain(self.writer.chain_key(), expected)
            .await
            .map(Ok)
    }

    /// The records of `query`, oldest first, as NDJSON chunks (one page per chunk).
    /// With `follow`, the stream does not end: it sends records as they commit (also
    /// those of other instances) and a heartbeat line while there are none.
    pub fn export(
        self: Arc<Self>,
        query: AuditQuery,
        follow: Option<FollowerSlot>,
    ) -> impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static {
        let state = ExportState {
            service: self,
            query: AuditQuery {
                newest_first: false,
                ..query
            },
            follow,
            quiet_since: tokio::time::Instant::now(),
            done: false,
        };
        futures_util::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            match state.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), state)),
                Ok(None) => None,
                Err(error) => {
                    // The status line is sent already: end the stream with a line that
                    // says why, so a reader can tell a cut from the end.
                    tracing::warn!(%error, "the audit export stopped");
                    state.done = true;
                    let line =
                        serde_json::json!({ "error": "the export stopped: the store failed" });
                    Some((Ok(Bytes::from(format!("{line}\n"))), state))
                }
            }
        })
    }
}

struct ExportState {
    service: Arc<AuditService>,
    query: AuditQuery,
    /// Following: the stream does not end, and holds its place while it lives.
    follow: Option<FollowerSlot>,
    quiet_since: tokio::time::Instant,
    done: bool,
}

impl ExportState {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        loop {
            let rows = self
                .service
                .store
                .audit_records(&self.query, EXPORT_PAGE)
                .await?;
            if let Some(last) = rows.last() {
                self.query.after = Some(last.position);
                self.quiet_since = tokio::time::Instant::now();
                return Ok(Some(ndjson(&rows)));
            }
            if self.follow.is_none() {
                return Ok(None);
            }
            if self.quiet_since.elapsed() >= HEARTBEAT {
                self.quiet_since = tokio::time::Instant::now();
                let line = serde_json::json!({
                    "heartbeat": Utc::now(),
                    "after_position": self.query.after.unwrap_or(0),
                });
                return Ok(Some(Bytes::from(format!("{line}\n"))));
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            // Records of other instances' events appear once this process has
            // projected them; an idle catch-up costs one index lookup.
            if let Err(error) = self.service.runner.catch_up().await {
                tracing::debug!(%error, "catch-up for a following export failed; retrying");
            }
        }
    }
}

fn ndjson(rows: &[AuditRow]) -> Bytes {
    let mut out = String::new();
    for row in rows {
        out.push_str(&row.record.to_string());
        out.push('\n');
    }
    Bytes::from(out)
}
