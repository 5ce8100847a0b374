//! The `PairingAttempt` aggregate: one semi-automatic setup, step by step, so the audit
//! trail shows how far an attempt got and what was undone when it failed — also for
//! attempts that never produced a connection.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::remote::{RemoteEndpoint, TlsTrust};
use crate::secrets::SealedBlob;

/// Where a semi-automatic setup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PairingPhase {
    /// Asking the remote credgate to authorize the key.
    RemoteAuthorization,
    /// Reading the host keys the remote handed over.
    HostKeys,
    /// Logging in over SSH with the new key and the pinned host keys.
    Login,
    /// Recording the connection (and the generated keypair).
    Record,
}

/// What was undone after a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Compensation {
    /// A keypair generated for this attempt was discarded (it was never recorded).
    pub keypair_discarded: bool,
    /// `None`: the remote had made nothing; else whether its pairing was revoked.
    pub remote_revoked: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_revocation_error: Option<String>,
}

/// What the remote made, and what undoes it: kept (the token sealed under the
/// attempt's own data key, shredded when the attempt ends) so an attempt abandoned
/// half-way (its request timed out, the process died) can still be undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteAuthorization {
    pub remote_pairing_id: Uuid,
    pub endpoint: RemoteEndpoint,
    pub tls: TlsTrust,
    pub sealed_revocation_token: SealedBlob,
    pub sudo_granted: bool,
    pub tls_verified: bool,
    pub host_key_fingerprints: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairingAttempt {
    pub started: bool,
    pub finished: bool,
}

#[derive(Debug, Clone)]
pub enum AttemptCommand {
    Start {
        connection_id: Uuid,
        connection_name: String,
        url: String,
        username: String,
        generated_keypair: bool,
    },
    RecordRemoteAuthorized(Box<RemoteAuthorization>),
    RecordLoginProven {
        latency_ms: u64,
    },
    Complete,
    Fail {
        phase: PairingPhase,
        code: String,
        detail: String,
        compensation: Compensation,
    },
}

/// Persisted contract: variant names are the `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttemptEvent {
    PairingAttemptStarted {
        connection_id: Uuid,
        connection_name: String,
        url: String,
        username: String,
        generated_keypair: bool,
    },
    RemoteAuthorized(Box<RemoteAuthorization>),
    LoginProven {
        latency_ms: u64,
    },
    PairingAttemptCompleted,
    PairingAttemptFailed {
        phase: PairingPhase,
        code: String,
        detail: String,
    },
    PairingAttemptCompensated(Compensation),
}

impl DomainEvent for AttemptEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PairingAttemptStarted { .. } => "PairingAttemptStarted",
            Self::RemoteAuthorized(_) => "RemoteAuthorized",
            Self::LoginProven { .. } => "LoginProven",
            Self::PairingAttemptCompleted => "PairingAttemptCompleted",
            Self::PairingAttemptFailed { .. } => "PairingAttemptFailed",
            Self::PairingAttemptCompensated(_) => "PairingAttemptCompensated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("the attempt has already started")]
    AlreadyStarted,
    #[error("the attempt has not started")]
    NotStarted,
    #[error("the attempt is already finished")]
    Finished,
}

impl crate::store::Upcasted for PairingAttempt {}

impl Aggregate for PairingAttempt {
    const TYPE: &'static str = "PairingAttempt";
    type Command = AttemptCommand;
    type Event = AttemptEvent;
    type Error = AttemptError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AttemptCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AttemptError> {
        if let AttemptCommand::Start {
            connection_id,
            connection_name,
            url,
            username,
            generated_keypair,
        } = command
        {
            if self.started {
                return Err(AttemptError::AlreadyStarted);
            }
            let started = AttemptEvent::PairingAttemptStarted {
                connection_id,
                connection_name,
                url,
                username,
                generated_keypair,
            };
            sink.write(started, self).await;
            return Ok(());
        }
        if !self.started {
            return Err(AttemptError::NotStarted);
        }
        if self.finished {
            return Err(AttemptError::Finished);
        }
        match command {
            AttemptCommand::Start { .. } => {}
            AttemptCommand::RecordRemoteAuthorized(authorization) => {
                sink.write(AttemptEvent::RemoteAuthorized(authorization), self)
                    .await;
            }
            AttemptCommand::RecordLoginProven { latency_ms } => {
                sink.write(AttemptEvent::LoginProven { latency_ms }, self)
                    .await;
            }
            AttemptCommand::Complete => {
                sink.write(AttemptEvent::PairingAttemptCompleted, self)
                    .await;
            }
            AttemptCommand::Fail {
                phase,
                code,
                detail,
                compensation,
            } => {
                let failed = AttemptEvent::PairingAttemptFailed {
                    phase,
                    code,
                    detail,
                };
                sink.write(failed, self).await;
                sink.write(AttemptEvent::PairingAttemptCompensated(compensation), self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: AttemptEvent) {
        match event {
            AttemptEvent::PairingAttemptStarted { .. } => self.started = true,
            AttemptEvent::PairingAttemptCompleted | AttemptEvent::PairingAttemptFailed { .. } => {
                self.finished = true;
            }
            AttemptEvent::RemoteAuthorized(_)
            | AttemptEvent::LoginProven { .. }
            | AttemptEvent::PairingAttemptCompensated(_) => {}
        }
    }
}

/// Attempts that have not ended: what the sweeper looks at. An attempt's document is
/// removed when it completes or fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAttemptView {
    pub id: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub generated_keypair: bool,
    pub remote: Option<RemoteAuthorization>,
}

impl crate::store::View for OpenAttemptView {
    type Aggregate = PairingAttempt;
    const PROJECTION: &'static str = "open_pairing_attempts";

    fn apply(
        current: Option<Self>,
        event: &cqrs_es::EventEnvelope<PairingAttempt>,
    ) -> Option<Self> {
        match (&event.payload, current) {
            (
                AttemptEvent::PairingAttemptStarted {
                    generated_keypair, ..
                },
                _,
            ) => Some(Self {
                id: event.aggregate_id.clone(),
                started_at: crate::store::CommandMetadata::from_map(&event.metadata).occurred_at,
                generated_keypair: *generated_keypair,
                remote: None,
            }),
            (AttemptEvent::RemoteAuthorized(authorization), Some(view)) => Some(Self {
                remote: Some((**authorization).clone()),
                ..view
            }),
            (
                AttemptEvent::PairingAttemptCompleted | AttemptEvent::PairingAttemptFailed { .. },
                _,
            ) => None,
            (_, view) => view,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    type Given = TestFramework<PairingAttempt>;

    fn started() -> AttemptEvent {
        AttemptEvent::PairingAttemptStarted {
            connection_id: Uuid::nil(),
            connection_name: "nas".into(),
            url: "https://nas.example/".into(),
            username: "root".into(),
            generated_keypair: true,
        }
    }

    #[test]
    fn a_failure_records_its_phase_and_what_was_undone() {
        let compensation = Compensation {
            keypair_discarded: true,
            remote_revoked: Some(true),
            remote_revocation_error: None,
        };
        Given::with(())
            .given(vec![started()])
            .when(AttemptCommand::Fail {
                phase: PairingPhase::Login,
                code: "login_failed".into(),
                detail: "auth".into(),
                compensation: compensation.clone(),
            })
            .then_expect_events(vec![
                AttemptEvent::PairingAttemptFailed {
                    phase: PairingPhase::Login,
                    code: "login_failed".into(),
                    detail: "auth".into(),
                },
                AttemptEvent::PairingAttemptCompensated(compensation),
            ]);
    }

    #[test]
    fn steps_need_a_started_unfinished_attempt() {
        Given::with(())
            .given_no_previous_events()
            .when(AttemptCommand::Complete)
            .then_expect_error(AttemptError::NotStarted);
        Given::with(())
            .given(vec![started(), AttemptEvent::PairingAttemptCompleted])
            .when(AttemptCommand::RecordLoginProven { latency_ms: 1 })
            .then_expect_error(AttemptError::Finished);
        Given::with(())
            .given(vec![started()])
            .when(AttemptCommand::Start {
                connection_id: Uuid::nil(),
                connection_name: "x".into(),
                url: "http://x/".into(),
                username: "root".into(),
                generated_keypair: false,
            })
            .then_expect_error(AttemptError::AlreadyStarted);
    }
}
