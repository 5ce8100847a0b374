//! SSH connections (manual setup): host-key discovery, pinned host keys, connection
//! tests over real SSH, a credentials bundle for jobs, OpenSSH-format exports.

mod aggregate;
mod exports;
mod host_keys;
mod http;
mod plugin;
mod problems;
mod requests;
mod scan_http;
mod service;
mod validation;
mod view;

pub use aggregate::{ConnectionEvent, SshConnection};
pub use exports::slug as ssh_config_alias;
pub use plugin::ConnectionsPlugin;
pub use service::ConnectionService;
