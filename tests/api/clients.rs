//! Clients generated from `openapi/openapi.json` drive the real service: the contract
//! is what generated code can use, not only what a validator accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::remote::remote_for;
use crate::support::sshd::{Sshd, login_user};
use crate::support::{Backend, TestApp, TestDb};

/// Where `scripts/contract generate` (run by `scripts/test`) puts the tools and the
/// generated clients.
fn contract_tools() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/contract-tools"
    ))
}

/// Runs `program args` against a fresh instance A, a second instance B serving pairing
/// for a test sshd (the semi-automatic part), and that sshd, with the flow's
/// environment; returns its output after checking it succeeded.
async fn run_flow(program: PathBuf, args: Vec<PathBuf>, extra_env: Vec<(&str, PathBuf)>) -> String {
    assert!(
        (program.is_relative() || program.exists()) && args.iter().all(|a| a.exists()),
        "the generated clients are missing: run `scripts/contract generate` (scripts/test does)"
    );
    let sshd = Sshd::start();
    let remote = remote_for(&sshd, None).await;
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let extra_env: Vec<(String, PathBuf)> = extra_env
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let output = tokio::task::spawn_blocking({
        let base = app.base.clone();
        let key = app.admin_key.clone();
        let port = sshd.port.to_string();
        let authorized = sshd.authorized_keys();
        let remote_env = [
            ("REMOTE_URL", remote.app.base.clone()),
            ("REMOTE_PAIRING_KEY", remote.pairing_key.clone()),
            ("REMOTE_ADMIN_KEY", remote.admin_key.clone()),
        ];
        move || {
            Command::new(program)
                .args(args)
                .envs(extra_env)
                .env("CREDGATE_URL", base)
                .env("CREDGATE_KEY", key)
                .env("SSHD_PORT", port)
                .env("SSH_USER", login_user())
                .env("AUTHORIZED_KEYS", authorized)
                .envs(remote_env)
                .output()
                .expect("the flow runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// The manual flow (keypair, scan, connection, test, rename with If-Match and a stale
/// one, credentials, cascade delete, audit history), then the semi-automatic setup
/// against B (B's admin sees the pairing, the connection tests ok, deleting it revokes
/// B's line) and the audit trail of it, through the generated Python client only:
/// `tests/clients/python_flow.py`.
#[tokio::test]
async fn the_generated_python_client_runs_the_manual_flow() {
    let tools = contract_tools();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_flow.py");
    let stdout = run_flow(
        tools.join("venv/bin/python"),
        vec![script],
        vec![("PYTHONPATH", tools.join("python"))],
    )
    .await;
    assert!(
        stdout.contains("python client flow: 19 steps passed"),
        "{stdout}"
    );
}

/// The same flows through openapi-fetch with the types openapi-typescript generated:
/// `tests/clients/ts_flow.ts`, type-checked and compiled by tsc in `scripts/contract`.
#[tokio::test]
async fn the_generated_typescript_types_run_the_manual_flow() {
    let compiled = contract_tools().join("ts/out/ts_flow.js");
    let stdout = run_flow(PathBuf::from("node"), vec![compiled], Vec::new()).await;
    assert!(
        stdout.contains("typescript client flow: 19 steps passed"),
        "{stdout}"
    );
}
