//! Revocation tokens: whoever paired a key gets one, and with it alone (no API key) can
//! revoke exactly that pairing later. 256 random bits; only the SHA-256 digest is kept.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::auth::{SecretDigest, digest_of};

pub struct RevocationToken(Zeroizing<String>);

impl std::fmt::Debug for RevocationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationToken(<redacted>)")
    }
}

impl RevocationToken {
    /// `cgr_` and 32 random bytes, base64url (the prefix lets secret scanners find it).
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(Zeroizing::new(format!(
            "cgr_{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> SecretDigest {
        digest_of(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_redacted() {
        let a = RevocationToken::generate();
        assert_ne!(a.expose(), RevocationToken::generate().expose());
        assert_eq!(a.expose().len(), 4 + 43);
        assert_eq!(format!("{a:?}"), "RevocationToken(<redacted>)");
        assert!(a.digest().matches(&digest_of(a.expose()).0));
    }
}
