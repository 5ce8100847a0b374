//! HTTPS with `tls.cert_file` / `tls.key_file`.

use credgate::config::TlsSettings;
use reqwest::StatusCode;

use crate::support::certs::{TestCerts, ca_and_leaf};
use crate::support::{Backend, TestApp, TestDb};

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let TestCerts { ca, cert, key } = ca_and_leaf(dir.path());
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.tls = Some(TlsSettings {
            cert_file: cert.clone(),
            key_file: key.clone(),
        });
    })
    .await;
    assert!(app.base.starts_with("https://"), "{}", app.base);

    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .unwrap();
    let response = client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS over TLS"
    );
    let refused = client
        .get(app.url("/api/v1/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers().contains_key("strict-transport-security"),
        "on errors too"
    );

    let plain = reqwest::Client::new()
        .get(app.url("/health/live").replace("https://", "http://"))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP was served"
    );
}

/// A request cut off by the time limit is answered like any other refusal: over TLS it
/// carries `Strict-Transport-Security` too.
#[tokio::test]
async fn a_timed_out_request_over_tls_carries_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let TestCerts { ca, cert, key } = ca_and_leaf(dir.path());
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.tls = Some(TlsSettings {
            cert_file: cert.clone(),
            key_file: key.clone(),
        });
        settings.limits.request_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .unwrap();
    // A peer that accepts and never speaks: the scan waits past the 1 s limit.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let response = client
        .post(app.url("/api/v1/ssh/host-key-scan"))
        .bearer_auth(&app.admin_key)
        .json(&serde_json::json!({"host": "127.0.0.1", "port": silent.local_addr().unwrap().port(), "connect_timeout": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "request_timeout");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
}
