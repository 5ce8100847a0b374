//! The pairing client: `POST {remote}/api/v1/pairing/ssh` and
//! `DELETE {remote}/api/v1/pairing/ssh/{id}`. Failures come back with stable codes a
//! client can act on (`remote_tls_unverified` → offer `ca_certificate` or
//! `verify_tls: false`), and never with the remote API key in them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::endpoint::{RemoteEndpoint, TlsTrust};
use crate::ssh::{OutboundError, OutboundPolicy};

/// Why a call to the remote did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error("the remote could not be reached: {0}")]
    Unreachable(String),
    #[error("the remote did not answer in time")]
    Timeout,
    #[error("the remote's TLS certificate could not be verified: {0}")]
    TlsUnverified(String),
    #[error("the remote refused the API key")]
    AuthFailed,
    #[error("the remote API key lacks the `pairing` scope")]
    Forbidden,
    #[error("the remote refused: {code}: {detail}")]
    Rejected {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("the remote's answer is not a pairing: {0}")]
    InvalidAnswer(String),
}

impl RemoteError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Outbound(OutboundError::Forbidden(_)) => "outbound_forbidden",
            Self::Outbound(OutboundError::Timeout) | Self::Timeout => "remote_timeout",
            Self::Outbound(OutboundError::Unresolvable(_)) | Self::Unreachable(_) => {
                "remote_unreachable"
            }
            Self::TlsUnverified(_) => "remote_tls_unverified",
            Self::AuthFailed => "remote_auth_failed",
            Self::Forbidden => "remote_forbidden",
            Self::Rejected { .. } | Self::InvalidAnswer(_) => "remote_rejected",
        }
    }
}

/// What the caller sends: its public key, for whom.
#[derive(Debug, Serialize)]
pub struct PairingOffer<'a> {
    pub username: &'a str,
    pub public_key: &'a str,
    pub label: &'a str,
    pub sudo: bool,
}

/// What the remote answers.
#[derive(Deserialize)]
pub struct PairingAnswer {
    pub authorized_key_id: Uuid,
    pub revocation_token: zeroize::Zeroizing<String>,
    pub ssh_port: u16,
    pub host_keys: Vec<String>,
    pub sudo_granted: bool,
}

pub struct PairingClient {
    policy: OutboundPolicy,
}

/// A problem document's fields, as far as the remote sent them.
#[derive(Deserialize, Default)]
struct RemoteProblem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

/// Larger answers are not read (a pairing answer is a few KiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

impl PairingClient {
    pub fn new(policy: OutboundPolicy) -> Self {
        Self { policy }
    }

    /// A client for one call: pinned to the checked address, no redirects, no proxy.
    async fn http_client(
        &self,
        endpoint: &RemoteEndpoint,
        tls: &TlsTrust,
        timeout: Duration,
    ) -> Result<reqwest::Client, RemoteError> {
        let address = self
            .policy
            .resolve(endpoint.host(), endpoint.port(), timeout)
            .await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("credgate/", env!("CARGO_PKG_VERSION")));
        if let Some(domain) = endpoint.domain() {
            builder = builder.resolve(domain, address);
        }
        if !tls.verify {
            builder = builder.danger_accept_invalid_certs(true);
        } else if let Some(pem) = &tls.extra_roots_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| RemoteError::TlsUnverified(format!("ca_certificate: {e}")))?;
            builder = builder.tls_certs_merge(roots);
        }
        builder
            .build()
            .map_err(|e| RemoteError::Unreachable(format!("cannot build the HTTP client: {e}")))
    }

    /// Asks the remote to authorize `offer.public_key`, with `api_key` (used for this
    /// request only).
    pub async fn pair(
        &self,
        endpoint: &RemoteEndpoint,
        tls: &TlsTrust,
        timeout: Duration,
        api_key: &str,
        offer: &PairingOffer<'_>,
    ) -> Result<PairingAnswer, RemoteError> {
        let client = self.http_client(endpoint, tls, timeout).await?;
        let response = client
            .post(endpoint.join("/api/v1/pairing/ssh"))
            .bearer_auth(api_key)
            .json(offer)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let body = read_limited(response).await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| RemoteError::InvalidAnswer(e.to_string()));
        }
        Err(refusal(status, &body))
    }

    /// Revokes a pairing with its revocation token.
    pub async fn revoke(
        &self,
        endpoint: &RemoteEndpoint,
        tls: &TlsTrust,
        timeout: Duration,
        pairing_id: Uuid,
        token: &str,
    ) -> Result<(), RemoteError> {
        let client = self.http_client(endpoint, tls, timeout).await?;
        let mut token = reqwest::header::HeaderValue::from_str(token).map_err(|_| {
            RemoteError::InvalidAnswer("the revocation token is not a header value".into())
        })?;
        token.set_sensitive(true);
        let response = client
            .delete(endpoint.join(&format!("/api/v1/pairing/ssh/{pairing_id}")))
            .header("x-revocation-token", token)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = read_limited(response).await?;
        Err(refusal(status, &body))
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, RemoteError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(RemoteError::InvalidAnswer(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A non-2xx answer: 401 is our key, 403 `insufficient_scope` its scope, anything else
/// (including a redirect, which is never followed) the remote's own refusal.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> RemoteError {
    let problem: RemoteProblem = serde_json::from_slice(body).unwrap_or_default();
    match (status.as_u16(), problem.code.as_str()) {
        (401, _) => RemoteError::AuthFailed,
        (403, "insufficient_scope") => RemoteError::Forbidden,
        (code, _) if status.is_redirection() => RemoteError::Rejected {
            status: code,
            code: "redirect".to_owned(),
            detail: "the remote answered with a redirect, which is not followed; use the URL it redirects to".to_owned(),
        },
        (code, _) => RemoteError::Rejected {
            status: code,
            code: if problem.code.is_empty() {
                format!("http_{code}")
            } else {
                problem.code.chars().take(64).collect()
            },
            detail: problem.detail.chars().take(500).collect(),
        },
    }
}

/// Sorts a transport failure: timeout, TLS verification, or unreachable.
fn classify(error: reqwest::Error) -> RemoteError {
    if error.is_timeout() {
        return RemoteError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return tls_failure(tls);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return tls_failure(tls);
        }
        // hyper-util boxes the I/O error so the chain may not reach a typed
        // `rustls::Error`; rustls's own text for a refused certificate is stable.
        let text = current.to_string();
        if let Some(at) = text.find("invalid peer certificate") {
            return RemoteError::TlsUnverified(text[at..].to_owned());
        }
        source = current.source();
    }
    RemoteError::Unreachable(with_causes(&error))
}

fn tls_failure(error: &rustls::Error) -> RemoteError {
    match error {
        rustls::Error::InvalidCertificate(why) => RemoteError::TlsUnverified(format!("{why:?}")),
        other => RemoteError::Unreachable(format!("TLS: {other}")),
    }
}

/// reqwest's message with its causes (it names the URL, which is not a secret).
fn with_causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
