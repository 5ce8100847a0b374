//! A connection test: connect, check the server's key against the pinned set, log in
//! with the keypair, run `true`, disconnect. Reports how far it got.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::keys::PrivateKeyWithHashAlg;
use russh::keys::ssh_key::{HashAlg, PrivateKey, PublicKey};
use russh::{ChannelMsg, Disconnect};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::client::{self, HOST_KEY_ALGORITHMS, KeyCheck, SshFailure};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub ok: bool,
    pub phase: TestPhase,
    pub latency_ms: u64,
    pub presented: Option<PublicKey>,
    /// What went wrong, when not ok.
    pub error: Option<ProbeFailure>,
}

/// How far a connection test got. Stored in events as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestPhase {
    Connect,
    HostKey,
    Auth,
    Exec,
}

/// Why a connection test failed: a stable code (stored in events and sent to clients as
/// its snake_case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeError {
    RemoteUnreachable,
    RemoteTimeout,
    NotSsh,
    NoAcceptableHostKey,
    SshProtocolError,
    /// The server's host key is of a kind or size credgate refuses.
    UnacceptableHostKey,
    /// The server presented a host key that is not pinned.
    HostKeyMismatch,
    AuthFailed,
    ExecFailed,
}

/// A failed probe's code and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub code: ProbeError,
    pub detail: String,
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub async fn probe(
    address: SocketAddr,
    timeout: Duration,
    pinned_fingerprints: Vec<String>,
    username: &str,
    key: PrivateKey,
) -> ProbeReport {
    let started = Instant::now();
    let elapsed = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let pinned = pinned_fingerprints.clone();
    let check = KeyCheck::new(move |presented| pinned.contains(&fingerprint(presented)));
    let presented_slot = check.presented.clone();
    let presented = || {
        presented_slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    };
    let failed = |phase, code, detail: String, presented| ProbeReport {
        ok: false,
        phase,
        latency_ms: elapsed(),
        presented,
        error: Some(ProbeFailure { code, detail }),
    };

    let mut handle = match client::connect(
        address,
        client::config(&HOST_KEY_ALGORITHMS, timeout),
        check,
        timeout,
    )
    .await
    {
        Ok(handle) => handle,
        Err((failure, _)) => {
            return match presented() {
                Some(key) if !client::acceptable_host_key(&key) => failed(
                    TestPhase::HostKey,
                    ProbeError::UnacceptableHostKey,
                    "the server's host key is of a kind or size credgate refuses".into(),
                    Some(key),
                ),
                Some(key) if !pinned_fingerprints.contains(&fingerprint(&key)) => failed(
                    TestPhase::HostKey,
                    ProbeError::HostKeyMismatch,
                    "the server presented a host key that is not pinned for this connection".into(),
                    Some(key),
                ),
                other => {
                    let code = match failure {
                        SshFailure::Unreachable(_) => ProbeError::RemoteUnreachable,
                        SshFailure::Timeout => ProbeError::RemoteTimeout,
                        SshFailure::NotSsh => ProbeError::NotSsh,
                        SshFailure::NoAcceptableHostKey => ProbeError::NoAcceptableHostKey,
                        SshFailure::Protocol(_) => ProbeError::SshProtocolError,
                    };
                    failed(TestPhase::Connect, code, failure.to_string(), other)
                }
            };
        }
    };
    let presented_key = presented();

    // RSA client keys must sign with SHA-2; never let russh fall back to SHA-1.
    let hash = if key.algorithm().is_rsa() {
        match handle.best_supported_rsa_hash().await {
            Ok(Some(Some(hash))) => Some(hash),
            _ => Some(HashAlg::Sha256),
        }
    } else {
        None
    };
    let auth = tokio::time::timeout(
        timeout,
        handle.authenticate_publickey(username, PrivateKeyWithHashAlg::new(Arc::new(key), hash)),
    )
    .await;
    match auth {
        Ok(Ok(result)) if result.success() => {}
        Ok(Ok(_)) => {
            return failed(
                TestPhase::Auth,
                ProbeError::AuthFailed,
                "the server refused the keypair for this user".into(),
                presented_key,
            );
        }
        Ok(Err(e)) => {
            return failed(
                TestPhase::Auth,
                ProbeError::AuthFailed,
                e.to_string(),
                presented_key,
            );
        }
        Err(_) => {
            return failed(
                TestPhase::Auth,
                ProbeError::RemoteTimeout,
                "authentication timed out".into(),
                presented_key,
            );
        }
    }

    let exec = tokio::time::timeout(timeout, async {
        let mut channel = handle.channel_open_session().await?;
        channel.exec(true, "true").await?;
        let mut status = None;
        while let Some(message) = channel.wait().await {
            if let ChannelMsg::ExitStatus { exit_status } = message {
                status = Some(exit_status);
            }
        }
        Ok::<_, russh::Error>(status)
    })
    .await;
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    match exec {
        Ok(Ok(Some(0))) => ProbeReport {
            ok: true,
            phase: TestPhase::Exec,
            latency_ms: elapsed(),
            presented: presented_key,
            error: None,
        },
        Ok(Ok(status)) => failed(
            TestPhase::Exec,
            ProbeError::ExecFailed,
            format!("`true` exited with {status:?}"),
            presented_key,
        ),
        Ok(Err(e)) => failed(
            TestPhase::Exec,
            ProbeError::ExecFailed,
            e.to_string(),
            presented_key,
        ),
        Err(_) => failed(
            TestPhase::Exec,
            ProbeError::RemoteTimeout,
            "running `true` timed out".into(),
            presented_key,
        ),
    }
}
