//! credgate keeps SSH keypairs and SSH connections for backup and replication jobs, as an
//! event-sourced, API-first gateway. See ARCHITECTURE.md for the shape; `main.rs` only parses
//! the command line and calls [`cli::run`].

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod files;
pub mod gateway;
pub mod keypairs;
pub mod names;
pub mod plugins;
pub mod secrets;
pub mod ssh;
pub mod store;
pub mod telemetry;
