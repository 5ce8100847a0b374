//! The remote side of semi-automatic setup (`pairing` plugin): a key paired through the
//! API logs in to a real sshd with stock `ssh`; revocation takes exactly that line out;
//! the rest of the authorized_keys file keeps its bytes; refusals write nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::once_on_sqlite;
use crate::support::served::{Served, credgate};
use crate::support::ssh_tools::make_key;
use crate::support::sshd::{Sshd, login_user};
use crate::support::{Backend, TestApp, TestDb, problem};

/// What an operator had in the file before credgate: must survive byte for byte.
const EXISTING: &str = "# managed by hand\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICcRT7VRD2gwxDwiPNxUbetOWgnkZ38ImkHCJ6h+0vm/ operator@laptop\n";

/// A pairing host (`B`) for `sshd`: its authorized_keys, host keys and port.
async fn remote_for(db: &TestDb, sshd: &Sshd, allowed: &[&str]) -> TestApp {
    remote_with_sudo(db, sshd, allowed, None).await
}

/// Like [`remote_for`], granting sudo drop-ins into `sudoers_dir` when given.
async fn remote_with_sudo(
    db: &TestDb,
    sshd: &Sshd,
    allowed: &[&str],
    sudoers_dir: Option<PathBuf>,
) -> TestApp {
    let (file, pattern, port) = (sshd.authorized_keys(), sshd.host_key_pattern(), sshd.port);
    let allowed: Vec<String> = allowed.iter().map(|u| (*u).to_owned()).collect();
    TestApp::spawn_with(&db.url, move |s| {
        s.pairing.allowed_users = allowed;
        s.pairing.authorized_keys_path = file.display().to_string();
        s.pairing.host_key_files = vec![pattern];
        s.pairing.ssh_port = port;
        s.pairing.sudoers_dir = sudoers_dir;
    })
    .await
}

async fn pair(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post_json("/api/v1/pairing/ssh", Some(key), body).await
}

/// A pairing's answer as JSON.
async fn pair_ok(app: &TestApp, key: &str, body: &Value) -> Value {
    pair(app, key, body).await.json().await.unwrap()
}

fn login_with(sshd: &Sshd, key_file: &Path, host_keys: &[String], dir: &Path) -> bool {
    let known_hosts = dir.join("known_hosts");
    let lines: String = host_keys
        .iter()
        .map(|k| format!("[127.0.0.1]:{} {k}\n", sshd.port))
        .collect();
    std::fs::write(&known_hosts, lines).unwrap();
    Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(key_file)
        .args(["-p", &sshd.port.to_string()])
        .arg(format!("{}@127.0.0.1", login_user()))
        .arg("true")
        .output()
        .expect("ssh runs")
        .status
        .success()
}

fn lines_tagged(file: &Path, id: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(&format!("credgate-pairing:{id}")))
        .count()
}

async fn authorized_keys(app: &TestApp, key: &str) -> Vec<Value> {
    let response = app
        .get("/api/v1/authorized-keys?limit=200", Some(key))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

on_both_stores!(
    a_paired_key_logs_in_and_its_token_revokes_exactly_its_line,
    an_administrator_sees_and_revokes_any_pairing,
);

async fn a_paired_key_logs_in_and_its_token_revokes_exactly_its_line(backend: Backend) {
    let sshd = Sshd::start();
    std::fs::write(sshd.authorized_keys(), EXISTING).unwrap();
    let db = TestDb::create(backend).await;
    let remote = remote_for(&db, &sshd, &[&login_user()]).await;
    let pairer = remote.create_key("caller credgate", &["pairing"]).await;
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = make_key(keys.path(), "caller", &["-t", "ed25519"]);

    let body = json!({"username": login_user(), "public_key": public, "label": "backup server"});
    let response = pair(&remote, &pairer.secret, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let first: Value = response.json().await.unwrap();
    let id = first["authorized_key_id"].as_str().unwrap().to_owned();
    let host_keys: Vec<String> = first["host_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        host_keys,
        sshd.keyscan(),
        "exactly the keys ssh-keyscan sees"
    );
    assert_eq!(first["ssh_port"], sshd.port);
    assert_eq!(first["sudo_granted"], false);
    assert!(
        first["revocation_token"]
            .as_str()
            .unwrap()
            .starts_with("cgr_")
    );
    let file = sshd.authorized_keys();
    let after_pairing = std::fs::read_to_string(&file).unwrap();
    assert!(
        after_pairing.starts_with(EXISTING),
        "the operator's lines come first, unchanged"
    );
    assert_eq!(lines_tagged(&file, &id), 1);
    assert!(login_with(
        &sshd,
        &keys.path().join("caller"),
        &host_keys,
        keys.path()
    ));

    // The same key again: the same pairing, one more token, no second line.
    let response = pair(&remote, &pairer.secret, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["authorized_key_id"], id.as_str());
    assert_ne!(second["revocation_token"], first["revocation_token"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after_pairing);

    // A wrong token, and no token, revoke nothing.
    let path = format!("/api/v1/pairing/ssh/{id}");
    let wrong = remote
        .client
        .delete(remote.url(&path))
        .header("X-Revocation-Token", "cgr_not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(wrong, StatusCode::FORBIDDEN).await["code"],
        "revocation_token_refused"
    );
    let none = remote.delete(&path, None).await;
    assert_eq!(
        problem(none, StatusCode::UNAUTHORIZED).await["code"],
        "missing_revocation_token"
    );
    assert_eq!(lines_tagged(&file, &id), 1);

    // The first caller's token still revokes (in the body this time), with no API key.
    let revoked = remote
        .client
        .delete(remote.url(&path))
        .json(&json!({"revocation_token": first["revocation_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        EXISTING,
        "byte for byte"
    );
    assert!(!login_with(
        &sshd,
        &keys.path().join("caller"),
        &host_keys,
        keys.path()
    ));
    let again = remote
        .client
        .delete(remote.url(&path))
        .header(
            "X-Revocation-Token",
            second["revocation_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "revoking twice is fine"
    );

    // A fresh pairing of the same key after revocation is a new one.
    let response = pair(&remote, &pairer.secret, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let third: Value = response.json().await.unwrap();
    assert_ne!(third["authorized_key_id"], id.as_str());
}

async fn an_administrator_sees_and_revokes_any_pairing(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let remote = remote_for(&db, &sshd, &[&login_user()]).await;
    let pairer = remote.create_key("caller credgate", &["pairing"]).await;
    let admin = remote.create_key("host admin", &["pairing:admin"]).await;
    let keys = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let (_, public) = make_key(keys.path(), name, &["-t", "ed25519"]);
        let body = json!({"username": login_user(), "public_key": public, "label": name});
        let paired: Value = pair(&remote, &pairer.secret, &body)
            .await
            .json()
            .await
            .unwrap();
        ids.push(paired["authorized_key_id"].as_str().unwrap().to_owned());
    }
    let file = sshd.authorized_keys();

    // A line removed by hand shows as missing.
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.ends_with(&ids[1]))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, kept).unwrap();
    let listed = authorized_keys(&remote, &admin.secret).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], ids[0].as_str());
    assert_eq!(listed[0]["present"], true);
    assert_eq!(listed[0]["label"], "one");
    assert_eq!(listed[0]["paired_by"], "caller credgate");
    assert_eq!(listed[0]["username"], login_user());
    assert!(
        listed[0]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert_eq!(listed[1]["present"], false);
    for item in &listed {
        let text = item.to_string();
        assert!(
            !text.contains("token"),
            "no token or digest in the list: {text}"
        );
    }

    // The pairing scope alone may not list or revoke.
    let response = remote
        .get("/api/v1/authorized-keys", Some(&pairer.secret))
        .await;
    problem(response, StatusCode::FORBIDDEN).await;
    let response = remote
        .delete(
            &format!("/api/v1/authorized-keys/{}", ids[0]),
            Some(&pairer.secret),
        )
        .await;
    problem(response, StatusCode::FORBIDDEN).await;
    assert_eq!(lines_tagged(&file, &ids[0]), 1);

    let response = remote
        .delete(
            &format!("/api/v1/authorized-keys/{}", ids[0]),
            Some(&admin.secret),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(lines_tagged(&file, &ids[0]), 0);
    let listed = authorized_keys(&remote, &admin.secret).await;
    assert_eq!(listed[0]["revoked_because"], "admin");
    assert!(listed[0]["revoked_at"].is_string());
    assert_eq!(listed[0]["present"], false);
    let unknown = remote
        .delete(
            &format!("/api/v1/authorized-keys/{}", uuid::Uuid::new_v4()),
            Some(&admin.secret),
        )
        .await;
    problem(unknown, StatusCode::NOT_FOUND).await;
}

once_on_sqlite!(
    wrong_revocation_tokens_count_as_failed_authentications,
    refused_users_and_keys_write_nothing,
    sudo_is_granted_only_where_offered_and_leaves_with_the_pairing,
    concurrent_pairings_each_get_exactly_one_line,
);

async fn refused_users_and_keys_write_nothing(backend: Backend) {
    let sshd = Sshd::start();
    std::fs::write(sshd.authorized_keys(), EXISTING).unwrap();
    let db = TestDb::create(backend).await;
    let me = login_user();
    let remote = remote_for(&db, &sshd, &[&me, "no-such-user-here", "nobody", "daemon"]).await;
    let pairer = remote.create_key("caller credgate", &["pairing"]).await;
    let keys = tempfile::tempdir().unwrap();
    let (_, ed25519) = make_key(keys.path(), "ok", &["-t", "ed25519"]);
    let (_, small_rsa) = make_key(keys.path(), "small", &["-t", "rsa", "-b", "1024"]);

    let cases = [
        (
            json!({"username": "games", "public_key": ed25519}),
            StatusCode::FORBIDDEN,
            "user_not_allowed",
            "username",
        ),
        (
            json!({"username": "no-such-user-here", "public_key": ed25519}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_not_found",
            "username",
        ),
        // Debian's `nobody` has /nonexistent as its home, `daemon` /usr/sbin/nologin.
        (
            json!({"username": "nobody", "public_key": ed25519}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "home_missing",
            "username",
        ),
        (
            json!({"username": "daemon", "public_key": ed25519}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_cannot_login",
            "username",
        ),
        (
            json!({"username": "Root!", "public_key": ed25519}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "username",
        ),
        (
            json!({"username": me, "public_key": small_rsa}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "public_key",
        ),
        (
            json!({"username": me, "public_key": "ssh-dss AAAAB3NzaC1kc3MAAACBAP== x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "public_key",
        ),
        (
            json!({"username": me, "public_key": format!("{ed25519}\n{ed25519}")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "public_key",
        ),
        (
            json!({"username": me, "public_key": format!("command=\"sh\" {ed25519}")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "public_key",
        ),
    ];
    for (body, status, code, field) in cases {
        let refused = problem(pair(&remote, &pairer.secret, &body).await, status).await;
        assert_eq!(refused["code"], code, "{body}");
        assert_eq!(refused["errors"][0]["field"], field, "{body}");
    }
    let other_scope = remote
        .create_key("keys only", &["pairing:admin", "keypairs:write"])
        .await;
    let body = json!({"username": me, "public_key": ed25519});
    problem(
        pair(&remote, &other_scope.secret, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(sshd.authorized_keys()).unwrap(),
        EXISTING
    );
    let admin = remote.create_key("host admin", &["pairing:admin"]).await;
    assert!(authorized_keys(&remote, &admin.secret).await.is_empty());
}

async fn sudo_is_granted_only_where_offered_and_leaves_with_the_pairing(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let sudoers = tempfile::tempdir().unwrap();
    let me = login_user();
    let remote = remote_with_sudo(&db, &sshd, &[&me], Some(sudoers.path().to_path_buf())).await;
    let pairer = remote.create_key("caller credgate", &["pairing"]).await;
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = make_key(keys.path(), "k", &["-t", "ed25519"]);
    let paired = pair_ok(
        &remote,
        &pairer.secret,
        &json!({"username": me, "public_key": public, "sudo": true}),
    )
    .await;
    assert_eq!(paired["sudo_granted"], true);
    let drop_ins: Vec<PathBuf> = std::fs::read_dir(sudoers.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(drop_ins.len(), 1, "one drop-in, no temporary file");
    let text = std::fs::read_to_string(&drop_ins[0]).unwrap();
    assert!(
        text.contains(&format!("{me} ALL=(root) NOPASSWD: /usr/sbin/zfs\n")),
        "{text}"
    );
    let check = Command::new("visudo")
        .arg("-cf")
        .arg(&drop_ins[0])
        .output()
        .expect("visudo runs (scripts/test installs sudo)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let revoked = remote
        .client
        .delete(remote.url(&format!(
            "/api/v1/pairing/ssh/{}",
            paired["authorized_key_id"].as_str().unwrap()
        )))
        .header(
            "X-Revocation-Token",
            paired["revocation_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        std::fs::read_dir(sudoers.path()).unwrap().count(),
        0,
        "the drop-in left"
    );

    // A host without `pairing.sudoers_dir` pairs the key but grants nothing.
    let db2 = TestDb::create(backend).await;
    let plain = remote_for(&db2, &sshd, &[&me]).await;
    let pairer = plain.create_key("caller credgate", &["pairing"]).await;
    let paired = pair_ok(
        &plain,
        &pairer.secret,
        &json!({"username": me, "public_key": public, "sudo": true}),
    )
    .await;
    assert_eq!(paired["sudo_granted"], false);
}

async fn concurrent_pairings_each_get_exactly_one_line(backend: Backend) {
    let sshd = Sshd::start();
    std::fs::write(sshd.authorized_keys(), EXISTING).unwrap();
    let db = TestDb::create(backend).await;
    let remote = remote_for(&db, &sshd, &[&login_user()]).await;
    let pairer = remote.create_key("caller credgate", &["pairing"]).await;
    let keys = tempfile::tempdir().unwrap();
    let publics: Vec<String> = (0..20)
        .map(|i| make_key(keys.path(), &format!("k{i}"), &["-t", "ed25519"]).1)
        .collect();
    let me = login_user();
    let bodies: Vec<Value> = publics
        .iter()
        .map(|public| json!({"username": me, "public_key": public}))
        .collect();
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .map(|body| pair(&remote, &pairer.secret, body)),
    )
    .await;
    let mut ids = Vec::new();
    for response in answers {
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        ids.push(body["authorized_key_id"].as_str().unwrap().to_owned());
    }
    let file = sshd.authorized_keys();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(EXISTING));
    assert_eq!(text.lines().count(), 2 + 20);
    for id in &ids {
        assert_eq!(lines_tagged(&file, id), 1);
    }
}

/// Two `credgate` processes on one host, each with its own store, pairing into the same
/// file at once: the `flock` on the directory keeps every line.
#[tokio::test]
async fn two_processes_sharing_one_file_keep_every_line() {
    let sshd = Sshd::start();
    std::fs::write(sshd.authorized_keys(), EXISTING).unwrap();
    let me = login_user();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let admin_key = "pairing-test-admin-key-0123456789abcdef";
    let mut processes = Vec::new();
    for dir in &dirs {
        let mut command = credgate();
        command
            .current_dir(dir.path())
            .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", admin_key)
            .env("CREDGATE_PLUGINS", "pairing")
            .env("CREDGATE_PAIRING__ALLOWED_USERS", &me)
            .env(
                "CREDGATE_PAIRING__AUTHORIZED_KEYS_PATH",
                sshd.authorized_keys(),
            )
            .env("CREDGATE_PAIRING__HOST_KEY_FILES", sshd.host_key_pattern())
            .env("CREDGATE_PAIRING__SSH_PORT", sshd.port.to_string());
        let mut served = Served::start(command);
        let url = served.wait_for_field("url");
        processes.push((served, url));
    }
    let keys = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for i in 0..20 {
        let (_, public) = make_key(keys.path(), &format!("k{i}"), &["-t", "ed25519"]);
        let url = format!("{}/api/v1/pairing/ssh", processes[i % 2].1);
        let body = json!({"username": me, "public_key": public});
        requests.push(client.post(url).bearer_auth(admin_key).json(&body).send());
    }
    let mut ids = Vec::new();
    for response in futures_util::future::join_all(requests).await {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        ids.push(body["authorized_key_id"].as_str().unwrap().to_owned());
    }
    let file = sshd.authorized_keys();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(EXISTING));
    assert_eq!(text.lines().count(), 2 + 20, "{text}");
    for id in &ids {
        assert_eq!(lines_tagged(&file, id), 1);
    }
}

async fn wrong_revocation_tokens_count_as_failed_authentications(backend: Backend) {
    let db = TestDb::create(backend).await;
    let remote = TestApp::spawn_with(&db.url, |s| s.limits.auth_failures_per_minute = 3).await;
    let path = format!("/api/v1/pairing/ssh/{}", uuid::Uuid::new_v4());
    let guess = |token: String| {
        remote
            .client
            .delete(remote.url(&path))
            .header("X-Revocation-Token", token)
            .send()
    };
    for i in 0..3 {
        let refused = guess(format!("cgr_guess-{i}")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    let blocked = problem(
        guess("cgr_guess-4".to_owned()).await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(blocked["code"], "too_many_failed_authentications");
}
