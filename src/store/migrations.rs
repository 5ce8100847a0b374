//! Schema for both stores. Idempotent (`IF NOT EXISTS`), run at every start, and only
//! what credgate uses: the event table (with the columns postgres-es and sqlite-es
//! write, plus a global position), projection checkpoints, view documents, the audit
//! chain (append-only: triggers refuse updates and deletes) and the audit records.
//!
//! Event positions: every event gets a `position` that orders it among all events, and
//! positions are handed out in commit order, so a projection that has read up to
//! position N can never later meet an event below N (a "late commit").
//! - SQLite: writers are serialised by the database, so an AUTOINCREMENT key is commit
//!   order. The natural key is a UNIQUE constraint; `error.rs` maps its violation code.
//! - PostgreSQL: an identity column alone is not commit order (a transaction can take
//!   position 5, then commit after another took 6). A statement trigger takes a
//!   transaction-scoped advisory lock before any event row is formed, so event-writing
//!   transactions run one at a time from their first insert to their commit: the
//!   position order is the commit order. The price is that event writes serialise,
//!   which is fine for credential changes. (A first version read only below the oldest
//!   running transaction id instead; that stalled every view while any transaction in
//!   any database of the cluster stayed open.) postgres-es inserts named columns, so
//!   the identity default fills `position`.

/// The advisory lock key every event-writing transaction takes on PostgreSQL (the
/// trigger below, and [`super::Store::commit`] before its checks).
pub const EVENT_WRITE_LOCK: i64 = 7245100101;

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
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_position ON events (position)",
    "CREATE OR REPLACE FUNCTION credgate_serialize_event_writes() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
         PERFORM pg_advisory_xact_lock(7245100101);
         RETURN NULL;
     END
     $$",
    "DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_in_commit_order'
                        AND tgrelid = 'events'::regclass) THEN
             CREATE TRIGGER events_in_commit_order BEFORE INSERT ON events
                 FOR EACH STATEMENT EXECUTE FUNCTION credgate_serialize_event_writes();
         END IF;
     END $$",
    "CREATE TABLE IF NOT EXISTS projection_checkpoints (
        projection text PRIMARY KEY,
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
    "CREATE TABLE IF NOT EXISTS audit_chain (
        position        bigint PRIMARY KEY,
        previous        bigint NOT NULL,
        envelope_sha256 text   NOT NULL,
        payload_sha256  text   NOT NULL,
        metadata_sha256 text   NOT NULL,
        mac             text   NOT NULL
    )",
    "CREATE OR REPLACE FUNCTION credgate_audit_chain_is_append_only() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
         RAISE EXCEPTION 'audit_chain is append-only';
     END
     $$",
    "DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_chain_append_only'
                        AND tgrelid = 'audit_chain'::regclass) THEN
             CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
                 FOR EACH ROW EXECUTE FUNCTION credgate_audit_chain_is_append_only();
         END IF;
     END $$",
    "CREATE TABLE IF NOT EXISTS audit_records (
        position      bigint PRIMARY KEY,
        occurred_at   text   NOT NULL,
        resource_type text   NOT NULL,
        resource_id   text   NOT NULL,
        event_type    text   NOT NULL,
        actor_id      text,
        request_id    text   NOT NULL,
        record        json   NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS audit_records_resource ON audit_records (resource_type, resource_id, position)",
    "CREATE INDEX IF NOT EXISTS audit_records_actor ON audit_records (actor_id, position)",
    "CREATE INDEX IF NOT EXISTS audit_records_request ON audit_records (request_id)",
    "CREATE INDEX IF NOT EXISTS audit_records_type ON audit_records (event_type, position)",
    "CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (occurred_at)",
    // Projections renamed when their documents changed meaning (the `.v2` views count
    // edits only in `version`): the new names are built from the log at start; the
    // old documents go.
    "DELETE FROM view_documents WHERE projection IN ('ssh_keypairs', 'ssh_connections')",
    "DELETE FROM projection_checkpoints WHERE projection IN ('ssh_keypairs', 'ssh_connections')",
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
    "CREATE TABLE IF NOT EXISTS audit_chain (
        position        integer PRIMARY KEY,
        previous        integer NOT NULL,
        envelope_sha256 text    NOT NULL,
        payload_sha256  text    NOT NULL,
        metadata_sha256 text    NOT NULL,
        mac             text    NOT NULL
    ) STRICT",
    "CREATE TRIGGER IF NOT EXISTS audit_chain_no_update BEFORE UPDATE ON audit_chain
     BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_chain_no_delete BEFORE DELETE ON audit_chain
     BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only'); END",
    "CREATE TABLE IF NOT EXISTS audit_records (
        position      integer PRIMARY KEY,
        occurred_at   text    NOT NULL,
        resource_type text    NOT NULL,
        resource_id   text    NOT NULL,
        event_type    text    NOT NULL,
        actor_id      text,
        request_id    text    NOT NULL,
        record        text    NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS audit_records_resource ON audit_records (resource_type, resource_id, position)",
    "CREATE INDEX IF NOT EXISTS audit_records_actor ON audit_records (actor_id, position)",
    "CREATE INDEX IF NOT EXISTS audit_records_request ON audit_records (request_id)",
    "CREATE INDEX IF NOT EXISTS audit_records_type ON audit_records (event_type, position)",
    "CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (occurred_at)",
    // Projections renamed when their documents changed meaning (the `.v2` views count
    // edits only in `version`): the new names are built from the log at start; the
    // old documents go.
    "DELETE FROM view_documents WHERE projection IN ('ssh_keypairs', 'ssh_connections')",
    "DELETE FROM projection_checkpoints WHERE projection IN ('ssh_keypairs', 'ssh_connections')",
];
