//! README settings, each shown to change what the server does over HTTP. They do not
//! depend on the store, so each runs once (SQLite).

use reqwest::StatusCode;
use serde_json::json;

use crate::support::db::raw_events;
use crate::support::{Backend, TestApp, TestDb, problem};

/// `plugins = ["keypairs"]`: the connection routes are gone (404 `route_not_found`, not
/// 401: they are not mounted at all) and out of the OpenAPI document's routing; the
/// keypair routes still answer.
#[tokio::test]
async fn the_plugins_setting_removes_routes() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.plugins = Some(vec!["keypairs".to_owned()]);
    })
    .await;
    let gone = problem(
        app.get("/api/v1/ssh-connections", Some(&app.admin_key))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(gone["code"], "route_not_found");
    let scan = app
        .post_json(
            "/api/v1/ssh/host-key-scan",
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1"}),
        )
        .await;
    assert_eq!(scan.status(), StatusCode::NOT_FOUND);
    let keypairs = app.get("/api/v1/ssh-keypairs", Some(&app.admin_key)).await;
    assert_eq!(keypairs.status(), StatusCode::OK);

    let full_db = TestDb::create(Backend::Sqlite).await;
    let full = TestApp::spawn(&full_db.url).await;
    let listed = full
        .get("/api/v1/ssh-connections", Some(&full.admin_key))
        .await;
    assert_eq!(listed.status(), StatusCode::OK, "mounted by default");
}

/// `limits.body_bytes`: a body over the configured size is 413, one under it is read.
/// (The keypair routes have their own, larger limit for key material.)
#[tokio::test]
async fn a_non_default_body_limit_is_enforced() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| settings.limits.body_bytes = 2048).await;
    let padded = |bytes: usize| json!({"name": "x".repeat(bytes), "scopes": ["audit:read"]});
    let over = app
        .post_json("/api/v1/api-keys", Some(&app.admin_key), &padded(3000))
        .await;
    let body = problem(over, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["code"], "payload_too_large");
    // 1 500 bytes pass the limit; the name's own rule (≤ 120 characters) refuses it.
    let under = app
        .post_json("/api/v1/api-keys", Some(&app.admin_key), &padded(1500))
        .await;
    let body = problem(under, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "name");

    let default_db = TestDb::create(Backend::Sqlite).await;
    let default = TestApp::spawn(&default_db.url).await;
    let read = default
        .post_json("/api/v1/api-keys", Some(&default.admin_key), &padded(3000))
        .await;
    problem(read, StatusCode::UNPROCESSABLE_ENTITY).await;
}

/// Every problem names its kind: `type` is `urn:credgate:problem:<code>` and `title`
/// the status's reason phrase.
#[tokio::test]
async fn problems_carry_type_and_title() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let missing = format!("/api/v1/ssh-keypairs/{}", uuid::Uuid::new_v4());
    let cases = [
        (
            app.get(&missing, Some(&app.admin_key)).await,
            StatusCode::NOT_FOUND,
            "Not Found",
        ),
        (
            app.get(&missing, None).await,
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
        ),
        (
            app.post_json(
                "/api/v1/ssh-keypairs/generate",
                Some(&app.admin_key),
                &json!({"name": ""}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Entity",
        ),
    ];
    for (response, status, title) in cases {
        assert!(
            !response.headers().contains_key("strict-transport-security"),
            "no HSTS over plain HTTP"
        );
        let body = problem(response, status).await;
        let code = body["code"].as_str().unwrap().to_owned();
        assert_eq!(body["type"], format!("urn:credgate:problem:{code}"));
        assert_eq!(body["title"], title);
        assert_eq!(body["status"], status.as_u16());
    }
}

/// `trusted_proxies`: behind a trusted proxy the event records the client from
/// `X-Forwarded-For`; from an untrusted peer the header is ignored.
#[tokio::test]
async fn trusted_proxies_decide_the_recorded_source_address() {
    for (trusted, expected) in [(true, "203.0.113.7"), (false, "127.0.0.1")] {
        let db = TestDb::create(Backend::Sqlite).await;
        let app = TestApp::spawn_with(&db.url, |settings| {
            if trusted {
                settings.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            }
        })
        .await;
        let response = app
            .client
            .post(app.url("/api/v1/ssh-keypairs/generate"))
            .bearer_auth(&app.admin_key)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .json(&json!({"name": "behind a proxy"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let events = raw_events(&db.url).await;
        let generated = events
            .iter()
            .find(|e| e.event_type == "KeypairGenerated")
            .expect("the generate event");
        assert_eq!(
            generated.metadata["source_address"], expected,
            "trusted: {trusted}"
        );
    }
}
