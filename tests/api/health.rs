use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both_stores;
use crate::support::{Backend, TestApp, TestDb};

async fn live_and_ready_need_no_key(backend: Backend) {
    let db = TestDb::create(backend).await;
    let app = TestApp::spawn(&db.url).await;
    for path in ["/health/live", "/health/ready"] {
        let response = app.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

on_both_stores!(live_and_ready_need_no_key);
