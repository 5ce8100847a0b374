//! Clients generated from `openapi/openapi.json` drive the real service: the contract
//! is what generated code can use, not only what a validator accepts.

use std::path::PathBuf;
use std::process::Command;

use crate::support::sshd::{Sshd, login_user};
use crate::support::{Backend, TestApp, TestDb};

/// Where `scripts/contract generate` (run by `scripts/test`) puts the tools and the
/// generated Python client.
fn contract_tools() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/contract-tools"
    ))
}

/// The manual flow (keypair, scan, connection, test, rename with If-Match and a stale
/// one, credentials, cascade delete, audit history) through the generated Python client
/// only: `tests/clients/python_flow.py`.
#[tokio::test]
async fn the_generated_python_client_runs_the_manual_flow() {
    let tools = contract_tools();
    let python = tools.join("venv/bin/python");
    assert!(
        python.exists() && tools.join("python/credgate_client").exists(),
        "the generated Python client is missing: run `scripts/contract generate` (scripts/test does)"
    );
    let sshd = Sshd::start();
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/python_flow.py");
    let output = tokio::task::spawn_blocking({
        let base = app.base.clone();
        let key = app.admin_key.clone();
        let port = sshd.port.to_string();
        let authorized = sshd.authorized_keys();
        move || {
            Command::new(python)
                .arg(script)
                .env("PYTHONPATH", tools.join("python"))
                .env("CREDGATE_URL", base)
                .env("CREDGATE_KEY", key)
                .env("SSHD_PORT", port)
                .env("SSH_USER", login_user())
                .env("AUTHORIZED_KEYS", authorized)
                .output()
                .expect("python runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("python client flow: 11 steps passed"),
        "{stdout}"
    );
}
