//! The `SshConnection` aggregate: where to connect, as whom, with which keypair, and the
//! host keys the server must present. Its events are the connection's audit trail,
//! including every test and every host-key mismatch.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;
use uuid::Uuid;

use super::host_keys::PinnedHostKey;
use crate::names::Name;
use crate::remote::{RemoteEndpoint, TlsTrust};
use crate::secrets::SealedBlob;
use crate::ssh::{Host, Port, ProbeError, TestPhase, Username};

/// Where and how to connect. Every field is a checked value; stored events keep the
/// JSON they always had (strings and numbers), and reading them back checks again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    pub name: Name,
    pub host: Host,
    pub port: Port,
    pub username: Username,
    pub keypair_id: Uuid,
    pub host_keys: Vec<PinnedHostKey>,
    pub connect_timeout_secs: u64,
}

/// How a connection was set up (the seed page's two tabs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SetupMethod {
    #[default]
    Manual,
    SemiAutomatic,
}

/// The outcome of a connection test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub ok: bool,
    /// How far the test got.
    pub phase: TestPhase,
    pub latency_ms: u64,
    pub server_key_fingerprint: Option<String>,
    pub error_code: Option<ProbeError>,
}

/// The pinned fingerprints and the one the server presented instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: Vec<String>,
    pub presented: String,
}

/// The remote credgate a semi-automatic connection was paired with, and what revokes
/// that pairing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemotePairing {
    pub endpoint: RemoteEndpoint,
    pub tls: TlsTrust,
    /// The remote's `authorized_key_id`.
    pub pairing_id: Uuid,
    /// The remote's revocation token, sealed with this connection's data key.
    pub sealed_revocation_token: SealedBlob,
    pub sudo_granted: bool,
}

/// Whether deleting a semi-automatic connection revoked its remote pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemoteRevocation {
    /// `revoked`, `failed`, or `skipped` (asked to keep it, or a cascading keypair
    /// delete, which does not call out).
    pub outcome: RevocationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationOutcome {
    Revoked,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SshConnection {
    pub settings: Option<ConnectionSettings>,
    pub setup: SetupMethod,
    pub remote: Option<Box<RemotePairing>>,
    pub last_test: Option<TestOutcome>,
    pub deleted: bool,
}

#[derive(Debug, Clone)]
pub enum ConnectionCommand {
    Create {
        settings: ConnectionSettings,
        setup: SetupMethod,
        remote: Option<Box<RemotePairing>>,
    },
    Update {
        settings: ConnectionSettings,
    },
    RecordTest {
        outcome: TestOutcome,
        mismatch: Option<Mismatch>,
    },
    RecordCredentialsIssued,
    /// `remote_revocation`: what became of a semi-automatic connection's pairing.
    Delete {
        remote_revocation: Option<RemoteRevocation>,
    },
}

/// Persisted contract: variant names are the `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConnectionEvent {
    ConnectionCreated {
        settings: ConnectionSettings,
        setup: SetupMethod,
        /// Semi-automatic setup only (absent in events of manual connections).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote: Option<Box<RemotePairing>>,
    },
    ConnectionUpdated {
        settings: ConnectionSettings,
    },
    /// The pinned host keys were replaced (only ever by an explicit update).
    HostKeysRepinned {
        old_fingerprints: Vec<String>,
        new_fingerprints: Vec<String>,
    },
    ConnectionTested(TestOutcome),
    /// The server presented a key that is not pinned. Nothing was re-pinned.
    HostKeyMismatchDetected {
        expected_fingerprints: Vec<String>,
        presented_fingerprint: String,
    },
    /// A job fetched the credentials bundle (who and when are in the metadata).
    CredentialsIssued,
    /// Deleting a semi-automatic connection tried (or skipped) revoking its pairing.
    RemotePairingRevoked(RemoteRevocation),
    ConnectionDeleted,
}

impl DomainEvent for ConnectionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConnectionCreated { .. } => "ConnectionCreated",
            Self::ConnectionUpdated { .. } => "ConnectionUpdated",
            Self::HostKeysRepinned { .. } => "HostKeysRepinned",
            Self::ConnectionTested(_) => "ConnectionTested",
            Self::HostKeyMismatchDetected { .. } => "HostKeyMismatchDetected",
            Self::CredentialsIssued => "CredentialsIssued",
            Self::RemotePairingRevoked(_) => "RemotePairingRevoked",
            Self::ConnectionDeleted => "ConnectionDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("a connection with this id already exists")]
    AlreadyExists,
    #[error("no such connection")]
    NotFound,
}

impl SshConnection {
    pub fn exists(&self) -> bool {
        self.settings.is_some() && !self.deleted
    }
}

fn fingerprints(keys: &[PinnedHostKey]) -> Vec<String> {
    keys.iter().map(|k| k.fingerprint.clone()).collect()
}

impl crate::store::Upcasted for SshConnection {
    /// Tests, mismatches, credentials fetches and the remote revocation are history.
    fn is_edit(event: &ConnectionEvent) -> bool {
        matches!(
            event,
            ConnectionEvent::ConnectionCreated { .. }
                | ConnectionEvent::ConnectionUpdated { .. }
                | ConnectionEvent::HostKeysRepinned { .. }
                | ConnectionEvent::ConnectionDeleted
        )
    }
}

impl Aggregate for SshConnection {
    const TYPE: &'static str = "SshConnection";
    type Command = ConnectionCommand;
    type Event = ConnectionEvent;
    type Error = ConnectionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ConnectionCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ConnectionError> {
        if let ConnectionCommand::Create {
            settings,
            setup,
            remote,
        } = command
        {
            if self.settings.is_some() {
                return Err(ConnectionError::AlreadyExists);
            }
            sink.write(
                ConnectionEvent::ConnectionCreated {
                    settings,
                    setup,
                    remote,
                },
                self,
            )
            .await;
            return Ok(());
        }
        let Some(current) = self.settings.clone().filter(|_| !self.deleted) else {
            return Err(ConnectionError::NotFound);
        };
        match command {
            ConnectionCommand::Create { .. } => {}
            ConnectionCommand::Update { settings } => {
                let old = fingerprints(&current.host_keys);
                let new = fingerprints(&settings.host_keys);
                if settings != current {
                    sink.write(ConnectionEvent::ConnectionUpdated { settings }, self)
                        .await;
                }
                if old != new {
                    sink.write(
                        ConnectionEvent::HostKeysRepinned {
                            old_fingerprints: old,
                            new_fingerprints: new,
                        },
                        self,
                    )
                    .await;
                }
            }
            ConnectionCommand::RecordTest { outcome, mismatch } => {
                if let Some(mismatch) = mismatch {
                    sink.write(
                        ConnectionEvent::HostKeyMismatchDetected {
                            expected_fingerprints: mismatch.expected,
                            presented_fingerprint: mismatch.presented,
                        },
                        self,
                    )
                    .await;
                }
                sink.write(ConnectionEvent::ConnectionTested(outcome), self)
                    .await;
            }
            ConnectionCommand::RecordCredentialsIssued => {
                sink.write(ConnectionEvent::CredentialsIssued, self).await
            }
            ConnectionCommand::Delete { remote_revocation } => {
                if let Some(revocation) = remote_revocation {
                    sink.write(ConnectionEvent::RemotePairingRevoked(revocation), self)
                        .await;
                }
                sink.write(ConnectionEvent::ConnectionDeleted, self).await
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: ConnectionEvent) {
        match event {
            ConnectionEvent::ConnectionCreated {
                settings,
                setup,
                remote,
            } => {
                self.settings = Some(settings);
                self.setup = setup;
                self.remote = remote;
            }
            ConnectionEvent::ConnectionUpdated { settings } => self.settings = Some(settings),
            ConnectionEvent::ConnectionTested(outcome) => self.last_test = Some(outcome),
            ConnectionEvent::ConnectionDeleted => self.deleted = true,
            ConnectionEvent::HostKeysRepinned { .. }
            | ConnectionEvent::HostKeyMismatchDetected { .. }
            | ConnectionEvent::CredentialsIssued
            | ConnectionEvent::RemotePairingRevoked(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::super::host_keys::Provenance;
    use super::*;

    type Given = TestFramework<SshConnection>;

    fn key(fp: &str) -> PinnedHostKey {
        PinnedHostKey {
            algorithm: "ssh-ed25519".into(),
            key: "ssh-ed25519 AAAA".into(),
            fingerprint: fp.into(),
            provenance: Provenance::Pasted,
            tls_verified: None,
        }
    }

    fn settings(fp: &str) -> ConnectionSettings {
        ConnectionSettings {
            name: Name::parse("nas").unwrap(),
            host: Host::parse("nas.example").unwrap(),
            port: Port::SSH,
            username: Username::root(),
            keypair_id: Uuid::nil(),
            host_keys: vec![key(fp)],
            connect_timeout_secs: 10,
        }
    }

    fn created() -> ConnectionEvent {
        ConnectionEvent::ConnectionCreated {
            settings: settings("SHA256:a"),
            setup: SetupMethod::Manual,
            remote: None,
        }
    }

    #[test]
    fn create_once() {
        Given::with(())
            .given_no_previous_events()
            .when(ConnectionCommand::Create {
                settings: settings("SHA256:a"),
                setup: SetupMethod::Manual,
                remote: None,
            })
            .then_expect_events(vec![created()]);
        Given::with(())
            .given(vec![created()])
            .when(ConnectionCommand::Create {
                settings: settings("SHA256:a"),
                setup: SetupMethod::Manual,
                remote: None,
            })
            .then_expect_error(ConnectionError::AlreadyExists);
    }

    #[test]
    fn changing_host_keys_records_old_and_new_fingerprints() {
        Given::with(())
            .given(vec![created()])
            .when(ConnectionCommand::Update {
                settings: settings("SHA256:b"),
            })
            .then_expect_events(vec![
                ConnectionEvent::ConnectionUpdated {
                    settings: settings("SHA256:b"),
                },
                ConnectionEvent::HostKeysRepinned {
                    old_fingerprints: vec!["SHA256:a".into()],
                    new_fingerprints: vec!["SHA256:b".into()],
                },
            ]);
    }

    #[test]
    fn a_mismatch_is_recorded_with_the_test_and_pins_nothing() {
        let outcome = TestOutcome {
            ok: false,
            phase: TestPhase::HostKey,
            latency_ms: 3,
            server_key_fingerprint: Some("SHA256:evil".into()),
            error_code: Some(ProbeError::HostKeyMismatch),
        };
        Given::with(())
            .given(vec![created()])
            .when(ConnectionCommand::RecordTest {
                outcome: outcome.clone(),
                mismatch: Some(Mismatch {
                    expected: vec!["SHA256:a".into()],
                    presented: "SHA256:evil".into(),
                }),
            })
            .then_expect_events(vec![
                ConnectionEvent::HostKeyMismatchDetected {
                    expected_fingerprints: vec!["SHA256:a".into()],
                    presented_fingerprint: "SHA256:evil".into(),
                },
                ConnectionEvent::ConnectionTested(outcome),
            ]);
    }

    /// Events stored before the values were typed (plain strings) still load, and
    /// serialise back to the same JSON.
    #[test]
    fn events_stored_as_plain_strings_still_load() {
        let stored = serde_json::json!({"ConnectionCreated": {
            "settings": {"name": "nas", "host": "nas.example", "port": 22, "username": "root",
                "keypair_id": "5f0c6a0e-4a8e-4a55-9b39-3c1e0f6b8a11",
                "host_keys": [{"algorithm": "ssh-ed25519", "key": "ssh-ed25519 AAAA",
                    "fingerprint": "SHA256:a", "provenance": "scanned"}],
                "connect_timeout_secs": 10},
            "setup": "manual"}});
        let event: ConnectionEvent = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), stored);
        let tested = serde_json::json!({"ConnectionTested": {"ok": false, "phase": "host_key",
            "latency_ms": 3, "server_key_fingerprint": null, "error_code": "host_key_mismatch"}});
        let event: ConnectionEvent = serde_json::from_value(tested.clone()).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), tested);
        let bad_host = serde_json::json!({"ConnectionCreated": {
            "settings": {"name": "nas", "host": "not a host", "port": 22, "username": "root",
                "keypair_id": "5f0c6a0e-4a8e-4a55-9b39-3c1e0f6b8a11", "host_keys": [],
                "connect_timeout_secs": 10}, "setup": "manual"}});
        assert!(serde_json::from_value::<ConnectionEvent>(bad_host).is_err());
    }

    #[test]
    fn nothing_happens_to_a_deleted_connection() {
        Given::with(())
            .given(vec![created(), ConnectionEvent::ConnectionDeleted])
            .when(ConnectionCommand::RecordCredentialsIssued)
            .then_expect_error(ConnectionError::NotFound);
    }
}
