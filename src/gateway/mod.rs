//! The HTTP gateway: builds the actix-web app from the enabled plugins, with the
//! middleware every request passes (request id, tracing, time limit, authentication
//! under `/api/v1`) and one error format (`application/problem+json`).

mod app;
mod caller;
mod contract;
mod field_errors;
mod health;
mod json;
mod limits;
pub mod metrics;
mod openapi;
pub mod pagination;
mod plugin;
mod problem;
pub mod problem_code;
mod refusals;
mod request_id;
mod responses;
mod services;
mod tls;
mod tracing_span;
mod versioning;

pub use app::{
    Application, Runtime, StartOptions, all_problem_codes, all_projections, api_document,
    open_store,
};
pub use caller::{Authorized, Caller, TrustedProxies, client_of};
pub use field_errors::FieldErrors;
pub use json::{BodyLimit, JsonBody, JsonBodyOrEmpty};
pub use plugin::{Plugin, select_plugins};
pub use problem::{ApiError, FieldError, PROBLEM_JSON, Problem, rejection};
pub(crate) use problem_code::problem_codes;
pub use problem_code::{GATEWAY_CODES, ProblemCode};
pub use refusals::{RECORDED_CODES, Refusal, RefusalLog, RefusalSink, RefusedKey};
pub use request_id::{REQUEST_ID_HEADER, RequestId, current_request_id};
pub use responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed,
    TooManyRequests, Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
pub use services::SharedServices;
pub use tls::install_crypto_provider;
pub use versioning::{IfMatch, PlainText, Versioned, etag};
