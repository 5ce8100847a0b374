//! `/api/v1/ssh-connections`: manual setup, list, read, update, delete, test, the
//! credentials bundle for jobs, and OpenSSH-format exports.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::aggregate::{
    ConnectionSettings, RemoteRevocation, SetupMethod, SshConnection, TestOutcome,
};
use super::exports;
use super::host_keys::PinnedHostKey;
use super::requests::{
    CreateConnectionRequest, SemiAutomaticRequestBody, UpdateConnectionRequest, keypair_scope,
};
use super::semi_automatic::SemiAutomaticRequest;
use super::service::{ConnectionChanges, ConnectionService, KeypairChoice, NewConnection};
use super::view::{ConnectionView, RemoteSummary};
use crate::auth::{SecretReadLimit, admit_secret_read, require};
use crate::gateway::metrics::{Metrics, SSH_OPERATIONS};
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::{
    ApiError, Authorized, Conflict, IfMatch, JsonBody, NotFound, PlainText, PreconditionFailed,
    Problem, Versioned,
};
use crate::ssh::{ProbeError, TestPhase};
use crate::store::Committed;

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"id": "7c1e9d42-2b6f-4f0a-8d35-0e4b6a9c2f71", "name": "offsite nas", "host": "backup.example.net", "port": 22, "username": "root", "keypair_id": "3f6b2a1e-8c4d-4b7a-9e21-5d0c7f4a9b13", "host_keys": [{"algorithm": "ssh-ed25519", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd", "fingerprint": "SHA256:Se77u09GRMmtYkkzv8QBMfngEvAZfxnqplBgTY2cRGg", "provenance": "scanned"}, {"algorithm": "ecdsa-sha2-nistp256", "key": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8=", "fingerprint": "SHA256:mgC7F8NmTfl+vcUx0rFWypJ8OGB3RnSShutn+HTKOpg", "provenance": "scanned"}], "connect_timeout": 10, "setup": "manual", "last_test": {"ok": true, "phase": "exec", "latency_ms": 84, "server_key_fingerprint": "SHA256:Se77u09GRMmtYkkzv8QBMfngEvAZfxnqplBgTY2cRGg", "tested_at": "2026-12-01T09:42:17Z"}, "created_at": "2026-12-01T09:30:00Z", "updated_at": "2026-12-01T09:30:00Z", "version": 1})))]
pub struct ConnectionResponse {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub keypair_id: Uuid,
    pub host_keys: Vec<PinnedHostKey>,
    pub connect_timeout: u64,
    /// How it was set up.
    pub setup: SetupMethod,
    /// Semi-automatic connections: the remote credgate it was paired with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteSummary>,
    pub last_test: Option<TestResult>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    pub ok: bool,
    pub phase: TestPhase,
    pub latency_ms: u64,
    pub server_key_fingerprint: Option<String>,
    pub error_code: Option<ProbeError>,
    pub tested_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestError {
    pub code: ProbeError,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_fingerprints: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented_fingerprint: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"ok": true, "phase": "exec", "latency_ms": 84, "server_key_fingerprint": "SHA256:Se77u09GRMmtYkkzv8QBMfngEvAZfxnqplBgTY2cRGg"})))]
pub struct ConnectionTestResponse {
    pub ok: bool,
    /// How far the test got.
    pub phase: TestPhase,
    pub latency_ms: u64,
    pub server_key_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TestError>,
}

/// Everything a job needs to reach the remote host. No `Debug`: it holds a private key.
#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"host": "backup.example.net", "port": 22, "username": "root", "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n…\n-----END OPENSSH PRIVATE KEY-----\n", "known_hosts": "backup.example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd\nbackup.example.net ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8=\n", "ssh_config": "Host offsite-nas\n    HostName backup.example.net\n    Port 22\n    User root\n    IdentityFile ~/.ssh/credgate/offsite-nas\n    IdentitiesOnly yes\n    UserKnownHostsFile ~/.ssh/credgate/offsite-nas.known_hosts\n    StrictHostKeyChecking yes\n    ConnectTimeout 10\n"})))]
pub struct CredentialsResponse {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// OpenSSH private key of the connection's keypair.
    pub private_key: String,
    /// Lines for a known_hosts file.
    pub known_hosts: String,
    /// A `Host` block; put the key and known_hosts at the paths it names.
    pub ssh_config: String,
}

fn last_test(outcome: Option<TestOutcome>, at: Option<DateTime<Utc>>) -> Option<TestResult> {
    outcome.map(|o| TestResult {
        ok: o.ok,
        phase: o.phase,
        latency_ms: o.latency_ms,
        server_key_fingerprint: o.server_key_fingerprint,
        error_code: o.error_code,
        tested_at: at,
    })
}

fn response(view: ConnectionView) -> Result<ConnectionResponse, ApiError> {
    let ConnectionSettings {
        name,
        host,
        port,
        username,
        keypair_id,
        host_keys,
        connect_timeout_secs,
    } = view.settings;
    Ok(ConnectionResponse {
        id: view.id.parse().map_err(ApiError::internal)?,
        name: name.as_str().to_owned(),
        host: host.to_string(),
        port: port.get(),
        username: username.to_string(),
        keypair_id,
        host_keys,
        connect_timeout: connect_timeout_secs,
        setup: view.setup,
        remote: view.remote,
        last_test: last_test(view.last_test, view.last_tested_at),
        created_at: view.created_at,
        updated_at: view.updated_at,
        version: view.version,
    })
}

/// The answer to a write: the connection as its committed events make it (never
/// re-read: the view may lag the commit).
fn committed_response(
    committed: &Committed<SshConnection>,
) -> Result<ConnectionResponse, ApiError> {
    let view = committed
        .view::<ConnectionView>()
        .ok_or_else(|| ApiError::internal("a written connection has no view"))?;
    response(view)
}

async fn find(service: &ConnectionService, id: Uuid) -> Result<ConnectionView, ApiError> {
    service
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))
}

/// Create a connection (manual setup).
#[utoipa::path(
    tag = "ssh-connections",
    request_body = CreateConnectionRequest,
    responses(
        (status = 201, body = ConnectionResponse, headers(("ETag" = String))),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["connections:write"]))),
)]
#[post("")]
pub async fn create_connection(
    who: Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    JsonBody(body): JsonBody<CreateConnectionRequest>,
) -> Result<Versioned<ConnectionResponse>, ApiError> {
    let request = NewConnection::try_from(body)?;
    who.caller.require(keypair_scope(&request.keypair))?;
    let (id, committed) = service.create(request, &who.metadata()).await?;
    Ok(Versioned::created(
        format!("/api/v1/ssh-connections/{id}"),
        committed.version,
        committed_response(&committed)?,
    ))
}

/// Create a connection semi-automatically.
///
/// credgate asks the remote credgate at `url`
/// (with `remote_api_key`, scope `pairing` there) to authorize the keypair's public key,
/// pins the host keys it answers with (provenance `paired`, `tls_verified`), logs in
/// over SSH to prove it (`prove_login`), and records the connection. Needs
/// `connections:write`, plus `secrets:export` with `keypair_id` or `keypairs:write`
/// with `generate_keypair`. A failure leaves nothing behind: a generated keypair is not
/// recorded, a pairing the remote made is revoked again (`remote_pairing_revoked` in
/// the problem), and the attempt is recorded. Codes: `remote_unreachable`,
/// `remote_timeout`, `remote_tls_unverified` (retry with `ca_certificate`, or
/// `verify_tls: false`), `remote_auth_failed`, `remote_forbidden`, `remote_rejected`
/// (with the remote's `remote_code`), `login_failed`, `outbound_forbidden`.
#[utoipa::path(
    tag = "ssh-connections",
    request_body = SemiAutomaticRequestBody,
    responses(
        (status = 201, body = ConnectionResponse, headers(("ETag" = String))),
        (status = 409, response = Conflict),
        (status = 502, description = "The remote could not be reached (`remote_unreachable`), its TLS certificate is not trusted (`remote_tls_unverified`), its answer is unusable (`remote_rejected`), or the proving login failed (`login_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The remote did not answer in time (`remote_timeout`)", body = Problem, content_type = "application/problem+json"),
    ),
    extensions(("x-required-scopes" = json!(["connections:write"]))),
)]
#[post("/semi-automatic")]
pub async fn create_semi_automatic_connection(
    who: Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    metrics: web::Data<Metrics>,
    JsonBody(body): JsonBody<SemiAutomaticRequestBody>,
) -> Result<Versioned<ConnectionResponse>, ApiError> {
    let request = SemiAutomaticRequest::try_from(body)?;
    who.caller.require(keypair_scope(&request.keypair))?;
    let paired = service
        .create_semi_automatic(request, &who.metadata())
        .await
        .map_err(ApiError::from);
    let (id, committed) = counted(&metrics, "pairing", paired)?;
    Ok(Versioned::created(
        format!("/api/v1/ssh-connections/{id}"),
        committed.version,
        committed_response(&committed)?,
    ))
}

/// List connections, oldest first.
#[utoipa::path(
    tag = "ssh-connections",
    params(PageParams),
    responses(
        (status = 200, body = Paged<ConnectionResponse>),
    ),
    extensions(("x-required-scopes" = json!(["connections:read"]))),
)]
#[get("")]
pub async fn list_connections(
    _who: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = params.resolve()?;
    pagination::page_response(service.list(after, limit).await?, response)
}

/// Read a connection.
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = ConnectionResponse, headers(("ETag" = String))),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["connections:read"]))),
)]
#[get("/{id}")]
pub async fn get_connection(
    _who: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<Versioned<ConnectionResponse>, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(Versioned::ok(view.version, response(view)?))
}

/// Update a connection. `If-Match` makes it conditional.
#[utoipa::path(
    tag = "ssh-connections",
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    request_body = UpdateConnectionRequest,
    responses(
        (status = 200, body = ConnectionResponse, headers(("ETag" = String))),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    ),
    extensions(("x-required-scopes" = json!(["connections:write"]))),
)]
#[patch("/{id}")]
pub async fn update_connection(
    who: Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<UpdateConnectionRequest>,
) -> Result<Versioned<ConnectionResponse>, ApiError> {
    let changes = ConnectionChanges::try_from(body)?;
    if let Some(keypair) = changes.keypair_id {
        who.caller
            .require(keypair_scope(&KeypairChoice::Existing(keypair)))?;
    }
    let committed = service
        .update(id.into_inner(), changes, expected, &who.metadata())
        .await?;
    Ok(Versioned::ok(
        committed.version,
        committed_response(&committed)?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Semi-automatic connections: leave the remote pairing in place (default `false`:
    /// revoke it with its token).
    pub keep_remote: Option<bool>,
}

/// What deleting a semi-automatic connection did to its remote pairing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"remote_revocation": {"outcome": "revoked"}})))]
pub struct DeletedWithRemote {
    pub remote_revocation: RemoteRevocation,
}

/// Delete a connection. A semi-automatic one's pairing on the remote is revoked first
/// with its token (best effort; `?keep_remote=true` skips it): the answer is then 200
/// and says what happened, and so does the connection's history.
#[utoipa::path(
    tag = "ssh-connections",
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
        DeleteParams,
    ),
    responses(
        (status = 200, description = "Deleted a semi-automatic connection; whether its remote pairing was revoked", body = DeletedWithRemote),
        (status = 204, description = "Deleted"),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
    ),
    extensions(("x-required-scopes" = json!(["connections:write"]))),
)]
#[delete("/{id}")]
pub async fn delete_connection(
    who: Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
    params: web::Query<DeleteParams>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse, ApiError> {
    let keep_remote = params.keep_remote.unwrap_or(false);
    let revocation = service
        .delete(id.into_inner(), expected, keep_remote, &who.metadata())
        .await?;
    Ok(match revocation {
        Some(remote_revocation) => HttpResponse::Ok().json(DeletedWithRemote { remote_revocation }),
        None => HttpResponse::NoContent().finish(),
    })
}

/// Test a connection: connect, check the pinned host keys, log in, run `true`.
/// Always 200; `ok` and `phase` say how far it got. Recorded as an event.
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = ConnectionTestResponse),
        (status = 403, description = "The key lacks the scope (`insufficient_scope`) or the outbound policy forbids the address (`outbound_forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["connections:write"]))),
)]
#[post("/{id}/test")]
pub async fn test_connection(
    who: Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    metrics: web::Data<Metrics>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (report, expected) = service.test(id.into_inner(), &who.metadata()).await?;
    let outcome = match &report.error {
        None => "ok".to_owned(),
        Some(failure) => serde_json::to_value(failure.code)
            .ok()
            .and_then(|code| code.as_str().map(str::to_owned))
            .unwrap_or_else(|| "failed".to_owned()),
    };
    metrics.count(
        &SSH_OPERATIONS,
        &[("operation", "test"), ("outcome", outcome.as_str())],
    );
    let presented = report.presented.as_ref().map(|k| {
        k.fingerprint(russh::keys::ssh_key::HashAlg::Sha256)
            .to_string()
    });
    let error = report.error.map(|failure| {
        let mismatch = failure.code == ProbeError::HostKeyMismatch;
        TestError {
            code: failure.code,
            detail: failure.detail,
            expected_fingerprints: mismatch.then(|| expected.clone()),
            presented_fingerprint: if mismatch { presented.clone() } else { None },
        }
    });
    Ok(HttpResponse::Ok().json(ConnectionTestResponse {
        ok: report.ok,
        phase: report.phase,
        latency_ms: report.latency_ms,
        server_key_fingerprint: presented,
        error,
    }))
}

/// What a job needs to use the connection: private key, known_hosts, ssh_config.
/// Recorded (who fetched it, when) before it is handed out.
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = CredentialsResponse),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["connections:use"]))),
)]
#[post("/{id}/credentials")]
pub async fn export_credentials(
    who: Authorized<require::ConnectionsUse>,
    secret_reads: web::Data<SecretReadLimit>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    admit_secret_read(&secret_reads, who.caller.principal.key_id)?;
    let bundle = service
        .credentials(id.into_inner(), &who.metadata())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CredentialsResponse {
            host: bundle.settings.host.to_string(),
            port: bundle.settings.port.get(),
            username: bundle.settings.username.to_string(),
            private_key: bundle.private_key.to_string(),
            known_hosts: bundle.known_hosts,
            ssh_config: bundle.ssh_config,
        }))
}

/// known_hosts lines for the pinned keys (`[host]:port` when the port is not 22).
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = String, content_type = "text/plain", example = json!("backup.example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd\nbackup.example.net ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMmHjeKz8684VBg7ygTimliAFwSrzOmq/fSrEbf+7xupRoUzr4UsPWzqoxrRpXO/ihuKRcUJ5DDuxo6ZMV+OvG8=\n")),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["connections:read"]))),
)]
#[get("/{id}/known-hosts")]
pub async fn export_known_hosts(
    _who: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<PlainText, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(PlainText(exports::known_hosts(&view.settings)))
}

/// An ssh_config `Host` block for the connection.
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = String, content_type = "text/plain", example = json!("Host offsite-nas\n    HostName backup.example.net\n    Port 22\n    User root\n    IdentityFile ~/.ssh/credgate/offsite-nas\n    IdentitiesOnly yes\n    UserKnownHostsFile ~/.ssh/credgate/offsite-nas.known_hosts\n    StrictHostKeyChecking yes\n    ConnectTimeout 10\n")),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["connections:read"]))),
)]
#[get("/{id}/ssh-config")]
pub async fn export_ssh_config(
    _who: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<PlainText, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(PlainText(exports::ssh_config(&view.settings, &view.id)))
}

/// Counts an operation that reached another host by its outcome (`ok`, or the
/// problem's code) in `credgate_ssh_operations_total`, and passes the result on.
pub(super) fn counted<T>(
    metrics: &Metrics,
    operation: &'static str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(error) => error.code().name(),
    };
    metrics.count(
        &SSH_OPERATIONS,
        &[("operation", operation), ("outcome", outcome)],
    );
    result
}
