//! AES-256-GCM (aws-lc-rs) with a fresh random nonce per message. The associated data
//! binds a ciphertext to what it belongs to, so a blob copied to another keypair or
//! used as another kind of secret does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;

/// A sealed secret as it is stored: nonce and ciphertext (with tag), base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBlob {
    pub nonce: String,
    pub ciphertext: String,
}

impl std::fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedBlob({} bytes)", self.ciphertext.len())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AeadError {
    #[error("the ciphertext does not open with this key")]
    CannotOpen,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the cipher refused the key")]
    BadKey,
}

fn key(bytes: &[u8; KEY_LEN]) -> Result<LessSafeKey, AeadError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| AeadError::BadKey)
}

pub fn seal(
    key_bytes: &[u8; KEY_LEN],
    aad: &str,
    plaintext: &[u8],
) -> Result<SealedBlob, AeadError> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut in_out = plaintext.to_vec();
    key(key_bytes)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| AeadError::BadKey)?;
    Ok(SealedBlob {
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(&in_out),
    })
}

pub fn open(
    key_bytes: &[u8; KEY_LEN],
    aad: &str,
    blob: &SealedBlob,
) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    let nonce: [u8; NONCE_LEN] = STANDARD
        .decode(&blob.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(AeadError::Malformed)?;
    let mut in_out = Zeroizing::new(
        STANDARD
            .decode(&blob.ciphertext)
            .map_err(|_| AeadError::Malformed)?,
    );
    let plain_len = key(key_bytes)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| AeadError::CannotOpen)?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_size() {
        let blob = seal(&[1u8; KEY_LEN], "ctx", b"secret").unwrap();
        assert_eq!(
            format!("{blob:?}"),
            format!("SealedBlob({} bytes)", blob.ciphertext.len())
        );
        assert!(!format!("{blob:?}").contains(&blob.ciphertext));
    }

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_context() {
        let k1 = [1u8; KEY_LEN];
        let k2 = [2u8; KEY_LEN];
        let blob = seal(&k1, "ctx", b"secret").unwrap();
        assert_eq!(open(&k1, "ctx", &blob).unwrap().as_slice(), b"secret");
        assert_eq!(open(&k2, "ctx", &blob), Err(AeadError::CannotOpen));
        assert_eq!(open(&k1, "other", &blob), Err(AeadError::CannotOpen));
        assert_ne!(seal(&k1, "ctx", b"secret").unwrap(), blob, "nonces differ");
        assert!(!format!("{blob:?}").contains(&blob.ciphertext));
    }
}
