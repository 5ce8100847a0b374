//! Authentication for everything under `/api/v1`: a `Bearer` API key, checked against the
//! event log. Scopes are checked by each handler (see `gateway::Caller::require`), next
//! to the code they protect.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use std::time::Instant;

use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::aggregate::Rejection;
use super::codes;
use super::service::{ApiKeyService, AuthFailure};
use super::throttle::FailureThrottle;
use crate::gateway::{ApiError, RefusedKey, client_of};

pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let throttle = req
        .app_data::<web::Data<FailureThrottle>>()
        .cloned()
        .zip(client_of(req.request()));
    if let Some((throttle, source)) = &throttle
        && let Some(wait) = throttle.blocked(*source, Instant::now())
    {
        return Ok(req.error_response(ApiError::too_many_requests(
            codes::TOO_MANY_FAILED_AUTHENTICATIONS,
            format!("too many failed authentications from this address; retry in {wait} s"),
            wait,
        )));
    }
    let outcome = match req.app_data::<web::Data<ApiKeyService>>() {
        Some(service) => authenticate(&req, service).await,
        None => Err(ApiError::internal("the API key service is not registered")),
    };
    // A key that was presented and refused counts; a request without any key does not
    // (it guesses nothing).
    if let (Err(error), Some((throttle, source))) = (&outcome, &throttle)
        && error.status() == StatusCode::UNAUTHORIZED
        && error.code() != codes::MISSING_API_KEY
    {
        throttle.count(*source, Instant::now());
    }
    match outcome {
        Ok(principal) => {
            tracing::Span::current().record("actor", tracing::field::display(&principal.key_id));
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        // `error_response` keeps the error inside the response, so the request span
        // logs its cause (a store fault during authentication included).
        Err(error) => Ok(req.error_response(error)),
    }
}

async fn authenticate(
    req: &ServiceRequest,
    service: &ApiKeyService,
) -> Result<super::Principal, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            codes::MISSING_API_KEY,
            "this endpoint needs an API key: send `Authorization: Bearer <key>`",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                codes::INVALID_AUTHORIZATION_HEADER,
                "the Authorization header must be `Bearer <key>`",
            )
        })?;
    let failure = match service.authenticate(token).await {
        Ok(principal) => return Ok(principal),
        Err(failure) => failure,
    };
    let rejection = match failure {
        AuthFailure::Store(e) => return Err(ApiError::from(e)),
        AuthFailure::Rejected(rejection) => rejection,
        AuthFailure::KeyRefused {
            rejection,
            key_id,
            name,
        } => {
            // For the audit record of this refusal (see `gateway::refusals`).
            req.extensions_mut().insert(RefusedKey {
                key_id: key_id.to_string(),
                name,
            });
            rejection
        }
    };
    Err(match rejection {
        Rejection::Unknown => {
            ApiError::unauthorized(codes::INVALID_API_KEY, "the API key is not valid")
        }
        Rejection::Revoked => {
            ApiError::unauthorized(codes::API_KEY_REVOKED, "the API key has been revoked")
        }
        Rejection::Expired => {
            ApiError::unauthorized(codes::API_KEY_EXPIRED, "the API key has expired")
        }
    })
}
