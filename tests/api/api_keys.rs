//! `/api/v1/api-keys`: create, list, read, revoke, and every way to get a request wrong.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::support::db::raw_events;
use crate::support::{Backend, TestApp, TestDb, problem};

async fn created_keys_are_listed_without_secrets(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let response = app
        .post_json(
            "/api/v1/api-keys",
            Some(&app.admin_key),
            &json!({"name": "backup job", "scopes": ["keypairs:read", "audit:read", "keypairs:read"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("cg_") && secret.len() >= 40);
    assert_eq!(created["scopes"], json!(["keypairs:read", "audit:read"]));
    assert_eq!(created["created_by"], "bootstrap admin");
    assert_eq!(
        location,
        format!("/api/v1/api-keys/{}", created["id"].as_str().unwrap())
    );

    let fetched: Value = app
        .get(&location, Some(&app.admin_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["name"], "backup job");
    assert_eq!(fetched["status"], "active");
    assert!(fetched.get("secret").is_none());

    let listed = app.list_keys(&app.admin_key).await;
    assert_eq!(listed.len(), 2);
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(secret));
    assert!(!text.contains(&app.admin_key));
}

async fn pages_follow_the_cursor_in_creation_order(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    for i in 0..4 {
        app.create_key(&format!("key {i}"), &["audit:read"]).await;
    }
    let names: Vec<String> = app
        .list_keys(&app.admin_key)
        .await
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["bootstrap admin", "key 0", "key 1", "key 2", "key 3"]
    );

    for bad in [
        "?limit=0",
        "?limit=201",
        "?cursor=garbage",
        "?limit=x",
        "?surprise=1",
    ] {
        let response = app
            .get(&format!("/api/v1/api-keys{bad}"), Some(&app.admin_key))
            .await;
        assert!(
            response.status().is_client_error(),
            "{bad}: {}",
            response.status()
        );
        problem(response, response_status(bad)).await;
    }
}

fn response_status(query: &str) -> StatusCode {
    if query.contains("limit=x") || query.contains("surprise") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

async fn bad_requests_are_problems_and_write_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let events_before = raw_events(&db.url).await.len();
    let key = app.admin_key.clone();
    let cases: Vec<(&str, String, StatusCode, Option<&str>)> = vec![
        (
            "malformed",
            r#"{"name": "x", "#.into(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        ("empty", String::new(), StatusCode::BAD_REQUEST, None),
        (
            "not an object",
            "[1,2]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("body"),
        ),
        (
            "wrong type",
            r#"{"name": 5, "scopes": ["admin"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "missing field",
            r#"{"scopes": ["admin"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "unknown field",
            r#"{"name": "x", "scopes": ["admin"], "role": "god"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("role"),
        ),
        (
            "unknown scope",
            r#"{"name": "x", "scopes": ["admin", "root"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("scopes[1]"),
        ),
        (
            "no scopes",
            r#"{"name": "x", "scopes": []}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("scopes"),
        ),
        (
            "empty name",
            r#"{"name": "", "scopes": ["admin"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "control characters",
            r#"{"name": "a\u0007b", "scopes": ["admin"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "long name",
            format!(r#"{{"name": "{}", "scopes": ["admin"]}}"#, "n".repeat(121)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            "bad time",
            r#"{"name": "x", "scopes": ["admin"], "expires_at": "tomorrow"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            "past expiry",
            r#"{"name": "x", "scopes": ["admin"], "expires_at": "2001-01-01T00:00:00Z"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            "oversized",
            format!(
                r#"{{"name": "{}", "scopes": ["admin"]}}"#,
                "n".repeat(2 << 20)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
    ];
    for (label, body, status, field) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/api-keys"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = problem(response, status).await;
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{label}: {problem}");
        }
    }
    let response = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let bad_id = problem(
        app.delete("/api/v1/api-keys/not-a-uuid", Some(&key)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(bad_id["errors"][0]["field"], "id");
    let unknown = uuid::Uuid::new_v4();
    problem(
        app.delete(&format!("/api/v1/api-keys/{unknown}"), Some(&key))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(&format!("/api/v1/api-keys/{unknown}"), Some(&key))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/no-such-route", Some(&key)).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    assert_eq!(
        raw_events(&db.url).await.len(),
        events_before,
        "a refused request wrote an event"
    );
    assert_eq!(app.list_keys(&key).await.len(), 1);
}

async fn revoking_twice_is_harmless(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let key = app.create_key("temp", &["audit:read"]).await;
    let path = format!("/api/v1/api-keys/{}", key.id);
    assert_eq!(
        app.delete(&path, Some(&app.admin_key)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&path, Some(&app.admin_key)).await.status(),
        StatusCode::NO_CONTENT
    );
    let events = raw_events(&db.url).await;
    let revocations = events
        .iter()
        .filter(|e| e.aggregate_id == key.id && e.event_type == "ApiKeyRevoked")
        .count();
    assert_eq!(revocations, 1);
    let fetched: Value = app
        .get(&path, Some(&app.admin_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "revoked");
}

async fn events_record_who_when_and_from_where(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let response = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&app.admin_key)
        .header("x-request-id", "audit-trail-1")
        .header("user-agent", "credgate-tests/1.0")
        .json(&json!({"name": "traced", "scopes": ["audit:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let admin_id = app.list_keys(&app.admin_key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let events = raw_events(&db.url).await;
    let event = events
        .iter()
        .find(|e| e.aggregate_id == created["id"].as_str().unwrap())
        .expect("the key's event");
    assert_eq!(event.aggregate_type, "ApiKey");
    assert_eq!(event.event_type, "ApiKeyCreated");
    assert_eq!(event.sequence, 1);
    assert_eq!(event.metadata["request_id"], "audit-trail-1");
    assert_eq!(event.metadata["actor_id"], admin_id.as_str());
    assert_eq!(event.metadata["actor_name"], "bootstrap admin");
    assert_eq!(event.metadata["source_address"], "127.0.0.1");
    assert_eq!(event.metadata["user_agent"], "credgate-tests/1.0");
    assert!(event.metadata["occurred_at"].as_str().is_some());
    for e in &events {
        assert!(!e.payload.contains(&secret) && !e.metadata.to_string().contains(&secret));
        assert!(!e.payload.contains(&app.admin_key));
    }
}

/// The last active admin key cannot be revoked (nobody could manage keys any more); any
/// other key may revoke itself; two admins revoking each other at once leave one.
async fn the_last_admin_key_stays(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let bootstrap_id = app.list_keys(&app.admin_key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = |id: &str| format!("/api/v1/api-keys/{id}");
    let refused = problem(
        app.delete(&path(&bootstrap_id), Some(&app.admin_key)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["code"], "last_admin_key");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("credgate api-keys create")
    );

    // A narrow key revokes itself: done, and its next request is refused.
    let narrow = app.create_key("self", &["admin"]).await;
    let reader = app.create_key("reader", &["audit:read"]).await;
    let gone = app.delete(&path(&reader.id), Some(&narrow.secret)).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);

    // Two admins revoking each other concurrently: exactly one wins.
    let (first, second) = (path(&bootstrap_id), path(&narrow.id));
    let (a, b) = tokio::join!(
        app.delete(&first, Some(&narrow.secret)),
        app.delete(&second, Some(&app.admin_key)),
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::CONFLICT]);
    let active: Vec<Value> = app
        .list_keys(if a.status() == StatusCode::NO_CONTENT {
            &narrow.secret
        } else {
            &app.admin_key
        })
        .await
        .into_iter()
        .filter(|k| k["status"] == "active" && k["scopes"] == json!(["admin"]))
        .collect();
    assert_eq!(active.len(), 1, "{active:?}");
}

/// A store from before the last-admin rule has no admin marks: they are added at the
/// next start, so revoking one of two admin keys works and the last one stays.
async fn admin_keys_of_older_stores_are_marked_at_start(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let second = app.create_key("second admin", &["admin"]).await;
    crate::support::db::execute_sql(
        &db.url,
        "DELETE FROM name_reservations WHERE kind = 'admin-key'",
    )
    .await;
    let master_key = app.data_dir.path().join("master.key");
    let restarted = TestApp::spawn_with(&db.url, |s| s.master_key_file = master_key).await;
    let revoked = restarted
        .delete(
            &format!("/api/v1/api-keys/{}", second.id),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let bootstrap_id = restarted.list_keys(&app.admin_key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = problem(
        restarted
            .delete(
                &format!("/api/v1/api-keys/{bootstrap_id}"),
                Some(&app.admin_key),
            )
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["code"], "last_admin_key");
}

on_both_stores!(
    admin_keys_of_older_stores_are_marked_at_start,
    the_last_admin_key_stays,
    created_keys_are_listed_without_secrets,
    pages_follow_the_cursor_in_creation_order,
    bad_requests_are_problems_and_write_nothing,
    revoking_twice_is_harmless,
    events_record_who_when_and_from_where,
);
