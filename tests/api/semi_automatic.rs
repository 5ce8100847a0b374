//! Semi-automatic setup, end to end: instance A (the caller) pairs with instance B (the
//! remote, `pairing` plugin) over HTTP, B writes A's key into the test sshd's
//! authorized_keys, A pins the host keys B hands back and proves the pairing by logging
//! in. Failures leave no keypair, connection or authorized_keys line behind.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::once_on_sqlite;
use crate::support::certs::ca_and_leaf;
use crate::support::db::{raw_events, read_models};
use crate::support::remote::{Remote, remote_for};
use crate::support::served::{Served, credgate};
use crate::support::ssh_tools::write_key;
use crate::support::sshd::{Sshd, login_user};
use crate::support::{Backend, TestApp, TestDb, problem};

const SEMI: &str = "/api/v1/ssh-connections/semi-automatic";
const CONNECTIONS: &str = "/api/v1/ssh-connections";

fn lines_in(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn request(name: &str, remote: &Remote) -> Value {
    json!({
        "name": name,
        "url": remote.app.base,
        "remote_api_key": remote.pairing_key,
        "username": login_user(),
        "generate_keypair": {},
    })
}

async fn list(app: &TestApp, path: &str) -> Vec<Value> {
    let response = app.get(path, Some(&app.admin_key)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// Nothing half-made on A: no keypair, no connection.
async fn nothing_left_on(caller: &TestApp) {
    assert!(list(caller, "/api/v1/ssh-keypairs").await.is_empty());
    assert!(list(caller, CONNECTIONS).await.is_empty());
}

/// POST `{}` to `path` with the admin key; the answer's JSON.
async fn call(app: &TestApp, path: &str) -> Value {
    let response = app.post_json(path, Some(&app.admin_key), &json!({})).await;
    response.json().await.unwrap()
}

fn login_with_bundle(bundle: &Value, sshd: &Sshd, dir: &Path) -> bool {
    let key = write_key(dir, "id", bundle["private_key"].as_str().unwrap());
    let known_hosts = write_key(dir, "known_hosts", bundle["known_hosts"].as_str().unwrap());
    Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-p", &sshd.port.to_string()])
        .arg(format!("{}@127.0.0.1", login_user()))
        .arg("true")
        .output()
        .expect("ssh runs")
        .status
        .success()
}

on_both_stores!(pairing_pins_the_remote_keys_logs_in_and_revokes_on_delete);

async fn pairing_pins_the_remote_keys_logs_in_and_revokes_on_delete(backend: Backend) {
    let sshd = Sshd::start();
    let remote = remote_for(&sshd, None).await;
    let db = TestDb::create(backend).await;
    let caller = TestApp::spawn(&db.url).await;

    let response = caller
        .post_json(SEMI, Some(&caller.admin_key), &request("nas", &remote))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let connection: Value = response.json().await.unwrap();
    let id = connection["id"].as_str().unwrap().to_owned();
    assert_eq!(connection["setup"], "semi_automatic");
    assert_eq!(connection["port"], sshd.port);
    assert_eq!(connection["host"], "127.0.0.1");
    assert_eq!(connection["remote"]["tls_verified"], false);
    let mut pinned: Vec<String> = connection["host_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["provenance"], "paired");
            assert_eq!(k["tls_verified"], false);
            k["key"].as_str().unwrap().to_owned()
        })
        .collect();
    pinned.sort();
    assert_eq!(pinned, sshd.keyscan(), "exactly what ssh-keyscan prints");
    let pairing_id = connection["remote"]["pairing_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = sshd.authorized_keys();
    assert_eq!(
        lines_in(&file)
            .iter()
            .filter(|l| l.ends_with(&format!("credgate-pairing:{pairing_id}")))
            .count(),
        1
    );
    let keypairs = list(&caller, "/api/v1/ssh-keypairs").await;
    assert_eq!(keypairs.len(), 1);
    assert_eq!(keypairs[0]["name"], "nas Key");

    let tested: Value = call(&caller, &format!("{CONNECTIONS}/{id}/test")).await;
    assert_eq!(tested["ok"], true, "{tested}");
    let bundle: Value = call(&caller, &format!("{CONNECTIONS}/{id}/credentials")).await;
    let dir = tempfile::tempdir().unwrap();
    assert!(
        login_with_bundle(&bundle, &sshd, dir.path()),
        "stock ssh logs in"
    );

    // B's administrator revokes the pairing: A can no longer log in.
    let revoked = remote
        .app
        .delete(
            &format!("/api/v1/authorized-keys/{pairing_id}"),
            Some(&remote.admin_key),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let tested: Value = call(&caller, &format!("{CONNECTIONS}/{id}/test")).await;
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["error"]["code"], "auth_failed", "{tested}");

    // Another connection, with the existing keypair: deleting it revokes its line on B.
    let keypair_id = connection["keypair_id"].as_str().unwrap();
    let mut second = request("nas two", &remote);
    second["generate_keypair"] = Value::Null;
    second.as_object_mut().unwrap().remove("generate_keypair");
    second["keypair_id"] = json!(keypair_id);
    let response = caller
        .post_json(SEMI, Some(&caller.admin_key), &second)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let two: Value = response.json().await.unwrap();
    let two_pairing = two["remote"]["pairing_id"].as_str().unwrap().to_owned();
    let tag = format!("credgate-pairing:{two_pairing}");
    assert!(lines_in(&file).iter().any(|l| l.ends_with(&tag)));
    let deleted = caller
        .delete(
            &format!("{CONNECTIONS}/{}", two["id"].as_str().unwrap()),
            Some(&caller.admin_key),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(
        deleted["remote_revocation"]["outcome"], "revoked",
        "{deleted}"
    );
    assert!(
        !lines_in(&file).iter().any(|l| l.ends_with(&tag)),
        "B's line is gone"
    );

    // Without the proving login, and deleted with keep_remote: B's line stays.
    let mut third = request("nas three", &remote);
    third["prove_login"] = json!(false);
    let three: Value = caller
        .post_json(SEMI, Some(&caller.admin_key), &third)
        .await
        .json()
        .await
        .unwrap();
    let kept_tag = format!(
        "credgate-pairing:{}",
        three["remote"]["pairing_id"].as_str().unwrap()
    );
    let kept = caller
        .delete(
            &format!(
                "{CONNECTIONS}/{}?keep_remote=true",
                three["id"].as_str().unwrap()
            ),
            Some(&caller.admin_key),
        )
        .await;
    assert_eq!(kept.status(), StatusCode::OK);
    let kept: Value = kept.json().await.unwrap();
    assert_eq!(kept["remote_revocation"]["outcome"], "skipped");
    assert!(lines_in(&file).iter().any(|l| l.ends_with(&kept_tag)));
    let events = raw_events(&db.url).await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "RemotePairingRevoked")
    );
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "PairingAttemptCompleted")
    );
}

once_on_sqlite!(
    an_abandoned_setup_is_undone_by_the_sweeper,
    every_failure_leaves_nothing_behind,
    a_remote_behind_tls_needs_trust,
    forbidden_remote_addresses_are_never_contacted,
);

async fn every_failure_leaves_nothing_behind(backend: Backend) {
    let mut sshd = Sshd::start();
    let remote = remote_for(&sshd, None).await;
    let db = TestDb::create(backend).await;
    let caller = TestApp::spawn(&db.url).await;
    let file = sshd.authorized_keys();
    std::fs::write(&file, "# hand-made\n").unwrap();
    let wrong_scope = remote
        .app
        .create_key("no pairing", &["pairing:admin"])
        .await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    let mut cases: Vec<(Value, StatusCode, &str)> = Vec::new();
    let mut wrong_key = request("a", &remote);
    wrong_key["remote_api_key"] = json!("cg_this-is-not-a-key-of-the-remote-at-all");
    cases.push((
        wrong_key,
        StatusCode::UNPROCESSABLE_ENTITY,
        "remote_auth_failed",
    ));
    let mut no_scope = request("b", &remote);
    no_scope["remote_api_key"] = json!(wrong_scope.secret);
    cases.push((
        no_scope,
        StatusCode::UNPROCESSABLE_ENTITY,
        "remote_forbidden",
    ));
    let mut down = request("c", &remote);
    down["url"] = json!(format!("http://127.0.0.1:{closed_port}"));
    cases.push((down, StatusCode::BAD_GATEWAY, "remote_unreachable"));
    // A remote that accepts the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut slow = request("f", &remote);
    slow["url"] = json!(format!("http://{}", silent.local_addr().unwrap()));
    slow["connect_timeout"] = json!(1);
    cases.push((slow, StatusCode::GATEWAY_TIMEOUT, "remote_timeout"));
    let mut not_allowed = request("d", &remote);
    not_allowed["username"] = json!("games");
    cases.push((
        not_allowed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "remote_rejected",
    ));
    for (body, status, code) in cases {
        let refused = problem(
            caller.post_json(SEMI, Some(&caller.admin_key), &body).await,
            status,
        )
        .await;
        assert_eq!(refused["code"], code, "{refused}");
        assert_eq!(refused["phase"], "remote_authorization");
        assert_eq!(
            refused["remote_pairing_revoked"],
            Value::Null,
            "B made nothing"
        );
        if code == "remote_rejected" {
            assert_eq!(refused["remote_code"], "user_not_allowed");
        }
        let text = refused.to_string();
        assert!(!text.contains(&remote.pairing_key) && !text.contains(&wrong_scope.secret));
    }
    nothing_left_on(&caller).await;
    assert_eq!(lines_in(&file), vec!["# hand-made"]);

    // sshd is down: B pairs, the proving login fails, B's line is revoked again.
    sshd.stop();
    let failed = problem(
        caller
            .post_json(SEMI, Some(&caller.admin_key), &request("e", &remote))
            .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(failed["code"], "login_failed", "{failed}");
    assert_eq!(failed["phase"], "login");
    assert_eq!(failed["remote_pairing_revoked"], true);
    nothing_left_on(&caller).await;
    assert_eq!(lines_in(&file), vec!["# hand-made"], "B's line was revoked");
    let listed = remote
        .app
        .get("/api/v1/authorized-keys", Some(&remote.admin_key))
        .await;
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"][0]["revoked_because"], "revocation_token");

    let events = raw_events(&db.url).await;
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "PairingAttemptFailed")
        .collect();
    assert_eq!(failures.len(), 6, "every attempt's failure is recorded");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "PairingAttemptCompensated")
            .count(),
        6
    );
    assert!(events.iter().all(|e| e.aggregate_type != "SshKeypair"));
}

async fn a_remote_behind_tls_needs_trust(backend: Backend) {
    let sshd = Sshd::start();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = ca_and_leaf(certs_dir.path());
    let remote = remote_for(&sshd, Some(&certs)).await;
    assert!(remote.app.base.starts_with("https://"));
    let db = TestDb::create(backend).await;
    let caller = TestApp::spawn(&db.url).await;

    let refused = problem(
        caller
            .post_json(SEMI, Some(&caller.admin_key), &request("tls", &remote))
            .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(refused["code"], "remote_tls_unverified", "{refused}");
    nothing_left_on(&caller).await;

    // Trusting the remote's CA verifies it; turning verification off does not.
    let mut trusted = request("tls trusted", &remote);
    trusted["ca_certificate"] = json!(std::fs::read_to_string(&certs.ca).unwrap());
    let mut unverified = request("tls unverified", &remote);
    unverified["verify_tls"] = json!(false);
    for (body, verified) in [(trusted, true), (unverified, false)] {
        let response = caller.post_json(SEMI, Some(&caller.admin_key), &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let connection: Value = response.json().await.unwrap();
        assert_eq!(connection["remote"]["tls_verified"], verified);
        let keys = connection["host_keys"].as_array().unwrap();
        assert!(
            keys.iter().all(|k| k["tls_verified"] == verified),
            "{keys:?}"
        );
    }

    let mut garbage = request("tls garbage", &remote);
    garbage["ca_certificate"] =
        json!("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
    let refused = problem(
        caller
            .post_json(SEMI, Some(&caller.admin_key), &garbage)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "ca_certificate");
}

async fn forbidden_remote_addresses_are_never_contacted(backend: Backend) {
    let db = TestDb::create(backend).await;
    let caller = TestApp::spawn_with(&db.url, |s| {
        s.outbound.deny = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    })
    .await;
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let port = trap.local_addr().unwrap().port();
    let mut bad = json!({"name": "x", "url": "http://192.0.2.1/", "remote_api_key": "clé secrète",
        "generate_keypair": {}});
    let refused = problem(
        caller.post_json(SEMI, Some(&caller.admin_key), &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "remote_api_key");
    assert!(
        !refused.to_string().contains("secrète"),
        "the key is not echoed"
    );
    bad["url"] = json!("ftp://192.0.2.1/");
    bad["remote_api_key"] = json!("cg_fine-0123456789");
    let refused = problem(
        caller.post_json(SEMI, Some(&caller.admin_key), &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "url");
    for url in [
        "http://169.254.169.254/".to_owned(),
        "http://0251.0376.0251.0376/".to_owned(),
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        let body = json!({"name": "x", "url": url, "remote_api_key": "cg_whatever-key-0123456789",
            "generate_keypair": {}});
        let refused = problem(
            caller.post_json(SEMI, Some(&caller.admin_key), &body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(refused["code"], "outbound_forbidden", "{url}: {refused}");
        assert_eq!(refused["errors"][0]["field"], "url");
    }
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a refused pairing connected"
    );
    nothing_left_on(&caller).await;
    assert!(
        raw_events(&db.url)
            .await
            .iter()
            .all(|e| e.aggregate_type != "PairingAttempt")
    );
}

/// Two `credgate serve` processes: A (trace logging) pairs with B. B's API key — the
/// canary — must appear in no log line of A, no event, no view and no response.
#[tokio::test]
async fn the_remote_api_key_is_never_kept_or_logged() {
    let sshd = Sshd::start();
    let canary = "cg_canary-remote-key-5f1e0c2b9a7d4e3f8a6b";
    let b_dir = tempfile::tempdir().unwrap();
    let mut b = credgate();
    b.current_dir(b_dir.path())
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", canary)
        .env("CREDGATE_PLUGINS", "pairing")
        .env("CREDGATE_PAIRING__ALLOWED_USERS", login_user())
        .env(
            "CREDGATE_PAIRING__AUTHORIZED_KEYS_PATH",
            sshd.authorized_keys(),
        )
        .env("CREDGATE_PAIRING__HOST_KEY_FILES", sshd.host_key_pattern())
        .env("CREDGATE_PAIRING__SSH_PORT", sshd.port.to_string());
    let mut b = Served::start(b);
    let b_url = b.wait_for_field("url");

    let a_dir = tempfile::tempdir().unwrap();
    let a_admin = "caller-admin-key-0123456789abcdef0123";
    let mut a = credgate();
    a.current_dir(a_dir.path())
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", a_admin)
        .env("CREDGATE_LOG_LEVEL", "trace");
    let mut a = Served::start(a);
    let a_url = a.wait_for_field("url");
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    for (name, key) in [
        ("paired", canary.to_owned()),
        ("refused", format!("{canary}-wrong")),
    ] {
        let response = client
            .post(format!("{a_url}{SEMI}"))
            .bearer_auth(a_admin)
            .json(&json!({"name": name, "url": b_url, "remote_api_key": key,
                "username": login_user(), "generate_keypair": {}}))
            .send()
            .await
            .unwrap();
        bodies.push(response.text().await.unwrap());
    }
    assert!(
        bodies[0].contains("\"setup\":\"semi_automatic\""),
        "{}",
        bodies[0]
    );
    assert!(bodies[1].contains("remote_auth_failed"), "{}", bodies[1]);
    let listed = client
        .get(format!("{a_url}{CONNECTIONS}"))
        .bearer_auth(a_admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, log) = a.terminate();
    drop(b);
    assert!(log.len() > 20, "trace logging produced lines");
    let database = format!(
        "sqlite://{}/credgate-data/credgate.db",
        a_dir.path().display()
    );
    let events = raw_events(&database).await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "PairingAttemptFailed")
    );
    let views = read_models(&database).await;
    let stored = format!(
        "{}{}",
        serde_json::to_string(
            &events
                .iter()
                .map(|e| (&e.payload, &e.metadata))
                .collect::<Vec<_>>()
        )
        .unwrap(),
        serde_json::to_string(&views.documents).unwrap()
    );
    for (place, text) in [
        ("A's log", log.join("\n")),
        ("A's events and views", stored),
        ("A's responses", format!("{}{listed}", bodies.join(""))),
    ] {
        assert!(!text.contains(canary), "the remote API key is in {place}");
    }
}

/// A setup whose request times out after the remote paired the key (here: B names an
/// SSH port where nothing ever answers, so the proving login outlasts A's 1 s request
/// limit) leaves B's line behind for a moment; A's sweeper revokes it with the token the
/// attempt kept, once the attempt is older than two request timeouts.
async fn an_abandoned_setup_is_undone_by_the_sweeper(backend: Backend) {
    let sshd = Sshd::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let db_b = TestDb::create(Backend::Sqlite).await;
    let (file, pattern) = (sshd.authorized_keys(), sshd.host_key_pattern());
    let user = login_user();
    let b = TestApp::spawn_with(&db_b.url, move |s| {
        s.plugins = Some(vec!["pairing".to_owned()]);
        s.pairing.allowed_users = vec![user];
        s.pairing.authorized_keys_path = file.display().to_string();
        s.pairing.host_key_files = vec![pattern];
        s.pairing.ssh_port = silent_port;
    })
    .await;
    let db = TestDb::create(backend).await;
    let caller = TestApp::spawn_with(&db.url, |s| {
        s.limits.request_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let body = json!({"name": "slow", "url": b.base, "remote_api_key": b.admin_key,
        "username": login_user(), "generate_keypair": {}, "connect_timeout": 30});
    let timed_out = problem(
        caller.post_json(SEMI, Some(&caller.admin_key), &body).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(timed_out["code"], "request_timeout");
    let file = sshd.authorized_keys();
    assert_eq!(
        lines_in(&file).len(),
        1,
        "B paired the key before A gave up"
    );
    nothing_left_on(&caller).await;

    caller.clock.advance(chrono::Duration::hours(1));
    crate::support::eventually(
        std::time::Duration::from_secs(20),
        "the sweeper",
        || async { lines_in(&file).is_empty().then_some(()) },
    )
    .await;
    let events = crate::support::eventually(
        std::time::Duration::from_secs(10),
        "the abandoned attempt's failure",
        || async {
            let events = raw_events(&db.url).await;
            events
                .iter()
                .any(|e| e.event_type == "PairingAttemptFailed" && e.payload.contains("abandoned"))
                .then_some(events)
        },
    )
    .await;
    let compensated = events
        .iter()
        .find(|e| e.event_type == "PairingAttemptCompensated")
        .unwrap();
    assert!(
        compensated.payload.contains("\"remote_revoked\":true"),
        "{}",
        compensated.payload
    );
    nothing_left_on(&caller).await;
    drop(silent);
}
