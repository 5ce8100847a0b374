//! Authentication and scopes on every `/api/v1` route.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_stores;
use crate::support::{Backend, TestApp, TestDb, problem};

async fn a_key_is_required_and_the_problem_carries_the_request_id(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let body = problem(
        app.get("/api/v1/api-keys", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "missing_api_key");

    let response = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&app.admin_key)
        .header("x-request-id", "test-request-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "test-request-7");
}

async fn bad_authorization_headers_are_401(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    for (value, code) in [
        ("Basic dXNlcjpwYXNz", "invalid_authorization_header"),
        ("Bearer", "invalid_authorization_header"),
        ("Bearer    ", "invalid_authorization_header"),
        ("Bearer not-a-key", "invalid_api_key"),
        (
            "bearer cg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "invalid_api_key",
        ),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/api-keys"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["code"], code, "{value}");
    }
}

async fn a_missing_scope_is_403_and_revocation_is_immediate(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let auditor = app.create_key("auditor", &["audit:read"]).await;
    let body = problem(
        app.get("/api/v1/api-keys", Some(&auditor.secret)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["code"], "insufficient_scope");

    let revoked = app
        .delete(
            &format!("/api/v1/api-keys/{}", auditor.id),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let body = problem(
        app.get("/api/v1/api-keys", Some(&auditor.secret)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "api_key_revoked");
}

async fn an_expired_key_is_refused(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let expires_at = app_now(&app) + Duration::hours(1);
    let response = app
        .post_json(
            "/api/v1/api-keys",
            Some(&app.admin_key),
            &json!({"name": "short-lived", "scopes": ["admin"], "expires_at": expires_at}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/api-keys", Some(&secret)).await.status(),
        StatusCode::OK
    );

    app.clock.advance(Duration::hours(2));
    let body = problem(
        app.get("/api/v1/api-keys", Some(&secret)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "api_key_expired");
    let listed = app.list_keys(&app.admin_key).await;
    let entry = listed.iter().find(|k| k["name"] == "short-lived").unwrap();
    assert_eq!(entry["status"], "expired");
}

fn app_now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    use credgate::clock::Clock;
    app.clock.now()
}

on_both_stores!(
    a_key_is_required_and_the_problem_carries_the_request_id,
    bad_authorization_headers_are_401,
    a_missing_scope_is_403_and_revocation_is_immediate,
    an_expired_key_is_refused,
);
