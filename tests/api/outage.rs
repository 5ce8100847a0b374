//! PostgreSQL going away and coming back, with credgate running throughout. Uses a
//! cluster of its own (the shared server must stay up for the other tests).

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::pg_cluster::PgCluster;
use crate::support::{TestApp, eventually, problem};

#[tokio::test]
async fn an_outage_gives_quick_503s_and_recovery_needs_no_restart() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn_with(&cluster.url(), |settings| {
        settings.database.acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let before = app.create_key("before the outage", &["audit:read"]).await;
    assert_eq!(
        app.get("/health/ready", None).await.status(),
        StatusCode::OK
    );

    cluster.stop_server();
    // Each refusal comes within two acquire timeouts (1 s each here): a request that
    // waited on the dead database longer, or hung until the client's own 20 s timeout,
    // fails this. A liveness bound, not a speed target.
    let bound = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let ready = problem(
        app.get("/health/ready", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(ready["code"], "store_unavailable");
    assert!(
        started.elapsed() < bound,
        "readiness took {:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let listed = app.get("/api/v1/api-keys", Some(&app.admin_key)).await;
    let body = problem(listed, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["code"], "store_unavailable");
    assert!(
        started.elapsed() < bound,
        "a read took {:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let create = app
        .post_json(
            "/api/v1/api-keys",
            Some(&app.admin_key),
            &serde_json::json!({"name": "during", "scopes": ["admin"]}),
        )
        .await;
    problem(create, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        started.elapsed() < bound,
        "a write took {:?}",
        started.elapsed()
    );
    // A presented key that no key can be is refused without the store: 401, not 503.
    let garbage = problem(
        app.get("/api/v1/api-keys", Some("not a key")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(garbage["code"], "invalid_api_key");

    cluster.start_server();
    eventually(
        Duration::from_secs(30),
        "readiness after the restart",
        || async {
            (app.get("/health/ready", None).await.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    let after = app.create_key("after the outage", &["audit:read"]).await;

    // A write by another process, which this one only learns of from its poller.
    let mut other = TestApp::spawn(&cluster.url()).await;
    other.admin_key = app.admin_key.clone();
    let elsewhere = other.create_key("written elsewhere", &["audit:read"]).await;
    let names = eventually(Duration::from_secs(5), "the view to catch up", || async {
        let keys = app.list_keys(&app.admin_key).await;
        let ids: Vec<&str> = keys.iter().filter_map(|k| k["id"].as_str()).collect();
        (ids.contains(&elsewhere.id.as_str())).then(|| {
            keys.iter()
                .map(|k| k["name"].to_string())
                .collect::<Vec<_>>()
        })
    })
    .await;
    assert_eq!(
        names.len(),
        4,
        "bootstrap, before, after, elsewhere: {names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("during")));
    for key in [&before, &after] {
        assert_eq!(
            app.get("/api/v1/api-keys", Some(&key.secret))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_request_that_outlives_its_time_limit_gets_503() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn_with(&cluster.url(), |settings| {
        settings.database.acquire_timeout = Duration::from_secs(15);
        settings.limits.request_timeout = Duration::from_secs(1);
    })
    .await;
    cluster.stop_server();
    // Waiting for a connection would take 15 s; the request limit answers first.
    let body = problem(
        app.get("/api/v1/api-keys", Some(&app.admin_key)).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["code"], "request_timeout");
}
