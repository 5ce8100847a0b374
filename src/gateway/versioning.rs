//! Optimistic concurrency over HTTP: responses carry the aggregate version as a strong
//! `ETag`; `If-Match` on a change makes it conditional (412 when stale).

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder};
use futures_util::future::{Ready, ready};
use serde::Serialize;

use super::problem::ApiError;
use super::problem_code as codes;

/// `"7"` for version 7.
pub fn etag(version: usize) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header asks for; `None` without the header or for `*`.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<usize>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = req.headers().get(header::IF_MATCH) else {
            return ready(Ok(IfMatch(None)));
        };
        let parsed = value.to_str().ok().map(str::trim).and_then(|v| {
            if v == "*" {
                return Some(None);
            }
            // As `contract::IF_MATCH_PATTERN` says: the ETag as sent (`"3"`), or its
            // version bare (`3`: some clients and tools drop the quotes), 1–18 digits.
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or(Some(v))
                .filter(|v| (1..=18).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .map(Some)
        });
        ready(parsed.map(IfMatch).ok_or_else(|| {
            ApiError::bad_request_with_field(
                codes::INVALID_IF_MATCH,
                "If-Match",
                "must be an ETag from this service, e.g. \"3\"",
            )
        }))
    }
}

/// A JSON answer about one versioned resource: sets its `ETag` (and, when created, its
/// `Location`), so no handler builds those headers itself.
pub struct Versioned<T> {
    status: StatusCode,
    version: usize,
    location: Option<String>,
    body: T,
}

impl<T> Versioned<T> {
    /// 200 with the resource at `version`.
    pub fn ok(version: usize, body: T) -> Self {
        Self {
            status: StatusCode::OK,
            version,
            location: None,
            body,
        }
    }

    /// 201 with the new resource's `location`.
    pub fn created(location: String, version: usize, body: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            version,
            location: Some(location),
            body,
        }
    }
}

impl<T: Serialize> Responder for Versioned<T> {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::ETAG, etag(self.version)));
        if let Some(location) = self.location {
            response.insert_header((header::LOCATION, location));
        }
        response.json(self.body)
    }
}

/// A `text/plain; charset=utf-8` answer: a file credgate exports (known_hosts lines, an
/// ssh_config block, a public key).
pub struct PlainText(pub String);

impl Responder for PlainText {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(self.0)
    }
}
