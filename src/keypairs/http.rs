//! `/api/v1/ssh-keypairs`: generate, import, list, read, rename / re-comment, delete,
//! used-by, public key download and (audited) private key export.

use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{CustomizeResponder, HttpResponse, Responder, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::SshKeypair;
use super::comment::Comment;
use super::material::KeyAlgorithm;
use super::service::{GenerateRequest, ImportRequest, KeypairChanges, KeypairService};
use super::view::KeypairView;
use crate::auth::{Scope, SecretReadLimit, admit_secret_read, require};
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::{
    ApiError, Authorized, Conflict, IfMatch, JsonBody, JsonBodyOrEmpty, NotFound, PlainText,
    PreconditionFailed, Versioned,
};
use crate::names::Name;
use crate::store::Committed;

/// Import a keypair. Give a private key (its public key is derived), a public key
/// alone (a keypair without a private key), or both (they must belong together).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "imported job key", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp/VBApBDZU07LOwvReCfbOeprRRN7vqNu3hSgyoLRo backup@nas", "comment": "backup@nas"})))]
pub struct ImportKeypairRequest {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: String,
    /// OpenSSH, PKCS#1, PKCS#8 (plain or encrypted) or SEC1 PEM.
    pub private_key: Option<String>,
    /// An OpenSSH public key line: `type base64 [comment]`.
    pub public_key: Option<String>,
    /// Opens an encrypted private key; ignored for an unencrypted one. Never stored.
    pub passphrase: Option<String>,
    /// Defaults to the key's own comment.
    #[schema(max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub comment: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "offsite backup", "algorithm": "ed25519", "comment": "backup@nas"})))]
pub struct GenerateKeypairRequest {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: String,
    /// Default `ed25519`.
    pub algorithm: Option<KeyAlgorithm>,
    /// RSA: 2048, 3072 (default) or 4096. Others have one size.
    pub bits: Option<u32>,
    #[schema(max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub comment: Option<String>,
}

/// At least one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "offsite backup (2026)"})))]
pub struct UpdateKeypairRequest {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub comment: Option<String>,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"passphrase": "correct horse battery staple"})))]
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
#[schema(examples(json!({"id": "3f6b2a1e-8c4d-4b7a-9e21-5d0c7f4a9b13", "name": "offsite backup", "algorithm": "ed25519", "bits": 256, "comment": "backup@nas", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp/VBApBDZU07LOwvReCfbOeprRRN7vqNu3hSgyoLRo backup@nas", "fingerprint": "SHA256:5/qzpPZ9asg47Ope3r65SlFiDibgFNBf2RAo2K+QHg0", "has_private_key": true, "created_at": "2026-12-01T09:30:00Z", "updated_at": "2026-12-01T09:30:00Z", "version": 1})))]
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
#[schema(examples(json!({"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n…\n-----END OPENSSH PRIVATE KEY-----\n", "encrypted": true, "fingerprint": "SHA256:5/qzpPZ9asg47Ope3r65SlFiDibgFNBf2RAo2K+QHg0"})))]
pub struct ExportedPrivateKey {
    /// OpenSSH private key.
    pub private_key: String,
    pub encrypted: bool,
    pub fingerprint: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"kind": "ssh_connection", "id": "7c1e9d42-2b6f-4f0a-8d35-0e4b6a9c2f71", "name": "offsite nas"})))]
pub struct DependantResponse {
    pub kind: String,
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"items": [{"kind": "ssh_connection", "id": "7c1e9d42-2b6f-4f0a-8d35-0e4b6a9c2f71", "name": "offsite nas"}]})))]
pub struct UsedByResponse {
    pub items: Vec<DependantResponse>,
}

fn response(view: KeypairView) -> Result<KeypairResponse, ApiError> {
    Ok(KeypairResponse {
        id: view.id.parse().map_err(ApiError::internal)?,
        name: view.name.to_string(),
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

/// The answer to a write: the keypair as its committed events make it (never re-read:
/// the view may lag the commit).
fn committed_response(committed: &Committed<SshKeypair>) -> Result<KeypairResponse, ApiError> {
    let view = committed
        .view::<KeypairView>()
        .ok_or_else(|| ApiError::internal("a written keypair has no view"))?;
    response(view)
}

fn created(
    id: Uuid,
    committed: &Committed<SshKeypair>,
) -> Result<Versioned<KeypairResponse>, ApiError> {
    Ok(Versioned::created(
        format!("/api/v1/ssh-keypairs/{id}"),
        committed.version,
        committed_response(committed)?,
    ))
}

fn parse_name(text: &str) -> Result<Name, ApiError> {
    Name::parse(text).map_err(|m| ApiError::invalid_field("name", m))
}

fn parse_comment(text: Option<String>) -> Result<Option<Comment>, ApiError> {
    text.map(Comment::parse)
        .transpose()
        .map_err(|m| ApiError::invalid_field("comment", m))
}

async fn find(service: &KeypairService, id: Uuid) -> Result<KeypairView, ApiError> {
    service
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("keypair"))
}

/// Generate a keypair.
#[utoipa::path(
    tag = "ssh-keypairs",
    request_body = GenerateKeypairRequest,
    responses(
        (status = 201, body = KeypairResponse, headers(("ETag" = String))),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:write"]))),
)]
#[post("/generate")]
pub async fn generate_keypair(
    who: Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    JsonBody(body): JsonBody<GenerateKeypairRequest>,
) -> Result<Versioned<KeypairResponse>, ApiError> {
    let request = GenerateRequest {
        name: parse_name(&body.name)?,
        algorithm: body.algorithm.unwrap_or(KeyAlgorithm::Ed25519),
        bits: body.bits,
        comment: parse_comment(body.comment)?.unwrap_or_default(),
    };
    let (id, committed) = service.generate(request, &who.metadata()).await?;
    created(id, &committed)
}

/// Import a keypair.
#[utoipa::path(
    tag = "ssh-keypairs",
    request_body = ImportKeypairRequest,
    responses(
        (status = 201, body = KeypairResponse, headers(("ETag" = String))),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:write"]))),
)]
#[post("")]
pub async fn import_keypair(
    who: Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    JsonBody(body): JsonBody<ImportKeypairRequest>,
) -> Result<Versioned<KeypairResponse>, ApiError> {
    let request = ImportRequest {
        name: parse_name(&body.name)?,
        private_key: body.private_key.map(Zeroizing::new),
        public_key: body.public_key,
        passphrase: body.passphrase.map(Zeroizing::new),
        comment: parse_comment(body.comment)?,
    };
    let (id, committed) = service.import(request, &who.metadata()).await?;
    created(id, &committed)
}

/// List keypairs, oldest first.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(PageParams),
    responses((status = 200, body = Paged<KeypairResponse>)),
    extensions(("x-required-scopes" = json!(["keypairs:read"]))),
)]
#[get("")]
pub async fn list_keypairs(
    _who: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = params.resolve()?;
    pagination::page_response(service.list(after, limit).await?, response)
}

/// Read a keypair (never its private key).
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    responses(
        (status = 200, body = KeypairResponse, headers(("ETag" = String))),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:read"]))),
)]
#[get("/{id}")]
pub async fn get_keypair(
    _who: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
) -> Result<Versioned<KeypairResponse>, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(Versioned::ok(view.version, response(view)?))
}

/// Rename a keypair or change its comment, in one change. `If-Match` makes it
/// conditional. A field left out (or `null`) keeps its value; a body that changes
/// nothing records nothing and answers the keypair as it is.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(
        ("id" = Uuid, Path, description = "Keypair id"),
        ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 if the keypair changed since"),
    ),
    request_body = UpdateKeypairRequest,
    responses(
        (status = 200, body = KeypairResponse, headers(("ETag" = String))),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:write"]))),
)]
#[patch("/{id}")]
pub async fn update_keypair(
    who: Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<UpdateKeypairRequest>,
) -> Result<Versioned<KeypairResponse>, ApiError> {
    let changes = KeypairChanges {
        name: body.name.as_deref().map(parse_name).transpose()?,
        comment: parse_comment(body.comment)?,
    };
    let committed = service
        .update(id.into_inner(), changes, expected, &who.metadata())
        .await?;
    Ok(Versioned::ok(
        committed.version,
        committed_response(&committed)?,
    ))
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
        (status = 404, response = NotFound),
        (status = 409, description = "In use (`in_use`, with `dependants`): delete them first or pass `cascade=true`", body = crate::gateway::Problem, content_type = "application/problem+json"),
        (status = 412, response = PreconditionFailed),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:write"]))),
)]
#[delete("/{id}")]
pub async fn delete_keypair(
    who: Authorized<require::KeypairsWrite>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
    params: web::Query<DeleteParams>,
    IfMatch(expected): IfMatch,
) -> Result<HttpResponse, ApiError> {
    if params.cascade {
        // A cascade deletes what uses the keypair (connections): that capability's
        // scope too, or `keypairs:write` alone could delete connections.
        who.caller.require(Scope::ConnectionsWrite)?;
    }
    service
        .delete(id.into_inner(), params.cascade, expected, &who.metadata())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What uses a keypair.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    responses(
        (status = 200, body = UsedByResponse),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:read"]))),
)]
#[get("/{id}/used-by")]
pub async fn get_keypair_used_by(
    _who: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
) -> Result<web::Json<UsedByResponse>, ApiError> {
    let dependants = service.used_by(id.into_inner()).await?;
    Ok(web::Json(UsedByResponse {
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
        (status = 200, description = "authorized_keys line", body = String, content_type = "text/plain", example = json!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHp/VBApBDZU07LOwvReCfbOeprRRN7vqNu3hSgyoLRo backup@nas\n")),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["keypairs:read"]))),
)]
#[get("/{id}/public-key")]
pub async fn export_public_key(
    _who: Authorized<require::KeypairsRead>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
) -> Result<CustomizeResponder<PlainText>, ApiError> {
    let view = find(&service, id.into_inner()).await?;
    Ok(PlainText(format!("{}\n", view.public_key))
        .customize()
        .insert_header(attachment(&format!("{}.pub", view.name))))
}

/// Export the private key (OpenSSH format; encrypted when a passphrase is given). Every
/// export is recorded with who asked.
#[utoipa::path(
    tag = "ssh-keypairs",
    params(("id" = Uuid, Path, description = "Keypair id")),
    request_body(content = Option<ExportPrivateKeyRequest>, description = "Optional; no body (or `{}`) exports unencrypted"),
    responses(
        (status = 200, body = ExportedPrivateKey),
        (status = 404, response = NotFound),
        (status = 409, description = "The keypair has only a public key (`no_private_key`)", body = crate::gateway::Problem, content_type = "application/problem+json"),
    ),
    extensions(("x-required-scopes" = json!(["secrets:export"]))),
)]
#[post("/{id}/private-key")]
pub async fn export_private_key(
    who: Authorized<require::SecretsExport>,
    secret_reads: web::Data<SecretReadLimit>,
    service: web::Data<KeypairService>,
    id: web::Path<Uuid>,
    JsonBodyOrEmpty(body): JsonBodyOrEmpty<ExportPrivateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    admit_secret_read(&secret_reads, who.caller.principal.key_id)?;
    let passphrase = match body.passphrase {
        Some(p) if p.is_empty() || p.len() > 1024 => {
            return Err(ApiError::invalid_field(
                "passphrase",
                "must be 1–1024 bytes",
            ));
        }
        other => other,
    };
    let encrypted = passphrase.is_some();
    let (text, committed) = service
        .export(id.into_inner(), passphrase, &who.metadata())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ExportedPrivateKey {
            private_key: text.to_string(),
            encrypted,
            fingerprint: committed.state.fingerprint,
        }))
}

/// `attachment` with an ASCII fallback name (for old clients) and the exact name
/// (RFC 6266 / RFC 8187), so a keypair's name cannot break out of the header.
pub fn attachment(file_name: &str) -> ContentDisposition {
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
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(fallback),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: file_name.as_bytes().to_vec(),
            }),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn file_names_are_encoded_safely() {
        assert_eq!(
            attachment("backup.pub").to_string(),
            "attachment; filename=\"backup.pub\"; filename*=UTF-8''backup.pub"
        );
        let tricky = attachment("Zürich \"key\"; evil.pub").to_string();
        assert!(tricky.starts_with("attachment; filename=\"Z_rich__key___evil.pub\"; "));
        assert!(tricky.ends_with("filename*=UTF-8''Z%C3%BCrich%20%22key%22%3B%20evil.pub"));
    }
}
