//! Host-key discovery: one handshake per key family (ed25519, ecdsa, rsa-sha2), run
//! concurrently, each stopped right after the server proves its key (no login).

use std::net::SocketAddr;
use std::time::Duration;

use russh::keys::ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey};

use super::client::{self, KeyCheck, SshFailure};

/// A host key as discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredKey {
    /// e.g. `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` (the key type, not the signature).
    pub algorithm: String,
    /// `type base64`, as in known_hosts after the host pattern.
    pub key: String,
    pub fingerprint: String,
    pub bits: u32,
}

impl DiscoveredKey {
    pub fn from_public(key: &PublicKey) -> Option<Self> {
        let mut bare = key.clone();
        bare.set_comment("");
        let line = bare.to_openssh().ok()?;
        let bits = match key.key_data().rsa() {
            Some(rsa) => rsa.key_size(),
            None => match key.algorithm() {
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                } => 384,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP521,
                } => 521,
                _ => 256,
            },
        };
        Some(Self {
            algorithm: line.split_whitespace().next()?.to_owned(),
            key: line.trim().to_owned(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            bits,
        })
    }
}

/// The accepted host-key algorithms, one group per key family: a server offers one key
/// per family, and each handshake can show only one.
fn families() -> [Vec<Algorithm>; 3] {
    let of = |family: fn(&Algorithm) -> bool| {
        client::HOST_KEY_ALGORITHMS
            .iter()
            .filter(|algorithm| family(algorithm))
            .cloned()
            .collect()
    };
    [
        of(|a| matches!(a, Algorithm::Ed25519)),
        of(|a| matches!(a, Algorithm::Ecdsa { .. })),
        of(|a| matches!(a, Algorithm::Rsa { .. })),
    ]
}

/// Every acceptable host key the server at `addr` offers.
pub async fn scan(addr: SocketAddr, timeout: Duration) -> Result<Vec<DiscoveredKey>, SshFailure> {
    let attempts = families().map(|family| async move {
        let check = KeyCheck::new(|_| false);
        let presented = check.presented.clone();
        let outcome = client::connect(addr, client::config(&family, timeout), check, timeout).await;
        let key = presented.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (outcome, key) {
            // Refusing the key ends the handshake once the server has proven it.
            (_, Some(key)) => Ok(Some(key)),
            (Err((SshFailure::NoAcceptableHostKey, _)), None) => Ok(None),
            (Err((failure, _)), None) => Err(failure),
            (Ok(_), None) => Ok(None),
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut keys = Vec::new();
    let mut first_failure = None;
    for result in results {
        match result {
            Ok(Some(key)) if client::acceptable_host_key(&key) => {
                if let Some(found) = DiscoveredKey::from_public(&key)
                    && !keys.contains(&found)
                {
                    keys.push(found);
                }
            }
            Ok(_) => {}
            Err(failure) => {
                first_failure.get_or_insert(failure);
            }
        }
    }
    match (keys.is_empty(), first_failure) {
        (false, _) => Ok(keys),
        (true, Some(failure)) => Err(failure),
        (true, None) => Err(SshFailure::NoAcceptableHostKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every accepted algorithm is tried in exactly one handshake, and no handshake is
    /// empty: discovery shows every key family the policy accepts.
    #[test]
    fn families_split_the_accepted_algorithms() {
        let families = families();
        assert!(families.iter().all(|family| !family.is_empty()));
        let mut tried: Vec<Algorithm> = families.concat();
        let mut accepted = client::HOST_KEY_ALGORITHMS.to_vec();
        tried.sort_by_key(|a| a.to_string());
        accepted.sort_by_key(|a| a.to_string());
        assert_eq!(tried, accepted);
    }
}
