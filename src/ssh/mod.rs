//! Everything that speaks SSH (russh): host-key discovery and connection tests, and the
//! outbound address policy they share with the pairing client.

pub mod client;
mod host;
mod policy;
mod port;
pub mod probe;
pub mod scan;
mod username;

pub use client::SshFailure;
pub use host::Host;
pub use policy::{OutboundError, OutboundPolicy};
pub use port::Port;
pub use probe::{ProbeError, ProbeFailure, ProbeReport, TestPhase};
pub use scan::{DiscoveredKey, scan};
pub use username::{DEFAULT_USERNAME, Username};
