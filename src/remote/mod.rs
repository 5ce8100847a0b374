//! Calls to another credgate's API (the pairing client of semi-automatic setup), with
//! reqwest over rustls. Every call: the outbound address policy checked on the address
//! actually connected to (credgate resolves the name, checks every address, and pins
//! reqwest to the checked one — no second lookup, no DNS-rebinding gap), a timeout, no
//! redirects followed, no proxy, TLS verified against the system roots plus an optional
//! CA the caller trusts for this remote, or explicitly not verified.

mod client;
mod endpoint;

pub use client::{PairingAnswer, PairingClient, PairingOffer, RemoteError};
pub use endpoint::{RemoteEndpoint, TlsTrust};
