//! `/api/v1/audit-events` (list, export, verify) and the history shortcuts of keypairs
//! and connections. Scope `audit:read`. Parameters are checked here, once, into an
//! [`AuditQuery`]; the handlers only run it.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::codes;
use super::record::AuditRecord;
use super::service::{AuditService, Busy};
use crate::auth::require;
use crate::gateway::pagination::{self, PageParams, Paged};
use crate::gateway::{ApiError, Authorized, FieldErrors, NotFound};
use crate::store::{AuditQuery, ChainHead, ChainReport};

/// Which end of the trail a page starts from.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Longest accepted filter value (ids, names, types are far shorter).
const MAX_FILTER_LEN: usize = 200;

/// The resource types the audit trail records (the document's enum; the server checks
/// the filter against the lenses of the plugins it runs).
#[derive(utoipa::ToSchema)]
#[schema(as = AuditResourceType)]
#[allow(dead_code)] // only its schema is used
#[serde(rename_all = "snake_case")]
pub enum ResourceTypeFilter {
    SshKeypair,
    SshConnection,
    ApiKey,
    AuthorizedKey,
    PairingAttempt,
    AccessDenial,
}

/// Filters of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `ssh_keypair`, `ssh_connection`, `api_key`, `authorized_key`, `pairing_attempt`
    /// or `access_denial`.
    #[param(value_type = Option<ResourceTypeFilter>, inline)]
    pub resource_type: Option<String>,
    #[param(min_length = 1, max_length = 200)]
    pub resource_id: Option<String>,
    /// An API key id, or `cli` / `bootstrap` for work done on the machine.
    #[param(min_length = 1, max_length = 200)]
    pub actor: Option<String>,
    /// A stored event type, e.g. `KeypairRenamed`.
    #[param(min_length = 1, max_length = 200)]
    pub event_type: Option<String>,
    /// The `X-Request-Id` of the request that caused the records.
    #[param(min_length = 1, max_length = 200)]
    pub request_id: Option<String>,
    /// Records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Records before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// `newest_first` (default) or `oldest_first`.
    #[param(inline)]
    pub order: Option<Order>,
    /// `next_cursor` of the previous page. Pages stay stable while new records arrive.
    #[param(pattern = r"^(0|[1-9][0-9]{0,17})$", example = "42")]
    pub cursor: Option<String>,
    /// Records per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Filters of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// As in the list.
    #[param(value_type = Option<ResourceTypeFilter>, inline)]
    pub resource_type: Option<String>,
    #[param(min_length = 1, max_length = 200)]
    pub resource_id: Option<String>,
    #[param(min_length = 1, max_length = 200)]
    pub actor: Option<String>,
    #[param(min_length = 1, max_length = 200)]
    pub event_type: Option<String>,
    #[param(min_length = 1, max_length = 200)]
    pub request_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keep the stream open and send new records as they commit (and a heartbeat line,
    /// `{"heartbeat": …}`, every 10 s without one).
    pub follow: Option<bool>,
}

/// Paging of a history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// `oldest_first` (default for a history) or `newest_first`.
    #[param(inline)]
    pub order: Option<Order>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^(0|[1-9][0-9]{0,17})$", example = "42")]
    pub cursor: Option<String>,
    /// Records per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyParams {
    /// A head logged earlier, `POSITION:MAC` (from the `audit chain head` log line or
    /// an earlier `verify`): also detects events cut off after it.
    #[param(pattern = r"^[1-9][0-9]{0,17}:[0-9a-fA-F]{64}$")]
    pub head: Option<String>,
}

struct Filters<'a> {
    resource_type: &'a Option<String>,
    resource_id: &'a Option<String>,
    actor: &'a Option<String>,
    event_type: &'a Option<String>,
    request_id: &'a Option<String>,
    since: &'a Option<DateTime<Utc>>,
    until: &'a Option<DateTime<Utc>>,
}

fn stamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn checked_text(
    errors: &mut FieldErrors,
    field: &'static str,
    value: &Option<String>,
) -> Option<String> {
    let value = value.as_ref()?;
    if value.is_empty() || value.chars().count() > MAX_FILTER_LEN {
        errors.add(field, &format!("must be 1–{MAX_FILTER_LEN} characters"));
        return None;
    }
    Some(value.clone())
}

impl Filters<'_> {
    fn into_query(self, service: &AuditService) -> Result<AuditQuery, ApiError> {
        let mut errors = FieldErrors::default();
        let query = AuditQuery {
            resource_type: checked_text(&mut errors, "resource_type", self.resource_type),
            resource_id: checked_text(&mut errors, "resource_id", self.resource_id),
            actor: checked_text(&mut errors, "actor", self.actor),
            event_type: checked_text(&mut errors, "event_type", self.event_type),
            request_id: checked_text(&mut errors, "request_id", self.request_id),
            since: self.since.as_ref().map(stamp),
            until: self.until.as_ref().map(stamp),
            newest_first: false,
            after: None,
        };
        if let Some(kind) = &query.resource_type
            && !service.resource_types().contains(&kind.as_str())
        {
            errors.add(
                "resource_type",
                &format!("must be one of: {}", service.resource_types().join(", ")),
            );
        }
        errors.into_result()?;
        Ok(query)
    }
}

/// Applies order, cursor and limit; returns the limit.
fn paging(
    query: &mut AuditQuery,
    order: Order,
    cursor: &Option<String>,
    limit: Option<i64>,
) -> Result<i64, ApiError> {
    let (after, limit) = PageParams {
        cursor: cursor.clone(),
        limit,
    }
    .resolve()?;
    query.newest_first = matches!(order, Order::NewestFirst);
    query.after = cursor.is_some().then_some(after);
    Ok(limit)
}

async fn page(
    service: &AuditService,
    query: &AuditQuery,
    limit: i64,
) -> Result<HttpResponse, ApiError> {
    let (items, next) = service.page(query, limit).await?;
    Ok(HttpResponse::Ok().json(Paged {
        items,
        next_cursor: next.map(pagination::encode),
    }))
}

/// List audit records.
///
/// Every change of every credential, every secret read and every refused access, with
/// who, when, from where and what changed.
#[utoipa::path(
    tag = "audit",
    params(ListParams),
    responses((status = 200, body = Paged<AuditRecord>)),
    extensions(("x-required-scopes" = json!(["audit:read"]))),
)]
#[get("/audit-events")]
pub async fn list_audit_events(
    _who: Authorized<require::AuditRead>,
    service: web::Data<AuditService>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let mut query = Filters {
        resource_type: &p.resource_type,
        resource_id: &p.resource_id,
        actor: &p.actor,
        event_type: &p.event_type,
        request_id: &p.request_id,
        since: &p.since,
        until: &p.until,
    }
    .into_query(&service)?;
    let limit = paging(&mut query, p.order.unwrap_or_default(), &p.cursor, p.limit)?;
    page(&service, &query, limit).await
}

/// Export audit records as NDJSON (one record per line, oldest first), streamed.
/// With `follow=true` the stream stays open and sends new records as they commit.
#[utoipa::path(
    tag = "audit",
    params(ExportParams),
    responses((
        status = 200,
        description = "One JSON audit record per line (`AuditRecord`); while following, \
                       heartbeat lines `{\"heartbeat\": time, \"after_position\": n}`",
        content_type = "application/x-ndjson",
        body = String,
        example = json!("{\"position\": 42, \"occurred_at\": \"2026-12-01T09:42:17Z\", \"resource_type\": \"ssh_keypair\", \"resource_id\": \"3f6b2a1e-8c4d-4b7a-9e21-5d0c7f4a9b13\", \"resource_name\": \"offsite backup (2026)\", \"event_type\": \"KeypairRenamed\", \"event_version\": \"1\", \"category\": \"change\", \"actor\": {\"id\": \"9a4f0c6e-1d2b-4e8f-b3a7-6c5d8e2f1a04\", \"name\": \"admin\"}, \"request_id\": \"b3c1f0e2-6d4a-4f8e-9a27-1c5e8d0b4f6a\", \"changes\": [{\"field\": \"name\", \"before\": \"offsite backup\", \"after\": \"offsite backup (2026)\"}], \"details\": {}}\n{\"heartbeat\": \"2026-12-01T09:43:17Z\", \"after_position\": 42}\n"),
    )),
    extensions(("x-required-scopes" = json!(["audit:read"]))),
)]
#[get("/audit-events/export")]
pub async fn export_audit_events(
    _who: Authorized<require::AuditRead>,
    service: web::Data<AuditService>,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let query = Filters {
        resource_type: &p.resource_type,
        resource_id: &p.resource_id,
        actor: &p.actor,
        event_type: &p.event_type,
        request_id: &p.request_id,
        since: &p.since,
        until: &p.until,
    }
    .into_query(&service)?;
    let follow = match p.follow {
        Some(true) => Some(service.follower_slot().map_err(busy)?),
        _ => None,
    };
    let service: Arc<AuditService> = service.into_inner();
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Tell nginx-like proxies not to buffer a followed stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(service.export(query, follow)))
}

/// Check the audit chain.
///
/// Recomputes every event's MAC from the event log and reports the first altered,
/// deleted or unchained event. Pass a head logged earlier to also detect a cut-off tail.
#[utoipa::path(
    tag = "audit",
    params(VerifyParams),
    responses((status = 200, description = "The outcome (also when it found tampering)", body = ChainReport)),
    extensions(("x-required-scopes" = json!(["audit:read"]))),
)]
#[get("/audit-events/verify")]
pub async fn verify_audit_chain(
    _who: Authorized<require::AuditRead>,
    service: web::Data<AuditService>,
    params: web::Query<VerifyParams>,
) -> Result<HttpResponse, ApiError> {
    let expected = params
        .head
        .as_deref()
        .map(str::parse::<ChainHead>)
        .transpose()
        .map_err(|m| ApiError::invalid_field("head", m))?;
    let report = service.verify(expected).await?.map_err(busy)?;
    Ok(HttpResponse::Ok().json(report))
}

/// 429 with `Retry-After`: the instance is doing as much of this as it will at once.
fn busy(reason: Busy) -> ApiError {
    ApiError::too_many_requests(codes::AUDIT_BUSY, reason.to_string(), 5)
}

async fn history(
    service: &AuditService,
    resource_type: &str,
    id: Uuid,
    params: HistoryParams,
    what: &str,
) -> Result<HttpResponse, ApiError> {
    let mut query = AuditQuery {
        resource_type: Some(resource_type.to_owned()),
        resource_id: Some(id.to_string()),
        ..AuditQuery::default()
    };
    let order = params.order.unwrap_or(Order::OldestFirst);
    let limit = paging(&mut query, order, &params.cursor, params.limit)?;
    let probe = AuditQuery {
        after: None,
        ..query.clone()
    };
    if service.page(&probe, 1).await?.0.is_empty() {
        return Err(ApiError::not_found(what));
    }
    page(service, &query, limit).await
}

/// The complete history of a keypair, also after it was deleted.
#[utoipa::path(
    tag = "audit",
    params(("id" = Uuid, Path, description = "Keypair id"), HistoryParams),
    responses(
        (status = 200, body = Paged<AuditRecord>),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["audit:read"]))),
)]
#[get("/ssh-keypairs/{id}/history")]
pub async fn get_keypair_history(
    _who: Authorized<require::AuditRead>,
    service: web::Data<AuditService>,
    id: web::Path<Uuid>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    history(
        &service,
        "ssh_keypair",
        id.into_inner(),
        params.into_inner(),
        "keypair",
    )
    .await
}

/// The complete history of a connection, also after it was deleted.
#[utoipa::path(
    tag = "audit",
    params(("id" = Uuid, Path, description = "Connection id"), HistoryParams),
    responses(
        (status = 200, body = Paged<AuditRecord>),
        (status = 404, response = NotFound),
    ),
    extensions(("x-required-scopes" = json!(["audit:read"]))),
)]
#[get("/ssh-connections/{id}/history")]
pub async fn get_connection_history(
    _who: Authorized<require::AuditRead>,
    service: web::Data<AuditService>,
    id: web::Path<Uuid>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    history(
        &service,
        "ssh_connection",
        id.into_inner(),
        params.into_inner(),
        "connection",
    )
    .await
}
