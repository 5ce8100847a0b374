//! The audit trail: records derived from every event, refused access, histories of
//! deleted resources, the export and its follow mode, and the tamper-evident chain.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::support::db::execute_sql;
use crate::support::served::{credgate, output_beside_the_service};
use crate::support::sshd::{Sshd, login_user};
use crate::support::{Backend, TestApp, TestDb, problem};

const KEYPAIRS: &str = "/api/v1/ssh-keypairs";
const CONNECTIONS: &str = "/api/v1/ssh-connections";
const AUDIT: &str = "/api/v1/audit-events";

/// What a call answered: status, `X-Request-Id`, body.
struct Answer {
    status: StatusCode,
    request_id: String,
    body: Value,
}

async fn call(app: &TestApp, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    Answer {
        status,
        request_id,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// Every audit record, oldest first, following cursors.
async fn all_records(app: &TestApp, key: &str, filter: &str) -> Vec<Value> {
    let mut records = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = call(
            app,
            Method::GET,
            &format!("{AUDIT}?order=oldest_first&limit=7{filter}{cursor}"),
            key,
            None,
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        records.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return records,
        }
    }
}

fn change_of<'a>(record: &'a Value, field: &str) -> Option<&'a Value> {
    record["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == field)
}

/// The scenario of the issue, step by step, and exactly the records it leaves.
async fn a_scripted_scenario_leaves_exactly_its_records(backend: Backend) {
    let sshd = Sshd::start();
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let admin = app.admin_key.clone();
    let auditor = app.create_key("auditor", &["audit:read"]).await;
    let before = all_records(&app, &auditor.secret, "").await;
    let first_new = before.last().unwrap()["position"].as_i64().unwrap();
    let admin_id = before[0]["resource_id"].clone();
    assert_eq!(before[0]["event_type"], "ApiKeyCreated");
    assert_eq!(before[0]["actor"]["name"], "bootstrap");

    // Each step: (the answer, the event types it must leave, whose key).
    let mut expected: Vec<(String, Vec<&str>, String)> = Vec::new();
    let created = call(
        &app,
        Method::POST,
        "/api/v1/api-keys",
        &admin,
        Some(json!({"name": "ops", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let ops = created.body["secret"].as_str().unwrap().to_owned();
    let ops_id = created.body["id"].as_str().unwrap().to_owned();
    expected.push((
        created.request_id,
        vec!["ApiKeyCreated"],
        admin_id.as_str().unwrap().to_owned(),
    ));

    let generated = call(
        &app,
        Method::POST,
        &format!("{KEYPAIRS}/generate"),
        &ops,
        Some(json!({"name": "job key"})),
    )
    .await;
    assert_eq!(generated.status, StatusCode::CREATED);
    let keypair = generated.body["id"].as_str().unwrap().to_owned();
    sshd.authorize(generated.body["public_key"].as_str().unwrap());
    expected.push((
        generated.request_id,
        vec!["KeypairGenerated"],
        ops_id.clone(),
    ));

    let renamed = call(
        &app,
        Method::PATCH,
        &format!("{KEYPAIRS}/{keypair}"),
        &ops,
        Some(json!({"name": "nightly key"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    expected.push((renamed.request_id, vec!["KeypairRenamed"], ops_id.clone()));

    let exported = call(
        &app,
        Method::POST,
        &format!("{KEYPAIRS}/{keypair}/private-key"),
        &ops,
        Some(json!({"passphrase": "scenario canary passphrase"})),
    )
    .await;
    assert_eq!(exported.status, StatusCode::OK);
    let private_key = exported.body["private_key"].as_str().unwrap().to_owned();
    expected.push((
        exported.request_id,
        vec!["PrivateKeyExported"],
        ops_id.clone(),
    ));

    let host_keys = sshd.keyscan().join("\n");
    let connection = call(
        &app,
        Method::POST,
        CONNECTIONS,
        &ops,
        Some(json!({"name": "Offsite", "host": "127.0.0.1", "port": sshd.port, "username": login_user(),
                    "keypair_id": keypair, "remote_host_key": host_keys})),
    )
    .await;
    assert_eq!(
        connection.status,
        StatusCode::CREATED,
        "{}",
        connection.body
    );
    let connection_id = connection.body["id"].as_str().unwrap().to_owned();
    expected.push((
        connection.request_id,
        vec!["ConnectionCreated"],
        ops_id.clone(),
    ));

    let tested = call(
        &app,
        Method::POST,
        &format!("{CONNECTIONS}/{connection_id}/test"),
        &ops,
        Some(json!({})),
    )
    .await;
    assert_eq!(tested.body["ok"], true, "{}", tested.body);
    expected.push((tested.request_id, vec!["ConnectionTested"], ops_id.clone()));

    let bundle = call(
        &app,
        Method::POST,
        &format!("{CONNECTIONS}/{connection_id}/credentials"),
        &ops,
        Some(json!({})),
    )
    .await;
    assert_eq!(bundle.status, StatusCode::OK);
    let bundle_key = bundle.body["private_key"].as_str().unwrap().to_owned();
    expected.push((bundle.request_id, vec!["CredentialsIssued"], ops_id.clone()));

    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/api-keys/{ops_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    expected.push((
        revoked.request_id,
        vec!["ApiKeyRevoked"],
        admin_id.as_str().unwrap().to_owned(),
    ));

    let refused = call(&app, Method::GET, KEYPAIRS, &ops, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    expected.push((refused.request_id, vec!["AccessDenied"], ops_id.clone()));

    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{KEYPAIRS}/{keypair}?cascade=true"),
        &admin,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    expected.push((
        deleted.request_id,
        vec!["ConnectionDeleted", "KeypairDeleted"],
        admin_id.as_str().unwrap().to_owned(),
    ));

    let records: Vec<Value> = all_records(&app, &auditor.secret, "")
        .await
        .into_iter()
        .filter(|r| r["position"].as_i64().unwrap() > first_new)
        .collect();
    let want: Vec<(String, &str, String)> = expected
        .iter()
        .flat_map(|(request, types, actor)| {
            types
                .iter()
                .map(move |t| (request.clone(), *t, actor.clone()))
        })
        .collect();
    let got: Vec<(String, &str, String)> = records
        .iter()
        .map(|r| {
            (
                r["request_id"].as_str().unwrap().to_owned(),
                r["event_type"].as_str().unwrap(),
                r["actor"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want, "exactly these records, in this order");
    for record in &records {
        let actor = record["actor"]["id"].as_str().unwrap();
        let name = if actor == ops_id {
            "ops"
        } else {
            "bootstrap admin"
        };
        assert_eq!(record["actor"]["name"], name);
        assert_eq!(record["source_address"], "127.0.0.1");
    }
    let by_type = |t: &str| records.iter().find(|r| r["event_type"] == t).unwrap();
    let rename = by_type("KeypairRenamed");
    assert_eq!(
        change_of(rename, "name").unwrap(),
        &json!({"field": "name", "before": "job key", "after": "nightly key"})
    );
    assert_eq!(rename["resource_name"], "nightly key");
    assert_eq!(rename["category"], "change");
    let generated_record = by_type("KeypairGenerated");
    assert_eq!(
        change_of(generated_record, "private_key").unwrap()["after"],
        "<sealed>"
    );
    assert_eq!(
        change_of(generated_record, "name").unwrap()["before"],
        Value::Null
    );
    assert_eq!(by_type("PrivateKeyExported")["category"], "secret_read");
    assert_eq!(by_type("PrivateKeyExported")["details"]["encrypted"], true);
    assert_eq!(by_type("CredentialsIssued")["category"], "secret_read");
    let denied = by_type("AccessDenied");
    assert_eq!(denied["category"], "access_denied");
    assert_eq!(denied["details"]["reason"], "api_key_revoked");
    assert_eq!(denied["details"]["path"], KEYPAIRS);
    let created_connection = by_type("ConnectionCreated");
    assert_eq!(
        change_of(created_connection, "port").unwrap()["after"],
        sshd.port
    );
    assert_eq!(
        change_of(created_connection, "host").unwrap()["after"],
        "127.0.0.1"
    );
    assert_eq!(
        change_of(created_connection, "host_key_fingerprints").unwrap()["after"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(by_type("KeypairDeleted")["resource_name"], "nightly key");
    assert_eq!(by_type("KeypairDeleted")["details"]["cascade"], true);

    // Filters: by request, by actor, by type, by time.
    let cascade = &expected.last().unwrap().0;
    let by_request = all_records(&app, &auditor.secret, &format!("&request_id={cascade}")).await;
    assert_eq!(by_request.len(), 2);
    let by_actor = all_records(&app, &auditor.secret, &format!("&actor={ops_id}")).await;
    assert_eq!(
        by_actor.len(),
        7,
        "six changes and reads by ops, and its refusal"
    );
    let by_type_filter = all_records(&app, &auditor.secret, "&event_type=KeypairRenamed").await;
    assert_eq!(by_type_filter.len(), 1);
    let newest = call(
        &app,
        Method::GET,
        &format!("{AUDIT}?limit=1"),
        &auditor.secret,
        None,
    )
    .await;
    assert_eq!(
        newest.body["items"][0]["event_type"], "KeypairDeleted",
        "newest first by default"
    );
    let until = call(
        &app,
        Method::GET,
        &format!("{AUDIT}?until=2000-01-01T00:00:00Z"),
        &auditor.secret,
        None,
    )
    .await;
    assert_eq!(until.body["items"], json!([]));

    // Histories outlive their resources.
    let history = call(
        &app,
        Method::GET,
        &format!("{KEYPAIRS}/{keypair}/history"),
        &auditor.secret,
        None,
    )
    .await;
    assert_eq!(history.status, StatusCode::OK);
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "KeypairGenerated",
            "KeypairRenamed",
            "PrivateKeyExported",
            "KeypairDeleted"
        ]
    );
    let history = call(
        &app,
        Method::GET,
        &format!("{CONNECTIONS}/{connection_id}/history"),
        &auditor.secret,
        None,
    )
    .await;
    let types: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ConnectionCreated",
            "ConnectionTested",
            "CredentialsIssued",
            "ConnectionDeleted"
        ]
    );
    problem(
        app.get(
            &format!("{KEYPAIRS}/{}/history", uuid::Uuid::new_v4()),
            Some(&auditor.secret),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // No secret in any record or export line.
    let export = app
        .client
        .get(app.url(&format!("{AUDIT}/export")))
        .bearer_auth(&auditor.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let export = export.text().await.unwrap();
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), records.len() + before.len());
    assert_eq!(lines.last().unwrap(), records.last().unwrap());
    let everything = format!("{export}{}", serde_json::to_string(&records).unwrap());
    for secret in [
        ops.as_str(),
        auditor.secret.as_str(),
        admin.as_str(),
        "scenario canary passphrase",
    ] {
        assert!(
            !everything.contains(secret),
            "a secret is in the audit trail"
        );
    }
    for line in private_key
        .lines()
        .chain(bundle_key.lines())
        .filter(|l| l.len() > 20)
    {
        assert!(
            !everything.contains(line),
            "private key material is in the audit trail"
        );
    }
    let verified = call(
        &app,
        Method::GET,
        &format!("{AUDIT}/verify"),
        &auditor.secret,
        None,
    )
    .await;
    assert_eq!(verified.body["ok"], true, "{}", verified.body);
    assert_eq!(verified.body["checked"], lines.len());
}

on_both_stores!(a_scripted_scenario_leaves_exactly_its_records);

/// Bad filters are refused field by field, never a 500.
async fn bad_filters_are_refused_by_name(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let key = &app.admin_key;
    for (query, field) in [
        ("resource_type=nope", "resource_type"),
        ("limit=0", "limit"),
        ("cursor=garbage", "cursor"),
        ("actor=", "actor"),
    ] {
        let body = problem(
            app.get(&format!("{AUDIT}?{query}"), Some(key)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    // An empty window is a question with no records, not a mistake.
    let empty = app
        .get(
            &format!("{AUDIT}?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"),
            Some(key),
        )
        .await;
    assert_eq!(empty.status(), StatusCode::OK);
    let empty: serde_json::Value = empty.json().await.unwrap();
    assert_eq!(empty["items"], serde_json::json!([]));
    for query in ["since=yesterday", "order=sideways", "unknown=1"] {
        problem(
            app.get(&format!("{AUDIT}?{query}"), Some(key)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let body = problem(
        app.get(&format!("{AUDIT}/verify?head=12"), Some(key)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "head");
}

on_both_stores!(bad_filters_are_refused_by_name);

/// Statements that tamper with the database directly (as someone with database access
/// but without the master key would), per store. The chain's table refuses updates and
/// deletes through its triggers, so a thorough attacker removes them first.
fn drop_chain_guards(url: &str) -> Vec<&'static str> {
    if url.starts_with("sqlite:") {
        vec![
            "DROP TRIGGER audit_chain_no_update",
            "DROP TRIGGER audit_chain_no_delete",
        ]
    } else {
        vec!["ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only"]
    }
}

async fn verify(app: &TestApp, head: Option<&str>) -> Value {
    let query = head.map(|h| format!("?head={h}")).unwrap_or_default();
    let answer = call(
        app,
        Method::GET,
        &format!("{AUDIT}/verify{query}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

async fn a_few_events(app: &TestApp) {
    for name in ["one", "two", "three"] {
        let made = call(
            app,
            Method::POST,
            &format!("{KEYPAIRS}/generate"),
            &app.admin_key,
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(made.status, StatusCode::CREATED);
        let id = made.body["id"].as_str().unwrap();
        let renamed = call(
            app,
            Method::PATCH,
            &format!("{KEYPAIRS}/{id}"),
            &app.admin_key,
            Some(json!({"name": format!("{name}!")})),
        )
        .await;
        assert_eq!(renamed.status, StatusCode::OK);
    }
}

/// Each kind of tampering is found and named; an untouched store verifies.
async fn tampering_with_the_event_log_is_detected_and_named(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    a_few_events(&app).await;
    let clean = verify(&app, None).await;
    assert_eq!(clean["ok"], true, "{clean}");
    assert_eq!(
        clean["checked"], 7,
        "the bootstrap key and six keypair events"
    );
    let head = format!(
        "{}:{}",
        clean["head"]["position"],
        clean["head"]["mac"].as_str().unwrap()
    );
    assert_eq!(verify(&app, Some(&head)).await["ok"], true);

    // An altered payload (a rename rewritten), then put back byte for byte.
    let renamed = crate::support::db::raw_events(&db.url)
        .await
        .into_iter()
        .find(|e| e.event_type == "KeypairRenamed")
        .unwrap();
    let forged = renamed.payload.replace("one!", "evil");
    assert_ne!(forged, renamed.payload);
    let set_payload = |text: &str| {
        format!(
            "UPDATE events SET payload = '{}' WHERE position = {}",
            text.replace('\'', "''"),
            renamed.position
        )
    };
    execute_sql(&db.url, &set_payload(&forged)).await;
    let report = verify(&app, None).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["reason"], "payload_altered");
    assert_eq!(report["first_bad_position"], renamed.position);
    assert_eq!(
        report["head"]["position"],
        renamed.position - 1,
        "intact up to there"
    );
    execute_sql(&db.url, &set_payload(&renamed.payload)).await;
    assert_eq!(verify(&app, None).await["ok"], true, "restored");

    // An altered metadata field: someone else did it.
    let original = renamed.metadata.to_string();
    let mut metadata = renamed.metadata.clone();
    metadata["actor_name"] = json!("someone else");
    let set_metadata = |text: &str| {
        format!(
            "UPDATE events SET metadata = '{}' WHERE position = {}",
            text.replace('\'', "''"),
            renamed.position
        )
    };
    execute_sql(&db.url, &set_metadata(&metadata.to_string())).await;
    let report = verify(&app, None).await;
    assert_eq!(
        (
            report["reason"].as_str(),
            report["first_bad_position"].as_i64()
        ),
        (Some("metadata_altered"), Some(renamed.position))
    );
    // credgate writes metadata with sorted keys and no spaces: the parsed copy prints
    // back to the very bytes that were stored.
    execute_sql(&db.url, &set_metadata(&original)).await;
    assert_eq!(verify(&app, None).await["ok"], true, "restored");

    // The newest two events cut off, with their links: only a recorded head shows it.
    for statement in drop_chain_guards(&db.url) {
        execute_sql(&db.url, statement).await;
    }
    let newest = clean["head"]["position"].as_i64().unwrap();
    execute_sql(
        &db.url,
        &format!("DELETE FROM events WHERE position > {}", newest - 2),
    )
    .await;
    execute_sql(
        &db.url,
        &format!("DELETE FROM audit_chain WHERE position > {}", newest - 2),
    )
    .await;
    let without_head = verify(&app, None).await;
    assert_eq!(without_head["checked"], 5);
    let report = verify(&app, Some(&head)).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["reason"], "truncated");
    assert_eq!(report["first_bad_position"], newest - 1);

    // An event deleted from the middle (its link kept), then one with its link.
    let middle = renamed.position;
    execute_sql(
        &db.url,
        &format!("DELETE FROM events WHERE position = {middle}"),
    )
    .await;
    let report = verify(&app, None).await;
    assert_eq!(
        (
            report["reason"].as_str(),
            report["first_bad_position"].as_i64()
        ),
        (Some("event_deleted"), Some(middle))
    );
    execute_sql(
        &db.url,
        &format!("DELETE FROM audit_chain WHERE position = {middle}"),
    )
    .await;
    let report = verify(&app, None).await;
    assert_eq!(
        (
            report["reason"].as_str(),
            report["first_bad_position"].as_i64()
        ),
        (Some("event_deleted"), Some(middle))
    );

    // The shell verb says the same, and fails.
    let mut verify_verb = credgate();
    verify_verb
        .args(["audit", "verify", "--head", &head])
        .env("CREDGATE_DATABASE_URL", &db.url)
        .env("CREDGATE_DATA_DIR", app.data_dir.path())
        .env(
            "CREDGATE_MASTER_KEY_FILE",
            app.data_dir.path().join("master.key"),
        );
    let output = output_beside_the_service(verify_verb).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(printed["reason"], "event_deleted");
    assert!(String::from_utf8_lossy(&output.stderr).contains("event_deleted"));
}

on_both_stores!(tampering_with_the_event_log_is_detected_and_named);

/// An event inserted behind credgate's back has no link; the shell verb refuses a
/// master key that is not the service's (it could not vouch for the chain).
async fn unchained_events_and_foreign_keys_are_named(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    a_few_events(&app).await;
    execute_sql(
        &db.url,
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('ApiKey', 'planted', 1, 'ApiKeyCreated', '1', '{}', '{}')",
    )
    .await;
    let report = verify(&app, None).await;
    assert_eq!(report["reason"], "event_not_chained");
    assert_eq!(report["checked"], 7);

    let other_key = tempfile::tempdir().unwrap();
    let mut verify_verb = credgate();
    verify_verb
        .args(["audit", "verify"])
        .env("CREDGATE_DATABASE_URL", &db.url)
        .env("CREDGATE_DATA_DIR", other_key.path())
        .env(
            "CREDGATE_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
    let output = output_beside_the_service(verify_verb).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("master key"), "{stderr}");
}

on_both_stores!(unchained_events_and_foreign_keys_are_named);

/// A follower of the export sees a record another instance wrote, soon.
#[tokio::test]
async fn a_following_export_delivers_another_instances_record() {
    let db = TestDb::create(Backend::Postgres).await;
    let first = TestApp::spawn(&db.url).await;
    let second = TestApp::spawn(&db.url).await;
    let mut response = first
        .client
        .get(first.url(&format!("{AUDIT}/export?follow=true")))
        .bearer_auth(&first.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut buffer = String::new();
    // The backlog first: the bootstrap key's record.
    while !buffer.contains("ApiKeyCreated") {
        let chunk = response.chunk().await.unwrap().unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let started = Instant::now();
    let made = call(
        &second,
        Method::POST,
        &format!("{KEYPAIRS}/generate"),
        &first.admin_key,
        Some(json!({"name": "from the second"})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let id = made.body["id"].as_str().unwrap().to_owned();
    let latency = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let chunk = response.chunk().await.unwrap().unwrap();
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            if buffer.lines().any(|l| l.contains(&id)) {
                return started.elapsed();
            }
        }
    })
    .await
    .expect("the record arrives");
    println!(
        "follow latency from another instance: {} ms",
        latency.as_millis()
    );
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    let line: Value =
        serde_json::from_str(buffer.lines().find(|l| l.contains(&id)).unwrap()).unwrap();
    assert_eq!(line["event_type"], "KeypairGenerated");
    assert_eq!(line["request_id"], made.request_id.as_str());

    // Nothing new: the stream stays open and says so with a heartbeat line (every 10 s).
    let heartbeat = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let chunk = response.chunk().await.unwrap().unwrap();
            let text = String::from_utf8(chunk.to_vec()).unwrap();
            if let Some(line) = text.lines().find(|l| l.contains("heartbeat")) {
                return serde_json::from_str::<Value>(line).unwrap();
            }
        }
    })
    .await
    .expect("a heartbeat line");
    assert_eq!(heartbeat["after_position"], line["position"]);
}

/// A rebuild over ≥ 10,000 events gives the records the live projection wrote, record
/// by record (times come from the events, not from the rebuild). Prints the rate.
async fn a_rebuild_gives_the_live_records_back(backend: Backend) {
    use std::sync::Arc;

    use credgate::auth::{ApiKey, ApiKeyCommand, Scope};
    use credgate::config::{DatabaseUrl, Settings};
    use credgate::gateway::all_projections;
    use credgate::names::Name;
    use credgate::store::{
        Aggregates, AuditQuery, ChainKey, Change, CommandMetadata, ProjectionRunner, Store, Writer,
    };

    const KEYS: usize = 5_000;
    let db = TestDb::create(backend).await;
    let settings = Settings::defaults_in(std::path::Path::new("/nonexistent")).database;
    let store = Store::open(&DatabaseUrl::parse(&db.url).unwrap(), &settings)
        .await
        .unwrap();
    let runner = Arc::new(ProjectionRunner::new(
        store.clone(),
        all_projections(&credgate::plugins::all()),
    ));
    let writer = Writer::new(
        &store,
        Some(runner.clone()),
        Arc::new(ChainKey::new([5; 32])),
    );
    let keys = Aggregates::<ApiKey>::new(&writer, ());
    let ids: Vec<String> = (0..KEYS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let start = chrono::Utc::now();
    let metadata = |i: usize| CommandMetadata {
        actor_id: Some(format!("actor-{}", i % 7)),
        actor_name: format!("actor {}", i % 7),
        request_id: format!("request-{i}"),
        source_address: Some("192.0.2.1".into()),
        user_agent: Some("bulk".into()),
        occurred_at: start + chrono::Duration::milliseconds(i as i64),
    };
    let written = Instant::now();
    for revoking in [false, true] {
        for chunk in ids.chunks(1_000).enumerate() {
            let (n, chunk) = chunk;
            let mut change = Change::new();
            for (j, id) in chunk.iter().enumerate() {
                let i = n * 1_000 + j + if revoking { KEYS } else { 0 };
                let command = if revoking {
                    ApiKeyCommand::Revoke { now: start }
                } else {
                    ApiKeyCommand::Create {
                        name: Name::parse(&format!("key {i}")).unwrap(),
                        scopes: vec![Scope::AuditRead],
                        secret_sha256: format!("{i:064x}"),
                        expires_at: None,
                        now: start,
                    }
                };
                keys.decide(&mut change, id, command, &metadata(i), None)
                    .await
                    .unwrap();
            }
            writer.commit(&change).await.unwrap();
        }
    }
    let events = 2 * KEYS;
    println!(
        "{}: wrote {events} events in {:.1} s",
        store.kind(),
        written.elapsed().as_secs_f64()
    );
    let everything = AuditQuery::default();
    let live = store.audit_records(&everything, 100_000).await.unwrap();
    assert_eq!(live.len(), events);
    let rebuilding = Instant::now();
    let read = runner.rebuild(|_, _| {}).await.unwrap();
    let took = rebuilding.elapsed().as_secs_f64();
    assert_eq!(read, events as u64);
    println!(
        "{}: rebuilt every projection (audit included) over {events} events in {took:.1} s: {:.0} events/s",
        store.kind(),
        events as f64 / took
    );
    let rebuilt = store.audit_records(&everything, 100_000).await.unwrap();
    assert_eq!(rebuilt.len(), live.len());
    for (live, rebuilt) in live.iter().zip(&rebuilt) {
        assert_eq!(live, rebuilt);
    }
    let revoked = live.last().unwrap();
    assert_eq!(revoked.event_type, "ApiKeyRevoked");
    assert_eq!(revoked.record["resource_name"], "key 4999");
    assert_eq!(revoked.record["changes"][0]["field"], "revoked_at");
    let verifying = Instant::now();
    let verified = store
        .verify_chain(&ChainKey::new([5; 32]), None)
        .await
        .unwrap();
    let took = verifying.elapsed().as_secs_f64();
    println!(
        "{}: verified the chain over {events} events in {took:.2} s: {:.0} events/s",
        store.kind(),
        events as f64 / took
    );
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.checked, events as u64);
    store.close().await;
}

on_both_stores!(a_rebuild_gives_the_live_records_back);

/// `credgate serve` at trace level: a canary private key, passphrase and API key secret
/// appear in no audit record, export line or log line; the chain head is logged on
/// shutdown, and `credgate audit export` prints the same records as the API.
#[tokio::test]
async fn secrets_stay_out_of_records_exports_and_logs() {
    use crate::support::served::Served;

    let dir = tempfile::tempdir().unwrap();
    let admin = "audit-admin-key-0123456789abcdef0123";
    let mut command = credgate();
    command
        .current_dir(dir.path())
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", admin)
        .env("CREDGATE_LOG_LEVEL", "trace");
    let mut served = Served::start(command);
    let url = served.wait_for_field("url");
    let client = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{url}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let canary_key: Value = post(
        "/api/v1/api-keys",
        admin,
        json!({"name": "canary", "scopes": ["admin"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let canary_secret = canary_key["secret"].as_str().unwrap().to_owned();
    let keypair: Value = post(
        &format!("{KEYPAIRS}/generate"),
        &canary_secret,
        json!({"name": "canary key"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = keypair["id"].as_str().unwrap();
    let passphrase = "canary-passphrase-for-the-export";
    let mut private_lines = Vec::new();
    for body in [json!({}), json!({"passphrase": passphrase})] {
        let exported: Value = post(
            &format!("{KEYPAIRS}/{id}/private-key"),
            &canary_secret,
            body,
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        private_lines.extend(
            exported["private_key"]
                .as_str()
                .unwrap()
                .lines()
                .filter(|l| l.len() > 20 && !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    assert!(private_lines.len() >= 2);
    let revoke = client
        .delete(format!(
            "{url}/api/v1/api-keys/{}",
            canary_key["id"].as_str().unwrap()
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let refused = client
        .get(format!("{url}{KEYPAIRS}"))
        .bearer_auth(&canary_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let export = client
        .get(format!("{url}{AUDIT}/export"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verified: Value = client
        .get(format!("{url}{AUDIT}/verify"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["ok"], true);
    let (status, log) = served.terminate();
    assert!(status.success());
    assert!(log.len() > 20, "trace logging produced lines");

    let shell = credgate()
        .current_dir(dir.path())
        .args(["audit", "export", "--since", "2000-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert!(
        shell.status.success(),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    let shell = String::from_utf8(shell.stdout).unwrap();
    assert_eq!(shell, export, "the shell export is the API export");
    let types: Vec<String> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event_type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        [
            "ApiKeyCreated",
            "ApiKeyCreated",
            "KeypairGenerated",
            "PrivateKeyExported",
            "PrivateKeyExported",
            "ApiKeyRevoked",
            "AccessDenied"
        ]
    );

    let log = log.join("\n");
    for (what, text) in [
        ("the API key secret", canary_secret.as_str()),
        ("the bootstrap key", admin),
        ("the passphrase", passphrase),
    ] {
        assert!(!export.contains(text), "{what} is in the export");
        assert!(!log.contains(text), "{what} is in the log");
    }
    for line in &private_lines {
        assert!(
            !export.contains(line.as_str()),
            "private key material is in the export"
        );
        assert!(
            !log.contains(line.as_str()),
            "private key material is in the log"
        );
    }
    // The head an outside system keeps: logged on shutdown, as verify reported it.
    let head = format!(
        "{}:{}",
        verified["head"]["position"],
        verified["head"]["mac"].as_str().unwrap()
    );
    assert!(
        log.lines()
            .any(|l| l.contains("audit chain head at shutdown") && l.contains(&head)),
        "no shutdown head line with {head}"
    );
}

/// A flood of refused requests leaves at most 60 records a minute per instance; the
/// first record of the next minute says how many were dropped.
#[tokio::test]
async fn a_flood_of_refusals_is_recorded_at_a_bounded_rate() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let narrow = app.create_key("narrow", &["keypairs:read"]).await;
    for _ in 0..65 {
        let refused = app.get(AUDIT, Some(&narrow.secret)).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    let denials = |records: &[Value]| {
        records
            .iter()
            .filter(|r| r["event_type"] == "AccessDenied")
            .cloned()
            .collect::<Vec<_>>()
    };
    let recorded =
        denials(&all_records(&app, &app.admin_key, "&resource_type=access_denial").await);
    assert_eq!(recorded.len(), 60);
    assert!(
        recorded
            .iter()
            .all(|r| r["actor"]["id"] == narrow.id.as_str()
                && r["details"]["reason"] == "insufficient_scope"
                && r["details"]["suppressed_before"] == 0)
    );

    app.clock.advance(chrono::Duration::seconds(61));
    let refused = app.get(AUDIT, Some(&narrow.secret)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let recorded =
        denials(&all_records(&app, &app.admin_key, "&resource_type=access_denial").await);
    assert_eq!(recorded.len(), 61);
    assert_eq!(recorded.last().unwrap()["details"]["suppressed_before"], 5);
}

/// Following exports poll the store, so one instance serves at most 16 at once; a
/// place is freed when its client goes away.
#[tokio::test]
async fn following_exports_are_capped_per_instance() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let follow = || {
        app.client
            .get(app.url(&format!("{AUDIT}/export?follow=true")))
            .bearer_auth(&app.admin_key)
            .send()
    };
    let mut open = Vec::new();
    for _ in 0..16 {
        let response = follow().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        open.push(response);
    }
    let refused = problem(follow().await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(refused["code"], "audit_busy");
    // A plain export is not capped.
    let plain = app
        .get(&format!("{AUDIT}/export"), Some(&app.admin_key))
        .await;
    assert_eq!(plain.status(), StatusCode::OK);
    drop(open);
    // The server notices a closed connection when it next writes (a heartbeat at the
    // latest), then frees its place.
    crate::support::eventually(Duration::from_secs(30), "a freed place", || async {
        let response = follow().await.unwrap();
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
}
