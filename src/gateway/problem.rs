//! Every error a client sees: an RFC 9457 `application/problem+json` body with a stable
//! `code`, the request id and, for validation, the fields at fault. Built here and only
//! here; internal causes are logged (once, by the request span), never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem_code::{self as codes, ProblemCode};
use super::request_id::{REQUEST_ID_HEADER, current_request_id};
use crate::store::{CommandError, StoreError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `name` or `scopes[1]`.
    pub field: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"type": "urn:credgate:problem:name_taken", "title": "Conflict", "status": 409, "detail": "another keypair has this name", "code": "name_taken", "request_id": "b3c1f0e2-6d4a-4f8e-9a27-1c5e8d0b4f6a", "errors": [{"field": "name", "message": "is already used by another keypair"}]})))]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:credgate:problem:<code>`).
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable error code.
    pub code: String,
    /// The request's `X-Request-Id`, to find it in logs and in the audit trail.
    pub request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Problem-specific members, e.g. `dependants` for `in_use`.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An error answer. Boxed: it travels through every handler's `Result`, and most of
/// those results are `Ok`.
#[derive(Debug)]
pub struct ApiError(Box<Details>);

#[derive(Debug)]
struct Details {
    status: StatusCode,
    code: ProblemCode,
    detail: String,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u32>,
    /// Logged with the request, never sent to the client.
    internal_cause: Option<String>,
    /// Captured when the error is made (inside the request), so the body and the
    /// `X-Request-Id` header carry it even when actix turns the error into a response
    /// outside the request-id middleware.
    request_id: String,
    /// Captured like `request_id`: the request came over TLS, so the answer carries
    /// `Strict-Transport-Security` even when no middleware sees it.
    over_tls: bool,
    extra: serde_json::Map<String, serde_json::Value>,
    /// The `Allow` header of a 405.
    allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ProblemCode, detail: impl Into<String>) -> Self {
        Self(Box::new(Details {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            internal_cause: None,
            request_id: current_request_id(),
            over_tls: super::tls::served_over_tls(),
            extra: serde_json::Map::new(),
            allow: None,
        }))
    }

    /// 422: one field is invalid.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// 422: these fields are invalid.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::VALIDATION_FAILED,
            detail,
        );
        error.0.errors = errors;
        error
    }

    pub fn bad_request(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 400 naming the field (a path or query parameter) at fault.
    pub fn bad_request_with_field(
        code: ProblemCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let error = FieldError {
            field: field.into(),
            message: message.into(),
        };
        let detail = format!("{}: {}", error.field, error.message);
        let mut problem = Self::new(StatusCode::BAD_REQUEST, code, detail);
        problem.0.errors = vec![error];
        problem
    }

    pub fn unauthorized(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            codes::INSUFFICIENT_SCOPE,
            format!("this API key lacks the `{scope}` scope"),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(
        code: ProblemCode,
        detail: impl Into<String>,
        retry_after_secs: u32,
    ) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
        error.0.retry_after_secs = Some(retry_after_secs.max(1));
        error
    }

    pub fn unavailable(code: ProblemCode, detail: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
        error.0.retry_after_secs = Some(1);
        error
    }

    /// 500 with a generic message; `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "an internal error occurred; the request id identifies it in the logs",
        );
        error.0.internal_cause = Some(cause.to_string());
        error
    }

    /// Names a field at fault (e.g. a taken `name` on a 409).
    pub fn with_field_error(mut self, field: &str, message: &str) -> Self {
        self.0.errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
        self
    }

    /// The methods a 405 names in its `Allow` header.
    pub fn with_allow(mut self, methods: String) -> Self {
        self.0.allow = Some(methods);
        self
    }

    /// Adds a problem-specific member to the body.
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        self.0.extra.insert(name.to_owned(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> ProblemCode {
        self.0.code
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    fn title(&self) -> &'static str {
        self.0.status.canonical_reason().unwrap_or("Error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.code,
            self.0.detail
        )?;
        if let Some(cause) = &self.0.internal_cause {
            write!(f, " (cause: {cause})")?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = if self.0.request_id.is_empty() {
            current_request_id()
        } else {
            self.0.request_id.clone()
        };
        let body = Problem {
            type_uri: format!("urn:credgate:problem:{}", self.0.code),
            title: self.title().to_owned(),
            status: self.0.status.as_u16(),
            detail: self.0.detail.clone(),
            code: self.0.code.name().to_owned(),
            request_id: request_id.clone(),
            errors: self.0.errors.clone(),
            extra: self.0.extra.clone(),
        };
        let mut response = HttpResponse::build(self.0.status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if let Ok(value) = HeaderValue::from_str(&request_id)
            && !request_id.is_empty()
        {
            response.insert_header((REQUEST_ID_HEADER, value));
        }
        if self.0.over_tls {
            response.insert_header((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(super::tls::HSTS),
            ));
        }
        if self.0.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(methods) = &self.0.allow {
            response.insert_header((header::ALLOW, methods.clone()));
        }
        if let Some(secs) = self.0.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        // Serialising a struct of strings cannot fail; fall back to an empty body anyway.
        response.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                Self::unavailable(
                    codes::STORE_UNAVAILABLE,
                    "the data store is unavailable; try again shortly",
                )
            }
            StoreError::Conflict => Self::conflict(
                codes::CONCURRENT_MODIFICATION,
                "another request changed this record at the same time; reload and retry",
            ),
            StoreError::Fault(cause) => Self::internal(cause),
        }
    }
}

/// Splits a failed command into the aggregate's own refusal (for the caller to map) and
/// everything else, already mapped: a stale `If-Match` (412) or a store failure.
pub fn rejection<E: std::error::Error>(err: CommandError<E>) -> Result<E, ApiError> {
    match err {
        CommandError::Rejected(e) => Ok(e),
        // Version 0 is no version: the record does not exist (a stale `If-Match` on a
        // missing record is a 404, as without the header).
        CommandError::Stale { current: 0 } => Err(ApiError::not_found("the record")),
        CommandError::Stale { current } => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            codes::STALE_VERSION,
            format!(
                "the record has changed (it is now at version {current}); reload it and retry with its ETag"
            ),
        )),
        CommandError::Store(e) => Err(e.into()),
    }
}
