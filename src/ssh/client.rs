//! The russh client as credgate uses it: only modern host-key algorithms (no `ssh-rsa`
//! SHA-1, no DSA), RSA host keys of at least 2048 bits, a deadline on every step, and a
//! connection to an address the outbound policy checked.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::Preferred;
use russh::client::{self, Config, Handle, Handler};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey};
use tokio::net::TcpStream;

/// Host-key algorithms credgate accepts, most preferred first.
pub const HOST_KEY_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// Why talking to an SSH server failed, in the terms the API reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshFailure {
    #[error("the host could not be reached: {0}")]
    Unreachable(String),
    #[error("the host did not answer in time")]
    Timeout,
    #[error("the peer is not an SSH server")]
    NotSsh,
    #[error("the server offers no host-key algorithm credgate accepts")]
    NoAcceptableHostKey,
    #[error("SSH protocol failure: {0}")]
    Protocol(String),
}

/// A client configuration offering exactly `host_keys`.
pub fn config(host_keys: &[Algorithm], timeout: Duration) -> Arc<Config> {
    Arc::new(Config {
        preferred: Preferred {
            key: Cow::Owned(host_keys.to_vec()),
            ..Preferred::DEFAULT
        },
        inactivity_timeout: Some(timeout),
        ..Config::default()
    })
}

/// Whether credgate's SSH policy accepts a host key at all.
pub fn acceptable_host_key(key: &PublicKey) -> bool {
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => true,
        Algorithm::Rsa { .. } => key
            .key_data()
            .rsa()
            .is_some_and(|rsa| rsa.key_size() >= 2048),
        _ => false,
    }
}

/// Records the key the server presents and decides whether to go on.
pub struct KeyCheck {
    pub presented: Arc<Mutex<Option<PublicKey>>>,
    accept: Box<dyn Fn(&PublicKey) -> bool + Send + Sync>,
}

impl KeyCheck {
    pub fn new(accept: impl Fn(&PublicKey) -> bool + Send + Sync + 'static) -> Self {
        Self {
            presented: Arc::new(Mutex::new(None)),
            accept: Box::new(accept),
        }
    }
}

impl Handler for KeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = key.public_key();
        let ok = acceptable_host_key(&key) && (self.accept)(&key);
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        Ok(ok)
    }
}

/// Opens TCP to `addr` and runs the SSH handshake, each under `timeout`.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<Config>,
    check: KeyCheck,
    timeout: Duration,
) -> Result<Handle<KeyCheck>, (SshFailure, russh::Error)> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err((SshFailure::Timeout, russh::Error::ConnectionTimeout)),
        Ok(Err(e)) => return Err((SshFailure::Unreachable(e.to_string()), russh::Error::IO(e))),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(timeout, client::connect_stream(config, stream, check)).await {
        Err(_) => Err((SshFailure::Timeout, russh::Error::ConnectionTimeout)),
        Ok(Err(e)) => Err((classify(&e), e)),
        Ok(Ok(handle)) => Ok(handle),
    }
}

/// The API's view of a russh error during the handshake.
pub fn classify(error: &russh::Error) -> SshFailure {
    match error {
        russh::Error::Version | russh::Error::PacketSize(_) | russh::Error::Utf8(_) => {
            SshFailure::NotSsh
        }
        russh::Error::NoCommonAlgo { .. } => SshFailure::NoAcceptableHostKey,
        russh::Error::ConnectionTimeout
        | russh::Error::InactivityTimeout
        | russh::Error::Elapsed(_) => SshFailure::Timeout,
        // TCP was already up (its failures are classified in `connect`): a peer that
        // then closes or resets instead of speaking SSH is not an SSH server.
        russh::Error::IO(_) => SshFailure::NotSsh,
        russh::Error::HUP | russh::Error::Disconnect => SshFailure::NotSsh,
        other => SshFailure::Protocol(other.to_string()),
    }
}
