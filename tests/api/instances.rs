//! Two credgate processes on one PostgreSQL database: what one writes, the other
//! enforces at once (authentication reads the event log) and lists soon after (its
//! projection runner polls the log).

use std::time::Duration;

use reqwest::StatusCode;

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

#[tokio::test]
async fn concurrent_writers_never_lose_or_duplicate_events() {
    let db = TestDb::create(Backend::Postgres).await;
    let first = TestApp::spawn(&db.url).await;
    let mut second = TestApp::spawn(&db.url).await;
    second.admin_key = first.admin_key.clone();

    // Interleaved creates on both instances; both views must end up with all of them.
    let mut created = Vec::new();
    for round in 0..5 {
        let (name_a, name_b) = (format!("first {round}"), format!("second {round}"));
        let (a, b) = tokio::join!(
            first.create_key(&name_a, &["audit:read"]),
            second.create_key(&name_b, &["audit:read"]),
        );
        created.push(a.id);
        created.push(b.id);
    }
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
        assert_eq!(ids.len(), created.len() + 1, "no key listed twice");
    }
}
