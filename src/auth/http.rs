//! `/api/v1/api-keys`: create (the secret is shown once), list, read, revoke. Scope `admin`.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::aggregate::ApiKeyError;
use super::codes;
use super::scope::{Scope, require};
use super::service::ApiKeyService;
use super::view::ApiKeyView;
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::problem_code as common;
use crate::gateway::{ApiError, Authorized, Conflict, JsonBody, NotFound, rejection};
use crate::names::Name;
use crate::store::CommandError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "nightly backup job", "scopes": ["connections:read", "connections:use"], "expires_at": "2027-12-01T00:00:00Z"})))]
pub struct CreateApiKeyRequest {
    /// A label for people: 1–120 characters, no control characters.
    #[schema(
        example = "nightly backup job",
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$"
    )]
    pub name: String,
    /// At least one scope.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// When the key stops working (RFC 3339); never when absent.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyStatus {
    Active,
    Expired,
    Revoked,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"id": "9a4f0c6e-1d2b-4e8f-b3a7-6c5d8e2f1a04", "name": "nightly backup job", "scopes": ["connections:read", "connections:use"], "status": "active", "created_at": "2026-12-01T09:30:00Z", "created_by": "admin", "expires_at": "2027-12-01T00:00:00Z"})))]
pub struct ApiKeyResponse {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub status: ApiKeyStatus,
    pub created_at: DateTime<Utc>,
    /// Name of the API key (or `bootstrap` / `cli`) that created this one.
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new key. `secret` is shown only in this response; store it now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"id": "9a4f0c6e-1d2b-4e8f-b3a7-6c5d8e2f1a04", "name": "nightly backup job", "scopes": ["connections:read", "connections:use"], "status": "active", "created_at": "2026-12-01T09:30:00Z", "created_by": "admin", "expires_at": "2027-12-01T00:00:00Z", "secret": "cg_ch3DfL6Cr0LXSq9n_2TMwygLWJH2scNA7ZL1tMZ9Xtc"})))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyResponse,
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

fn to_response(view: ApiKeyView, now: DateTime<Utc>) -> Result<ApiKeyResponse, ApiError> {
    let status = if view.revoked_at.is_some() {
        ApiKeyStatus::Revoked
    } else if view.expires_at.is_some_and(|at| at <= now) {
        ApiKeyStatus::Expired
    } else {
        ApiKeyStatus::Active
    };
    Ok(ApiKeyResponse {
        id: view.id.parse().map_err(ApiError::internal)?,
        name: view.name,
        scopes: view.scopes,
        status,
        created_at: view.created_at,
        created_by: view.created_by,
        expires_at: view.expires_at,
        revoked_at: view.revoked_at,
    })
}

impl From<CommandError<ApiKeyError>> for ApiError {
    fn from(err: CommandError<ApiKeyError>) -> Self {
        match rejection(err) {
            Err(api_error) => api_error,
            Ok(ApiKeyError::NotFound) => ApiError::not_found("API key"),
            Ok(ApiKeyError::AlreadyExists) => ApiError::conflict(
                codes::ALREADY_EXISTS,
                "an API key with this secret already exists",
            ),
            Ok(ApiKeyError::NoScopes) => {
                ApiError::invalid_field("scopes", "at least one scope is required")
            }
            Ok(ApiKeyError::ExpiryNotInFuture) => {
                ApiError::invalid_field("expires_at", "must be in the future")
            }
            Ok(ApiKeyError::AlreadyRevoked) => {
                ApiError::conflict(common::ALREADY_REVOKED, "the API key is already revoked")
            }
            Ok(ApiKeyError::LastAdminKey) => ApiError::conflict(
                codes::LAST_ADMIN_KEY,
                "this is the last active admin key: create another admin key first (or \
                 recover one with `credgate api-keys create` on the host)",
            ),
        }
    }
}

/// Create an API key.
#[utoipa::path(
    tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; the secret is in this response only", body = CreatedApiKey),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["admin"]))),
)]
#[post("/api-keys")]
pub async fn create_api_key(
    who: Authorized<require::Admin>,
    service: web::Data<ApiKeyService>,
    JsonBody(body): JsonBody<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = Name::parse(&body.name).map_err(|m| ApiError::invalid_field("name", m))?;
    let metadata = who.metadata();
    let now = metadata.occurred_at;
    let (id, secret, key) = service
        .create(name, body.scopes, body.expires_at, None, &metadata)
        .await?;
    let view = ApiKeyView {
        id: id.to_string(),
        name: key.name,
        scopes: key.scopes,
        created_at: key.created_at.unwrap_or(now),
        created_by: metadata.actor_name,
        expires_at: key.expires_at,
        revoked_at: None,
    };
    let body = CreatedApiKey {
        key: to_response(view, now)?,
        secret: secret.expose().to_owned(),
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/api-keys/{id}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// List API keys (never their secrets), oldest first.
#[utoipa::path(
    tag = "api-keys",
    params(PageParams),
    responses(
        (status = 200, body = Paged<ApiKeyResponse>),
    ),
    extensions(("x-required-scopes" = json!(["admin"]))),
)]
#[get("/api-keys")]
pub async fn list_api_keys(
    _who: Authorized<require::Admin>,
    service: web::Data<ApiKeyService>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = params.resolve()?;
    let now = service.now();
    pagination::page_response(service.list(after, limit).await?, |view| {
        to_response(view, now)
    })
}

/// Read one API key.
#[utoipa::path(
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, body = ApiKeyResponse),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["admin"]))),
)]
#[get("/api-keys/{id}")]
pub async fn get_api_key(
    _who: Authorized<require::Admin>,
    service: web::Data<ApiKeyService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = service
        .get(id.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(HttpResponse::Ok().json(to_response(view, service.now())?))
}

/// Revoke an API key. It is refused from the next request on, by every instance.
/// Revoking a revoked key changes nothing and also answers 204. A key may revoke
/// itself (its next request gets 401); the last active admin key cannot be revoked
/// (409 `last_admin_key`).
#[utoipa::path(
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked (also when it already was)"),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ),
    extensions(("x-required-scopes" = json!(["admin"]))),
)]
#[delete("/api-keys/{id}")]
pub async fn revoke_api_key(
    who: Authorized<require::Admin>,
    service: web::Data<ApiKeyService>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    match service.revoke(id.into_inner(), &who.metadata()).await {
        Ok(()) | Err(CommandError::Rejected(ApiKeyError::AlreadyRevoked)) => {
            Ok(HttpResponse::NoContent().finish())
        }
        Err(e) => Err(e.into()),
    }
}
