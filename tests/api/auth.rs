//! Authentication and scopes on every `/api/v1` route.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestDb, problem};
use crate::{on_both_stores, once_on_sqlite};

async fn a_key_is_required_and_the_problem_carries_the_request_id(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let body = problem(
        app.get("/api/v1/api-keys", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "missing_api_key");

    let response = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&app.admin_key)
        .header("x-request-id", "test-request-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "test-request-7");
}

async fn bad_authorization_headers_are_401(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    for (value, code) in [
        ("Basic dXNlcjpwYXNz", "invalid_authorization_header"),
        ("Bearer", "invalid_authorization_header"),
        ("Bearer    ", "invalid_authorization_header"),
        ("Bearer not-a-key", "invalid_api_key"),
        (
            "bearer cg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "invalid_api_key",
        ),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/api-keys"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["code"], code, "{value}");
    }
}

async fn a_missing_scope_is_403_and_revocation_is_immediate(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let auditor = app.create_key("auditor", &["audit:read"]).await;
    let body = problem(
        app.get("/api/v1/api-keys", Some(&auditor.secret)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["code"], "insufficient_scope");

    let revoked = app
        .delete(
            &format!("/api/v1/api-keys/{}", auditor.id),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let body = problem(
        app.get("/api/v1/api-keys", Some(&auditor.secret)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "api_key_revoked");
}

async fn an_expired_key_is_refused(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let expires_at = app_now(&app) + Duration::hours(1);
    let response = app
        .post_json(
            "/api/v1/api-keys",
            Some(&app.admin_key),
            &json!({"name": "short-lived", "scopes": ["admin"], "expires_at": expires_at}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/api-keys", Some(&secret)).await.status(),
        StatusCode::OK
    );

    app.clock.advance(Duration::hours(2));
    let body = problem(
        app.get("/api/v1/api-keys", Some(&secret)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["code"], "api_key_expired");
    let listed = app.list_keys(&app.admin_key).await;
    let entry = listed.iter().find(|k| k["name"] == "short-lived").unwrap();
    assert_eq!(entry["status"], "expired");
}

fn app_now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    use credgate::clock::Clock;
    app.clock.now()
}

once_on_sqlite!(bad_authorization_headers_are_401);

on_both_stores!(
    a_key_is_required_and_the_problem_carries_the_request_id,
    a_missing_scope_is_403_and_revocation_is_immediate,
    an_expired_key_is_refused,
);

/// The scope every documented operation needs. The matrix below checks the server
/// against this table, and fails on an operation the table does not list, so a new
/// route cannot ship without deciding its scope.
const REQUIRED_SCOPES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/api-keys", "admin"),
    ("GET", "/api/v1/api-keys", "admin"),
    ("GET", "/api/v1/api-keys/{id}", "admin"),
    ("DELETE", "/api/v1/api-keys/{id}", "admin"),
    ("GET", "/api/v1/audit-events", "audit:read"),
    ("GET", "/api/v1/audit-events/export", "audit:read"),
    ("GET", "/api/v1/audit-events/verify", "audit:read"),
    ("GET", "/api/v1/ssh-keypairs/{id}/history", "audit:read"),
    ("GET", "/api/v1/ssh-connections/{id}/history", "audit:read"),
    ("POST", "/api/v1/ssh-keypairs/generate", "keypairs:write"),
    ("POST", "/api/v1/ssh-keypairs", "keypairs:write"),
    ("GET", "/api/v1/ssh-keypairs", "keypairs:read"),
    ("GET", "/api/v1/ssh-keypairs/{id}", "keypairs:read"),
    ("PATCH", "/api/v1/ssh-keypairs/{id}", "keypairs:write"),
    ("DELETE", "/api/v1/ssh-keypairs/{id}", "keypairs:write"),
    ("GET", "/api/v1/ssh-keypairs/{id}/used-by", "keypairs:read"),
    (
        "GET",
        "/api/v1/ssh-keypairs/{id}/public-key",
        "keypairs:read",
    ),
    (
        "POST",
        "/api/v1/ssh-keypairs/{id}/private-key",
        "secrets:export",
    ),
    ("POST", "/api/v1/ssh/host-key-scan", "connections:write"),
    ("POST", "/api/v1/ssh-connections", "connections:write"),
    (
        "POST",
        "/api/v1/ssh-connections/semi-automatic",
        "connections:write",
    ),
    ("GET", "/api/v1/ssh-connections", "connections:read"),
    ("GET", "/api/v1/ssh-connections/{id}", "connections:read"),
    ("PATCH", "/api/v1/ssh-connections/{id}", "connections:write"),
    (
        "DELETE",
        "/api/v1/ssh-connections/{id}",
        "connections:write",
    ),
    (
        "POST",
        "/api/v1/ssh-connections/{id}/test",
        "connections:write",
    ),
    (
        "POST",
        "/api/v1/ssh-connections/{id}/credentials",
        "connections:use",
    ),
    (
        "GET",
        "/api/v1/ssh-connections/{id}/known-hosts",
        "connections:read",
    ),
    (
        "GET",
        "/api/v1/ssh-connections/{id}/ssh-config",
        "connections:read",
    ),
    ("POST", "/api/v1/pairing/ssh", "pairing"),
    ("DELETE", "/api/v1/pairing/ssh/{id}", REVOCATION_TOKEN),
    ("GET", "/api/v1/authorized-keys", "pairing:admin"),
    ("DELETE", "/api/v1/authorized-keys/{id}", "pairing:admin"),
];

/// Needed instead of a scope: the pairing's revocation token. No API key grants it, so
/// every key gets the same 401 as no key.
const REVOCATION_TOKEN: &str = "revocation token";

/// Every scope there is, with what it grants besides itself (the lattice the unit test
/// in `auth/scope.rs` pins; repeated here as the server must honour it).
const SCOPES: &[(&str, &[&str])] = &[
    ("admin", &["*"]),
    ("keypairs:read", &[]),
    ("keypairs:write", &["keypairs:read"]),
    ("connections:read", &[]),
    ("connections:write", &["connections:read"]),
    ("connections:use", &[]),
    ("secrets:export", &[]),
    ("pairing", &[]),
    ("pairing:admin", &[]),
    ("audit:read", &[]),
];

fn grants(held: &str, needed: &str) -> bool {
    SCOPES
        .iter()
        .find(|(scope, _)| *scope == held)
        .is_some_and(|(scope, implied)| {
            *scope == needed || implied.contains(&"*") || implied.contains(&needed)
        })
}

/// Every operation in the OpenAPI document: without a key 401; with a key of each
/// scope, 403 exactly when that scope does not grant the operation's scope. Store
/// independent, so run once (SQLite).
#[tokio::test]
async fn every_operation_needs_a_key_and_exactly_its_scope() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let mut keys = Vec::new();
    for (scope, _) in SCOPES {
        keys.push((*scope, app.create_key(scope, &[scope]).await.secret));
    }
    let document = serde_json::to_value(credgate::plugins::full_api_document()).unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1") {
            continue;
        }
        for (method, _) in item.as_object().unwrap() {
            let method = method.to_ascii_uppercase();
            let Some((_, _, needed)) = REQUIRED_SCOPES
                .iter()
                .find(|(m, p, _)| *m == method && p == path)
            else {
                panic!("{method} {path} is not in REQUIRED_SCOPES");
            };
            // The contract says the same scope (`x-required-scopes`, and in prose); an
            // operation that takes a token of its own declares none.
            let operation = &item[method.to_ascii_lowercase()];
            let declared = if *needed == "revocation token" {
                Value::Null
            } else {
                json!([needed])
            };
            assert_eq!(operation["x-required-scopes"], declared, "{method} {path}");
            assert!(
                declared.is_null()
                    || operation["description"]
                        .as_str()
                        .is_some_and(|d| d.contains(&format!("`{needed}`"))),
                "{method} {path}"
            );
            let url = app.url(&path.replace("{id}", &uuid::Uuid::new_v4().to_string()));
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let anonymous = app
                .client
                .request(method.clone(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                anonymous.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
            for (scope, secret) in &keys {
                let response = app
                    .client
                    .request(method.clone(), &url)
                    .bearer_auth(secret)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                if *needed == REVOCATION_TOKEN {
                    let body = problem(response, StatusCode::UNAUTHORIZED).await;
                    assert_eq!(body["code"], "missing_revocation_token", "{method} {path}");
                    checked += 1;
                    continue;
                }
                let forbidden = response.status() == StatusCode::FORBIDDEN;
                assert_eq!(
                    forbidden,
                    !grants(scope, needed),
                    "{method} {path} with {scope} (needs {needed}): {}",
                    response.status()
                );
                if forbidden {
                    let body = problem(response, StatusCode::FORBIDDEN).await;
                    assert_eq!(body["code"], "insufficient_scope");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, REQUIRED_SCOPES.len() * SCOPES.len());
}

/// A side effect on another capability needs that capability's scope: binding an
/// existing keypair to a connection needs `secrets:export` (whoever holds
/// `connections:use` for the connection can then read the key), generating one needs
/// `keypairs:write`, and a cascading keypair delete needs `connections:write`.
#[tokio::test]
async fn side_effects_on_another_capability_need_its_scope() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let keypair: serde_json::Value = app
        .post_json(
            "/api/v1/ssh-keypairs/generate",
            Some(&app.admin_key),
            &json!({"name": "someone else's"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let bind = |name: &str| {
        json!({"name": name, "host": "192.0.2.10", "keypair_id": keypair["id"],
               "remote_host_key": keypair["public_key"]})
    };
    let generate = |name: &str| {
        json!({"name": name, "host": "192.0.2.10", "generate_keypair": {},
               "remote_host_key": keypair["public_key"]})
    };
    let job = app
        .create_key("job and writer", &["connections:write", "connections:use"])
        .await
        .secret;
    let refused = problem(
        app.post_json("/api/v1/ssh-connections", Some(&job), &bind("steal"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["code"], "insufficient_scope");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("secrets:export")
    );
    let refused = problem(
        app.post_json("/api/v1/ssh-connections", Some(&job), &generate("mine"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("keypairs:write")
    );

    let entitled = app
        .create_key(
            "entitled",
            &[
                "connections:write",
                "connections:use",
                "secrets:export",
                "keypairs:write",
            ],
        )
        .await
        .secret;
    let bound: serde_json::Value = app
        .post_json("/api/v1/ssh-connections", Some(&entitled), &bind("bound"))
        .await
        .json()
        .await
        .unwrap();
    let id = bound["id"].as_str().expect("created").to_owned();
    let generated = app
        .post_json(
            "/api/v1/ssh-connections",
            Some(&entitled),
            &generate("own key"),
        )
        .await;
    assert_eq!(generated.status(), StatusCode::CREATED);
    let repoint = app
        .client
        .patch(app.url(&format!("/api/v1/ssh-connections/{id}")))
        .bearer_auth(&job)
        .json(&json!({"keypair_id": keypair["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(repoint, StatusCode::FORBIDDEN).await["code"],
        "insufficient_scope"
    );

    let keypairs_only = app
        .create_key("keypairs only", &["keypairs:write"])
        .await
        .secret;
    let path = format!("/api/v1/ssh-keypairs/{}", keypair["id"].as_str().unwrap());
    let cascade = problem(
        app.delete(&format!("{path}?cascade=true"), Some(&keypairs_only))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        cascade["detail"]
            .as_str()
            .unwrap()
            .contains("connections:write")
    );
    let in_use = problem(
        app.delete(&path, Some(&keypairs_only)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(in_use["code"], "in_use");
    let listed = app
        .get(
            &format!("/api/v1/ssh-connections/{id}"),
            Some(&app.admin_key),
        )
        .await;
    assert_eq!(listed.status(), StatusCode::OK, "the connection survived");
}

/// Guessing keys is slowed down per client address: after the limit, 429 with
/// `Retry-After` for that address (a valid key included) and nobody else; requests
/// without a key guess nothing and do not count.
#[tokio::test]
async fn failed_authentications_are_limited_per_address() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.limits.auth_failures_per_minute = 5;
        settings.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let from = |address: &str, key: Option<&str>| {
        let mut request = app
            .client
            .get(app.url("/api/v1/api-keys"))
            .header("x-forwarded-for", address);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let guess = "cg_this-is-not-a-key-but-looks-like-one-0123456789";
    for _ in 0..10 {
        let response = from("203.0.113.5", None).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        let response = from("203.0.113.5", Some(guess)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = from("203.0.113.5", Some(&app.admin_key)).await.unwrap();
    let wait: u32 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    let body = problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["code"], "too_many_failed_authentications");
    let elsewhere = from("198.51.100.9", Some(&app.admin_key)).await.unwrap();
    assert_eq!(
        elsewhere.status(),
        StatusCode::OK,
        "other addresses are not affected"
    );
}

/// A key takes private keys out (exports and credentials bundles together) at most
/// `limits.secret_reads_per_minute` times a minute; then 429 with `Retry-After` for that
/// key only.
#[tokio::test]
async fn secret_reads_are_limited_per_key() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn_with(&db.url, |settings| {
        settings.limits.secret_reads_per_minute = 3;
    })
    .await;
    let job = app.create_key("job", &["admin"]).await;
    let other = app.create_key("other", &["admin"]).await;
    let keypair: Value = app
        .post_json(
            "/api/v1/ssh-keypairs/generate",
            Some(&app.admin_key),
            &json!({"name": "limited"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = keypair["id"].as_str().unwrap();
    // Pinning the keypair's own public key as the host key: creating a connection
    // does not connect, and the bundle is all this test needs.
    let connection: Value = app
        .post_json(
            "/api/v1/ssh-connections",
            Some(&app.admin_key),
            &json!({"name": "limited", "host": "127.0.0.1", "keypair_id": id,
                    "remote_host_key": keypair["public_key"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let export = format!("/api/v1/ssh-keypairs/{id}/private-key");
    let bundle = format!(
        "/api/v1/ssh-connections/{}/credentials",
        connection["id"].as_str().unwrap()
    );
    for path in [&export, &bundle, &export] {
        let response = app.post_json(path, Some(&job.secret), &json!({})).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let refused = app.post_json(&bundle, Some(&job.secret), &json!({})).await;
    let wait: u32 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["code"], "too_many_secret_reads");
    let elsewhere = app
        .post_json(&export, Some(&other.secret), &json!({}))
        .await;
    assert_eq!(
        elsewhere.status(),
        StatusCode::OK,
        "other keys are not affected"
    );
}
