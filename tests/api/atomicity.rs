//! One request, one transaction: a commit stopped at any step (a failpoint standing in
//! for a crash there) leaves the side tables exactly as the event log implies — no
//! orphan reservation, no dangling dependency, no data key without its keypair — and
//! the name usable again or held by the right owner. Plus the rename rule: a name that
//! normalises to the current one stays reserved.

use std::collections::BTreeSet;

use credgate::store::CommitStep;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::on_both_stores;
use crate::support::db::{RawEvent, SideTables, raw_events, side_tables};
use crate::support::{Backend, TestApp, TestDb, problem};

const KEYPAIRS: &str = "/api/v1/ssh-keypairs";
const CONNECTIONS: &str = "/api/v1/ssh-connections";

/// What the side tables must hold, computed from the event log alone.
pub fn implied_by(events: &[RawEvent]) -> SideTables {
    #[derive(Default)]
    struct Live {
        name: String,
        keypair: Option<String>,
        sealed: bool,
        deleted: bool,
    }
    let mut live: std::collections::BTreeMap<(String, String), Live> = Default::default();
    for event in events {
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        let body = &payload[&event.event_type];
        let entry = live
            .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
            .or_default();
        match event.event_type.as_str() {
            "KeypairGenerated" | "KeypairImported" => {
                entry.name = body["name"].as_str().unwrap().to_owned();
                entry.sealed = !body["private_key"].is_null();
            }
            "KeypairRenamed" => entry.name = body["new_name"].as_str().unwrap().to_owned(),
            "ConnectionCreated" | "ConnectionUpdated" => {
                entry.name = body["settings"]["name"].as_str().unwrap().to_owned();
                entry.keypair = Some(body["settings"]["keypair_id"].as_str().unwrap().to_owned());
            }
            "KeypairDeleted" | "ConnectionDeleted" | "ApiKeyRevoked" => entry.deleted = true,
            "ApiKeyCreated" => {
                // Only admin keys are marked (the last-admin rule); a name marks them.
                let admin = body["scopes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == "admin");
                entry.name = if admin { "admin".into() } else { String::new() };
            }
            _ => {}
        }
    }
    let mut implied = SideTables::default();
    for ((kind, id), object) in live.iter().filter(|(_, o)| !o.deleted) {
        match kind.as_str() {
            "SshKeypair" => {
                implied
                    .names
                    .push(("ssh-keypair".into(), object.name.to_lowercase(), id.clone()));
                if object.sealed {
                    implied.data_keys.push(id.clone());
                }
            }
            "SshConnection" => {
                implied.names.push((
                    "ssh-connection".into(),
                    object.name.to_lowercase(),
                    id.clone(),
                ));
                implied.names.push((
                    "ssh-connection-alias".into(),
                    credgate::connections::ssh_config_alias(&object.name, id),
                    id.clone(),
                ));
                implied.dependencies.push((
                    object.keypair.clone().unwrap(),
                    "ssh-connection".into(),
                    id.clone(),
                ));
            }
            "ApiKey" if object.name == "admin" => {
                implied
                    .names
                    .push(("admin-key".into(), id.clone(), id.clone()));
            }
            _ => {}
        }
    }
    implied.names.sort();
    implied.dependencies.sort();
    implied.data_keys.sort();
    implied
}

pub async fn assert_consistent(db: &TestDb, context: &str) -> SideTables {
    let tables = side_tables(&db.url).await;
    let implied = implied_by(&raw_events(&db.url).await);
    assert_eq!(
        tables, implied,
        "side tables disagree with the event log {context}"
    );
    tables
}

/// The reserved display names (aliases are checked by `assert_consistent`).
fn names(tables: &SideTables) -> BTreeSet<String> {
    tables
        .names
        .iter()
        .filter(|(kind, _, _)| kind != "ssh-connection-alias" && kind != "admin-key")
        .map(|(_, name, _)| name.clone())
        .collect()
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// A keypair "alpha" and a connection "charlie" that uses it.
async fn baseline(app: &TestApp) -> (String, String) {
    let keypair: Value = send(
        app,
        reqwest::Method::POST,
        &format!("{KEYPAIRS}/generate"),
        Some(json!({"name": "alpha"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let keypair_id = keypair["id"].as_str().unwrap().to_owned();
    let host_key = keypair["public_key"].as_str().unwrap().to_owned();
    let connection = send(
        app,
        reqwest::Method::POST,
        CONNECTIONS,
        Some(
            json!({"name": "charlie", "host": "127.0.0.1", "keypair_id": keypair_id,
                    "remote_host_key": host_key}),
        ),
    )
    .await;
    assert_eq!(connection.status(), StatusCode::CREATED);
    let connection: Value = connection.json().await.unwrap();
    (keypair_id, connection["id"].as_str().unwrap().to_owned())
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    CreateKeypair,
    /// Rename and re-comment in one PATCH.
    UpdateKeypair,
    CreateConnectionWithNewKeypair,
    RenameConnection,
    DeleteKeypairWithCascade,
}

impl Operation {
    const ALL: [Operation; 5] = [
        Operation::CreateKeypair,
        Operation::UpdateKeypair,
        Operation::CreateConnectionWithNewKeypair,
        Operation::RenameConnection,
        Operation::DeleteKeypairWithCascade,
    ];

    async fn run(self, app: &TestApp, keypair: &str, connection: &str) -> Response {
        use reqwest::Method;
        match self {
            Operation::CreateKeypair => {
                send(
                    app,
                    Method::POST,
                    &format!("{KEYPAIRS}/generate"),
                    Some(json!({"name": "bravo"})),
                )
                .await
            }
            Operation::UpdateKeypair => {
                send(
                    app,
                    Method::PATCH,
                    &format!("{KEYPAIRS}/{keypair}"),
                    Some(json!({"name": "alpha two", "comment": "second"})),
                )
                .await
            }
            Operation::CreateConnectionWithNewKeypair => {
                let public: Value = send(app, Method::GET, &format!("{KEYPAIRS}/{keypair}"), None)
                    .await
                    .json()
                    .await
                    .unwrap();
                send(
                    app,
                    Method::POST,
                    CONNECTIONS,
                    Some(json!({"name": "delta", "host": "127.0.0.1",
                                "generate_keypair": {"name": "delta key"},
                                "remote_host_key": public["public_key"]})),
                )
                .await
            }
            Operation::RenameConnection => {
                send(
                    app,
                    Method::PATCH,
                    &format!("{CONNECTIONS}/{connection}"),
                    Some(json!({"name": "charlie two"})),
                )
                .await
            }
            Operation::DeleteKeypairWithCascade => {
                send(
                    app,
                    Method::DELETE,
                    &format!("{KEYPAIRS}/{keypair}?cascade=true"),
                    None,
                )
                .await
            }
        }
    }

    /// The names that exist once the operation has taken effect.
    fn names_after(self) -> &'static [&'static str] {
        match self {
            Operation::CreateKeypair => &["alpha", "bravo", "charlie"],
            Operation::UpdateKeypair => &["alpha two", "charlie"],
            Operation::CreateConnectionWithNewKeypair => {
                &["alpha", "charlie", "delta", "delta key"]
            }
            Operation::RenameConnection => &["alpha", "charlie two"],
            Operation::DeleteKeypairWithCascade => &[],
        }
    }
}

fn name_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Every operation, stopped at every step of its commit: nothing half-made, and the
/// retry (or the state after a commit that did happen) is right.
async fn a_commit_stopped_at_any_step_leaves_nothing_half_made(backend: Backend) {
    for operation in Operation::ALL {
        for step in [
            CommitStep::Begin,
            CommitStep::AfterEvents,
            CommitStep::AfterSideTables,
            CommitStep::AfterCommit,
        ] {
            let context = format!("({operation:?} stopped at {step:?})");
            let db = TestDb::create(backend).await;
            let app = TestApp::spawn(&db.url).await;
            let (keypair, connection) = baseline(&app).await;
            let before = assert_consistent(&db, &context).await;
            assert_eq!(names(&before), name_set(&["alpha", "charlie"]));

            app.failpoints.arm(step, 0);
            let stopped = operation.run(&app, &keypair, &connection).await;
            assert!(
                !app.failpoints.is_armed(),
                "the failpoint was not reached {context}"
            );
            assert!(
                stopped.status().is_server_error(),
                "{context}: {}",
                stopped.status()
            );
            let after = assert_consistent(&db, &context).await;
            if step == CommitStep::AfterCommit {
                // The change is durable; only the answer was lost.
                assert_eq!(
                    names(&after),
                    name_set(operation.names_after()),
                    "{context}"
                );
            } else {
                assert_eq!(
                    after, before,
                    "a stopped commit changed something {context}"
                );
                let retried = operation.run(&app, &keypair, &connection).await;
                assert!(
                    retried.status().is_success(),
                    "the retry failed {context}: {}",
                    retried.status()
                );
                let done = assert_consistent(&db, &context).await;
                assert_eq!(names(&done), name_set(operation.names_after()), "{context}");
            }
        }
    }
}

/// Renaming to a name that normalises to the current one keeps it reserved: nobody else
/// can take it afterwards (keypairs and connections alike).
async fn renaming_to_the_same_name_keeps_it_reserved(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let (keypair, connection) = baseline(&app).await;
    use reqwest::Method;
    for (path, name) in [
        (format!("{KEYPAIRS}/{keypair}"), "ALPHA"),
        (format!("{KEYPAIRS}/{keypair}"), "ALPHA"),
        (format!("{CONNECTIONS}/{connection}"), "Charlie"),
        (format!("{CONNECTIONS}/{connection}"), "Charlie"),
    ] {
        let renamed = send(&app, Method::PATCH, &path, Some(json!({"name": name}))).await;
        assert_eq!(renamed.status(), StatusCode::OK, "{path} → {name}");
        let body: Value = renamed.json().await.unwrap();
        assert_eq!(body["name"], name);
    }
    assert_consistent(&db, "after same-name renames").await;

    let taken = send(
        &app,
        Method::POST,
        &format!("{KEYPAIRS}/generate"),
        Some(json!({"name": "alpha"})),
    )
    .await;
    assert_eq!(
        problem(taken, StatusCode::CONFLICT).await["code"],
        "name_taken"
    );
    let host_key: Value = send(&app, Method::GET, &format!("{KEYPAIRS}/{keypair}"), None)
        .await
        .json()
        .await
        .unwrap();
    let taken = send(
        &app,
        Method::POST,
        CONNECTIONS,
        Some(
            json!({"name": "charlie", "host": "127.0.0.1", "keypair_id": keypair,
                    "remote_host_key": host_key["public_key"]}),
        ),
    )
    .await;
    assert_eq!(
        problem(taken, StatusCode::CONFLICT).await["code"],
        "name_taken"
    );
}

/// A keypair PATCH that renames and re-comments is one command: when it is refused, the
/// name did not change either.
async fn a_refused_keypair_patch_changes_nothing(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let (keypair, _) = baseline(&app).await;
    let path = format!("{KEYPAIRS}/{keypair}");
    let before = raw_events(&db.url).await.len();
    app.failpoints.arm(CommitStep::AfterEvents, 0);
    let stopped = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"name": "renamed", "comment": "new"})),
    )
    .await;
    assert!(stopped.status().is_server_error());
    assert_eq!(raw_events(&db.url).await.len(), before);
    let current: Value = send(&app, reqwest::Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["name"], "alpha");
    assert_eq!(current["comment"], "");
    let done = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"name": "renamed", "comment": "new"})),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    let kinds: Vec<String> = raw_events(&db.url).await[before..]
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(kinds, ["KeypairRenamed", "KeypairCommentChanged"]);
    assert_eq!(
        raw_events(&db.url).await[before].sequence + 1,
        raw_events(&db.url).await[before + 1].sequence
    );
}

on_both_stores!(
    a_commit_stopped_at_any_step_leaves_nothing_half_made,
    renaming_to_the_same_name_keeps_it_reserved,
    a_refused_keypair_patch_changes_nothing,
);
