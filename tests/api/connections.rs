//! SSH connections against a real OpenSSH sshd.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::db::raw_events;
use crate::support::ssh_tools::write_key;
use crate::support::sshd::{Sshd, login_user};
use crate::support::{Backend, TestApp, TestDb, problem};
use crate::{on_both_stores, once_on_sqlite};

const SCAN: &str = "/api/v1/ssh/host-key-scan";
const CONNECTIONS: &str = "/api/v1/ssh-connections";
const KEYPAIRS: &str = "/api/v1/ssh-keypairs";

async fn ok_json(response: reqwest::Response, status: StatusCode) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn scan(app: &TestApp, port: u16) -> Value {
    ok_json(
        app.post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": port}),
        )
        .await,
        StatusCode::OK,
    )
    .await
}

/// A keypair whose public key the sshd accepts; returns its id.
async fn authorized_keypair(app: &TestApp, sshd: &Sshd, name: &str) -> String {
    let keypair = ok_json(
        app.post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": name}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    sshd.authorize(keypair["public_key"].as_str().unwrap());
    keypair["id"].as_str().unwrap().to_owned()
}

async fn test_connection(app: &TestApp, id: &str) -> Value {
    ok_json(
        app.post_json(
            &format!("{CONNECTIONS}/{id}/test"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await
}

fn ssh(args: &[&str]) -> std::process::Output {
    Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
        ])
        .args(args)
        .output()
        .expect("ssh runs")
}

#[tokio::test]
async fn discovery_returns_exactly_what_ssh_keyscan_prints() {
    let sshd = Sshd::start();
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let seen_before = sshd.connections_logged();
    let found = scan(&app, sshd.port).await;
    let mut keys: Vec<String> = found["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    // Each handshake's connection is logged before sshd sends its key, so all are in
    // the log once the scan has answered.
    let handshakes = sshd.connections_logged() - seen_before;
    assert_eq!(
        handshakes,
        3,
        "one handshake per key family: {}",
        sshd.log()
    );
    assert_eq!(keys, sshd.keyscan());
    assert_eq!(keys.len(), 3, "ed25519, ecdsa and rsa");
    let expected = sshd.host_key_fingerprints();
    for key in found["keys"].as_array().unwrap() {
        let (_, fingerprint) = expected
            .iter()
            .find(|(line, _)| line == key["key"].as_str().unwrap())
            .expect("a scanned key is one of the host keys");
        assert_eq!(key["fingerprint"], fingerprint.as_str(), "as ssh-keygen -l");
    }
    assert_eq!(
        found["remote_host_key"].as_str().unwrap().lines().count(),
        3
    );
}

#[tokio::test]
async fn unreachable_silent_and_non_ssh_peers_get_their_own_codes() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let body = problem(
        app.post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": closed_port}),
        )
        .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(body["code"], "remote_unreachable");

    // A peer that talks HTTP, and one that accepts and says nothing.
    let talker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let talker_port = talker.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = talker.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let body = problem(
        app.post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": talker_port}),
        )
        .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(body["code"], "not_ssh");

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let body = problem(
        app.post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": silent_port, "connect_timeout": 1}),
        )
        .await,
        StatusCode::GATEWAY_TIMEOUT,
    )
    .await;
    assert_eq!(body["code"], "remote_timeout");
    held.abort();
}

#[tokio::test]
async fn a_server_with_only_a_weak_rsa_host_key_is_refused_in_discovery_and_tests() {
    let sshd = Sshd::start_with_host_keys(&[("rsa", Some("1024"))]);
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let body = problem(
        app.post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": sshd.port}),
        )
        .await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(body["code"], "no_acceptable_host_key");
    // Pasting the weak key is refused too.
    let keypair = authorized_keypair(&app, &sshd, "k").await;
    let body = problem(
        app.post_json(
            CONNECTIONS,
            Some(&app.admin_key),
            &json!({"name": "weak", "host": "127.0.0.1", "port": sshd.port, "keypair_id": keypair,
                    "remote_host_key": sshd.keyscan().join("\n")}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "remote_host_key");
}

/// Host keys that can only sign with SHA-1 are refused: an RSA host key offered only
/// as `ssh-rsa`, and a DSA key (`ssh-dss`); pasted, such a DSA key is refused too.
#[tokio::test]
async fn ssh_rsa_and_dsa_host_keys_are_refused() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let sha1_only = Sshd::start_with(&[("rsa", Some("3072"))], "HostKeyAlgorithms ssh-rsa\n");
    let dsa = Sshd::start_with(&[("dsa", None)], "HostKeyAlgorithms ssh-dss\n");
    for sshd in [&sha1_only, &dsa] {
        let body = problem(
            app.post_json(
                SCAN,
                Some(&app.admin_key),
                &json!({"host": "127.0.0.1", "port": sshd.port}),
            )
            .await,
            StatusCode::BAD_GATEWAY,
        )
        .await;
        assert_eq!(body["code"], "no_acceptable_host_key", "{}", sshd.log());
    }
    let keypair = authorized_keypair(&app, &dsa, "k").await;
    let dsa_line = &dsa.host_key_fingerprints()[0].0;
    assert!(dsa_line.starts_with("ssh-dss "), "{dsa_line}");
    let body = problem(
        app.post_json(
            CONNECTIONS,
            Some(&app.admin_key),
            &json!({"name": "dsa", "host": "127.0.0.1", "port": dsa.port, "keypair_id": keypair,
                    "remote_host_key": dsa_line}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "remote_host_key");
}

/// A listener of the test's own on a denied address: after the refused scans and test,
/// it has no connection waiting (a connect-then-refuse regression would leave one in
/// its backlog, even if the client hung up at once).
fn no_connection_reached(listener: &std::net::TcpListener) -> bool {
    matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn the_outbound_policy_refuses_before_any_packet_is_sent() {
    let sshd = Sshd::start();
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.outbound.deny = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let pasted = sshd.keyscan().join("\n");
    let keypair = authorized_keypair(&app, &sshd, "policy").await;

    for host in ["127.0.0.1", "localhost", "127.1.2.3"] {
        let body = problem(
            app.post_json(
                SCAN,
                Some(&app.admin_key),
                &json!({"host": host, "port": trap_port}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(body["code"], "outbound_forbidden", "{host}");
    }

    // Recording a denied host is refused too (a job given the bundle would connect to
    // it on its own), naming the field...
    let refused = problem(
        app.post_json(
            CONNECTIONS,
            Some(&app.admin_key),
            &json!({"name": "denied", "host": "127.0.0.1", "port": trap_port, "username": login_user(),
                    "keypair_id": keypair, "remote_host_key": pasted}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["code"], "outbound_forbidden");
    assert_eq!(refused["errors"][0]["field"], "host");

    // ...and a connection recorded before the policy denied its host (by an instance
    // without the deny, on the same store) can be neither tested nor handed out.
    let master_key = app.data_dir.path().join("master.key");
    let mut open =
        TestApp::spawn_with(&db.url, |settings| settings.master_key_file = master_key).await;
    open.admin_key = app.admin_key.clone();
    let created = ok_json(
        open.post_json(
            CONNECTIONS,
            Some(&open.admin_key),
            &json!({"name": "older", "host": "127.0.0.1", "port": trap_port, "username": login_user(),
                    "keypair_id": keypair, "remote_host_key": pasted}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let moved = app
        .client
        .patch(app.url(&format!("{CONNECTIONS}/{id}")))
        .bearer_auth(&app.admin_key)
        .json(&json!({"host": "localhost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(moved, StatusCode::FORBIDDEN).await["errors"][0]["field"],
        "host"
    );
    for call in ["test", "credentials"] {
        let body = problem(
            app.post_json(
                &format!("{CONNECTIONS}/{id}/{call}"),
                Some(&app.admin_key),
                &json!({}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(body["code"], "outbound_forbidden", "{call}");
    }
    drop(open);
    assert!(no_connection_reached(&trap), "a refused call connected");
}

/// `outbound.allow` over HTTP: only the listed networks are reachable; and the
/// addresses that are always refused (cloud metadata, link-local, unspecified) stay
/// refused whatever the configuration allows, before any connect.
#[tokio::test]
async fn outbound_allow_and_the_always_refused_addresses_over_http() {
    let sshd = Sshd::start();
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.outbound.allow = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let allowed = app
        .post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "127.0.0.1", "port": sshd.port}),
        )
        .await;
    assert_eq!(allowed.status(), StatusCode::OK, "127.0.0.1 is allowed");
    let outside = problem(
        app.post_json(
            SCAN,
            Some(&app.admin_key),
            &json!({"host": "::1", "port": sshd.port}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(outside["code"], "outbound_forbidden", "::1 is not in allow");

    // Its own database, kept as long as the app (a dropped TestDb deletes its file).
    let open_db = TestDb::create(Backend::Sqlite).await;
    let open = TestApp::spawn_with(&open_db.url, |settings| {
        settings.outbound.allow = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
    })
    .await;
    let trap = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    for host in [
        "169.254.169.254",
        "0251.0376.0251.0376",
        "fe80::1",
        "[fd00:ec2::254]",
        "0.0.0.0",
        "0",
        "::",
        "[::]",
        "::ffff:169.254.169.254",
    ] {
        let response = open
            .post_json(
                SCAN,
                Some(&open.admin_key),
                &json!({"host": host, "port": trap_port}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(
            status == StatusCode::FORBIDDEN && body["code"] == "outbound_forbidden"
                || status == StatusCode::UNPROCESSABLE_ENTITY
                    && body["errors"][0]["field"] == "host",
            "{host}: {status} {body}"
        );
    }
    assert!(no_connection_reached(&trap), "a refused scan connected");

    // Recording such a host is refused as well, naming `host`: the metadata address in
    // any spelling never reaches a job's ssh_config.
    let keypair = ok_json(
        open.post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&open.admin_key),
            &json!({"name": "k"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    for host in [
        "169.254.169.254",
        "0251.0376.0251.0376",
        "0xa9fea9fe",
        "2852039166",
        "[fd00:ec2::254]",
        "0.0.0.0",
        "::",
    ] {
        let response = open
            .post_json(
                CONNECTIONS,
                Some(&open.admin_key),
                &json!({"name": format!("to {host}"), "host": host, "keypair_id": keypair["id"],
                        "remote_host_key": keypair["public_key"]}),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{host}: {status} {body}"
        );
        assert_eq!(body["errors"][0]["field"], "host", "{host}: {body}");
    }
    let listed = ok_json(
        open.get(CONNECTIONS, Some(&open.admin_key)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"], json!([]), "nothing was recorded");
}

async fn create(app: &TestApp, body: Value) -> Value {
    ok_json(
        app.post_json(CONNECTIONS, Some(&app.admin_key), &body)
            .await,
        StatusCode::CREATED,
    )
    .await
}

async fn a_connection_is_tested_pinned_and_usable_by_stock_ssh(backend: Backend) {
    let mut sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let user = login_user();
    let keypair = authorized_keypair(&app, &sshd, "job key").await;
    let discovered = scan(&app, sshd.port).await;
    let created = create(
        &app,
        json!({"name": "Offsite NAS", "host": "127.0.0.1", "port": sshd.port, "username": user,
               "keypair_id": keypair, "remote_host_key": discovered["remote_host_key"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["host_keys"].as_array().unwrap().len(), 3);
    assert!(
        created["host_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["provenance"] == "scanned")
    );
    assert_eq!(created["connect_timeout"], 10);

    let tested = test_connection(&app, &id).await;
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["phase"], "exec");
    // The key the server presented during the test is one of its host keys, with the
    // fingerprint ssh-keygen prints for it.
    let presented = tested["server_key_fingerprint"].as_str().unwrap();
    assert!(
        sshd.host_key_fingerprints()
            .iter()
            .any(|(_, fingerprint)| fingerprint == presented),
        "{presented}"
    );
    let used_by = ok_json(
        app.get(
            &format!("{KEYPAIRS}/{keypair}/used-by"),
            Some(&app.admin_key),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(used_by["items"][0]["id"], id.as_str());

    // The stock ssh client logs in with the credentials bundle...
    let dir = tempfile::tempdir().unwrap();
    let user_key = app.create_key("job", &["connections:use"]).await;
    let reader = app.create_key("reader", &["connections:read"]).await;
    problem(
        app.post_json(
            &format!("{CONNECTIONS}/{id}/credentials"),
            Some(&reader.secret),
            &json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bundle = ok_json(
        app.post_json(
            &format!("{CONNECTIONS}/{id}/credentials"),
            Some(&user_key.secret),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let key_file = write_key(dir.path(), "id", bundle["private_key"].as_str().unwrap());
    let known_hosts = write_key(
        dir.path(),
        "known_hosts",
        bundle["known_hosts"].as_str().unwrap(),
    );
    let port = sshd.port.to_string();
    let target = format!("{user}@127.0.0.1");
    let logged_in = ssh(&[
        "-i",
        key_file.to_str().unwrap(),
        "-o",
        &format!("UserKnownHostsFile={}", known_hosts.display()),
        "-p",
        &port,
        &target,
        "true",
    ]);
    assert!(
        logged_in.status.success(),
        "{}",
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let issued = raw_events(&db.url).await;
    let issue = issued
        .iter()
        .find(|e| e.event_type == "CredentialsIssued")
        .expect("the issue is recorded");
    assert_eq!(issue.metadata["actor_name"], "job");

    // ...and with the exports.
    let exported_known = app
        .get(
            &format!("{CONNECTIONS}/{id}/known-hosts"),
            Some(&reader.secret),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        exported_known
            .lines()
            .all(|l| l.starts_with(&format!("[127.0.0.1]:{port} ")))
    );
    let config = app
        .get(
            &format!("{CONNECTIONS}/{id}/ssh-config"),
            Some(&reader.secret),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(config.starts_with("Host offsite-nas\n"), "{config}");
    // The bundle's ssh_config block is this same block, so what `ssh -F` proves below
    // holds for the bundle a job receives.
    assert_eq!(bundle["ssh_config"], config.as_str());
    let known_file = write_key(dir.path(), "exported_known_hosts", &exported_known);
    let config_file = write_key(dir.path(), "config", &config);
    let logged_in = ssh(&[
        "-F",
        config_file.to_str().unwrap(),
        "-i",
        key_file.to_str().unwrap(),
        "-o",
        &format!("UserKnownHostsFile={}", known_file.display()),
        "offsite-nas",
        "true",
    ]);
    assert!(
        logged_in.status.success(),
        "{}",
        String::from_utf8_lossy(&logged_in.stderr)
    );

    // Another server on the same address: a mismatch, recorded, and nothing re-pinned.
    sshd.restart_with_new_host_keys();
    let tested = test_connection(&app, &id).await;
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["phase"], "host_key");
    assert_eq!(tested["error"]["code"], "host_key_mismatch");
    assert_eq!(
        tested["error"]["expected_fingerprints"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(tested["error"]["presented_fingerprint"].is_string());
    let after = ok_json(
        app.get(&format!("{CONNECTIONS}/{id}"), Some(&app.admin_key))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        after["host_keys"], created["host_keys"],
        "pins changed by themselves"
    );
    assert_eq!(after["last_test"]["error_code"], "host_key_mismatch");
    let events = raw_events(&db.url).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "HostKeyMismatchDetected")
            .count(),
        1
    );

    // Re-pinning is an explicit update, recorded with old and new fingerprints.
    let rescanned = scan(&app, sshd.port).await;
    let repinned = app
        .client
        .patch(app.url(&format!("{CONNECTIONS}/{id}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", format!("\"{}\"", after["version"]))
        .json(&json!({"remote_host_key": rescanned["remote_host_key"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(repinned.status(), StatusCode::OK);
    let repin_event = raw_events(&db.url)
        .await
        .into_iter()
        .find(|e| e.event_type == "HostKeysRepinned")
        .unwrap();
    assert!(
        repin_event.payload.contains("old_fingerprints")
            && repin_event.payload.contains("new_fingerprints")
    );
    assert_eq!(test_connection(&app, &id).await["ok"], true);

    // The client key taken out of authorized_keys.
    sshd.revoke_all();
    let tested = test_connection(&app, &id).await;
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["phase"], "auth");
    assert_eq!(tested["error"]["code"], "auth_failed");
}

async fn bad_values_are_refused_field_by_field(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = authorized_keypair(&app, &sshd, "k").await;
    let public_only = ok_json(
        app.post_json(
            KEYPAIRS,
            Some(&app.admin_key),
            &json!({"name": "public only", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOct3ml8Qehl2O4/24oMxHvCbm8rGjkJdTNXsZbV+R55"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let keys = sshd.keyscan().join("\n");
    let good = json!({"name": "c", "host": "127.0.0.1", "port": sshd.port, "keypair_id": keypair, "remote_host_key": keys});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown keypair",
            with("keypair_id", json!(unknown)),
            "keypair_id",
        ),
        (
            "public-only keypair",
            with("keypair_id", public_only["id"].clone()),
            "keypair_id",
        ),
        ("not a uuid", with("keypair_id", json!("abc")), "keypair_id"),
        ("both", with("generate_keypair", json!({})), "keypair_id"),
        ("neither", without("keypair_id"), "keypair_id"),
        ("port 0", with("port", json!(0)), "port"),
        ("port 70000", with("port", json!(70000)), "port"),
        (
            "empty host key",
            with("remote_host_key", json!("  ")),
            "remote_host_key",
        ),
        (
            "garbage host key",
            with("remote_host_key", json!("ssh-ed25519 !!!")),
            "remote_host_key",
        ),
        (
            "no key type",
            with("remote_host_key", json!("just words")),
            "remote_host_key",
        ),
        (
            "timeout 0",
            with("connect_timeout", json!(0)),
            "connect_timeout",
        ),
        (
            "timeout 121",
            with("connect_timeout", json!(121)),
            "connect_timeout",
        ),
        ("host with spaces", with("host", json!("my nas")), "host"),
        ("empty host", with("host", json!("")), "host"),
        (
            "bad username",
            with("username", json!("Root User")),
            "username",
        ),
        ("empty name", with("name", json!("")), "name"),
        ("unknown field", with("password", json!("x")), "password"),
        ("wrong type", with("port", json!("22")), "port"),
    ];
    let events_before = raw_events(&db.url).await.len();
    for (label, body, field) in cases {
        let response = app
            .post_json(CONNECTIONS, Some(&app.admin_key), &body)
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{label}: {body}");
    }
    assert_eq!(
        raw_events(&db.url).await.len(),
        events_before,
        "a refused request wrote an event"
    );
    create(&app, good).await;
}

async fn deleting_a_keypair_in_use_refuses_or_cascades(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = authorized_keypair(&app, &sshd, "shared").await;
    let keys = sshd.keyscan().join("\n");
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let made = create(
            &app,
            json!({"name": name, "host": "127.0.0.1", "port": sshd.port, "keypair_id": keypair, "remote_host_key": keys}),
        )
        .await;
        ids.push(made["id"].as_str().unwrap().to_owned());
    }
    let refused = problem(
        app.delete(&format!("{KEYPAIRS}/{keypair}"), Some(&app.admin_key))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["code"], "in_use");
    let mut listed: Vec<&str> = refused["dependants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    listed.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(listed, expected);

    let response = app
        .client
        .delete(app.url(&format!("{KEYPAIRS}/{keypair}?cascade=true")))
        .bearer_auth(&app.admin_key)
        .header("x-request-id", "cascade-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for id in &ids {
        problem(
            app.get(&format!("{CONNECTIONS}/{id}"), Some(&app.admin_key))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let events = raw_events(&db.url).await;
    let cascade: Vec<&str> = events
        .iter()
        .filter(|e| e.metadata["request_id"] == "cascade-1")
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        cascade,
        ["ConnectionDeleted", "ConnectionDeleted", "KeypairDeleted"],
        "dependants first"
    );
}

async fn a_keypair_generated_with_the_connection_is_not_kept_if_it_fails(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keys = sshd.keyscan().join("\n");
    let made = create(
        &app,
        json!({"name": "fresh", "host": "127.0.0.1", "port": sshd.port, "generate_keypair": {"algorithm": "ecdsa-p256"},
               "remote_host_key": keys}),
    )
    .await;
    let keypair_id = made["keypair_id"].as_str().unwrap();
    let keypair = ok_json(
        app.get(&format!("{KEYPAIRS}/{keypair_id}"), Some(&app.admin_key))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keypair["name"], "fresh Key");
    assert_eq!(keypair["algorithm"], "ecdsa-p256");

    // The same connection name again: the keypair made for it must not stay behind.
    let refused = app
        .post_json(
            CONNECTIONS,
            Some(&app.admin_key),
            &json!({"name": "FRESH", "host": "127.0.0.1", "port": sshd.port,
                    "generate_keypair": {"name": "orphan candidate"}, "remote_host_key": keys}),
        )
        .await;
    let body = problem(refused, StatusCode::CONFLICT).await;
    assert_eq!(body["errors"][0]["field"], "name");
    let list = ok_json(
        app.get(KEYPAIRS, Some(&app.admin_key)).await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, ["fresh Key"]);
    let events = raw_events(&db.url).await;
    let rolled_back: Vec<&str> = events
        .iter()
        .filter(|e| {
            e.aggregate_type == "SshKeypair" && e.payload.contains("orphan candidate")
                || e.event_type == "KeypairDeleted"
        })
        .map(|e| e.event_type.as_str())
        .collect();
    // The keypair and the connection are one transaction: the refused one left no
    // event, no name, no data key.
    assert!(rolled_back.is_empty(), "{rolled_back:?}");
    let tables = crate::support::db::side_tables(&db.url).await;
    assert_eq!(tables.data_keys, [keypair_id]);
    assert!(
        !tables
            .names
            .iter()
            .any(|(_, name, _)| name == "orphan candidate"),
        "{tables:?}"
    );
}

/// The ordinary fields change with a PATCH (one event each, the answer and a fresh
/// read agree), and the list shows connections oldest first with the same fields as a
/// single read, page by page.
async fn connections_are_listed_and_their_fields_patched(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = ok_json(
        app.post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": "shared"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let mut made = Vec::new();
    for n in 0..3 {
        made.push(
            create(
                &app,
                json!({"name": format!("nas {n}"), "host": "192.0.2.10", "keypair_id": keypair["id"],
                       "remote_host_key": keypair["public_key"]}),
            )
            .await,
        );
    }
    let id = made[1]["id"].as_str().unwrap().to_owned();
    let patched = app
        .client
        .patch(app.url(&format!("{CONNECTIONS}/{id}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", format!("\"{}\"", made[1]["version"]))
        .json(
            &json!({"name": "Offsite", "host": "backup.example.org", "port": 2222,
                      "username": "backup", "connect_timeout": 30}),
        )
        .send()
        .await
        .unwrap();
    let patched = ok_json(patched, StatusCode::OK).await;
    assert_eq!(patched["name"], "Offsite");
    assert_eq!(patched["host"], "backup.example.org");
    assert_eq!(patched["port"], 2222);
    assert_eq!(patched["username"], "backup");
    assert_eq!(patched["connect_timeout"], 30);
    assert_eq!(patched["host_keys"], made[1]["host_keys"], "pins kept");
    let read = ok_json(
        app.get(&format!("{CONNECTIONS}/{id}"), Some(&app.admin_key))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read, patched);
    let changes: Vec<String> = raw_events(&db.url)
        .await
        .into_iter()
        .filter(|e| e.aggregate_id == id)
        .map(|e| e.event_type)
        .collect();
    assert_eq!(changes.len(), 2, "created, then one update: {changes:?}");

    let first_page = ok_json(
        app.get(&format!("{CONNECTIONS}?limit=2"), Some(&app.admin_key))
            .await,
        StatusCode::OK,
    )
    .await;
    let cursor = first_page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second_page = ok_json(
        app.get(
            &format!("{CONNECTIONS}?limit=2&cursor={cursor}"),
            Some(&app.admin_key),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let listed: Vec<Value> = first_page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second_page["items"].as_array().unwrap())
        .cloned()
        .collect();
    let mut expected = made.clone();
    expected[1] = patched;
    assert_eq!(listed, expected, "oldest first, as read one by one");
}

/// Names that give the same ssh_config alias cannot coexist (one job's key file would
/// overwrite another's); names with invisible formatting characters are refused; the
/// alias is free again once its connection is renamed.
async fn exported_aliases_are_unique(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = ok_json(
        app.post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": "shared"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let body = |name: &str| {
        json!({"name": name, "host": "192.0.2.10", "keypair_id": keypair["id"],
               "remote_host_key": keypair["public_key"]})
    };
    let first = create(&app, body("backup 1")).await;
    for clash in [
        "backup-1",
        "backup_1",
        "backup#1",
        "Backup\u{00a0} 1",
        "BACKUP 1!",
    ] {
        let refused = problem(
            app.post_json(CONNECTIONS, Some(&app.admin_key), &body(clash))
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(
            refused["code"] == "alias_taken" || refused["code"] == "name_taken",
            "{clash}: {refused}"
        );
        assert_eq!(refused["errors"][0]["field"], "name", "{clash}");
    }
    for spoof in ["backup\u{202E}2", "back\u{200B}up 2"] {
        let refused = problem(
            app.post_json(CONNECTIONS, Some(&app.admin_key), &body(spoof))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "name", "{spoof:?}");
    }
    let id = first["id"].as_str().unwrap();
    let renamed = app
        .client
        .patch(app.url(&format!("{CONNECTIONS}/{id}")))
        .bearer_auth(&app.admin_key)
        .json(&json!({"name": "offsite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    let second = create(&app, body("backup-1")).await;
    let config = app
        .get(
            &format!(
                "{CONNECTIONS}/{}/ssh-config",
                second["id"].as_str().unwrap()
            ),
            Some(&app.admin_key),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(config.starts_with("Host backup-1\n"), "{config}");
    crate::atomicity::assert_consistent(&db, "after the alias refusals").await;
}

once_on_sqlite!(bad_values_are_refused_field_by_field);

on_both_stores!(
    exported_aliases_are_unique,
    connections_are_listed_and_their_fields_patched,
    a_connection_is_tested_pinned_and_usable_by_stock_ssh,
    deleting_a_keypair_in_use_refuses_or_cascades,
    a_keypair_generated_with_the_connection_is_not_kept_if_it_fails,
);

async fn an_interrupted_cascade_is_finished_by_a_retry(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = authorized_keypair(&app, &sshd, "shared").await;
    let made = create(
        &app,
        json!({"name": "half deleted", "host": "127.0.0.1", "port": sshd.port, "keypair_id": keypair,
               "remote_host_key": sshd.keyscan().join("\n")}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    let path = format!("{CONNECTIONS}/{id}");

    // Stale If-Match on the connection.
    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&app.admin_key)
        .header("if-match", "\"99\"")
        .json(&json!({"connect_timeout": 5}))
        .send()
        .await
        .unwrap();
    problem(stale, StatusCode::PRECONDITION_FAILED).await;

    // Versions before one-transaction commits could be interrupted after the
    // connection's deletion was recorded but before its used-by row was removed. Such a
    // leftover row still refuses a plain delete of the keypair...
    assert_eq!(
        app.delete(&path, Some(&app.admin_key)).await.status(),
        StatusCode::NO_CONTENT
    );
    crate::support::db::execute_sql(
        &db.url,
        &format!(
            "INSERT INTO dependencies (target, dependant_kind, dependant_id, dependant_name) \
             VALUES ('{keypair}', 'ssh-connection', '{id}', 'half deleted')"
        ),
    )
    .await;
    let store = credgate::store::Store::open(
        &credgate::config::DatabaseUrl::parse(&db.url).unwrap(),
        &credgate::config::Settings::defaults_in(app.data_dir.path()).database,
    )
    .await
    .unwrap();
    problem(
        app.delete(&format!("{KEYPAIRS}/{keypair}"), Some(&app.admin_key))
            .await,
        StatusCode::CONFLICT,
    )
    .await;

    // ...and a cascade clears it: the connection is already gone, the row goes, then the
    // keypair.
    let retried = app
        .delete(
            &format!("{KEYPAIRS}/{keypair}?cascade=true"),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(retried.status(), StatusCode::NO_CONTENT);
    assert!(store.dependants_of(&keypair).await.unwrap().is_empty());
    let deletions = raw_events(&db.url)
        .await
        .iter()
        .filter(|e| e.event_type == "ConnectionDeleted")
        .count();
    assert_eq!(deletions, 1, "the connection was not deleted twice");
    store.close().await;
}

on_both_stores!(an_interrupted_cascade_is_finished_by_a_retry);

#[tokio::test]
async fn rsa_and_ecdsa_client_keys_log_in_too() {
    let sshd = Sshd::start();
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let keys = sshd.keyscan().join("\n");
    let mut accepted = Vec::new();
    for (algorithm, bits) in [
        ("rsa", Some(2048)),
        ("ecdsa-p384", None),
        ("ecdsa-p521", None),
    ] {
        let mut request = json!({"name": format!("{algorithm} client"), "algorithm": algorithm});
        if let Some(bits) = bits {
            request["bits"] = json!(bits);
        }
        let keypair = ok_json(
            app.post_json(
                &format!("{KEYPAIRS}/generate"),
                Some(&app.admin_key),
                &request,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        sshd.authorize(keypair["public_key"].as_str().unwrap());
        let family = if algorithm == "rsa" { "RSA" } else { "ECDSA" };
        accepted.push((family, keypair["fingerprint"].as_str().unwrap().to_owned()));
        let made = create(
            &app,
            json!({"name": format!("{algorithm} connection"), "host": "127.0.0.1", "port": sshd.port,
                   "username": login_user(), "keypair_id": keypair["id"], "remote_host_key": keys}),
        )
        .await;
        let tested = test_connection(&app, made["id"].as_str().unwrap()).await;
        assert_eq!(tested["ok"], true, "{algorithm}: {tested}");
    }
    // The test sshd refuses ssh-rsa (SHA-1) signatures explicitly
    // (`PubkeyAcceptedAlgorithms -ssh-rsa`, see support/sshd.rs), so the RSA key being
    // accepted means credgate signed with rsa-sha2-256 or -512.
    let log = sshd.log();
    assert_eq!(log.matches("Accepted publickey").count(), 3, "{log}");
    for (algorithm, fingerprint) in &accepted {
        let line = format!("ssh2: {algorithm} {fingerprint}");
        assert!(log.contains(&line), "no `{line}` in {log}");
    }
}

/// The `ETag` moves on edits only: testing a connection, fetching its credentials or
/// exporting its keypair is history, so an edit with the `ETag` read before still wins.
async fn history_does_not_move_the_etag(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = authorized_keypair(&app, &sshd, "etag key").await;
    let keys = sshd.keyscan().join("\n");
    let created = app
        .post_json(
            CONNECTIONS,
            Some(&app.admin_key),
            &json!({"name": "etag", "host": "127.0.0.1", "port": sshd.port, "username": login_user(),
                    "keypair_id": keypair, "remote_host_key": keys}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let keypair_etag = app
        .get(&format!("{KEYPAIRS}/{keypair}"), Some(&app.admin_key))
        .await
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();

    assert_eq!(test_connection(&app, id).await["ok"], true);
    let bundle = app
        .post_json(
            &format!("{CONNECTIONS}/{id}/credentials"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    assert_eq!(bundle.status(), StatusCode::OK);
    let exported = app
        .post_json(
            &format!("{KEYPAIRS}/{keypair}/private-key"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    assert_eq!(exported.status(), StatusCode::OK);

    let read = app
        .get(&format!("{CONNECTIONS}/{id}"), Some(&app.admin_key))
        .await;
    assert_eq!(read.headers()["etag"].to_str().unwrap(), etag);
    let read: Value = read.json().await.unwrap();
    assert_eq!(
        read["last_test"]["ok"], true,
        "the test is recorded all the same"
    );
    let renamed = app
        .client
        .patch(app.url(&format!("{CONNECTIONS}/{id}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", &etag)
        .json(&json!({"name": "etag renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    let new_etag = renamed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag, "an edit moves it");
    let stale = app
        .client
        .patch(app.url(&format!("{CONNECTIONS}/{id}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", &etag)
        .json(&json!({"name": "etag again"}))
        .send()
        .await
        .unwrap();
    problem(stale, StatusCode::PRECONDITION_FAILED).await;

    let keypair_now = app
        .get(&format!("{KEYPAIRS}/{keypair}"), Some(&app.admin_key))
        .await;
    assert_eq!(
        keypair_now.headers()["etag"].to_str().unwrap(),
        keypair_etag
    );
    let renamed = app
        .client
        .patch(app.url(&format!("{KEYPAIRS}/{keypair}")))
        .bearer_auth(&app.admin_key)
        .header("if-match", &keypair_etag)
        .json(&json!({"name": "etag key renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        renamed.status(),
        StatusCode::OK,
        "an export does not make an edit stale"
    );
}

on_both_stores!(history_does_not_move_the_etag);

/// A store from before alias reservations: its connections get their aliases at the
/// next start (no rebuild needed), so a new connection cannot take one; a connection
/// deleted meanwhile gets none.
async fn aliases_of_older_connections_are_reserved_at_start(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair = ok_json(
        app.post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": "older"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let body = |name: &str| {
        json!({"name": name, "host": "192.0.2.10", "keypair_id": keypair["id"],
               "remote_host_key": keypair["public_key"]})
    };
    let older = create(&app, body("nightly 1")).await;
    // As an older credgate left it: no alias reservations at all.
    crate::support::db::execute_sql(
        &db.url,
        "DELETE FROM name_reservations WHERE kind = 'ssh-connection-alias'",
    )
    .await;
    let master_key = app.data_dir.path().join("master.key");
    let restarted = TestApp::spawn_with(&db.url, |s| s.master_key_file = master_key).await;
    let tables = crate::support::db::side_tables(&db.url).await;
    assert!(
        tables
            .names
            .iter()
            .any(|(kind, _, owner)| kind == "ssh-connection-alias"
                && owner == older["id"].as_str().unwrap()),
        "{tables:?}"
    );
    let refused = problem(
        restarted
            .post_json(CONNECTIONS, Some(&app.admin_key), &body("Nightly-1"))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["code"], "alias_taken");
    crate::atomicity::assert_consistent(&db, "after the backfill").await;
}

on_both_stores!(aliases_of_older_connections_are_reserved_at_start);
