//! Request time limit and the error handlers for actix's own extractors, so that every
//! refusal is a problem response.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, web};

use super::problem::ApiError;
use super::problem_code as codes;

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
            codes::REQUEST_TIMEOUT,
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into()),
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req: &HttpRequest| {
        // `GET /ssh-keypairs/generate` reaches `GET /ssh-keypairs/{id}` with a bad id;
        // the path is a documented one without GET, so the answer is 405, not 400.
        if let Some(methods) = req
            .app_data::<KnownRoutes>()
            .and_then(|known| known.literal_methods_for(req.path()))
            .filter(|methods| {
                !methods
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(req.method().as_str()))
            })
        {
            return method_not_allowed(req, methods).into();
        }
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
        ApiError::bad_request_with_field(codes::INVALID_PATH_PARAMETER, field, message).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = match err {
            actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
            _ => "the query string is not valid".to_owned(),
        };
        ApiError::bad_request_with_field(codes::INVALID_QUERY, "query", message).into()
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

    /// The methods allowed on `path`, if it is a documented path (a template without
    /// parameters that names it exactly wins over one whose parameter would match).
    fn methods_for(&self, path: &str) -> Option<&[String]> {
        self.literal_methods_for(path).or_else(|| {
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
        })
    }

    /// The methods of the documented path that is exactly `path`, without parameters
    /// (`/api/v1/ssh-keypairs/generate`).
    fn literal_methods_for(&self, path: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(segments, _)| segments.join("/") == path)
            .map(|(_, methods)| methods.as_slice())
    }
}

/// 405 with `Allow` for a method a documented path does not have.
fn method_not_allowed(req: &HttpRequest, methods: &[String]) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; allowed: {}",
            req.method(),
            req.path(),
            methods.join(", ")
        ),
    )
    .with_allow(methods.join(", "))
}

/// Unknown paths: 404 as a problem, not an empty body; known paths with another
/// method: 405 with `Allow`.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    if let Some(methods) = req
        .app_data::<KnownRoutes>()
        .and_then(|known| known.methods_for(req.path()))
    {
        return Err(method_not_allowed(&req, methods));
    }
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        codes::ROUTE_NOT_FOUND,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
