//! Operational metrics in the Prometheus text format (`GET /metrics`): every request by
//! route, method and status, with a latency histogram; the counters plugins keep for
//! their calls to other hosts (`credgate_ssh_operations_total`); and, read at each
//! scrape, the event log's head, each projection's lag behind it, the database pool and
//! the process's memory. Scope-free like the health routes; `metrics.listen` serves it
//! on an address of its own instead (one a scraper reaches and the API's users do not).
//!
//! Every label value comes from a bounded set (a route pattern, a known method, a
//! status, a plugin's fixed outcome names), so no request can grow the tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::store::{ProjectionRunner, Store};

/// The text exposition format's media type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A labelled counter that a plugin increments ([`Metrics::count`]).
#[derive(Debug)]
pub struct CounterFamily {
    pub name: &'static str,
    pub help: &'static str,
}

/// Calls to other hosts: host-key scans, connection tests and pairings, by outcome
/// (`ok`, or the problem or test error code).
pub const SSH_OPERATIONS: CounterFamily = CounterFamily {
    name: "credgate_ssh_operations_total",
    help: "SSH operations (scan, test, pairing) by outcome: ok, or the failure's code.",
};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Requests at or under each bucket's bound (not cumulative; summed when shown).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(slot) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[slot] += 1;
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

type CounterKey = (&'static str, Vec<(&'static str, String)>);

/// What this process has counted since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, Histogram>>,
    counters: Mutex<BTreeMap<CounterKey, (u64, &'static str)>>,
}

impl Metrics {
    /// Counts one request that `route` (its pattern, e.g. `/api/v1/ssh-keypairs/{id}`)
    /// answered with `status` after `elapsed`.
    pub fn observe_request(&self, route: String, method: &str, status: u16, elapsed: Duration) {
        let key = RequestKey {
            route,
            method: known_method(method),
            status,
        };
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.entry(key).or_default().observe(elapsed);
    }

    /// Adds one to `family` with these labels (values from a fixed set: the caller's
    /// operation and outcome names).
    pub fn count(&self, family: &'static CounterFamily, labels: &[(&'static str, &str)]) {
        let labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters
            .entry((family.name, labels))
            .or_insert((0, family.help))
            .0 += 1;
    }

    /// The counters and histograms, in the text format.
    fn render_counted(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        family_header(
            out,
            "credgate_http_requests_total",
            "counter",
            "HTTP requests answered, by route pattern, method and status.",
        );
        for (key, histogram) in &requests {
            let _ = writeln!(
                out,
                "credgate_http_requests_total{} {}",
                request_labels(key, None),
                histogram.count
            );
        }
        family_header(
            out,
            "credgate_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer, by route pattern, method and status.",
        );
        for (key, histogram) in &requests {
            let mut cumulative = 0;
            for (bound, in_bucket) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += in_bucket;
                let _ = writeln!(
                    out,
                    "credgate_http_request_duration_seconds_bucket{} {cumulative}",
                    request_labels(key, Some(&bound.to_string()))
                );
            }
            let _ = writeln!(
                out,
                "credgate_http_request_duration_seconds_bucket{} {}",
                request_labels(key, Some("+Inf")),
                histogram.count
            );
            let _ = writeln!(
                out,
                "credgate_http_request_duration_seconds_sum{} {}",
                request_labels(key, None),
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "credgate_http_request_duration_seconds_count{} {}",
                request_labels(key, None),
                histogram.count
            );
        }
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut described: Vec<&'static str> = Vec::new();
        for ((name, labels), (value, help)) in &counters {
            if !described.contains(name) {
                family_header(out, name, "counter", help);
                described.push(name);
            }
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let _ = writeln!(out, "{name}{} {value}", label_set(&labels));
        }
        // A family with no sample yet is still announced, so dashboards find it.
        if !described.contains(&SSH_OPERATIONS.name) {
            family_header(out, SSH_OPERATIONS.name, "counter", SSH_OPERATIONS.help);
        }
    }
}

/// Methods outside this list are counted as `other` (a client may send any token).
fn known_method(method: &str) -> &'static str {
    [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ]
    .into_iter()
    .find(|known| *known == method)
    .unwrap_or("other")
}

fn family_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn request_labels(key: &RequestKey, le: Option<&str>) -> String {
    let status = key.status.to_string();
    let mut labels = vec![
        ("route", key.route.as_str()),
        ("method", key.method),
        ("status", status.as_str()),
    ];
    if let Some(le) = le {
        labels.push(("le", le));
    }
    label_set(&labels)
}

/// `{a="1",b="x\"y"}` with the format's escapes (backslash, quote, newline).
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Counts every request the app answers. The route is the pattern that matched (a
/// request to no route counts as `unmatched`), so ids never become labels.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().as_str().to_owned();
    let response = next.call(req).await;
    if let Some(metrics) = metrics {
        let (route, status) = match &response {
            Ok(response) => (
                response.request().match_pattern(),
                response.status().as_u16(),
            ),
            Err(error) => (None, error.as_response_error().status_code().as_u16()),
        };
        let route = route.unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe_request(route, &method, status, started.elapsed());
    }
    response
}

/// `GET /metrics`.
pub async fn serve_metrics(
    metrics: web::Data<Metrics>,
    store: web::Data<Store>,
    projections: web::Data<ProjectionRunner>,
) -> HttpResponse {
    let mut out = String::new();
    metrics.render_counted(&mut out);
    render_store(&mut out, &store, &projections).await;
    render_process(&mut out);
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(out)
}

/// The log's head, each projection's lag, and the pool. A store that does not answer
/// shows as `credgate_store_up 0` (and no head or lag), not as a failed scrape.
async fn render_store(out: &mut String, store: &Store, projections: &ProjectionRunner) {
    let head = store.newest_position().await;
    let checkpoints = store.projection_checkpoints().await;
    family_header(
        out,
        "credgate_store_up",
        "gauge",
        "1 when the store answered this scrape's queries.",
    );
    let up = head.is_ok() && checkpoints.is_ok();
    let _ = writeln!(out, "credgate_store_up {}", u8::from(up));
    if let (Ok(head), Ok(checkpoints)) = (head, checkpoints) {
        family_header(
            out,
            "credgate_event_log_head_position",
            "gauge",
            "Global position of the newest event in the log.",
        );
        let _ = writeln!(out, "credgate_event_log_head_position {head}");
        family_header(
            out,
            "credgate_projection_lag_events",
            "gauge",
            "Events in the log that a projection has not applied yet.",
        );
        for name in projections.projection_names() {
            let applied = checkpoints
                .iter()
                .find(|(projection, _)| projection == name)
                .map_or(0, |(_, position)| *position);
            let _ = writeln!(
                out,
                "credgate_projection_lag_events{} {}",
                label_set(&[("projection", name)]),
                (head - applied).max(0)
            );
        }
    }
    let pool = store.pool_usage();
    family_header(
        out,
        "credgate_db_pool_connections",
        "gauge",
        "Database connections held by the pool, by state.",
    );
    let _ = writeln!(
        out,
        "credgate_db_pool_connections{{state=\"in_use\"}} {}",
        pool.open.saturating_sub(pool.idle)
    );
    let _ = writeln!(
        out,
        "credgate_db_pool_connections{{state=\"idle\"}} {}",
        pool.idle
    );
    family_header(
        out,
        "credgate_db_pool_max_connections",
        "gauge",
        "The most connections the pool opens (`database.max_connections`).",
    );
    let _ = writeln!(out, "credgate_db_pool_max_connections {}", pool.max);
}

/// Resident memory, from `/proc/self/status` (Linux); left out where it cannot be read.
fn render_process(out: &mut String) {
    let resident = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(kb) = resident {
        family_header(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the credgate process.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {}", kb * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_route_method_and_status_with_cumulative_buckets() {
        let metrics = Metrics::default();
        let route = "/api/v1/ssh-keypairs/{id}";
        metrics.observe_request(route.into(), "GET", 200, Duration::from_millis(3));
        metrics.observe_request(route.into(), "GET", 200, Duration::from_millis(30));
        metrics.observe_request(route.into(), "BREW", 405, Duration::from_secs(20));
        let mut out = String::new();
        metrics.render_counted(&mut out);
        let labels = r#"route="/api/v1/ssh-keypairs/{id}",method="GET",status="200""#;
        assert!(
            out.contains(&format!("credgate_http_requests_total{{{labels}}} 2")),
            "{out}"
        );
        for (le, count) in [
            ("0.005", 1),
            ("0.025", 1),
            ("0.05", 2),
            ("10", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "credgate_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
            );
            assert!(out.contains(&line), "{line} in {out}");
        }
        // An unknown method is `other`, and a request slower than every bound is in
        // +Inf only.
        let other = r#"route="/api/v1/ssh-keypairs/{id}",method="other",status="405""#;
        assert!(out.contains(&format!(
            "credgate_http_request_duration_seconds_bucket{{{other},le=\"10\"}} 0\n"
        )));
        assert!(out.contains(&format!(
            "credgate_http_request_duration_seconds_bucket{{{other},le=\"+Inf\"}} 1\n"
        )));
    }

    #[test]
    fn counters_keep_their_labels_and_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.count(&SSH_OPERATIONS, &[("operation", "scan"), ("outcome", "ok")]);
        metrics.count(&SSH_OPERATIONS, &[("operation", "scan"), ("outcome", "ok")]);
        metrics.count(
            &SSH_OPERATIONS,
            &[("operation", "test"), ("outcome", "a\"b\\c\nd")],
        );
        let mut out = String::new();
        metrics.render_counted(&mut out);
        assert!(
            out.contains("credgate_ssh_operations_total{operation=\"scan\",outcome=\"ok\"} 2\n")
        );
        assert!(out.contains(
            "credgate_ssh_operations_total{operation=\"test\",outcome=\"a\\\"b\\\\c\\nd\"} 1\n"
        ));
        assert_eq!(
            out.matches("# TYPE credgate_ssh_operations_total counter")
                .count(),
            1
        );
    }
}
