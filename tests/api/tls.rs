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
