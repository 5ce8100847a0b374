//! Refused access as events of their own: each refusal the gateway reports becomes one
//! `AccessDenial` aggregate with one `AccessDenied` event (so it is chained and audited
//! like every change), at most [`DENIALS_PER_MINUTE`] per process and minute: a flood
//! of refused requests cannot fill the store. What was dropped is counted, and the next
//! recorded denial says how many (`suppressed_before`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::lens::{AuditFacts, AuditLens, Category, TypedLens};
use crate::clock::Clock;
use crate::gateway::{Refusal, RefusalSink};
use crate::store::{Aggregates, CommandMetadata, Writer};

/// How many refusals one process records per minute at most.
pub const DENIALS_PER_MINUTE: u32 = 60;

/// What was refused. Never what was presented (no key, no token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    /// The problem code of the refusal (`api_key_revoked`, `insufficient_scope`, …).
    pub code: String,
    pub status: u16,
    pub method: String,
    pub path: String,
    /// Refusals dropped by the rate limit since the previous recorded one.
    pub suppressed_before: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessDenial {
    recorded: bool,
}

#[derive(Debug, Clone)]
pub enum AccessDenialCommand {
    Record(Denied),
}

/// Persisted contract: variant names are the `event_type`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessDenialEvent {
    AccessDenied(Denied),
}

impl DomainEvent for AccessDenialEvent {
    fn event_type(&self) -> String {
        "AccessDenied".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenialError {
    #[error("this denial was recorded already")]
    AlreadyRecorded,
}

impl crate::store::Upcasted for AccessDenial {}

impl Aggregate for AccessDenial {
    const TYPE: &'static str = "AccessDenial";
    type Command = AccessDenialCommand;
    type Event = AccessDenialEvent;
    type Error = AccessDenialError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccessDenialCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccessDenialError> {
        if self.recorded {
            return Err(AccessDenialError::AlreadyRecorded);
        }
        let AccessDenialCommand::Record(denied) = command;
        sink.write(AccessDenialEvent::AccessDenied(denied), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: AccessDenialEvent) {
        match event {
            AccessDenialEvent::AccessDenied(_) => self.recorded = true,
        }
    }
}

pub fn lens() -> std::sync::Arc<dyn AuditLens> {
    TypedLens::<AccessDenial>::shared("access_denial", describe)
}

fn describe(event: &AccessDenialEvent) -> AuditFacts {
    match event {
        AccessDenialEvent::AccessDenied(denied) => AuditFacts::new(Category::AccessDenied)
            .detail("reason", &denied.code)
            .detail("status", denied.status)
            .detail("method", &denied.method)
            .detail("path", &denied.path)
            .detail("suppressed_before", denied.suppressed_before),
    }
}

/// A fixed one-minute window: how many were recorded in it, how many dropped since
/// the last recorded one.
struct RateWindow {
    per_minute: u32,
    started: DateTime<Utc>,
    recorded: u32,
    suppressed: u64,
}

impl RateWindow {
    fn new(per_minute: u32, now: DateTime<Utc>) -> Self {
        Self {
            per_minute,
            started: now,
            recorded: 0,
            suppressed: 0,
        }
    }

    /// `Some(dropped since the last recorded)` when a refusal may be recorded now.
    fn admit(&mut self, now: DateTime<Utc>) -> Option<u64> {
        if now.signed_duration_since(self.started) >= Duration::seconds(60) || now < self.started {
            self.started = now;
            self.recorded = 0;
        }
        if self.recorded >= self.per_minute {
            self.suppressed += 1;
            return None;
        }
        self.recorded += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Records refusals as `AccessDenial` events, rate-limited.
pub struct DenialRecorder {
    denials: Aggregates<AccessDenial>,
    window: Mutex<RateWindow>,
    clock: Arc<dyn Clock>,
}

impl DenialRecorder {
    /// The window runs on `clock` (the service's clock, which tests can move).
    pub fn new(writer: &Writer, per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            denials: Aggregates::new(writer, ()),
            window: Mutex::new(RateWindow::new(per_minute, clock.now())),
            clock,
        }
    }

    fn admit(&self, now: DateTime<Utc>) -> Option<u64> {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(now)
    }
}

impl RefusalSink for DenialRecorder {
    fn record(&self, refusal: Refusal) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(suppressed_before) = self.admit(self.clock.now()) else {
                return;
            };
            let metadata = CommandMetadata {
                actor_id: refusal.key_id,
                actor_name: refusal.key_name.unwrap_or_else(|| "anonymous".to_owned()),
                request_id: refusal.request_id,
                source_address: refusal.source_address,
                user_agent: refusal.user_agent,
                occurred_at: refusal.occurred_at,
            };
            let denied = Denied {
                code: refusal.code.to_owned(),
                status: refusal.status,
                method: refusal.method,
                path: refusal.path,
                suppressed_before,
            };
            let id = uuid::Uuid::new_v4().to_string();
            if let Err(error) = self
                .denials
                .execute(&id, AccessDenialCommand::Record(denied), &metadata)
                .await
            {
                tracing::warn!(%error, "a refused request could not be recorded in the audit trail");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_admits_its_limit_then_counts_what_it_drops() {
        let start = Utc::now();
        let mut window = RateWindow::new(2, start);
        assert_eq!(window.admit(start), Some(0));
        assert_eq!(window.admit(start), Some(0));
        assert_eq!(window.admit(start), None);
        assert_eq!(window.admit(start + Duration::seconds(59)), None);
        assert_eq!(window.admit(start + Duration::seconds(60)), Some(2));
        assert_eq!(window.admit(start + Duration::seconds(60)), Some(0));
        assert_eq!(window.admit(start + Duration::seconds(60)), None);
        // A clock set back starts a fresh window rather than never reopening.
        assert_eq!(window.admit(start), Some(1));
    }
}
