//! A connection test: connect, check the server's key against the pinned set, log in
//! with the keypair, run `true`, disconnect. Reports how far it got.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::keys::PrivateKeyWithHashAlg;
use russh::keys::ssh_key::{HashAlg, PrivateKey, PublicKey};
use russh::{ChannelMsg, Disconnect};

use super::client::{self, HOST_KEY_ALGORITHMS, KeyCheck, SshFailure};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub ok: bool,
    /// `connect`, `host_key`, `auth` or `exec`.
    pub phase: &'static str,
    pub latency_ms: u64,
    pub presented: Option<PublicKey>,
    /// Stable code and detail when not ok.
    pub error: Option<(&'static str, String)>,
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
        error: Some((code, detail)),
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
                    "host_key",
                    "unacceptable_host_key",
                    "the server's host key is of a kind or size credgate refuses".into(),
                    Some(key),
                ),
                Some(key) if !pinned_fingerprints.contains(&fingerprint(&key)) => failed(
                    "host_key",
                    "host_key_mismatch",
                    "the server presented a host key that is not pinned for this connection".into(),
                    Some(key),
                ),
                other => {
                    let code = match failure {
                        SshFailure::Unreachable(_) => "remote_unreachable",
                        SshFailure::Timeout => "remote_timeout",
                        SshFailure::NotSsh => "not_ssh",
                        SshFailure::NoAcceptableHostKey => "no_acceptable_host_key",
                        SshFailure::Protocol(_) => "ssh_protocol_error",
                    };
                    failed("connect", code, failure.to_string(), other)
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
                "auth",
                "auth_failed",
                "the server refused the keypair for this user".into(),
                presented_key,
            );
        }
        Ok(Err(e)) => return failed("auth", "auth_failed", e.to_string(), presented_key),
        Err(_) => {
            return failed(
                "auth",
                "remote_timeout",
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
            phase: "exec",
            latency_ms: elapsed(),
            presented: presented_key,
            error: None,
        },
        Ok(Ok(status)) => failed(
            "exec",
            "exec_failed",
            format!("`true` exited with {status:?}"),
            presented_key,
        ),
        Ok(Err(e)) => failed("exec", "exec_failed", e.to_string(), presented_key),
        Err(_) => failed(
            "exec",
            "remote_timeout",
            "running `true` timed out".into(),
            presented_key,
        ),
    }
}
