//! SSH connections, set up manually or semi-automatically (pairing with a remote
//! credgate): host-key discovery, pinned host keys, connection tests over real SSH, a
//! credentials bundle for jobs, OpenSSH-format exports.

mod aggregate;
mod attempt;
mod audit;
pub mod codes;
mod exports;
mod host_keys;
mod http;
mod plugin;
mod problems;
mod requests;
mod scan_http;
mod semi_automatic;
mod service;
mod validation;
mod view;

pub use aggregate::{ConnectionEvent, SshConnection};
pub use attempt::{AttemptEvent, PairingAttempt};
pub use exports::slug as ssh_config_alias;
pub use plugin::ConnectionsPlugin;
pub use service::ConnectionService;
