//! What happens to private keys at rest, in logs and under concurrent changes.

use std::sync::Arc;

use credgate::config::{DatabaseUrl, Settings};
use credgate::keypairs::{KeypairEvent, PRIVATE_KEY_PURPOSE};
use credgate::secrets::{MasterKey, Secrets, SecretsError};
use credgate::store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::support::db::{raw_events, read_models, side_tables};
use crate::support::served::{Served, credgate};
use crate::support::ssh_tools::{body_lines, make_key, with_bcrypt_rounds};
use crate::support::{Backend, TestApp, TestDb, problem};

const KEYPAIRS: &str = "/api/v1/ssh-keypairs";

/// Every row of every table, as text (PostgreSQL), or every byte of the database files
/// (SQLite, which includes the WAL and free pages).
async fn everything_stored(database_url: &str) -> String {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        return String::from_utf8_lossy(&all).into_owned();
    }
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.len() >= 6, "{tables:?}");
    let mut all = String::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(&pool)
            .await
            .unwrap();
        all.push_str(&rows.join("\n"));
    }
    pool.close().await;
    all
}

fn sealed_blob_of(
    events: &[crate::support::db::RawEvent],
    id: &str,
) -> credgate::secrets::SealedBlob {
    let event = events
        .iter()
        .find(|e| e.aggregate_id == id && e.event_type == "KeypairImported")
        .expect("import event");
    match serde_json::from_str::<KeypairEvent>(&event.payload).unwrap() {
        KeypairEvent::KeypairImported(new) => new.private_key.expect("sealed private key"),
        other => panic!("unexpected {other:?}"),
    }
}

async fn private_keys_never_rest_in_plaintext_and_are_shredded_on_delete(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = make_key(
        dir.path(),
        "canary",
        &["-t", "ed25519", "-N", "canary passphrase"],
    );
    let response = app
        .post_json(
            KEYPAIRS,
            Some(&app.admin_key),
            &json!({"name": "canary", "private_key": private, "passphrase": "canary passphrase"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let keypair: Value = response.json().await.unwrap();
    let id = keypair["id"].as_str().unwrap().to_owned();
    // What must not be stored: the decrypted key's body, and the passphrase.
    let exported: Value = app
        .post_json(
            &format!("{KEYPAIRS}/{id}/private-key"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let canaries = body_lines(exported["private_key"].as_str().unwrap());
    assert!(canaries.len() >= 3);

    let stored = everything_stored(&db.url).await;
    assert!(stored.contains(&id), "the dump sees the keypair's rows");
    for line in &canaries {
        assert!(
            !stored.contains(line.as_str()),
            "private key material is stored in plaintext"
        );
    }
    assert!(!stored.contains("canary passphrase"));

    // The sealed blob in the event opens with the data key...
    let store = Store::open(
        &DatabaseUrl::parse(&db.url).unwrap(),
        &Settings::defaults_in(app.data_dir.path()).database,
    )
    .await
    .unwrap();
    let master = MasterKey::load(None, &app.data_dir.path().join("master.key")).unwrap();
    let secrets = Secrets::open(store.clone(), master).await.unwrap();
    let blob = sealed_blob_of(&raw_events(&db.url).await, &id);
    let opened = secrets
        .open_sealed(&id, PRIVATE_KEY_PURPOSE, &blob)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&opened).contains(canaries[0].as_str()));

    // ...until the keypair is deleted: then never again, while its history stays.
    let deleted = app
        .delete(&format!("{KEYPAIRS}/{id}"), Some(&app.admin_key))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let events = raw_events(&db.url).await;
    let blob = sealed_blob_of(&events, &id);
    assert!(matches!(
        secrets.open_sealed(&id, PRIVATE_KEY_PURPOSE, &blob).await,
        Err(SecretsError::Destroyed)
    ));
    let history: Vec<&str> = events
        .iter()
        .filter(|e| e.aggregate_id == id)
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        history,
        ["KeypairImported", "PrivateKeyExported", "KeypairDeleted"]
    );
    problem(
        app.get(&format!("{KEYPAIRS}/{id}"), Some(&app.admin_key))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.delete(&format!("{KEYPAIRS}/{id}"), Some(&app.admin_key))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // The name is free again.
    let again = app
        .post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": "Canary"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    store.close().await;
}

async fn concurrent_renames_with_one_etag_let_exactly_one_through(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = Arc::new(TestApp::spawn(&db.url).await);
    let response = app
        .post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": "contested"}),
        )
        .await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let keypair: Value = response.json().await.unwrap();
    let id = keypair["id"].as_str().unwrap().to_owned();

    let renames = (0..20).map(|i| {
        let app = app.clone();
        let path = format!("{KEYPAIRS}/{id}");
        async move {
            app.client
                .patch(app.url(&path))
                .bearer_auth(&app.admin_key)
                .header("if-match", "\"1\"")
                .json(&json!({"name": format!("renamed {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(renames).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::OK,
            StatusCode::PRECONDITION_FAILED,
            StatusCode::CONFLICT
        ]
        .contains(s)),
        "{statuses:?}"
    );

    let sequences: Vec<i64> = raw_events(&db.url)
        .await
        .iter()
        .filter(|e| e.aggregate_id == id)
        .map(|e| e.sequence)
        .collect();
    assert_eq!(sequences, [1, 2], "no gap, no duplicate");
    let current: Value = app
        .get(&format!("{KEYPAIRS}/{id}"), Some(&app.admin_key))
        .await
        .json()
        .await
        .unwrap();
    let winner = current["name"].as_str().unwrap().to_owned();
    assert!(winner.starts_with("renamed "));
    assert_eq!(current["version"], 2);
    // The losers' names were given back.
    for i in 0..20 {
        let name = format!("renamed {i}");
        if name != winner {
            let response = app
                .post_json(
                    &format!("{KEYPAIRS}/generate"),
                    Some(&app.admin_key),
                    &json!({"name": name}),
                )
                .await;
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "{name} stayed reserved"
            );
        }
    }
}

async fn downloads_conditions_scopes_and_used_by(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let response = app
        .post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&app.admin_key),
            &json!({"name": "Zürich \"offsite\"", "comment": "nightly"}),
        )
        .await;
    let keypair: Value = response.json().await.unwrap();
    let id = keypair["id"].as_str().unwrap().to_owned();
    let path = format!("{KEYPAIRS}/{id}");

    let download = app
        .get(&format!("{path}/public-key"), Some(&app.admin_key))
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"Z_rich__offsite_.pub\"; filename*=UTF-8''Z%C3%BCrich%20%22offsite%22.pub"
    );
    assert_eq!(
        download.text().await.unwrap(),
        format!("{}\n", keypair["public_key"].as_str().unwrap())
    );

    // Conditional changes.
    let patch = |etag: &'static str, body: Value| {
        app.client
            .patch(app.url(&path))
            .bearer_auth(&app.admin_key)
            .header("if-match", etag)
            .json(&body)
            .send()
    };
    problem(
        patch("\"7\"", json!({"name": "x"})).await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    problem(
        patch("seven", json!({"name": "x"})).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A missing keypair is 404 whatever `If-Match` says (not "stale at version 0").
    let missing = app
        .client
        .delete(app.url(&format!("{KEYPAIRS}/{}", uuid::Uuid::new_v4())))
        .bearer_auth(&app.admin_key)
        .header("if-match", "\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(missing, StatusCode::NOT_FOUND).await["code"],
        "not_found"
    );
    // A body that changes nothing records nothing: the keypair as it is, same ETag.
    let unchanged = patch("\"1\"", json!({"comment": null})).await.unwrap();
    assert_eq!(unchanged.status(), StatusCode::OK);
    assert_eq!(unchanged.headers()["etag"], "\"1\"");
    // The version alone, without the ETag's quotes, is read the same.
    let changed = patch("1", json!({"name": "offsite", "comment": "weekly"}))
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.headers()["etag"], "\"3\"");
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["name"], "offsite");
    assert!(changed["public_key"].as_str().unwrap().ends_with(" weekly"));

    // Scopes: reading is not writing, and writing is not exporting.
    let reader = app.create_key("reader", &["keypairs:read"]).await;
    let writer = app.create_key("writer", &["keypairs:write"]).await;
    assert_eq!(
        app.get(&path, Some(&reader.secret)).await.status(),
        StatusCode::OK
    );
    problem(
        app.post_json(
            &format!("{KEYPAIRS}/generate"),
            Some(&reader.secret),
            &json!({"name": "r"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        app.get(&path, Some(&writer.secret)).await.status(),
        StatusCode::OK
    );
    let export = app
        .post_json(
            &format!("{path}/private-key"),
            Some(&writer.secret),
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(export, StatusCode::FORBIDDEN).await["code"],
        "insufficient_scope"
    );

    // Nothing uses it (used-by with real connections is tested in `connections.rs`).
    let used: Value = app
        .get(&format!("{path}/used-by"), Some(&app.admin_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(used["items"], json!([]));
    assert_eq!(
        app.delete(&path, Some(&app.admin_key)).await.status(),
        StatusCode::NO_CONTENT
    );
}

on_both_stores!(
    private_keys_never_rest_in_plaintext_and_are_shredded_on_delete,
    concurrent_renames_with_one_etag_let_exactly_one_through,
    downloads_conditions_scopes_and_used_by,
);

#[tokio::test]
async fn trace_logs_carry_no_key_material_or_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "trace-test-admin-key-0123456789abcdef";
    let mut command = credgate();
    command
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", admin);
    let mut served = Served::start(command);
    let url = served.wait_for_field("url");
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{url}{path}"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };

    let (private, _) = make_key(
        dir.path(),
        "traced",
        &["-t", "ed25519", "-N", "log canary passphrase"],
    );
    let imported: Value = post(
        KEYPAIRS,
        json!({"name": "traced", "private_key": private, "passphrase": "log canary passphrase"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = imported["id"].as_str().unwrap();
    let exported: Value = post(
        &format!("{KEYPAIRS}/{id}/private-key"),
        json!({"passphrase": "export canary passphrase"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let plain: Value = post(&format!("{KEYPAIRS}/{id}/private-key"), json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = post(
        KEYPAIRS,
        json!({"name": "x", "private_key": with_bcrypt_rounds(&private, 1000), "passphrase": "log canary passphrase"}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let (_, log) = served.terminate();
    let log = log.join("\n");
    assert!(
        log.contains("TRACE") || log.contains("\"level\":\"TRACE\""),
        "trace logging was on"
    );
    let mut canaries = body_lines(plain["private_key"].as_str().unwrap());
    canaries.extend(body_lines(exported["private_key"].as_str().unwrap()));
    canaries.extend(body_lines(&private));
    for secret in canaries.iter().map(String::as_str).chain([
        "log canary passphrase",
        "export canary passphrase",
        admin,
    ]) {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn a_master_key_that_cannot_open_the_data_keys_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "master-key-test-admin-0123456789abcdef";
    let start = || {
        let mut command = credgate();
        command
            .current_dir(dir.path())
            .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", admin)
            .env("CREDGATE_LOG_FORMAT", "json");
        command
    };
    let export_works = |url: String| async move {
        let client = reqwest::Client::new();
        let list: Value = client
            .get(format!("{url}{KEYPAIRS}"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = list["items"][0]["id"].as_str().unwrap().to_owned();
        client
            .post(format!("{url}{KEYPAIRS}/{id}/private-key"))
            .bearer_auth(admin)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status()
    };

    let mut first = Served::start(start());
    let url = first.wait_for_field("url");
    let made = reqwest::Client::new()
        .post(format!("{url}{KEYPAIRS}/generate"))
        .bearer_auth(admin)
        .json(&json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    first.terminate();
    let key_file = dir.path().join("credgate-data/master.key");
    let original = std::fs::read(&key_file).unwrap();
    let database = format!(
        "sqlite://{}",
        dir.path().join("credgate-data/credgate.db").display()
    );
    let stored = |url: String| async move {
        let events: Vec<(i64, String, String)> = raw_events(&url)
            .await
            .into_iter()
            .map(|e| (e.position, e.event_type, e.payload))
            .collect();
        (events, side_tables(&url).await, read_models(&url).await)
    };
    let before = stored(database.clone()).await;

    use base64::Engine;
    let wrong = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let refused = start()
        .arg("serve")
        .env("CREDGATE_LISTEN", "127.0.0.1:0")
        .env("CREDGATE_MASTER_KEY", wrong)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("master key cannot open"), "{stderr}");
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        original,
        "the key file was touched"
    );
    assert!(before.1.data_keys.len() == 1, "one sealed private key");
    assert_eq!(
        stored(database.clone()).await,
        before,
        "the refused start changed the database (events, side tables or views)"
    );

    let mut again = Served::start(start());
    let url = again.wait_for_field("url");
    assert_eq!(export_works(url).await, StatusCode::OK, "nothing was lost");
    again.terminate();
}
