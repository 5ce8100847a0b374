//! The master key: 32 random bytes that wrap every data key. From `CREDGATE_MASTER_KEY`
//! (base64) when set, else from `master_key_file`, which is created (mode 0600) on first
//! run. Losing it makes every stored private key unreadable; back it up apart from the
//! database.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::aead::KEY_LEN;

pub const MASTER_KEY_ENV: &str = "CREDGATE_MASTER_KEY";

/// The master key. Zeroed when dropped; never printed.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("{source_name} is not a base64-encoded 32-byte key")]
    Malformed { source_name: String },
    #[error("cannot read or create the master key file {path}: {message}")]
    File { path: String, message: String },
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The audit chain's MAC key: derived (HMAC-SHA256 over a fixed label), so the
    /// master key itself is used for one purpose only, and the chain cannot be forged
    /// without it.
    pub fn audit_chain_key(&self) -> crate::store::ChainKey {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.0.as_slice());
        let tag = aws_lc_rs::hmac::sign(&key, b"credgate:audit-chain-key:v1");
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(tag.as_ref());
        crate::store::ChainKey::new(*bytes)
    }

    fn parse(text: &str, source_name: &str) -> Result<Self, MasterKeyError> {
        let decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            MasterKeyError::Malformed {
                source_name: source_name.to_owned(),
            }
        })?);
        let bytes: [u8; KEY_LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| MasterKeyError::Malformed {
                    source_name: source_name.to_owned(),
                })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key from the environment value if given, else from `file` (created when absent).
    pub fn load(from_env: Option<&str>, file: &Path) -> Result<Self, MasterKeyError> {
        if let Some(text) = from_env {
            return Self::parse(text, MASTER_KEY_ENV);
        }
        let file_error = |message: String| MasterKeyError::File {
            path: file.display().to_string(),
            message,
        };
        match std::fs::read_to_string(file) {
            Ok(text) => Self::parse(&text, &file.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::from_bytes(rand::random());
                let encoded = Zeroizing::new(STANDARD.encode(key.bytes()));
                crate::files::write_private_file(file, &encoded)
                    .map_err(|e| file_error(e.to_string()))?;
                Ok(key)
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Only a missing file is created; one that cannot be read as text is an error,
    /// and is left exactly as it was (replacing it would lose every stored secret).
    #[test]
    fn an_unreadable_key_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        std::fs::write(&file, [0xff, 0xfe, 0x00, 0x80]).unwrap();
        assert!(MasterKey::load(None, &file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), vec![0xff, 0xfe, 0x00, 0x80]);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = MasterKey::from_bytes([9u8; KEY_LEN]);
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }

    #[test]
    fn is_created_once_with_mode_0600_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/master.key");
        let first = MasterKey::load(None, &file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = MasterKey::load(None, &file).unwrap();
        assert_eq!(first.bytes(), second.bytes());
        assert!(!format!("{first:?}").contains(&STANDARD.encode(first.bytes())));
    }

    #[test]
    fn the_environment_wins_and_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let env = STANDARD.encode([7u8; 32]);
        assert_eq!(
            MasterKey::load(Some(&env), &file).unwrap().bytes(),
            &[7u8; 32]
        );
        assert!(!file.exists());
        let short = STANDARD.encode([7u8; 16]);
        assert!(MasterKey::load(Some(&short), &file).is_err());
        assert!(MasterKey::load(Some("not base64!"), &file).is_err());
    }
}
