//! credgate's integration tests: one binary, the real app over HTTP, on SQLite and on
//! PostgreSQL (see `support`).

// Tests fail by panicking; unwrap is how they say "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_keys;
mod atomicity;
mod audit;
mod auth;
mod cli;
mod clients;
mod connections;
mod crashes;
mod health;
mod instances;
mod keypair_secrets;
mod keypairs;
mod metrics;
mod openapi;
mod outage;
mod pairing;
mod projections;
mod semi_automatic;
mod settings;
mod support;
mod tls;
