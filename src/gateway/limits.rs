//! Request time limit and the error handlers for actix's own extractors, so that every
//! refusal is a problem response.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, web};

use super::problem::ApiError;

/// How long a request may run (`limits.request_timeout_secs`).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub std::time::Duration);

pub async fn request_timeout_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    let Some(limit) = req.app_data::<RequestTimeout>().map(|t| t.0) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => Ok(result?.map_into_boxed_body()),
        // The request was moved into the handler, so the answer travels as an error;
        // it carries its request id itself (see `ApiError`).
        Err(_) => Err(ApiError::unavailable(
            "request_timeout",
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into()),
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req: &HttpRequest| {
        let field = req
            .match_info()
            .iter()
            .map(|(name, _)| name.to_owned())
            .next()
            .unwrap_or_else(|| "path".to_owned());
        let message = match err {
            actix_web::error::PathError::Deserialize(e) => format!("is not valid: {e}"),
            _ => "is not valid".to_owned(),
        };
        ApiError::bad_request_with_field("invalid_path_parameter", field, message).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = match err {
            actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
            _ => "the query string is not valid".to_owned(),
        };
        ApiError::bad_request_with_field("invalid_query", "query", message).into()
    })
}

/// The documented paths and their methods, to tell "no such path" (404) from "no such
/// method on this path" (405 with `Allow`).
#[derive(Debug, Clone, Default)]
pub struct KnownRoutes(Vec<(Vec<String>, Vec<String>)>);

impl KnownRoutes {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let routes = document
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let mut methods: Vec<String> = super::responses::operations(item)
                    .map(|(method, _)| method.to_owned())
                    .collect();
                methods.sort();
                (segments, methods)
            })
            .collect();
        Self(routes)
    }

    /// The methods allowed on `path`, if it is a documented path.
    fn methods_for(&self, path: &str) -> Option<&[String]> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .find(|(segments, _)| {
                segments.len() == wanted.len()
                    && segments.iter().zip(&wanted).all(|(template, actual)| {
                        template == actual || (template.starts_with('{') && !actual.is_empty())
                    })
            })
            .map(|(_, methods)| methods.as_slice())
    }
}

/// Unknown paths: 404 as a problem, not an empty body; known paths with another
/// method: 405 with `Allow`.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    if let Some(methods) = req
        .app_data::<KnownRoutes>()
        .and_then(|known| known.methods_for(req.path()))
    {
        return Err(ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not allowed on {}; allowed: {}",
                req.method(),
                req.path(),
                methods.join(", ")
            ),
        )
        .with_allow(methods.join(", ")));
    }
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
