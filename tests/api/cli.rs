//! The `credgate` binary as an operator runs it.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::served::{Served, credgate};
use crate::support::{Backend, TestApp, TestDb};

#[tokio::test]
async fn the_readme_command_starts_on_sqlite_and_writes_a_private_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = credgate();
    command.current_dir(dir.path());
    let mut served = Served::start(command);
    let url = served.wait_for_field("url");
    let key_path = served.wait_for_field("path");
    assert_eq!(key_path, "./credgate-data/admin.key");
    let key_file = dir.path().join("credgate-data/admin.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(dir.path().join("credgate-data/credgate.db").exists());
    // Everything credgate creates is private to its user: the data directory, the
    // database and SQLite's companions, the key files.
    let mode_of = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    assert_eq!(mode_of("credgate-data"), Some(0o700));
    for file in [
        "credgate.db",
        "credgate.db-wal",
        "credgate.db-shm",
        "master.key",
    ] {
        if let Some(mode) = mode_of(&format!("credgate-data/{file}")) {
            assert_eq!(mode, 0o600, "{file}");
        } else {
            assert_ne!(file, "credgate.db", "the database exists");
        }
    }
    let admin_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();

    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{url}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let listed = client
        .get(format!("{url}/api/v1/api-keys"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);

    let (status, log) = served.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    assert!(
        !log.iter().any(|l| l.contains(&admin_key)),
        "the admin key was logged"
    );
}

#[tokio::test]
async fn the_bootstrap_key_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = "env-chosen-admin-key-0123456789abcdef";
    let mut command = credgate();
    command
        .current_dir(dir.path())
        .env("CREDGATE_DATA_DIR", dir.path().join("data"))
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", chosen);
    let mut served = Served::start(command);
    let url = served.wait_for_field("url");
    let client = reqwest::Client::new();
    let listed = client
        .get(format!("{url}/api/v1/api-keys"))
        .bearer_auth(chosen)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(!dir.path().join("data/admin.key").exists());
    let (_, log) = served.terminate();
    assert!(!log.iter().any(|l| l.contains(chosen)));
}

/// The container form: the admin key and the database URL from files (compose
/// secrets), so neither is in the environment; a variable and its `_FILE` together are
/// refused as a configuration error.
#[tokio::test]
async fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = "file-chosen-admin-key-0123456789abcdef";
    let key_file = dir.path().join("admin_key");
    std::fs::write(&key_file, format!("{chosen}\n")).unwrap();
    let url_file = dir.path().join("database_url");
    let database = dir.path().join("elsewhere.db");
    std::fs::write(&url_file, format!("sqlite://{}\n", database.display())).unwrap();
    let mut command = credgate();
    command
        .current_dir(dir.path())
        .env("CREDGATE_DATA_DIR", dir.path().join("data"))
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY_FILE", &key_file)
        .env("CREDGATE_DATABASE_URL_FILE", &url_file);
    let mut served = Served::start(command);
    let url = served.wait_for_field("url");
    let listed = reqwest::Client::new()
        .get(format!("{url}/api/v1/api-keys"))
        .bearer_auth(chosen)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(database.exists(), "the store named in the file is used");
    assert!(!dir.path().join("data/admin.key").exists());
    let (_, log) = served.terminate();
    assert!(!log.iter().any(|l| l.contains(chosen)));

    for (variable, file_variable, file) in [
        (
            "CREDGATE_BOOTSTRAP_ADMIN_KEY",
            "CREDGATE_BOOTSTRAP_ADMIN_KEY_FILE",
            &key_file,
        ),
        (
            "CREDGATE_DATABASE_URL",
            "CREDGATE_DATABASE_URL_FILE",
            &url_file,
        ),
    ] {
        let output = credgate()
            .current_dir(dir.path())
            .arg("serve")
            .env("CREDGATE_LISTEN", "127.0.0.1:0")
            .env(variable, "sqlite://somewhere-else.db")
            .env(file_variable, file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("set only one"), "{stderr}");
        assert!(!stderr.contains(chosen), "{stderr}");
    }
}

/// `credgate healthcheck` (the image's HEALTHCHECK) asks the service on the `listen`
/// port over loopback: 0 while it serves, 1 once it is gone.
#[test]
fn healthcheck_tells_whether_the_local_service_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let listen = format!("0.0.0.0:{port}");
    let mut command = credgate();
    command.current_dir(dir.path());
    let mut served = Served::start_listening(command, &listen);
    served.wait_for_field("url");
    let check = || {
        credgate()
            .current_dir(dir.path())
            .arg("healthcheck")
            .env("CREDGATE_LISTEN", &listen)
            .output()
            .unwrap()
    };
    // The service is another process: waiting for the check blocks nothing it needs.
    let ready = check();
    assert_eq!(
        ready.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ready.stdout).trim(), "ready");
    let (status, _) = served.terminate();
    assert!(status.success());
    let gone = check();
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("/health/ready"),
        "the error names what was asked"
    );
}

#[test]
fn bad_settings_stop_start_up_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("CREDGATE_LISTEN", "nonsense", "`listen`"),
        (
            "CREDGATE_DATABASE_URL",
            "mysql://db/credgate",
            "`database_url`",
        ),
        ("CREDGATE_PLUGINS", "keypairs,unknown", "`plugins`"),
        ("CREDGATE_LIMITS__BODY_BYTES", "huge", "`limits.body_bytes`"),
        (
            "CREDGATE_TLS__CERT_FILE",
            "/nonexistent/cert.pem",
            "`tls.key_file`",
        ),
    ];
    for (name, value, expected) in cases {
        let output = credgate()
            .current_dir(dir.path())
            .arg("serve")
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}={value}: {stderr}");
        assert!(stderr.contains(expected), "{name}={value}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    assert!(
        !dir.path().join("credgate-data").exists(),
        "a refused start created files"
    );
}

/// The TOML file comes from `--config` or `CREDGATE_CONFIG`; an unknown key in it is a
/// configuration error naming the key, and a good file's settings are used.
#[test]
fn a_config_file_is_read_and_its_unknown_keys_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nlisen_typo = 1\n").unwrap();
    let by_flag = credgate()
        .current_dir(dir.path())
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let by_env = credgate()
        .current_dir(dir.path())
        .arg("serve")
        .env("CREDGATE_CONFIG", &bad)
        .output()
        .unwrap();
    for output in [by_flag, by_env] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("lisen_typo"), "{stderr}");
    }

    // A good file: its (invalid) port is what start-up complains about, so it was read.
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "listen = \"127.0.0.1:99999\"\n").unwrap();
    let output = credgate()
        .current_dir(dir.path())
        .arg("serve")
        .env("CREDGATE_CONFIG", &good)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`listen`") && stderr.contains("99999"),
        "{stderr}"
    );

    let missing = credgate()
        .current_dir(dir.path())
        .args(["serve", "--config", "/nonexistent/credgate.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        !dir.path().join("credgate-data").exists(),
        "a refused start created files"
    );
}

#[test]
fn an_unreachable_database_is_one_clear_line() {
    let output = credgate()
        .arg("serve")
        .env(
            "CREDGATE_DATABASE_URL",
            "postgres://credgate:s3cret@127.0.0.1:1/credgate",
        )
        .env("CREDGATE_DATABASE__ACQUIRE_TIMEOUT_MS", "500")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Not a configuration error (2): the settings are valid, the store is down.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
}

#[test]
fn version_and_help_answer() {
    let version = credgate().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("credgate {}", env!("CARGO_PKG_VERSION"))
    );
    for verb in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["openapi", "--help"],
        vec!["api-keys", "create", "--help"],
        vec!["projections", "rebuild", "--help"],
    ] {
        let output = credgate().args(&verb).output().unwrap();
        assert!(output.status.success(), "{verb:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{verb:?}"
        );
    }
}

async fn api_keys_create_recovers_access_from_the_shell(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let output = credgate()
        .args([
            "api-keys",
            "create",
            "--name",
            "recovered admin",
            "--scopes",
            "admin",
        ])
        .env("CREDGATE_DATABASE_URL", &db.url)
        .env("CREDGATE_DATA_DIR", app.data_dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let secret = printed["secret"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/api-keys", Some(secret)).await.status(),
        StatusCode::OK
    );
    let listed = app.list_keys(secret).await;
    let entry = listed
        .iter()
        .find(|k| k["name"] == "recovered admin")
        .unwrap();
    assert_eq!(entry["created_by"], "cli");

    let refused = credgate()
        .args(["api-keys", "create", "--name", "x", "--scopes", "superuser"])
        .env("CREDGATE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown scope `superuser`"));
}

crate::on_both_stores!(api_keys_create_recovers_access_from_the_shell);

/// A log that goes to a pipe (a file, a container runtime, a log shipper) is plain text:
/// no ANSI colour codes, which tracing's text format writes by default.
#[test]
fn a_redirected_text_log_has_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = credgate()
        .args(["serve"])
        .current_dir(dir.path())
        .env("CREDGATE_LISTEN", "127.0.0.1:0")
        .env("CREDGATE_LOG_FORMAT", "text")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("credgate starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let listening = line.contains("credgate is listening");
        lines.push(line);
        if listening {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "text log lines: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "colour codes in a redirected log: {lines:?}"
    );
}
