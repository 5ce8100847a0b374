//! `/api/v1/ssh-connections`: manual setup, list, read, update, delete, test, the
//! credentials bundle for jobs, and OpenSSH-format exports.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::aggregate::{ConnectionSettings, SetupMethod, SshConnection, TestOutcome};
use super::exports;
use super::host_keys::PinnedHostKey;
use super::outbound::outbound_error;
use super::service::{
    ConnectionChanges, ConnectionFailure, ConnectionService, KeypairChoice, NewConnection,
};
use super::validation::{FieldErrors, connect_timeout, host, port, username};
use super::view::ConnectionView;
use crate::auth::require;
use crate::clock::Clock;
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::{ApiError, Authorized, IfMatch, JsonBody, Problem, etag, rejection};
use crate::keypairs::{KeyAlgorithm, KeypairFailure};
use crate::names::Name;
use crate::ssh::{ProbeError, TestPhase};
use crate::store::Committed;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateKeypairOption {
    /// Default: "<connection name> Key".
    #[schema(min_length = 1, max_length = 120)]
    pub name: Option<String>,
    /// Default `ed25519`.
    pub algorithm: Option<KeyAlgorithm>,
}

/// Manual setup. Exactly one of `keypair_id` and `generate_keypair`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// A host name (RFC 1123) or an IP address.
    #[schema(min_length = 1, max_length = 253)]
    pub host: String,
    /// 1–65535, default 22.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// Default `root`.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub username: Option<String>,
    /// A keypair that has a private key.
    #[schema(format = Uuid)]
    pub keypair_id: Option<String>,
    /// Generate a keypair for this connection (in the same transaction: if the connection
    /// cannot be created, neither is the keypair).
    pub generate_keypair: Option<GenerateKeypairOption>,
    /// One or more `type base64 [comment]` lines (known_hosts host patterns tolerated).
    #[schema(min_length = 1)]
    pub remote_host_key: String,
    /// Seconds, 1–120, default 10.
    #[schema(minimum = 1, maximum = 120)]
    pub connect_timeout: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionRequest {
    #[schema(min_length = 1, max_length = 120)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 253)]
    pub host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub username: Option<String>,
    #[schema(format = Uuid)]
    pub keypair_id: Option<String>,
    /// Replacing the host keys is the only way to re-pin; the event records old and new.
    #[schema(min_length = 1)]
    pub remote_host_key: Option<String>,
    #[schema(minimum = 1, maximum = 120)]
    pub connect_timeout: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionResponse {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub keypair_id: Uuid,
    pub host_keys: Vec<PinnedHostKey>,
    pub connect_timeout: u64,
    /// How it was set up (semi-automatic comes with pairing).
    pub setup: SetupMethod,
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
        port,
        username,
        keypair_id,
        host_keys,
        connect_timeout: connect_timeout_secs,
        setup: view.setup,
        last_test: last_test(view.last_test, view.last_tested_at),
        created_at: view.created_at,
        updated_at: view.updated_at,
        version: view.version,
    })
}

fn failure(err: ConnectionFailure) -> ApiError {
    match err {
        ConnectionFailure::Invalid { field, message } => ApiError::invalid_field(field, message),
        ConnectionFailure::NameTaken => {
            ApiError::conflict("name_taken", "another connection has this name")
                .with_field_error("name", "is already used by another connection")
        }
        ConnectionFailure::NotFound => ApiError::not_found("connection"),
        ConnectionFailure::Outbound(e) => outbound_error(e),
        ConnectionFailure::Keypair(KeypairFailure::NotFound | KeypairFailure::NoPrivateKey) => {
            ApiError::conflict(
                "keypair_unusable",
                "the connection's keypair is gone or has no private key; point the connection at another keypair",
            )
        }
        ConnectionFailure::Keypair(e) => ApiError::internal(format!("keypair: {e}")),
        ConnectionFailure::Command(e) => match rejection(e) {
            Err(api_error) => api_error,
            Ok(other) => ApiError::conflict("refused", other.to_string()),
        },
    }
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|_| format!("`{text}` is not a keypair id (UUID)"))
}

/// The answer to a write: the view as the committed events make it.
fn committed_view(committed: &Committed<SshConnection>) -> Result<ConnectionView, ApiError> {
    committed
        .view::<ConnectionView>()
        .ok_or_else(|| ApiError::internal("a written connection has no view"))
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
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create_connection(
    Authorized(caller, _): Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    clock: web::Data<dyn Clock>,
    JsonBody(body): JsonBody<CreateConnectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", Name::parse(&body.name).map_err(str::to_owned));
    let host = errors.check("host", host(&body.host));
    let port = errors.check("port", port(body.port));
    let username = errors.check("username", username(body.username.as_deref()));
    let timeout = errors.check("connect_timeout", connect_timeout(body.connect_timeout));
    let keypair = match (&body.keypair_id, &body.generate_keypair) {
        (Some(id), None) => errors
            .check("keypair_id", parse_uuid(id))
            .map(KeypairChoice::Existing),
        (None, Some(generate)) => {
            let name = match &generate.name {
                Some(n) => errors.check(
                    "generate_keypair.name",
                    Name::parse(n).map(Some).map_err(str::to_owned),
                ),
                None => Some(None),
            };
            name.map(|name| KeypairChoice::Generate {
                name,
                algorithm: generate.algorithm,
            })
        }
        (Some(_), Some(_)) => {
            errors.add(
                "keypair_id",
                "give either keypair_id or generate_keypair, not both",
            );
            None
        }
        (None, None) => {
            errors.add("keypair_id", "give keypair_id or generate_keypair");
            None
        }
    };
    if body.remote_host_key.trim().is_empty() {
        errors.add(
            "remote_host_key",
            "at least one host key is required (see POST /api/v1/ssh/host-key-scan)",
        );
    }
    errors.into_result()?;
    let (Some(name), Some(host), Some(port), Some(username), Some(timeout), Some(keypair)) =
        (name, host, port, username, timeout, keypair)
    else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let request = NewConnection {
        name,
        host,
        port,
        username,
        keypair,
        remote_host_key: body.remote_host_key,
        connect_timeout_secs: timeout,
    };
    let (id, committed) = service
        .create(request, &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(committed.version)))
        .insert_header((header::LOCATION, format!("/api/v1/ssh-connections/{id}")))
        .json(response(committed_view(&committed)?)?))
}

/// List connections, oldest first.
#[utoipa::path(
    tag = "ssh-connections",
    params(PageParams),
    responses(
        (status = 200, body = inline(Paged<ConnectionResponse>)),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list_connections(
    _caller: Authorized<require::ConnectionsRead>,
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
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get_connection(
    _caller: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    let version = view.version;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(response(view)?))
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
        (status = "4XX", description = "Refused, not found or stale", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}")]
pub async fn update_connection(
    Authorized(caller, _): Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    clock: web::Data<dyn Clock>,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<UpdateConnectionRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let changes = ConnectionChanges {
        name: body
            .name
            .as_deref()
            .and_then(|n| errors.check("name", Name::parse(n).map_err(str::to_owned))),
        host: body
            .host
            .as_deref()
            .and_then(|h| errors.check("host", host(h))),
        port: body.port.and_then(|p| errors.check("port", port(Some(p)))),
        username: body
            .username
            .as_deref()
            .and_then(|u| errors.check("username", username(Some(u)))),
        keypair_id: body
            .keypair_id
            .as_deref()
            .and_then(|k| errors.check("keypair_id", parse_uuid(k))),
        remote_host_key: body.remote_host_key,
        connect_timeout_secs: body
            .connect_timeout
            .and_then(|t| errors.check("connect_timeout", connect_timeout(Some(t)))),
    };
    errors.into_result()?;
    let committed = service
        .update(
            id.into_inner(),
            changes,
            expected,
            &caller.metadata(clock.now()),
        )
        .await
        .map_err(failure)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(committed.version)))
        .json(response(committed_view(&committed)?)?))
}

/// Delete a connection.
#[utoipa::path(
    tag = "ssh-connections",
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}")]
pub async fn delete_connection(
    Authorized(caller, _): Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    clock: web::Data<dyn Clock>,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse, ApiError> {
    service
        .delete(id.into_inner(), expected, &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Test a connection: connect, check the pinned host keys, log in, run `true`.
/// Always 200; `ok` and `phase` say how far it got. Recorded as an event.
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = ConnectionTestResponse),
        (status = "4XX", description = "Refused, not found, or outbound policy (403)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/test")]
pub async fn test_connection(
    Authorized(caller, _): Authorized<require::ConnectionsWrite>,
    service: web::Data<ConnectionService>,
    clock: web::Data<dyn Clock>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (report, expected) = service
        .test(id.into_inner(), &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
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
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/credentials")]
pub async fn connection_credentials(
    Authorized(caller, _): Authorized<require::ConnectionsUse>,
    service: web::Data<ConnectionService>,
    clock: web::Data<dyn Clock>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let bundle = service
        .credentials(id.into_inner(), &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CredentialsResponse {
            host: bundle.settings.host.to_string(),
            port: bundle.settings.port,
            username: bundle.settings.username,
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
        (status = 200, body = String, content_type = "text/plain"),
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/known-hosts")]
pub async fn export_known_hosts(
    _caller: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(exports::known_hosts(&view.settings)))
}

/// An ssh_config `Host` block for the connection.
#[utoipa::path(
    tag = "ssh-connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, body = String, content_type = "text/plain"),
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/ssh-config")]
pub async fn export_ssh_config(
    _caller: Authorized<require::ConnectionsRead>,
    service: web::Data<ConnectionService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(exports::ssh_config(&view.settings, &view.id)))
}
