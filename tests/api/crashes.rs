//! `credgate serve` killed with SIGKILL again and again under a bounded write load:
//! every write it acknowledged is there after a restart, and every reservation,
//! dependency and data key belongs to a live object (nothing half-made by a crash).

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::atomicity::assert_consistent;
use crate::on_both_stores;
use crate::support::served::{Served, credgate};
use crate::support::{Backend, TestDb};

const ADMIN: &str = "crash-test-admin-key-0123456789abcdef";
/// base64 of 32 bytes, so every restart opens the same data keys.
const MASTER: &str = "Y3Jhc2gtdGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";
const ROUNDS: usize = 4;
const WRITERS: usize = 4;
/// Kill once this many more writes were acknowledged in a round.
const ACKNOWLEDGED_PER_ROUND: usize = 12;

/// An acknowledged write: where to read it back.
type Acknowledged = Arc<Mutex<Vec<String>>>;

fn start(db: &TestDb, data_dir: &std::path::Path) -> (Served, String) {
    let mut command = credgate();
    command
        .current_dir(data_dir)
        .env("CREDGATE_DATABASE_URL", &db.url)
        .env("CREDGATE_BOOTSTRAP_ADMIN_KEY", ADMIN)
        .env("CREDGATE_MASTER_KEY", MASTER);
    let mut served = Served::start(command);
    let url = served.wait_for_field("url");
    (served, url)
}

/// Writes until the process stops answering: keypairs, and connections that generate
/// their own keypair (two aggregates in one change).
async fn write_until_refused(
    url: String,
    writer: usize,
    round: usize,
    host_key: String,
    acked: Acknowledged,
) {
    let client = reqwest::Client::new();
    for i in 0..200 {
        let (path, body) = if i % 2 == 0 {
            (
                "/api/v1/ssh-keypairs/generate".to_owned(),
                json!({"name": format!("k {round}-{writer}-{i}")}),
            )
        } else {
            (
                "/api/v1/ssh-connections".to_owned(),
                json!({"name": format!("c {round}-{writer}-{i}"), "host": "127.0.0.1",
                       "generate_keypair": {}, "remote_host_key": host_key}),
            )
        };
        let Ok(response) = client
            .post(format!("{url}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
        else {
            return;
        };
        if response.status() != StatusCode::CREATED {
            // A 5xx while the process dies is fine; it was not acknowledged.
            continue;
        }
        let Ok(created) = response.json::<Value>().await else {
            return;
        };
        let id = created["id"].as_str().unwrap();
        acked
            .lock()
            .unwrap()
            .push(format!("{path}/{id}").replace("/generate", ""));
    }
}

async fn acknowledged_writes_survive_sigkill(backend: Backend) {
    let db = TestDb::create(backend).await;
    let data_dir = tempfile::tempdir().unwrap();
    let acked: Acknowledged = Arc::default();
    let client = reqwest::Client::new();

    let (served, url) = start(&db, data_dir.path());
    let seed: Value = client
        .post(format!("{url}/api/v1/ssh-keypairs/generate"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "seed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host_key = seed["public_key"].as_str().unwrap().to_owned();
    let mut served = Some((served, url));

    for round in 0..ROUNDS {
        let (process, url) = match served.take() {
            Some(running) => running,
            None => start(&db, data_dir.path()),
        };
        let target = acked.lock().unwrap().len() + ACKNOWLEDGED_PER_ROUND;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(write_until_refused(
                    url.clone(),
                    w,
                    round,
                    host_key.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        // Kill as soon as enough writes were acknowledged, with others in flight.
        crate::support::eventually(
            std::time::Duration::from_secs(60),
            "writes to be acknowledged",
            || async { (acked.lock().unwrap().len() >= target).then_some(()) },
        )
        .await;
        process.kill();
        for writer in writers {
            writer.await.unwrap();
        }
    }

    let (process, url) = start(&db, data_dir.path());
    let acknowledged = acked.lock().unwrap().clone();
    assert!(acknowledged.len() >= ROUNDS * ACKNOWLEDGED_PER_ROUND);
    for path in &acknowledged {
        let read = client
            .get(format!("{url}{path}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            read.status(),
            StatusCode::OK,
            "acknowledged {path} is missing"
        );
    }
    assert_consistent(&db, "after SIGKILLs").await;
    process.terminate();
}

on_both_stores!(acknowledged_writes_survive_sigkill);
