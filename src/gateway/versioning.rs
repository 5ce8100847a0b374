//! Optimistic concurrency over HTTP: responses carry the aggregate version as a strong
//! `ETag`; `If-Match` on a change makes it conditional (412 when stale).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Ready, ready};

use super::problem::ApiError;

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
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .and_then(|v| v.parse::<usize>().ok())
                .map(Some)
        });
        ready(parsed.map(IfMatch).ok_or_else(|| {
            ApiError::bad_request_with_field(
                "invalid_if_match",
                "If-Match",
                "must be an ETag from this service, e.g. \"3\"",
            )
        }))
    }
}
