//! The audit trail: every event of every aggregate as an audit record (derived from the
//! event log by a projection, so no code path can forget to log), refused access as
//! events of their own, the records' API and export, and the check of the audit chain
//! (`store::chain`) that makes tampering with the event log visible.

pub mod codes;
mod denials;
mod http;
mod lens;
mod plugin;
mod projection;
mod record;
mod service;

pub use lens::{AuditFacts, AuditLens, Category, SEALED, TypedLens};
pub use plugin::AuditPlugin;
pub use record::{Actor, AuditRecord, FieldChange};
