//! The real credgate app on port 0, driven over HTTP.

use std::sync::Arc;
use std::time::Duration;

use credgate::config::{DatabaseUrl, Settings};
use credgate::gateway::{Application, StartOptions};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::clock::ManualClock;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The bootstrap admin key (empty when this instance joined a store that had keys).
    pub admin_key: String,
    pub data_dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    /// Makes this instance's next commit fail at a chosen step.
    pub failpoints: credgate::store::Failpoints,
    /// `http://…` of `GET /metrics` on its own address, when `metrics.listen` names one.
    pub metrics_base: Option<String>,
    handle: actix_web::dev::ServerHandle,
}

#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub id: String,
    pub secret: String,
}

pub fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        credgate::telemetry::init(credgate::config::LogFormat::Text, "debug");
    }
}

impl TestApp {
    pub async fn spawn(database_url: &str) -> TestApp {
        Self::spawn_with(database_url, |_| {}).await
    }

    /// Starts an instance on `database_url`; `tweak` adjusts its settings first.
    pub async fn spawn_with(database_url: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        init_test_logging();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::defaults_in(data_dir.path());
        settings.listen = "127.0.0.1:0".parse().expect("address");
        settings.database_url = DatabaseUrl::parse(database_url).expect("database url");
        settings.workers = Some(1);
        settings.projection_poll_interval = Duration::from_millis(50);
        tweak(&mut settings);
        let clock = Arc::new(ManualClock::starting_now());
        let options = StartOptions {
            bootstrap_admin_key: None,
            master_key: None,
            clock: clock.clone(),
            ..StartOptions::default()
        };
        let app = Application::build(settings, options)
            .await
            .expect("app starts");
        let base = app.base_url();
        let admin_key = app
            .admin_key_file()
            .map(|path| {
                std::fs::read_to_string(path)
                    .expect("admin key file")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        let handle = app.handle();
        let failpoints = app.failpoints();
        let metrics_base = app
            .metrics_addr()
            .map(|address| format!("http://{address}"));
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                // Never reuse a connection the server may be closing: actix closes an
                // idle keep-alive connection after 5 s, and a POST sent on it at that
                // moment fails with "IncompleteMessage" (seen once, on a loaded
                // machine, in `a_connection_is_tested_pinned_and_usable_by_stock_ssh`).
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("http client"),
            admin_key,
            data_dir,
            clock,
            metrics_base,
            failpoints,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn with_key(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        self.with_key(self.client.get(self.url(path)), key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> Response {
        self.with_key(self.client.post(self.url(path)), key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str, key: Option<&str>) -> Response {
        self.with_key(self.client.delete(self.url(path)), key)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates an API key through the API with the admin key.
    pub async fn create_key(&self, name: &str, scopes: &[&str]) -> CreatedKey {
        let response = self
            .post_json(
                "/api/v1/api-keys",
                Some(&self.admin_key),
                &json!({"name": name, "scopes": scopes}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        CreatedKey {
            id: body["id"].as_str().expect("id").to_owned(),
            secret: body["secret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Every API key in the list, following cursors.
    pub async fn list_keys(&self, key: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut path = "/api/v1/api-keys?limit=2".to_owned();
        loop {
            let response = self.get(&path, Some(key)).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.expect("json");
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/api-keys?limit=2&cursor={cursor}"),
                None => return items,
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for the
        // outcome, which the ending test runtime would never drive.
        drop(self.handle.stop(false));
    }
}

/// The codes `openapi/openapi.json` declares for `Problem.code`.
pub fn documented_problem_codes() -> &'static [String] {
    static CODES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CODES.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
        let text = std::fs::read_to_string(path).expect("openapi/openapi.json");
        let document: Value = serde_json::from_str(&text).expect("valid JSON");
        document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
            .as_array()
            .expect("Problem.code is an enum")
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    })
}

/// Asserts a problem response (its status, media type, a documented code, the `type`
/// and `title` that follow from them, the request id) and returns its body.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status.as_u16());
    let code = body["code"].as_str().unwrap_or("");
    assert!(
        documented_problem_codes().iter().any(|c| c == code),
        "problem code {code:?} is not in the document's `Problem.code` enum"
    );
    assert_eq!(body["type"], format!("urn:credgate:problem:{code}"));
    assert_eq!(
        body["title"],
        status.canonical_reason().unwrap_or("Error"),
        "title"
    );
    assert!(!header_id.is_empty());
    assert_eq!(body["request_id"], header_id.as_str());
    body
}

/// Polls `check` until it returns `Some`, failing after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
