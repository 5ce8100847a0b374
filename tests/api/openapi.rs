//! The OpenAPI contract: committed, generated from the handlers, served, and browsable
//! offline.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Backend, TestApp, TestDb};

fn committed() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("openapi/openapi.json"))
        .expect("valid JSON")
}

#[test]
fn the_committed_document_matches_the_code() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let on_disk = std::fs::read_to_string(path).unwrap();
    assert!(
        printed == on_disk,
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

/// Operations that take a token of their own instead of an API key (an unknown id
/// answers like a wrong token, so they document no 404).
const TOKEN_OPERATIONS: &[(&str, &str)] = &[("delete", "/api/v1/pairing/ssh/{id}")];

#[test]
fn every_operation_declares_its_key_its_errors_and_descriptions() {
    let document = committed();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/api-keys"));
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            // Generated method docs: a one-line summary, and a description.
            let summary = operation["summary"].as_str().unwrap_or("");
            assert!(
                !summary.is_empty() && !summary.contains('\n') && summary.len() <= 90,
                "{method} {path}: summary {summary:?}"
            );
            assert!(
                operation["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty()),
                "{method} {path} has no description"
            );
            if path.starts_with("/api/v1/") {
                let by_token = TOKEN_OPERATIONS.contains(&(method.as_str(), path.as_str()));
                let expected = if by_token {
                    serde_json::json!([{}])
                } else {
                    serde_json::json!([{"bearer": []}])
                };
                assert_eq!(operation["security"], expected, "{method} {path}");
                for status in ["400", "401", "403", "503"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} documents no {status}"
                    );
                }
                if operation.get("requestBody").is_some() {
                    for status in ["413", "415", "422"] {
                        assert!(
                            responses.contains_key(status),
                            "{method} {path} takes a body but documents no {status}"
                        );
                    }
                }
                if path.contains("{id}") && !by_token {
                    assert!(
                        responses.contains_key("404"),
                        "{method} {path} names a resource but documents no 404"
                    );
                }
                for (status, response) in responses {
                    if status.starts_with('2') {
                        continue;
                    }
                    let problem = match response.get("$ref").and_then(Value::as_str) {
                        Some(reference) => {
                            let name = reference.trim_start_matches("#/components/responses/");
                            &document["components"]["responses"][name]
                        }
                        None => response,
                    };
                    assert_eq!(
                        problem["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
            for (status, response) in responses {
                let described = match response.get("$ref").and_then(Value::as_str) {
                    Some(reference) => {
                        let name = reference.trim_start_matches("#/components/responses/");
                        document["components"]["responses"][name]["description"].clone()
                    }
                    None => response["description"].clone(),
                };
                assert!(
                    described.as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description (OpenAPI requires one)"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_service_serves_the_document_and_an_offline_swagger_ui() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let served: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(served, committed());

    let index = app.get("/docs/", None).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = index.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} not referenced");
        let response = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let text = response.text().await.unwrap();
        if asset == "swagger-initializer.js" {
            assert!(text.contains("/api/openapi.json"));
        }
        match asset {
            // SVG namespace URIs inside data: URLs are names, not downloads.
            "swagger-ui.css" => {
                assert!(
                    !text.contains("url(http") && !text.contains("@import"),
                    "{asset} loads from the network"
                );
            }
            "swagger-initializer.js" => {
                assert!(
                    !text.contains("https://") && !text.contains("http://"),
                    "{asset} loads from the network"
                );
            }
            _ => {}
        }
    }
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "the page loads from the network"
    );
}

/// Every documented path answers a method it does not document with 405 and `Allow`
/// listing exactly the documented ones — also where a parameterised sibling would take
/// the request (`GET /ssh-keypairs/generate` is not a read of keypair "generate").
#[tokio::test]
async fn undocumented_methods_get_405_with_allow_on_every_path() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::spawn(&db.url).await;
    let document = committed();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        documented.sort();
        let url = app.url(&path.replace("{id}", &uuid::Uuid::new_v4().to_string()));
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.iter().any(|m| m == method) {
                continue;
            }
            let response = app
                .client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    &url,
                )
                .bearer_auth(&app.admin_key)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = response.headers()["allow"].to_str().unwrap().to_owned();
            let mut allowed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
            allowed.sort();
            assert_eq!(allowed, documented, "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked}");
}

/// Every schema object and parameter in the document, with where it is.
fn schemas_in(value: &Value, at: String, found: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("type") || map.contains_key("pattern") {
                found.push((at.clone(), value.clone()));
            }
            for (key, inner) in map {
                schemas_in(inner, format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                schemas_in(inner, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The patterns the document declares are the rules the server applies: a generated
/// client's or fuzzer's value that matches is accepted, one that does not is refused.
#[test]
fn declared_patterns_are_the_servers_rules() {
    let document = committed();
    let mut schemas = Vec::new();
    schemas_in(&document, String::new(), &mut schemas);

    // Every `name` (1–120 characters) carries the `Name::parse` pattern.
    let names: Vec<_> = schemas
        .iter()
        .filter(|(at, s)| {
            (at.ends_with("/properties/name") || at.ends_with("/properties/label"))
                && s["maxLength"] == 120
        })
        .collect();
    assert!(names.len() >= 9, "{} name fields", names.len());
    for (at, schema) in names {
        assert_eq!(
            schema["pattern"].as_str(),
            Some(credgate::names::NAME_PATTERN),
            "{at}"
        );
    }

    // Cursors, If-Match and the audit head: one pattern each, and the server's parser
    // agrees with it on every probe.
    let parameter_patterns = |name: &str| -> Vec<String> {
        let mut patterns: Vec<String> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .flat_map(|op| op["parameters"].as_array().cloned().unwrap_or_default())
            .filter(|p| p["name"] == name)
            .map(|p| p["schema"]["pattern"].as_str().unwrap_or("").to_owned())
            .collect();
        patterns.sort();
        patterns.dedup();
        patterns
    };
    let cursor = parameter_patterns("cursor");
    assert_eq!(cursor.len(), 1, "{cursor:?}");
    let cursor = regex::Regex::new(&cursor[0]).unwrap();
    for probe in [
        "0",
        "1",
        "42",
        "007",
        "",
        "-1",
        "+1",
        "1a",
        "999999999999999999",
        "9999999999999999999",
        "djE6MTI",
        " 1",
    ] {
        assert_eq!(
            cursor.is_match(probe),
            credgate::gateway::pagination::decode(probe).is_some(),
            "cursor {probe:?}"
        );
    }
    let head = parameter_patterns("head");
    assert_eq!(head.len(), 1, "{head:?}");
    let head = regex::Regex::new(&head[0]).unwrap();
    let mac = "ab".repeat(32);
    for probe in [
        format!("1:{mac}"),
        format!("0:{mac}"),
        format!("01:{mac}"),
        format!("+1:{mac}"),
        format!("123456789012345678:{mac}"),
        format!("1234567890123456789:{mac}"),
        format!("5:{}", mac.to_uppercase()),
        format!("5:{}", &mac[1..]),
        format!("5:{mac}0"),
        "5".to_owned(),
    ] {
        assert_eq!(
            head.is_match(&probe),
            probe.parse::<credgate::store::ChainHead>().is_ok(),
            "head {probe:?}"
        );
    }
    let if_match = parameter_patterns("If-Match");
    assert_eq!(if_match.len(), 1, "{if_match:?}");
    assert_eq!(
        if_match[0], r#"^(\*|"[0-9]{1,18}"|[0-9]{1,18})$"#,
        "the form versioning::IfMatch reads"
    );
}

/// Every request body and every response body of every operation carries an example
/// (what to send, what comes back); redocly checks each against its schema in
/// `scripts/contract` (`no-invalid-media-type-examples` is an error there).
#[test]
fn every_body_of_every_operation_has_an_example() {
    let document = committed();
    let mut missing = Vec::new();
    let mut bodies = 0;
    let resolve = |value: &Value| -> Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/responses/");
                document["components"]["responses"][name].clone()
            }
            None => value.clone(),
        }
    };
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut contents = Vec::new();
            if let Some(body) = operation.get("requestBody") {
                contents.push(("request".to_owned(), body["content"].clone()));
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                contents.push((status.clone(), resolve(response)["content"].clone()));
            }
            for (which, content) in contents {
                for (media_type, media) in content.as_object().into_iter().flatten() {
                    bodies += 1;
                    if media.get("example").is_none() {
                        missing.push(format!("{method} {path} {which} {media_type}"));
                    }
                }
            }
        }
    }
    assert!(bodies > 100, "only {bodies} bodies found");
    assert!(missing.is_empty(), "no example: {missing:#?}");
}

/// `Problem.code` lists every code, each explained in the README's table (and the
/// table lists no code the server does not have).
#[test]
fn every_problem_code_is_declared_and_explained_in_the_readme() {
    let declared: std::collections::BTreeSet<String> = crate::support::documented_problem_codes()
        .iter()
        .cloned()
        .collect();
    assert!(declared.contains("validation_failed") && declared.contains("in_use"));
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("\n### Problem codes\n")
        .nth(1)
        .expect("README.md has a `### Problem codes` section");
    let explained: std::collections::BTreeSet<String> = table
        .lines()
        .take_while(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('`').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(
        declared, explained,
        "README's problem-code table differs from the document"
    );
}
