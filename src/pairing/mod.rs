//! The remote side of semi-automatic setup: a caller's credgate (holding an API key with
//! the `pairing` scope) asks this host to authorize its public key for a local user, and
//! gets back this host's SSH port, host keys and a revocation token. The `AuthorizedKey`
//! aggregate records each pairing; the authorized_keys line is tagged with its id.

mod accounts;
mod aggregate;
mod audit;
mod authorized_keys;
pub mod codes;
mod host_keys;
mod http;
mod plugin;
mod problems;
mod service;
mod sudoers;
mod token;
mod view;

pub use aggregate::{AuthorizedKey, AuthorizedKeyEvent, PairedKey, RevocationReason};
pub use authorized_keys::tag_of;
pub use http::{PairSshRequest, PairSshResponse, REVOCATION_TOKEN_HEADER};
pub use plugin::PairingPlugin;
pub use view::AuthorizedKeyView;
