//! The request's root span (tracing-actix-web): method, path, request id, the API key
//! that made the request and the status. Errors are logged once, here, with their cause
//! (5xx at `error`, 4xx at `info`). Bodies and headers are never recorded.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use super::request_id::RequestId;

pub struct CredgateRootSpan;

impl RootSpanBuilder for CredgateRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = %request_id,
            actor = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("status", status);
                match response.response().error() {
                    Some(error) if status >= 500 => {
                        tracing::error!(parent: &span, status, %error, "request failed");
                    }
                    Some(error) => tracing::info!(parent: &span, status, %error, "request refused"),
                    None => tracing::info!(parent: &span, status, "request finished"),
                }
            }
            Err(error) => tracing::error!(parent: &span, %error, "request failed"),
        }
    }
}
