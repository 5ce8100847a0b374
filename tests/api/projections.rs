//! The projection runner: rebuilds reproduce the live views, and on PostgreSQL an event
//! committed late (by a transaction that began before others that committed first) is
//! still applied.

use std::sync::Arc;

use credgate::auth::{ApiKeyService, ApiKeyView};
use credgate::clock::SystemClock;
use credgate::config::{DatabaseSettings, DatabaseUrl, Settings};
use credgate::store::{ProjectionRunner, Store, ViewProjection, Writer};
use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both_stores;
use crate::support::db::{execute_sql, read_models, side_tables};
use crate::support::served::output_beside_the_service;
use crate::support::{Backend, TestApp, TestDb};

fn database_settings() -> DatabaseSettings {
    Settings::defaults_in(std::path::Path::new("/nonexistent")).database
}

async fn rebuild_leaves_the_views_as_they_were(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    for name in ["one", "two", "three"] {
        app.create_key(name, &["audit:read"]).await;
    }
    let doomed = app.create_key("revoked", &["audit:read"]).await;
    let revoke = app
        .delete(
            &format!("/api/v1/api-keys/{}", doomed.id),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let before: Vec<Value> = app.list_keys(&app.admin_key).await;
    assert_eq!(before.len(), 5);
    // A keypair used by a connection: its name reservation and used-by row are side
    // tables, which the rebuild must restore from the views.
    let keypair: Value = app
        .post_json(
            "/api/v1/ssh-keypairs/generate",
            Some(&app.admin_key),
            &serde_json::json!({"name": "kept"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let keypair_id = keypair["id"].as_str().unwrap().to_owned();
    let connection = app
        .post_json(
            "/api/v1/ssh-connections",
            Some(&app.admin_key),
            &serde_json::json!({"name": "uses kept", "host": "192.0.2.10", "keypair_id": keypair_id,
                                "remote_host_key": keypair["public_key"]}),
        )
        .await;
    assert_eq!(connection.status(), StatusCode::CREATED);
    // Everything the rebuild must reproduce, then damaged in every way it can be: a
    // view document lost, one corrupted, one checkpoint reset, one gone, and the side
    // tables emptied.
    let models = read_models(&db.url).await;
    let tables = side_tables(&db.url).await;
    assert!(models.documents.len() >= 7 && models.checkpoints.len() >= 3);
    let keypair_view = format!(
        "DELETE FROM view_documents WHERE projection = 'ssh_keypairs' AND view_id = '{keypair_id}'"
    );
    let admin_view = "UPDATE view_documents SET payload = json('{\"broken\": true}') \
                      WHERE projection = 'api_keys' AND view_id IN \
                      (SELECT view_id FROM view_documents WHERE projection = 'api_keys' \
                       ORDER BY sort_key LIMIT 1)";
    for damage in [
        keypair_view.as_str(),
        admin_view,
        "UPDATE projection_checkpoints SET position = 0 WHERE projection = 'api_keys'",
        "DELETE FROM projection_checkpoints WHERE projection = 'ssh_connections'",
        "DELETE FROM name_reservations",
        "DELETE FROM dependencies",
    ] {
        execute_sql(&db.url, damage).await;
    }
    assert_ne!(read_models(&db.url).await, models, "the damage took");

    let mut rebuild = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"));
    rebuild
        .args(["projections", "rebuild"])
        .env("CREDGATE_DATABASE_URL", &db.url)
        .env("CREDGATE_DATA_DIR", app.data_dir.path());
    let output = output_beside_the_service(rebuild).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rebuild failed: {stderr}");
    assert!(
        stderr.contains("rebuilding api_keys: 8 events read"),
        "{stderr}"
    );

    assert_eq!(
        read_models(&db.url).await,
        models,
        "every view and checkpoint"
    );
    assert_eq!(side_tables(&db.url).await, tables, "every side-table row");
    let after = app.list_keys(&app.admin_key).await;
    assert_eq!(after, before);
    let taken = app
        .post_json(
            "/api/v1/ssh-keypairs/generate",
            Some(&app.admin_key),
            &serde_json::json!({"name": "KEPT"}),
        )
        .await;
    assert_eq!(
        taken.status(),
        StatusCode::CONFLICT,
        "the name reservation came back"
    );
    let in_use = app
        .delete(
            &format!("/api/v1/ssh-keypairs/{keypair_id}"),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(
        in_use.status(),
        StatusCode::CONFLICT,
        "the used-by row came back"
    );
}

on_both_stores!(rebuild_leaves_the_views_as_they_were);

/// A raw writer (as postgres-es's own `persist` would be) inserts an event and keeps its
/// transaction open; a credgate command writes next. Returns the API key names the view
/// ends up with, and whether the command had to wait for the open transaction.
async fn late_commit_scenario(keep_commit_order_trigger: bool) -> (Vec<String>, bool) {
    let db = TestDb::create(Backend::Postgres).await;
    let store = Store::open(&DatabaseUrl::parse(&db.url).unwrap(), &database_settings())
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    if !keep_commit_order_trigger {
        sqlx::query("DROP TRIGGER events_in_commit_order ON events")
            .execute(&pool)
            .await
            .unwrap();
    }
    let runner = Arc::new(ProjectionRunner::new(
        store.clone(),
        vec![ViewProjection::<ApiKeyView>::shared()],
    ));
    let writer = Writer::new(
        &store,
        Some(runner.clone()),
        Arc::new(credgate::store::ChainKey::new([3; 32])),
    );
    let service = Arc::new(ApiKeyService::new(&writer, Arc::new(SystemClock)));

    // A transaction writes an event and stays open...
    let mut late = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('ApiKey', 'late-key', 1, 'ApiKeyCreated', '1', $1::json, '{}')",
    )
    .bind(
        r#"{"ApiKeyCreated": {"name": "late", "scopes": ["audit:read"], "secret_sha256": "00",
            "created_at": "2026-01-01T00:00:00Z", "expires_at": null}}"#,
    )
    .execute(&mut *late)
    .await
    .unwrap();

    // ...while a command starts writing too.
    let early = tokio::spawn({
        let service = service.clone();
        async move {
            let metadata = credgate::store::CommandMetadata::local("test", chrono::Utc::now());
            let name = credgate::names::Name::parse("early").unwrap();
            service
                .create(
                    name,
                    vec![credgate::auth::Scope::AuditRead],
                    None,
                    None,
                    &metadata,
                )
                .await
                .map(|_| ())
        }
    });
    // Wait until the command either blocks on the event-write lock or finishes.
    let mut waited = false;
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            waited = true;
            break;
        }
        if early.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    if waited {
        assert!(
            !early.is_finished(),
            "the command committed ahead of the open transaction"
        );
    }
    runner.catch_up().await.unwrap();
    late.commit().await.unwrap();
    early.await.unwrap().unwrap();
    runner.catch_up().await.unwrap();

    let page = service.list(0, 10).await.unwrap();
    let names = page.items.iter().map(|v| v.name.clone()).collect();
    pool.close().await;
    store.close().await;
    (names, waited)
}

#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let (names, waited) = late_commit_scenario(true).await;
    assert!(
        waited,
        "the command did not wait for the open event-writing transaction"
    );
    assert_eq!(
        names,
        ["late", "early"],
        "events applied in commit order, none skipped"
    );
}

/// The test above can fail: without the trigger, the open transaction's event gets a
/// lower position than the command's, commits after the view has moved past it, and is
/// never applied.
#[tokio::test]
async fn without_the_commit_order_trigger_a_late_commit_is_skipped() {
    let (names, waited) = late_commit_scenario(false).await;
    assert!(!waited);
    assert_eq!(
        names,
        ["early"],
        "the late event was expected to be skipped"
    );
}

#[tokio::test]
async fn an_open_transaction_elsewhere_on_the_server_does_not_stall_views() {
    let db = TestDb::create(Backend::Postgres).await;
    let app = TestApp::spawn(&db.url).await;
    // Another database on the same server, with a writing transaction left open.
    let other = sqlx::PgPool::connect(&crate::support::db::test_server_url())
        .await
        .unwrap();
    let mut open = other.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE held_open (x int)")
        .execute(&mut *open)
        .await
        .unwrap();
    sqlx::query("INSERT INTO held_open VALUES (1)")
        .execute(&mut *open)
        .await
        .unwrap();

    let key = app.create_key("visible at once", &["audit:read"]).await;
    let listed = app.list_keys(&app.admin_key).await;
    assert!(
        listed.iter().any(|k| k["id"] == key.id.as_str()),
        "the view waited for an unrelated transaction"
    );
    open.rollback().await.unwrap();
    other.close().await;
}
