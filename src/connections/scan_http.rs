//! `POST /api/v1/ssh/host-key-scan`: what host keys a server offers, with fingerprints
//! to confirm, and a `remote_host_key` text ready to paste into a connection.

use std::time::Duration;

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::ConnectionService;
use super::validation::{FieldErrors, connect_timeout, host, port};
use crate::auth::require;
use crate::gateway::{ApiError, Authorized, JsonBody, Problem};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"host": "backup.example.net", "port": 22, "connect_timeout": 10})))]
pub struct HostKeyScanRequest {
    /// A host name (RFC 1123) or an IP address.
    #[schema(min_length = 1, max_length = 253)]
    pub host: String,
    /// Default 22.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// Seconds, 1–120 (default 10).
    #[schema(minimum = 1, maximum = 120)]
    pub connect_timeout: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"algorithm": "ssh-ed25519", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd", "fingerprint": "SHA256:Se77u09GRMmtYkkzv8QBMfngEvAZfxnqplBgTY2cRGg", "bits": 256})))]
pub struct ScannedHostKey {
    /// Key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `type base64`.
    pub key: String,
    pub fingerprint: String,
    pub bits: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"host": "backup.example.net", "port": 22, "keys": [{"algorithm": "ssh-ed25519", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd", "fingerprint": "SHA256:Se77u09GRMmtYkkzv8QBMfngEvAZfxnqplBgTY2cRGg", "bits": 256}, {"algorithm": "ecdsa-sha2-nistp256", "key": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8=", "fingerprint": "SHA256:mgC7F8NmTfl+vcUx0rFWypJ8OGB3RnSShutn+HTKOpg", "bits": 256}], "remote_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd\necdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8="})))]
pub struct HostKeyScanResponse {
    pub host: String,
    pub port: u16,
    pub keys: Vec<ScannedHostKey>,
    /// The keys as `remote_host_key` text for a connection.
    pub remote_host_key: String,
}

/// Discover the host keys of an SSH server (no login is attempted).
#[utoipa::path(
    tag = "ssh-connections",
    request_body = HostKeyScanRequest,
    responses(
        (status = 200, body = HostKeyScanResponse),
        (status = 403, description = "Outbound policy forbids the address (`outbound_forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Unreachable (`remote_unreachable`), not SSH (`not_ssh`) or no acceptable key", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Timed out (`remote_timeout`)", body = Problem, content_type = "application/problem+json"),
    ),
    extensions(("x-required-scopes" = json!(["connections:write"]))),
)]
#[post("/host-key-scan")]
pub async fn scan_host_keys(
    _who: Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    metrics: web::Data<crate::gateway::metrics::Metrics>,
    JsonBody(body): JsonBody<HostKeyScanRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let host = errors.check("host", host(&body.host));
    let port = errors.check("port", port(body.port));
    let timeout = errors.check("connect_timeout", connect_timeout(body.connect_timeout));
    errors.into_result()?;
    let (Some(host), Some(port), Some(timeout)) = (host, port, timeout) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let timeout = Duration::from_secs(timeout);
    let address = service.checked_address(&host, port, timeout).await?;
    let scanned = crate::ssh::scan(address, timeout)
        .await
        .map_err(ApiError::from);
    let keys = super::http::counted(&metrics, "scan", scanned)?;
    service.remember_scan(&host, port, &keys);
    Ok(HttpResponse::Ok().json(HostKeyScanResponse {
        host: host.to_string(),
        port: port.get(),
        remote_host_key: keys.iter().map(|k| format!("{}\n", k.key)).collect(),
        keys: keys
            .into_iter()
            .map(|k| ScannedHostKey {
                algorithm: k.algorithm,
                key: k.key,
                fingerprint: k.fingerprint,
                bits: k.bits,
            })
            .collect(),
    }))
}
