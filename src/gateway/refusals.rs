//! Refused requests that belong in the audit trail: a revoked or expired API key, a key
//! without the scope an operation needs, a pairing revocation token that does not fit.
//! The gateway only notices them (from the problem code of the response) and hands
//! them to whatever [`RefusalSink`] a plugin provides (the audit plugin records them as
//! events); it knows nothing of how they are kept.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::problem::ApiError;
use super::request_id::RequestId;
use crate::auth::Principal;

/// The problem codes that are refusals worth recording. Unknown keys are not among
/// them: a guess names nobody, and the failed-authentication limit deals with floods.
pub const RECORDED_CODES: &[&str] = &[
    "api_key_revoked",
    "api_key_expired",
    "insufficient_scope",
    "revocation_token_refused",
];

/// The key a refused request presented, when it was a real key (revoked or expired):
/// the auth middleware leaves it on the request.
#[derive(Debug, Clone)]
pub struct RefusedKey {
    pub key_id: String,
    pub name: String,
}

/// One refused request, as the sink receives it. Never holds what was presented.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The problem code of the response (one of [`RECORDED_CODES`]).
    pub code: &'static str,
    pub status: u16,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub method: String,
    /// The path, without the query string (which may carry anything).
    pub path: String,
    pub request_id: String,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Where refusals go.
pub trait RefusalSink: Send + Sync + 'static {
    /// Records `refusal` (or drops it, e.g. over a rate limit). Must not fail the
    /// request: the response is already decided.
    fn record(&self, refusal: Refusal) -> BoxFuture<'_, ()>;
}

/// The sink a plugin provided (through `Runtime::services`), if any.
#[derive(Clone)]
pub struct RefusalLog(pub Arc<dyn RefusalSink>);

/// Hands every recorded kind of refusal to the [`RefusalLog`], after the response is
/// built and before it is sent.
pub async fn record_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let Some(log) = response
        .request()
        .app_data::<web::Data<RefusalLog>>()
        .cloned()
    else {
        return Ok(response);
    };
    let code = response
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map(|error| error.code().name())
        .filter(|code| RECORDED_CODES.contains(code));
    let Some(code) = code else {
        return Ok(response);
    };
    let refusal = {
        let req = response.request();
        let extensions = req.extensions();
        let (key_id, key_name) = match (
            extensions.get::<Principal>(),
            extensions.get::<RefusedKey>(),
        ) {
            (Some(p), _) => (Some(p.key_id.to_string()), Some(p.name.clone())),
            (None, Some(k)) => (Some(k.key_id.clone()), Some(k.name.clone())),
            (None, None) => (None, None),
        };
        Refusal {
            code,
            status: response.status().as_u16(),
            key_id,
            key_name,
            method: req.method().to_string(),
            path: req.path().chars().take(512).collect(),
            request_id: extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            source_address: super::client_of(req).map(|ip| ip.to_string()),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            occurred_at: req
                .app_data::<web::Data<dyn crate::clock::Clock>>()
                .map_or_else(Utc::now, |clock| clock.now()),
        }
    };
    log.0.record(refusal).await;
    Ok(response)
}
