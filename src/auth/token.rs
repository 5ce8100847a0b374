//! API key secrets. A secret is 256 random bits; only its SHA-256 digest is stored (a
//! slow password hash buys nothing for a secret this long). The key's id is derived from
//! the digest, so a presented secret finds its key without a lookup table, and a key
//! handed in from outside (`CREDGATE_BOOTSTRAP_ADMIN_KEY`) works the same way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Namespace for deriving key ids from secret digests (UUIDv5).
const KEY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_2c4e_8a0d_4f7b_9c3e_5d2a_1f6e_0b47);

/// Secrets handed in from outside must be at least this long.
pub const MIN_SECRET_CHARS: usize = 32;

/// An API key secret. Its `Debug` never shows it, and its memory is wiped when it is
/// dropped (`Zeroizing`, as for every other secret here; the `secrecy` crate would add
/// only the redaction we already have).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(Zeroizing<String>);

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

impl ApiKeySecret {
    /// A fresh secret: `cg_` and 32 random bytes, base64url. The prefix lets secret
    /// scanners recognise a leaked key.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(Zeroizing::new(format!(
            "cg_{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// A secret chosen elsewhere; refused when too short to be unguessable.
    pub fn from_external(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.chars().count() < MIN_SECRET_CHARS {
            return Err(format!("must be at least {MIN_SECRET_CHARS} characters"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters".to_owned());
        }
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> SecretDigest {
        digest_of(&self.0)
    }
}

/// SHA-256 of a secret, hex-encoded: what the event log keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDigest(pub String);

impl SecretDigest {
    pub fn key_id(&self) -> Uuid {
        Uuid::new_v5(&KEY_ID_NAMESPACE, self.0.as_bytes())
    }

    /// Compares in constant time.
    pub fn matches(&self, stored_hex: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(stored_hex.as_bytes()).into()
    }
}

/// The digest of whatever a client presented.
pub fn digest_of(presented: &str) -> SecretDigest {
    let hash = Sha256::digest(presented.as_bytes());
    SecretDigest(hash.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_distinct_and_redacted() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("cg_"));
        assert_eq!(a.expose().len(), 3 + 43);
        assert_eq!(format!("{a:?}"), "ApiKeySecret(<redacted>)");
    }

    #[test]
    fn the_key_id_follows_from_the_secret() {
        let secret = ApiKeySecret::generate();
        assert_eq!(
            secret.digest().key_id(),
            digest_of(secret.expose()).key_id()
        );
        assert_ne!(
            secret.digest().key_id(),
            ApiKeySecret::generate().digest().key_id()
        );
        assert!(secret.digest().matches(&secret.digest().0));
        assert!(!secret.digest().matches(&digest_of("other").0));
    }

    #[test]
    fn external_secrets_must_be_long() {
        assert!(ApiKeySecret::from_external("short").is_err());
        assert!(ApiKeySecret::from_external(&"k".repeat(32)).is_ok());
        assert!(ApiKeySecret::from_external(&format!("{} x", "k".repeat(32))).is_err());
    }
}
