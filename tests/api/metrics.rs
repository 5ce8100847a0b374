//! `GET /metrics`: the Prometheus text a scraper reads, beside the API by default, on
//! its own address with `metrics.listen`, or nowhere with `"off"`.

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_stores;
use crate::support::{Backend, TestApp, TestDb};

/// The value of the sample `series` (name and labels exactly as written), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

async fn requests_ssh_operations_and_the_store_are_reported(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let missing = app
        .get(
            "/api/v1/ssh-keypairs/3f6b2a1e-8c4d-4b7a-9e21-5d0c7f4a9b13",
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let generated = app
        .post_json(
            "/api/v1/ssh-keypairs/generate",
            Some(&app.admin_key),
            &json!({"name": "metrics key"}),
        )
        .await;
    assert_eq!(generated.status(), StatusCode::CREATED);
    // A scan of a port nothing listens on: one failed SSH operation.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let scan = app
        .post_json(
            "/api/v1/ssh/host-key-scan",
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": port, "connect_timeout": 2}),
        )
        .await;
    assert_eq!(scan.status(), StatusCode::BAD_GATEWAY);

    let text = scrape(&app.base).await;
    let route = r#"route="/api/v1/ssh-keypairs/{id}",method="GET",status="404""#;
    assert_eq!(
        sample(&text, &format!("credgate_http_requests_total{{{route}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("credgate_http_request_duration_seconds_count{{{route}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"credgate_http_requests_total{route="/api/v1/ssh-keypairs/generate",method="POST",status="201"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"credgate_ssh_operations_total{operation="scan",outcome="remote_unreachable"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // The ids in paths never become labels.
    assert!(!text.contains("3f6b2a1e"), "{text}");
    assert_eq!(sample(&text, "credgate_store_up"), Some(1.0));
    let head = sample(&text, "credgate_event_log_head_position").expect("head");
    assert!(head >= 2.0, "the bootstrap key and the keypair: {head}");
    let lags: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("credgate_projection_lag_events{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(lags.len() >= 3, "one line per projection: {text}");
    assert!(
        lags.iter().all(|lag| *lag == 0.0),
        "a command waits for its projections"
    );
    assert_eq!(
        sample(&text, "credgate_db_pool_max_connections"),
        Some(10.0)
    );
    let resident = sample(&text, "process_resident_memory_bytes").expect("memory");
    assert!(resident > 1_000_000.0, "{resident}");

    // The scrape itself is counted by the next one.
    let again = scrape(&app.base).await;
    assert_eq!(
        sample(
            &again,
            r#"credgate_http_requests_total{route="/metrics",method="GET",status="200"}"#
        ),
        Some(1.0)
    );
}

on_both_stores!(requests_ssh_operations_and_the_store_are_reported);

#[tokio::test]
async fn metrics_listen_moves_them_to_their_own_address_or_turns_them_off() {
    let db = TestDb::create(Backend::Sqlite).await;
    let separate = TestApp::spawn_with(&db.url, |s| {
        s.metrics = credgate::config::MetricsExposure::Separate("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let own = separate
        .metrics_base
        .clone()
        .expect("an address of its own");
    assert_ne!(own, separate.base);
    let on_api = separate.get("/metrics", None).await;
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    let text = scrape(&own).await;
    assert_eq!(sample(&text, "credgate_store_up"), Some(1.0));
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "the API's requests are counted, wherever they are read: {text}"
    );
    drop(separate);

    let db = TestDb::create(Backend::Sqlite).await;
    let off = TestApp::spawn_with(&db.url, |s| {
        s.metrics = credgate::config::MetricsExposure::Off;
    })
    .await;
    assert!(off.metrics_base.is_none());
    assert_eq!(
        off.get("/metrics", None).await.status(),
        StatusCode::NOT_FOUND
    );
}
