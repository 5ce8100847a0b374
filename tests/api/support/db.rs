//! Fresh databases per test: a new SQLite file, or a new PostgreSQL database on the server
//! named by `CREDGATE_TEST_DATABASE_URL` (scripts/test sets it), dropped afterwards.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub const DEFAULT_TEST_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn test_server_url() -> String {
    std::env::var("CREDGATE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_SERVER.to_owned())
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let root = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>, // (server url, database name)
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}/credgate.db", dir.path().display()),
                postgres: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let server = test_server_url();
                let name = format!("credgate_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&server).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL tests need a server: {e}. Run scripts/test, or set \
                         CREDGATE_TEST_DATABASE_URL (tried {server})"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                TestDb {
                    url: with_database(&server, &name),
                    postgres: Some((server, name)),
                    _dir: dir,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside any runtime we may block; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
            Ok::<(), std::io::Error>(())
        })
        .join();
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h:1/db?sslmode=disable", "y"),
        "postgres://u@h:1/y?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "z"), "postgres://u@h/z");
}

/// An event as stored, read straight from the events table.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub payload: String,
    pub metadata: serde_json::Value,
    /// The global position.
    pub position: i64,
}

/// Every stored event, in global order.
pub async fn raw_events(database_url: &str) -> Vec<RawEvent> {
    type Row = (String, String, i64, String, String, String, i64);
    let rows: Vec<Row> = if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("sqlite");
        let rows = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, payload, metadata, position \
             FROM events ORDER BY position",
        )
        .fetch_all(&pool)
        .await
        .expect("events");
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.expect("postgres");
        let rows = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, payload::text, metadata::text, \
             position FROM events ORDER BY position",
        )
        .fetch_all(&pool)
        .await
        .expect("events");
        pool.close().await;
        rows
    };
    rows.into_iter()
        .map(
            |(aggregate_type, aggregate_id, sequence, event_type, payload, meta, position)| {
                RawEvent {
                    aggregate_type,
                    aggregate_id,
                    sequence,
                    event_type,
                    payload,
                    metadata: serde_json::from_str(&meta).expect("metadata json"),
                    position,
                }
            },
        )
        .collect()
}

/// Runs one statement on the database directly (to set up states older versions left).
pub async fn execute_sql(database_url: &str, sql: &str) {
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("sqlite");
        sqlx::query(sql).execute(&pool).await.expect("statement");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.expect("postgres");
        sqlx::query(sql).execute(&pool).await.expect("statement");
        pool.close().await;
    }
}

/// The tables beside the event log, read straight from the database, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SideTables {
    /// `(kind, normalized name, owner)`.
    pub names: Vec<(String, String, String)>,
    /// `(target, dependant kind, dependant id)`.
    pub dependencies: Vec<(String, String, String)>,
    /// Owners of data keys.
    pub data_keys: Vec<String>,
}

pub async fn side_tables(database_url: &str) -> SideTables {
    macro_rules! read {
        ($pool:expr) => {{
            let mut names: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT kind, normalized, owner FROM name_reservations ORDER BY 1, 2",
            )
            .fetch_all($pool)
            .await
            .expect("names");
            names.sort();
            let dependencies: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT target, dependant_kind, dependant_id FROM dependencies ORDER BY 1, 2, 3",
            )
            .fetch_all($pool)
            .await
            .expect("dependencies");
            let data_keys: Vec<String> =
                sqlx::query_scalar("SELECT owner FROM data_keys ORDER BY 1")
                    .fetch_all($pool)
                    .await
                    .expect("data keys");
            SideTables {
                names,
                dependencies,
                data_keys,
            }
        }};
    }
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("sqlite");
        let tables = read!(&pool);
        pool.close().await;
        tables
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.expect("postgres");
        let tables = read!(&pool);
        pool.close().await;
        tables
    }
}

/// Every read model as stored: view documents `(projection, id, version, sort key,
/// payload)` and checkpoints `(projection, position)`, sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadModels {
    pub documents: Vec<(String, String, i64, i64, serde_json::Value)>,
    pub checkpoints: Vec<(String, i64)>,
}

pub async fn read_models(database_url: &str) -> ReadModels {
    macro_rules! read {
        ($pool:expr) => {{
            let rows: Vec<(String, String, i64, i64, String)> = sqlx::query_as(
                "SELECT projection, view_id, version, sort_key, CAST(payload AS TEXT) \
                 FROM view_documents ORDER BY 1, 2",
            )
            .fetch_all($pool)
            .await
            .expect("view documents");
            let checkpoints: Vec<(String, i64)> = sqlx::query_as(
                "SELECT projection, position FROM projection_checkpoints ORDER BY 1",
            )
            .fetch_all($pool)
            .await
            .expect("checkpoints");
            ReadModels {
                documents: rows
                    .into_iter()
                    .map(|(projection, id, version, sort_key, payload)| {
                        let payload = serde_json::from_str(&payload).expect("payload json");
                        (projection, id, version, sort_key, payload)
                    })
                    .collect(),
                checkpoints,
            }
        }};
    }
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("sqlite");
        let models = read!(&pool);
        pool.close().await;
        models
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.expect("postgres");
        let models = read!(&pool);
        pool.close().await;
        models
    }
}
