//! Schema for both stores. Idempotent (`IF NOT EXISTS`), run at every start, and only
//! what credgate uses: the event table (with the columns postgres-es and sqlite-es
//! write, plus a global position), projection checkpoints and view documents.
//!
//! Event positions: on PostgreSQL an identity column orders events, and the writing
//! transaction's id (`commit_tx`) lets readers stop below the oldest transaction still
//! running, so an event that commits late is never skipped (see `event_log`). postgres-es
//! inserts named columns, so the defaults fill both. On SQLite writers are serialised,
//! so an AUTOINCREMENT key is already commit order (`commit_tx` is always 0); the
//! natural key is a UNIQUE constraint, whose violation code `error.rs` maps to a conflict.

pub const POSTGRES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        aggregate_type text NOT NULL,
        aggregate_id   text NOT NULL,
        sequence       bigint CHECK (sequence >= 0) NOT NULL,
        event_type     text NOT NULL,
        event_version  text NOT NULL,
        payload        json NOT NULL,
        metadata       json NOT NULL,
        position       bigint GENERATED ALWAYS AS IDENTITY,
        commit_tx      bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    )",
    "CREATE INDEX IF NOT EXISTS events_commit_order ON events (commit_tx, position)",
    "CREATE TABLE IF NOT EXISTS projection_checkpoints (
        projection text PRIMARY KEY,
        commit_tx  bigint NOT NULL,
        position   bigint NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS view_documents (
        projection text   NOT NULL,
        view_id    text   NOT NULL,
        version    bigint NOT NULL,
        sort_key   bigint NOT NULL,
        payload    json   NOT NULL,
        PRIMARY KEY (projection, view_id)
    )",
    "CREATE INDEX IF NOT EXISTS view_documents_order ON view_documents (projection, sort_key)",
];

pub const SQLITE: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        position       integer PRIMARY KEY AUTOINCREMENT,
        aggregate_type text NOT NULL,
        aggregate_id   text NOT NULL,
        sequence       integer CHECK (sequence >= 0) NOT NULL,
        event_type     text NOT NULL,
        event_version  text NOT NULL,
        payload        text NOT NULL,
        metadata       text NOT NULL,
        UNIQUE (aggregate_type, aggregate_id, sequence)
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS projection_checkpoints (
        projection text PRIMARY KEY,
        commit_tx  integer NOT NULL,
        position   integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS view_documents (
        projection text    NOT NULL,
        view_id    text    NOT NULL,
        version    integer NOT NULL,
        sort_key   integer NOT NULL,
        payload    text    NOT NULL,
        PRIMARY KEY (projection, view_id)
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS view_documents_order ON view_documents (projection, sort_key)",
];
