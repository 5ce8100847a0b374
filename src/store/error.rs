//! The one place where database failures are sorted into what the API can say about
//! them: "try again later" (unavailable), "someone else wrote first" (conflict), or a
//! real fault. postgres-es and sqlite-es map only a few error codes themselves, so the
//! rest of the mapping lives here.

use std::error::Error as StdError;

use cqrs_es::AggregateError;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (connection refused, pool exhausted,
    /// database busy or shutting down). Retrying later may succeed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Another writer changed the same record first.
    #[error("a concurrent write changed the same record first")]
    Conflict,
    #[error("store failure: {0}")]
    Fault(String),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        classify_sqlx(&err).unwrap_or_else(|| Self::Fault(err.to_string()))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        Self::Fault(format!("stored JSON could not be read: {err}"))
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "not now".
const UNAVAILABLE_CODES: &[&str] = &[
    "57P01", "57P02", "57P03", // admin/crash shutdown, cannot connect now
    "53300", // too many connections
    "5", "6", "261", "517", // SQLITE_BUSY, _LOCKED, _BUSY_RECOVERY, _BUSY_SNAPSHOT
];
/// Unique-key violations (a lost optimistic race) and serialization failures.
const CONFLICT_CODES: &[&str] = &["23505", "40001", "1555", "2067"];

fn classify_sqlx(err: &sqlx::Error) -> Option<StoreError> {
    match err {
        sqlx::Error::PoolTimedOut => Some(StoreError::Unavailable(
            "timed out waiting for a database connection".into(),
        )),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Some(StoreError::Unavailable(
            "the connection pool is closed".into(),
        )),
        sqlx::Error::Io(e) => Some(StoreError::Unavailable(format!("database I/O: {e}"))),
        sqlx::Error::Tls(e) => Some(StoreError::Unavailable(format!("database TLS: {e}"))),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if CONFLICT_CODES.contains(&code.as_ref()) {
                Some(StoreError::Conflict)
            } else if UNAVAILABLE_CODES.contains(&code.as_ref()) || code.starts_with("08") {
                Some(StoreError::Unavailable(db.message().to_owned()))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Finds a `sqlx::Error` anywhere in a boxed error's chain and classifies it.
fn classify_boxed(err: &BoxError) -> StoreError {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err.as_ref());
    while let Some(e) = current {
        if let Some(sqlx_err) = e.downcast_ref::<sqlx::Error>() {
            if let Some(known) = classify_sqlx(sqlx_err) {
                return known;
            }
            break;
        }
        current = e.source();
    }
    StoreError::Fault(err.to_string())
}

/// A command either was refused by its aggregate (a business outcome) or could not be
/// stored.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: StdError> {
    #[error(transparent)]
    Rejected(E),
    /// The caller expected another version (a stale `If-Match`).
    #[error("the record is at version {current}, not the one expected")]
    Stale { current: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E: StdError> From<AggregateError<E>> for CommandError<E> {
    fn from(err: AggregateError<E>) -> Self {
        match err {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Store(StoreError::Conflict),
            AggregateError::DatabaseConnectionError(e) => {
                Self::Store(StoreError::Unavailable(e.to_string()))
            }
            AggregateError::DeserializationError(e) => Self::Store(StoreError::Fault(format!(
                "stored event could not be read: {e}"
            ))),
            AggregateError::UnexpectedError(e) => Self::Store(classify_boxed(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_io_are_unavailable() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(StoreError::from(io).is_unavailable());
    }

    #[test]
    fn wrapped_errors_are_found_in_the_chain() {
        let boxed: BoxError = Box::new(sqlx::Error::PoolTimedOut);
        assert!(classify_boxed(&boxed).is_unavailable());
        let other: BoxError = "something else".into();
        assert!(matches!(classify_boxed(&other), StoreError::Fault(_)));
    }
}
