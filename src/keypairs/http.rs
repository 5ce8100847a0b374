//! `/api/v1/ssh-keypairs`: generate, import, list, read, rename / re-comment, delete,
//! used-by, public key download and (audited) private key export.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::SshKeypair;
use super::material::KeyAlgorithm;
use super::service::{
    GenerateRequest, ImportRequest, KeypairChanges, KeypairFailure, KeypairService,
};
use super::view::KeypairView;
use crate::auth::require;
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::{
    ApiError, Authorized, IfMatch, JsonBody, JsonBodyOrEmpty, Problem, etag, rejection,
};
use crate::names::Name;
use crate::store::Committed;

pub const MAX_COMMENT_CHARS: usize = 255;

/// Import a keypair. Give a private key (its public key is derived), a public key
/// alone (a keypair without a private key), or both (they must belong together).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeypairRequest {
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// OpenSSH, PKCS#1, PKCS#8 (plain or encrypted) or SEC1 PEM.
    pub private_key: Option<String>,
    /// An OpenSSH public key line: `type base64 [comment]`.
    pub public_key: Option<String>,
    /// Opens an encrypted private key; ignored for an unencrypted one. Never stored.
    pub passphrase: Option<String>,
    /// Defaults to the key's own comment.
    #[schema(max_length = 255)]
    pub comment: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateKeypairRequest {
    #[schema(min_length = 1, max_length = 120)]
    pub name: String,
    /// Default `ed25519`.
    pub algorithm: Option<KeyAlgorithm>,
    /// RSA: 2048, 3072 (default) or 4096. Others have one size.
    pub bits: Option<u32>,
    #[schema(max_length = 255)]
    pub comment: Option<String>,
}

/// At least one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateKeypairRequest {
    #[schema(min_length = 1, max_length = 120)]
    pub name: Option<String>,
    #[schema(max_length = 255)]
    pub comment: Option<String>,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportPrivateKeyRequest {
    /// Encrypt the exported key with this passphrase (bcrypt KDF, AES-256-CTR).
    #[schema(min_length = 1, max_length = 1024)]
    pub passphrase: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete what uses the keypair too, in the same transaction (each deletion is
    /// recorded as its own event).
    #[serde(default)]
    pub cascade: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeypairResponse {
    pub id: Uuid,
    pub name: String,
    pub algorithm: KeyAlgorithm,
    pub bits: u32,
    pub comment: String,
    /// authorized_keys line.
    pub public_key: String,
    /// SHA256 fingerprint as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub has_private_key: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Also sent as the `ETag`; send it back in `If-Match` to change the keypair.
    pub version: usize,
}

/// No `Debug`: it holds the private key.
#[derive(Serialize, ToSchema)]
pub struct ExportedPrivateKey {
    /// OpenSSH private key.
    pub private_key: String,
    pub encrypted: bool,
    pub fingerprint: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DependantResponse {
    pub kind: String,
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsedByResponse {
    pub items: Vec<DependantResponse>,
}

fn response(view: KeypairView) -> Result<KeypairResponse, ApiError> {
    Ok(KeypairResponse {
        id: view.id.parse().map_err(ApiError::internal)?,
        name: view.name,
        algorithm: view.algorithm,
        bits: view.bits,
        comment: view.comment,
        public_key: view.public_key,
        fingerprint: view.fingerprint,
        has_private_key: view.has_private_key,
        created_at: view.created_at,
        updated_at: view.updated_at,
        version: view.version,
    })
}

/// The answer to a write: the view as the committed events make it.
fn committed_view(committed: &Committed<SshKeypair>) -> Result<KeypairView, ApiError> {
    committed
        .view::<KeypairView>()
        .ok_or_else(|| ApiError::internal("a written keypair has no view"))
}

fn failure(err: KeypairFailure) -> ApiError {
    match err {
        KeypairFailure::Invalid(problem) => ApiError::invalid_field(problem.field, problem.message),
        KeypairFailure::NameTaken => {
            ApiError::conflict("name_taken", "another keypair has this name")
                .with_field_error("name", "is already used by another keypair")
        }
        KeypairFailure::NotFound => ApiError::not_found("keypair"),
        KeypairFailure::NoPrivateKey => {
            ApiError::conflict("no_private_key", "this keypair has only a public key")
        }
        KeypairFailure::InUse(dependants) => {
            let listed: Vec<_> = dependants
                .iter()
                .map(|d| serde_json::json!({"kind": d.kind, "id": d.id, "name": d.name}))
                .collect();
            ApiError::conflict(
                "in_use",
                format!(
                    "the keypair is used by {} object(s); delete them first or pass cascade=true",
                    listed.len()
                ),
            )
            .with_member("dependants", serde_json::Value::Array(listed))
        }
        KeypairFailure::Cascade(message) => ApiError::conflict("cascade_failed", message),
        KeypairFailure::Secret(message) => ApiError::internal(message),
        KeypairFailure::Command(err) => match rejection(err) {
            Err(api_error) => api_error,
            Ok(other) => ApiError::conflict("refused", other.to_string()),
        },
    }
}

fn parse_name(text: &str) -> Result<Name, ApiError> {
    Name::parse(text).map_err(|m| ApiError::invalid_field("name", m))
}

fn parse_comment(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(c) if c.chars().count() > MAX_COMMENT_CHARS => Err(ApiError::invalid_field(
            "comment",
            "must be at most 255 characters",
        )),
        Some(c) if c.chars().any(char::is_control) => Err(ApiError::invalid_field(
            "comment",
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

fn with_etag(
    mut builder: actix_web::HttpResponseBuilder,
    version: usize,
) -> actix_web::HttpResponseBuilder {
    builder.insert_header((header::ETAG, etag(version)));
    builder
}

/// Generate a keypair.
#[utoipa::path(
    tag = "ssh-keypairs",
    request_body = GenerateKeypairRequest,
    responses(
        (status = 201, body = KeypairResponse, headers(("ETag" = String))),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/generate")]
pub async fn generate_keypair(
    Authorized(caller, _): Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    clock: web::Data<dyn crate::clock::Clock>,
    JsonBody(body): JsonBody<GenerateKeypairRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = parse_name(&body.name)?;
    let comment = parse_comment(body.comment)?.unwrap_or_default();
    let request = GenerateRequest {
        name,
        algorithm: body.algorithm.unwrap_or(KeyAlgorithm::Ed25519),
        bits: body.bits,
        comment,
    };
    let (id, committed) = service
        .generate(request, &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
    created(id, &committed)
}

fn created(id: Uuid, committed: &Committed<SshKeypair>) -> Result<HttpResponse, ApiError> {
    Ok(with_etag(HttpResponse::Created(), committed.version)
        .insert_header((header::LOCATION, format!("/api/v1/ssh-keypairs/{id}")))
        .json(response(committed_view(committed)?)?))
}

/// Import a keypair.
#[utoipa::path(
    tag = "ssh-keypairs",
    request_body = ImportKeypairRequest,
    responses(
        (status = 201, body = KeypairResponse, headers(("ETag" = String))),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn import_keypair(
    Authorized(caller, _): Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    clock: web::Data<dyn crate::clock::Clock>,
    JsonBody(body): JsonBody<ImportKeypairRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = ImportRequest {
        name: parse_name(&body.name)?,
        private_key: body.private_key.map(Zeroizing::new),
        public_key: body.public_key,
        passphrase: body.passphrase.map(Zeroizing::new),
        comment: parse_comment(body.comment)?,
    };
    let (id, committed) = service
        .import(request, &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
    created(id, &committed)
}

/// List keypairs, oldest first.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(PageParams),
    responses(
        (status = 200, body = inline(Paged<KeypairResponse>)),
        (status = "4XX", description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list_keypairs(
    _caller: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = params.resolve()?;
    pagination::page_response(service.list(after, limit).await?, response)
}

async fn find(service: &KeypairService, id: Uuid) -> Result<KeypairView, ApiError> {
    service
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("keypair"))
}

/// Read a keypair (never its private key).
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    responses(
        (status = 200, body = KeypairResponse, headers(("ETag" = String))),
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get_keypair(
    _caller: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    let version = view.version;
    Ok(with_etag(HttpResponse::Ok(), version).json(response(view)?))
}

/// Rename a keypair or change its comment. `If-Match` makes it conditional.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(
        ("id" = Uuid, Path, description = "Keypair id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the keypair changed since"),
    ),
    request_body = UpdateKeypairRequest,
    responses(
        (status = 200, body = KeypairResponse, headers(("ETag" = String))),
        (status = "4XX", description = "Refused, not found, stale (412) or conflicting (409)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}")]
pub async fn update_keypair(
    Authorized(caller, _): Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    clock: web::Data<dyn crate::clock::Clock>,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<UpdateKeypairRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let comment = parse_comment(body.comment)?;
    if name.is_none() && comment.is_none() {
        return Err(ApiError::invalid_field(
            "body",
            "give `name`, `comment` or both",
        ));
    }
    let committed = service
        .update(
            id,
            KeypairChanges { name, comment },
            expected,
            &caller.metadata(clock.now()),
        )
        .await
        .map_err(failure)?;
    Ok(with_etag(HttpResponse::Ok(), committed.version)
        .json(response(committed_view(&committed)?)?))
}

/// Delete a keypair and destroy its private key for good (its history stays).
#[utoipa::path(
    tag = "ssh-keypairs",
    params(
        ("id" = Uuid, Path, description = "Keypair id"),
        DeleteParams,
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the keypair changed since"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = "4XX", description = "Refused, not found, or in use (409 with `dependants`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}")]
pub async fn delete_keypair(
    Authorized(caller, _): Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    clock: web::Data<dyn crate::clock::Clock>,
    id: web::Path<Uuid>,
    params: web::Query<DeleteParams>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse, ApiError> {
    service
        .delete(
            id.into_inner(),
            params.cascade,
            expected,
            &caller.metadata(clock.now()),
        )
        .await
        .map_err(failure)?;
    Ok(HttpResponse::NoContent().finish())
}

/// What uses a keypair.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    responses(
        (status = 200, body = UsedByResponse),
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/used-by")]
pub async fn keypair_used_by(
    _caller: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let dependants = service.used_by(id.into_inner()).await.map_err(failure)?;
    Ok(HttpResponse::Ok().json(UsedByResponse {
        items: dependants
            .into_iter()
            .map(|d| DependantResponse {
                kind: d.kind,
                id: d.id,
                name: d.name,
            })
            .collect(),
    }))
}

/// The public key as an authorized_keys line, as a file download.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    responses(
        (status = 200, description = "authorized_keys line", body = String, content_type = "text/plain"),
        (status = "4XX", description = "Refused or not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/public-key")]
pub async fn download_public_key(
    _caller: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(&format!("{}.pub", view.name)),
        ))
        .body(format!("{}\n", view.public_key)))
}

/// Export the private key (OpenSSH format; encrypted when a passphrase is given). Every
/// export is recorded with who asked.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    request_body(content = ExportPrivateKeyRequest, description = "Optional; an empty body exports unencrypted"),
    responses(
        (status = 200, body = ExportedPrivateKey),
        (status = "4XX", description = "Refused, not found, or no private key (409)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/private-key")]
pub async fn export_private_key(
    Authorized(caller, _): Authorized<require::SecretsExport>,
    service: web::Data<KeypairService>,
    clock: web::Data<dyn crate::clock::Clock>,
    id: web::Path<Uuid>,
    JsonBodyOrEmpty(body): JsonBodyOrEmpty<ExportPrivateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let passphrase = match body.passphrase {
        Some(p) if p.is_empty() || p.len() > 1024 => {
            return Err(ApiError::invalid_field(
                "passphrase",
                "must be 1–1024 bytes",
            ));
        }
        other => other,
    };
    let id = id.into_inner();
    let encrypted = passphrase.is_some();
    let (text, committed) = service
        .export(id, passphrase, &caller.metadata(clock.now()))
        .await
        .map_err(failure)?;
    let fingerprint = committed.state.fingerprint;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ExportedPrivateKey {
            private_key: text.to_string(),
            encrypted,
            fingerprint,
        }))
}

/// `attachment` with an ASCII fallback and the exact name per RFC 6266 / RFC 8187.
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_are_encoded_safely() {
        assert_eq!(
            content_disposition("backup.pub"),
            "attachment; filename=\"backup.pub\"; filename*=UTF-8''backup.pub"
        );
        let tricky = content_disposition("Zürich \"key\"; evil.pub");
        assert!(tricky.starts_with("attachment; filename=\"Z_rich__key___evil.pub\"; "));
        assert!(tricky.ends_with("filename*=UTF-8''Z%C3%BCrich%20%22key%22%3B%20evil.pub"));
    }
}
