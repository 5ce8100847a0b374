//! credgate's integration tests: one binary, the real app over HTTP, on SQLite and on
//! PostgreSQL (see `support`).

mod api_keys;
mod auth;
mod health;
mod instances;
mod outage;
mod projections;
mod support;
