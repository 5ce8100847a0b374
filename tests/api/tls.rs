//! HTTPS with `tls.cert_file` / `tls.key_file`.

use std::process::Command;

use credgate::config::TlsSettings;
use reqwest::StatusCode;

use crate::support::{Backend, TestApp, TestDb};

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (ca, cert, key) = (path("ca.pem"), path("cert.pem"), path("key.pem"));
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    // A throwaway CA, and a server certificate for 127.0.0.1 signed by it.
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=credgate test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &ec,
    );
    openssl(
        dir.path(),
        &[
            "req",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        &ec,
    );
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
        &[],
    );

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

fn openssl(dir: &std::path::Path, args: &[&str], extra: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .args(extra)
        .output()
        .expect("openssl runs (scripts/test installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
