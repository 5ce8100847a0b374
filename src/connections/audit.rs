//! How connection and semi-automatic setup events read in the audit trail.

use super::aggregate::{ConnectionEvent, ConnectionSettings, SshConnection};
use super::attempt::{AttemptEvent, PairingAttempt};
use crate::audit::{AuditFacts, AuditLens, Category, TypedLens};

pub fn lenses() -> Vec<std::sync::Arc<dyn AuditLens>> {
    vec![
        TypedLens::<SshConnection>::shared("ssh_connection", describe_connection),
        TypedLens::<PairingAttempt>::shared("pairing_attempt", describe_attempt),
    ]
}

fn with_settings(facts: AuditFacts, settings: &ConnectionSettings) -> AuditFacts {
    let fingerprints: Vec<&str> = settings
        .host_keys
        .iter()
        .map(|k| k.fingerprint.as_str())
        .collect();
    facts
        .set("name", settings.name.as_str())
        .set("host", settings.host.as_str())
        .set("port", settings.port)
        .set("username", settings.username.as_str())
        .set("keypair_id", settings.keypair_id)
        .set("host_key_fingerprints", fingerprints)
        .set("connect_timeout_secs", settings.connect_timeout_secs)
}

fn describe_connection(event: &ConnectionEvent) -> AuditFacts {
    match event {
        ConnectionEvent::ConnectionCreated {
            settings,
            setup,
            remote,
        } => {
            let facts = with_settings(AuditFacts::change().set("setup", setup), settings);
            match remote {
                Some(remote) => facts
                    .set("remote_url", remote.endpoint.as_str())
                    .set("remote_pairing_id", remote.pairing_id)
                    .set("remote_sudo_granted", remote.sudo_granted)
                    .sealed("remote_revocation_token", true),
                None => facts,
            }
        }
        ConnectionEvent::ConnectionUpdated { settings } => {
            with_settings(AuditFacts::change(), settings)
        }
        ConnectionEvent::HostKeysRepinned {
            new_fingerprints, ..
        } => AuditFacts::change().set("host_key_fingerprints", new_fingerprints),
        ConnectionEvent::ConnectionTested(outcome) => AuditFacts::new(Category::Activity)
            .detail("ok", outcome.ok)
            .detail("phase", outcome.phase)
            .detail("latency_ms", outcome.latency_ms)
            .detail("server_key_fingerprint", &outcome.server_key_fingerprint)
            .detail("error_code", outcome.error_code),
        ConnectionEvent::HostKeyMismatchDetected {
            expected_fingerprints,
            presented_fingerprint,
        } => AuditFacts::new(Category::AccessDenied)
            .detail("reason", "host_key_mismatch")
            .detail("expected_fingerprints", expected_fingerprints)
            .detail("presented_fingerprint", presented_fingerprint),
        ConnectionEvent::CredentialsIssued => AuditFacts::new(Category::SecretRead),
        ConnectionEvent::RemotePairingRevoked(revocation) => AuditFacts::change()
            .detail("remote_revocation", revocation.outcome)
            .detail("remote_revocation_detail", &revocation.detail),
        ConnectionEvent::ConnectionDeleted => AuditFacts::change().removes(),
    }
}

fn describe_attempt(event: &AttemptEvent) -> AuditFacts {
    match event {
        AttemptEvent::PairingAttemptStarted {
            connection_id,
            connection_name,
            url,
            username,
            generated_keypair,
        } => AuditFacts::new(Category::Activity)
            .set("name", connection_name)
            .set("connection_id", connection_id)
            .set("remote_url", url)
            .set("username", username)
            .detail("generated_keypair", generated_keypair),
        AttemptEvent::RemoteAuthorized(remote) => AuditFacts::new(Category::Activity)
            .set("remote_pairing_id", remote.remote_pairing_id)
            .set("remote_sudo_granted", remote.sudo_granted)
            .set("host_key_fingerprints", &remote.host_key_fingerprints)
            .sealed("remote_revocation_token", true)
            .detail("tls_verified", remote.tls_verified),
        AttemptEvent::LoginProven { latency_ms } => {
            AuditFacts::new(Category::Activity).detail("latency_ms", latency_ms)
        }
        AttemptEvent::PairingAttemptCompleted => AuditFacts::new(Category::Activity),
        AttemptEvent::PairingAttemptFailed {
            phase,
            code,
            detail,
        } => AuditFacts::new(Category::Failure)
            .detail("phase", phase)
            .detail("code", code)
            .detail("detail", detail),
        AttemptEvent::PairingAttemptCompensated(compensation) => {
            AuditFacts::new(Category::Activity).detail("compensation", compensation)
        }
    }
}
