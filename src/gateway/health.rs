//! Liveness and readiness, for orchestrators and load balancers. No authentication.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::{ApiError, Problem};
use super::problem_code as codes;
use crate::store::Store;

/// How long readiness waits for the store before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"status": "ok"})))]
pub struct HealthStatus {
    /// `ok`
    pub status: &'static str,
}

/// The process is up.
///
/// For liveness probes: answers 200 while the process serves HTTP, whatever the store.
#[utoipa::path(
    tag = "health",
    security(()),
    responses((status = 200, body = HealthStatus))
)]
#[get("/health/live")]
pub async fn check_liveness() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// The process can reach its store.
///
/// For readiness probes: 200 when a query to the store succeeds, 503 otherwise.
#[utoipa::path(
    tag = "health",
    security(()),
    responses(
        (status = 200, body = HealthStatus),
        (status = 503, description = "The store does not answer (`store_unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/health/ready")]
pub async fn check_readiness(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(HealthStatus { status: "ok" })),
        Ok(Err(e)) => Err(ApiError::unavailable(
            codes::STORE_UNAVAILABLE,
            format!("the store is not reachable: {}", short(&e)),
        )),
        Err(_) => Err(ApiError::unavailable(
            codes::STORE_UNAVAILABLE,
            "the store did not answer in time",
        )),
    }
}

fn short(err: &crate::store::StoreError) -> &'static str {
    if err.is_unavailable() {
        "unavailable"
    } else {
        "error"
    }
}
