//! `/api/v1/ssh-keypairs`, checked against the stock OpenSSH tools.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::once_on_sqlite;
use crate::support::db::raw_events;
use crate::support::ssh_tools::{
    fingerprint_of, key_part, make_key, ssh_keygen, with_bcrypt_rounds, write_key,
};
use crate::support::{Backend, TestApp, TestDb, problem};

const KEYPAIRS: &str = "/api/v1/ssh-keypairs";

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.post_json(path, Some(&app.admin_key), &body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn export(app: &TestApp, id: &str, passphrase: Option<&str>) -> Value {
    let body = match passphrase {
        Some(p) => json!({"passphrase": p}),
        None => json!({}),
    };
    let response = app
        .post_json(
            &format!("{KEYPAIRS}/{id}/private-key"),
            Some(&app.admin_key),
            &body,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn every_algorithm_and_size_interoperates_with_ssh_keygen(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("ed25519", None, 256),
        ("ecdsa-p256", None, 256),
        ("ecdsa-p384", Some(384), 384),
        ("ecdsa-p521", None, 521),
        ("rsa", Some(2048), 2048),
        ("rsa", None, 3072),
        ("rsa", Some(4096), 4096),
    ];
    for (algorithm, bits, expected_bits) in cases {
        let mut request = json!({"name": format!("{algorithm} {expected_bits}"), "algorithm": algorithm, "comment": "job@nas"});
        if let Some(bits) = bits {
            request["bits"] = json!(bits);
        }
        let keypair = created(&app, &format!("{KEYPAIRS}/generate"), request).await;
        assert_eq!(keypair["bits"], expected_bits, "{algorithm}");
        assert_eq!(keypair["algorithm"], algorithm);
        assert_eq!(keypair["has_private_key"], true);
        assert!(keypair.get("private_key").is_none());
        let id = keypair["id"].as_str().unwrap();

        let exported = export(&app, id, None).await;
        assert_eq!(exported["encrypted"], false);
        let path = write_key(
            dir.path(),
            &format!("{algorithm}-{expected_bits}"),
            exported["private_key"].as_str().unwrap(),
        );
        let derived = ssh_keygen(&["-y", "-f", path.to_str().unwrap()]);
        assert_eq!(
            key_part(&derived),
            key_part(keypair["public_key"].as_str().unwrap()),
            "{algorithm}"
        );
        assert_eq!(fingerprint_of(&path), keypair["fingerprint"], "{algorithm}");
        let size_line = ssh_keygen(&["-l", "-f", path.to_str().unwrap()]);
        assert!(
            size_line.starts_with(&format!("{expected_bits} ")),
            "{size_line}"
        );
    }

    // An export with a passphrase opens only with it.
    let keypair = created(
        &app,
        &format!("{KEYPAIRS}/generate"),
        json!({"name": "locked"}),
    )
    .await;
    let exported = export(&app, keypair["id"].as_str().unwrap(), Some("correct horse")).await;
    assert_eq!(exported["encrypted"], true);
    let path = write_key(
        dir.path(),
        "locked",
        exported["private_key"].as_str().unwrap(),
    );
    let derived = ssh_keygen(&["-y", "-P", "correct horse", "-f", path.to_str().unwrap()]);
    assert_eq!(
        key_part(&derived),
        key_part(keypair["public_key"].as_str().unwrap())
    );
    let wrong = std::process::Command::new("ssh-keygen")
        .args(["-y", "-P", "wrong", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!wrong.status.success());

    // Every export is on record, with who asked.
    let exports: Vec<_> = raw_events(&db.url)
        .await
        .into_iter()
        .filter(|e| e.event_type == "PrivateKeyExported")
        .collect();
    assert_eq!(exports.len(), cases.len() + 1);
    assert!(
        exports
            .iter()
            .all(|e| e.metadata["actor_name"] == "bootstrap admin"
                && e.metadata["request_id"].is_string())
    );
}

async fn keys_made_by_ssh_keygen_import_in_every_format(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let pass = "s3cret pass";
    let cases: [(&str, &[&str], Option<&str>, &str); 7] = [
        (
            "openssh",
            &["-t", "ed25519", "-N", ""],
            None,
            "BEGIN OPENSSH PRIVATE KEY",
        ),
        (
            "openssh-encrypted",
            &["-t", "ed25519", "-N", pass],
            Some(pass),
            "BEGIN OPENSSH PRIVATE KEY",
        ),
        (
            "pkcs1",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            None,
            "BEGIN RSA PRIVATE KEY",
        ),
        (
            "pkcs1-encrypted",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", pass],
            Some(pass),
            "Proc-Type: 4,ENCRYPTED",
        ),
        (
            "pkcs8",
            &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", ""],
            None,
            "BEGIN PRIVATE KEY",
        ),
        (
            "pkcs8-encrypted",
            &["-t", "ecdsa", "-b", "256", "-m", "PKCS8", "-N", pass],
            Some(pass),
            "BEGIN ENCRYPTED PRIVATE KEY",
        ),
        (
            "sec1",
            &["-t", "ecdsa", "-b", "384", "-m", "PEM", "-N", ""],
            None,
            "BEGIN EC PRIVATE KEY",
        ),
    ];
    for (label, args, passphrase, marker) in cases {
        let (private, public) = make_key(dir.path(), label, args);
        assert!(
            private.contains(marker),
            "{label} is not in the expected format"
        );
        let keypair = created(
            &app,
            KEYPAIRS,
            json!({"name": label, "private_key": private, "passphrase": passphrase}),
        )
        .await;
        assert_eq!(keypair["has_private_key"], true, "{label}");
        assert_eq!(
            key_part(keypair["public_key"].as_str().unwrap()),
            key_part(&public),
            "{label}"
        );
        assert_eq!(
            keypair["fingerprint"],
            fingerprint_of(&dir.path().join(format!("{label}.pub"))),
            "{label}"
        );
        // What comes back out is the same key, whatever went in.
        let exported = export(&app, keypair["id"].as_str().unwrap(), None).await;
        let path = write_key(
            dir.path(),
            &format!("{label}.out"),
            exported["private_key"].as_str().unwrap(),
        );
        assert_eq!(
            key_part(&ssh_keygen(&["-y", "-f", path.to_str().unwrap()])),
            key_part(&public),
            "{label}"
        );
    }

    // A public key alone, and both halves together.
    let (private, public) = make_key(dir.path(), "halves", &["-t", "ed25519", "-N", ""]);
    let public_only = created(
        &app,
        KEYPAIRS,
        json!({"name": "public only", "public_key": public}),
    )
    .await;
    assert_eq!(public_only["has_private_key"], false);
    assert_eq!(public_only["comment"], "made-by-ssh-keygen");
    let id = public_only["id"].as_str().unwrap();
    let refused = app
        .post_json(
            &format!("{KEYPAIRS}/{id}/private-key"),
            Some(&app.admin_key),
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(refused, StatusCode::CONFLICT).await["code"],
        "no_private_key"
    );
    let both = created(&app, KEYPAIRS, json!({"name": "both halves", "private_key": private, "public_key": public, "comment": "chosen"})).await;
    assert_eq!(both["comment"], "chosen");
    assert!(both["public_key"].as_str().unwrap().ends_with(" chosen"));

    // CRLF line endings and surrounding whitespace; a passphrase for a plain key is ignored.
    let crlf = format!("\r\n  {}  \r\n", private.replace('\n', "\r\n"));
    let tolerant = created(
        &app,
        KEYPAIRS,
        json!({"name": "crlf", "private_key": crlf, "passphrase": "unused"}),
    )
    .await;
    assert_eq!(tolerant["fingerprint"], both["fingerprint"]);
}

async fn bad_keys_are_refused_with_the_field_named(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let (ed, ed_pub) = make_key(dir.path(), "ed", &["-t", "ed25519", "-N", ""]);
    let (_, other_pub) = make_key(dir.path(), "other", &["-t", "ed25519", "-N", ""]);
    let (locked, _) = make_key(dir.path(), "locked", &["-t", "ed25519", "-N", "right"]);
    let (dsa, dsa_pub) = make_key(dir.path(), "dsa", &["-t", "dsa", "-N", ""]);
    let (small_rsa, small_rsa_pub) =
        make_key(dir.path(), "small", &["-t", "rsa", "-b", "1024", "-N", ""]);
    let truncated: String = ed.lines().take(3).collect::<Vec<_>>().join("\n");
    created(
        &app,
        KEYPAIRS,
        json!({"name": "Taken", "public_key": ed_pub}),
    )
    .await;
    let events_before = raw_events(&db.url).await.len();

    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "garbage",
            json!({"name": "a", "private_key": "not a key"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            "truncated",
            json!({"name": "a", "private_key": truncated}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            "dsa",
            json!({"name": "a", "private_key": dsa}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            "dsa public",
            json!({"name": "a", "public_key": dsa_pub}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_key",
        ),
        (
            "rsa 1024",
            json!({"name": "a", "private_key": small_rsa}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            "rsa 1024 public",
            json!({"name": "a", "public_key": small_rsa_pub}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_key",
        ),
        (
            "no passphrase",
            json!({"name": "a", "private_key": locked}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "passphrase",
        ),
        (
            "wrong passphrase",
            json!({"name": "a", "private_key": locked, "passphrase": "wrong"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "passphrase",
        ),
        (
            "absurd bcrypt rounds",
            json!({"name": "a", "private_key": with_bcrypt_rounds(&locked, 1_000_000), "passphrase": "right"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            // At the limit the rounds pass the check; the patched key then does not
            // open with the passphrase (its bytes were encrypted under other rounds).
            "bcrypt rounds at the limit",
            json!({"name": "a", "private_key": with_bcrypt_rounds(&locked, 64), "passphrase": "right"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "passphrase",
        ),
        (
            "bcrypt rounds one over the limit",
            json!({"name": "a", "private_key": with_bcrypt_rounds(&locked, 65), "passphrase": "right"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            "not a pair",
            json!({"name": "a", "private_key": ed, "public_key": other_pub}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_key",
        ),
        (
            "nothing",
            json!({"name": "a"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "private_key",
        ),
        (
            "public garbage",
            json!({"name": "a", "public_key": "ssh-ed25519 AAAA!!"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_key",
        ),
        (
            "empty name",
            json!({"name": "", "public_key": other_pub}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "taken name",
            json!({"name": "TAKEN", "public_key": other_pub}),
            StatusCode::CONFLICT,
            "name",
        ),
        (
            "comment newline",
            json!({"name": "a", "public_key": other_pub, "comment": "x\ny"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "comment",
        ),
        (
            "unknown field",
            json!({"name": "a", "public_key": other_pub, "type": "rsa"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "type",
        ),
    ];
    for (label, body, status, field) in cases {
        let response = app.post_json(KEYPAIRS, Some(&app.admin_key), &body).await;
        let problem = problem(response, status).await;
        assert_eq!(problem["errors"][0]["field"], field, "{label}: {problem}");
    }
    let generate_cases = [
        (json!({"name": "a", "algorithm": "dsa"}), "algorithm"),
        (
            json!({"name": "a", "algorithm": "rsa", "bits": 1024}),
            "bits",
        ),
        (
            json!({"name": "a", "algorithm": "ed25519", "bits": 512}),
            "bits",
        ),
        (json!({"name": "taken"}), "name"),
    ];
    for (body, field) in generate_cases {
        let response = app
            .post_json(&format!("{KEYPAIRS}/generate"), Some(&app.admin_key), &body)
            .await;
        assert!(response.status().is_client_error(), "{body}");
        let problem = problem(
            response,
            if field == "name" {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let huge = json!({"name": "a", "private_key": "A".repeat(70 * 1024)});
    problem(
        app.post_json(KEYPAIRS, Some(&app.admin_key), &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    assert_eq!(
        raw_events(&db.url).await.len(),
        events_before,
        "a refused request wrote an event"
    );
    // A refused name was not left reserved.
    created(
        &app,
        KEYPAIRS,
        json!({"name": "a", "public_key": other_pub}),
    )
    .await;
}

// Key material and its validation do not depend on the store.
once_on_sqlite!(
    every_algorithm_and_size_interoperates_with_ssh_keygen,
    keys_made_by_ssh_keygen_import_in_every_format,
    bad_keys_are_refused_with_the_field_named,
);
