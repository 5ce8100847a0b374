//! Two credgate processes on one PostgreSQL database: what one writes, the other
//! enforces at once (authentication reads the event log) and lists soon after (its
//! projection runner polls the log).

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::db::raw_events;
use crate::support::{Backend, TestApp, TestDb, eventually, problem};

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_by_the_other() {
    let db = TestDb::create(Backend::Postgres).await;
    let first = TestApp::spawn(&db.url).await;
    let mut second = TestApp::spawn(&db.url).await;
    assert!(
        second.admin_key.is_empty(),
        "the second instance must not bootstrap again"
    );
    second.admin_key = first.admin_key.clone();

    let key = first.create_key("shared", &["admin"]).await;
    assert_eq!(
        second
            .get("/api/v1/api-keys", Some(&key.secret))
            .await
            .status(),
        StatusCode::OK
    );

    let revoked = first
        .delete(
            &format!("/api/v1/api-keys/{}", key.id),
            Some(&first.admin_key),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let body = problem(
        second.get("/api/v1/api-keys", Some(&key.secret)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "api_key_revoked");
}

#[tokio::test]
async fn a_key_created_on_one_instance_is_listed_by_the_other() {
    let db = TestDb::create(Backend::Postgres).await;
    let first = TestApp::spawn(&db.url).await;
    let mut second = TestApp::spawn(&db.url).await;
    second.admin_key = first.admin_key.clone();

    let key = first.create_key("made on the first", &["audit:read"]).await;
    let listed = eventually(
        Duration::from_secs(1),
        "the second instance to list the key",
        || async {
            let keys = second.list_keys(&second.admin_key).await;
            keys.iter().find(|k| k["id"] == key.id.as_str()).cloned()
        },
    )
    .await;
    assert_eq!(listed["name"], "made on the first");
    assert_eq!(listed["status"], "active");
}

/// Two instances writing at once: every acknowledged write is in the event log once,
/// positions are unique and without gaps (a gap would come only from a rolled-back
/// write, and none is refused here), and both instances' views end up with all of it.
#[tokio::test]
async fn concurrent_writers_never_lose_or_duplicate_events() {
    let db = TestDb::create(Backend::Postgres).await;
    let first = TestApp::spawn(&db.url).await;
    let mut second = TestApp::spawn(&db.url).await;
    second.admin_key = first.admin_key.clone();

    let mut created = Vec::new();
    for round in 0..8 {
        let names = [
            format!("first {round}"),
            format!("second {round}"),
            format!("first again {round}"),
            format!("second again {round}"),
        ];
        let (a, b, c, d) = tokio::join!(
            first.create_key(&names[0], &["audit:read"]),
            second.create_key(&names[1], &["audit:read"]),
            first.create_key(&names[2], &["audit:read"]),
            second.create_key(&names[3], &["audit:read"]),
        );
        created.extend([a.id, b.id, c.id, d.id]);
    }

    let events = raw_events(&db.url).await;
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    let first_position = positions[0];
    let expected: Vec<i64> = (first_position..first_position + positions.len() as i64).collect();
    assert_eq!(
        positions, expected,
        "positions unique, in order, without gaps"
    );
    for id in &created {
        let written = events
            .iter()
            .filter(|e| &e.aggregate_id == id && e.event_type == "ApiKeyCreated")
            .count();
        assert_eq!(written, 1, "key {id} written once");
    }
    let mut streams: Vec<(&str, i64)> = events
        .iter()
        .map(|e| (e.aggregate_id.as_str(), e.sequence))
        .collect();
    streams.sort_unstable();
    streams.dedup();
    assert_eq!(
        streams.len(),
        events.len(),
        "no (aggregate, sequence) twice"
    );

    for app in [&first, &second] {
        let ids = eventually(Duration::from_secs(2), "every key in the view", || async {
            let keys = app.list_keys(&app.admin_key).await;
            let ids: Vec<String> = keys
                .iter()
                .map(|k| k["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            created.iter().all(|id| ids.contains(id)).then_some(ids)
        })
        .await;
        assert_eq!(
            ids.len(),
            created.len() + 1,
            "the created keys and the admin key"
        );
    }
}
