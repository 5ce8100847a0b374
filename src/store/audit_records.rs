//! Audit records: one row per event, written by the audit projection (so they are
//! derived from the event log, never written beside it, and a rebuild gives the same
//! rows), with the columns the audit API filters on indexed. One query builder serves
//! both databases (`$n` placeholders, text timestamps that sort as they read).

use serde_json::Value;

use super::projection_tx::ProjectionTx;
use super::{Store, StoreError};

/// One audit record as stored: the filter columns and the record itself.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub position: i64,
    /// RFC 3339, UTC, microseconds, `Z`: fixed width, so text order is time order.
    pub occurred_at: String,
    pub resource_type: String,
    pub resource_id: String,
    pub event_type: String,
    /// The API key id, or the local actor's name (`cli`, `bootstrap`).
    pub actor: String,
    pub request_id: String,
    pub record: Value,
}

/// Which records, in which order, from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    pub request_id: Option<String>,
    /// Inclusive, in the `occurred_at` format.
    pub since: Option<String>,
    /// Exclusive, in the `occurred_at` format.
    pub until: Option<String>,
    pub newest_first: bool,
    /// Continue after this position (in the query's order).
    pub after: Option<i64>,
}

/// A bind value of the query builder.
enum Arg {
    Text(String),
    Int(i64),
}

impl AuditQuery {
    /// The SQL and its arguments; the same text runs on both databases.
    fn sql(&self, limit: i64) -> (String, Vec<Arg>) {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut text = |column: &str, op: &str, value: &Option<String>| {
            if let Some(value) = value {
                args.push(Arg::Text(value.clone()));
                clauses.push(format!("{column} {op} ${}", args.len()));
            }
        };
        text("resource_type", "=", &self.resource_type);
        text("resource_id", "=", &self.resource_id);
        text("actor_id", "=", &self.actor);
        text("event_type", "=", &self.event_type);
        text("request_id", "=", &self.request_id);
        text("occurred_at", ">=", &self.since);
        text("occurred_at", "<", &self.until);
        if let Some(after) = self.after {
            args.push(Arg::Int(after));
            let op = if self.newest_first { "<" } else { ">" };
            clauses.push(format!("position {op} ${}", args.len()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        args.push(Arg::Int(limit));
        let order = if self.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT position, occurred_at, resource_type, resource_id, event_type, actor_id, \
             request_id, CAST(record AS TEXT) FROM audit_records{filter} \
             ORDER BY position {order} LIMIT ${}",
            args.len()
        );
        (sql, args)
    }
}

type AuditRowTuple = (i64, String, String, String, String, String, String, String);

fn from_tuple(row: AuditRowTuple) -> Result<AuditRow, StoreError> {
    let (position, occurred_at, resource_type, resource_id, event_type, actor, request_id, record) =
        row;
    Ok(AuditRow {
        position,
        occurred_at,
        resource_type,
        resource_id,
        event_type,
        actor,
        request_id,
        record: serde_json::from_str(&record)?,
    })
}

const PUT: &str = "INSERT INTO audit_records (position, occurred_at, resource_type, \
     resource_id, event_type, actor_id, request_id, record) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, json($8)) ON CONFLICT (position) DO NOTHING";

impl ProjectionTx {
    /// Adds a record; one that exists already (an event applied twice) stays as it is.
    pub(super) async fn put_audit_record(&mut self, row: &AuditRow) -> Result<(), StoreError> {
        on_tx!(self, |conn| sqlx::query(PUT)
            .bind(row.position)
            .bind(&row.occurred_at)
            .bind(&row.resource_type)
            .bind(&row.resource_id)
            .bind(&row.event_type)
            .bind(&row.actor)
            .bind(&row.request_id)
            .bind(row.record.to_string())
            .execute(conn)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Forgets every record, for a rebuild (inside its transaction: readers see the old
    /// records until the new ones are complete).
    pub(super) async fn forget_audit_records(&mut self) -> Result<(), StoreError> {
        on_tx!(self, |conn| sqlx::query("DELETE FROM audit_records")
            .execute(conn)
            .await
            .map(drop)?);
        Ok(())
    }
}

impl Store {
    /// Up to `limit` records matching `query`, in its order.
    pub async fn audit_records(
        &self,
        query: &AuditQuery,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let (sql, args) = query.sql(limit);
        let rows: Vec<AuditRowTuple> = on_pool!(self, |pool| {
            let mut q = sqlx::query_as(&sql);
            for arg in args {
                q = match arg {
                    Arg::Text(text) => q.bind(text),
                    Arg::Int(n) => q.bind(n),
                };
            }
            q.fetch_all(pool).await?
        });
        rows.into_iter().map(from_tuple).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_numbered_placeholders_in_order() {
        let query = AuditQuery {
            resource_type: Some("ssh_keypair".into()),
            actor: Some("k1".into()),
            since: Some("2026-01-01T00:00:00.000000Z".into()),
            newest_first: true,
            after: Some(40),
            ..AuditQuery::default()
        };
        let (sql, args) = query.sql(10);
        assert!(
            sql.contains(
                "WHERE resource_type = $1 AND actor_id = $2 AND occurred_at >= $3 AND position < $4"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY position DESC LIMIT $5"), "{sql}");
        assert_eq!(args.len(), 5);
        let (sql, args) = AuditQuery::default().sql(3);
        assert!(!sql.contains("WHERE"));
        assert!(sql.ends_with("ORDER BY position ASC LIMIT $1"));
        assert_eq!(args.len(), 1);
    }
}
