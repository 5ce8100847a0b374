//! Envelope encryption of private key material, and crypto-shredding.
//!
//! Each owner (a keypair) has its own random data key; the data key is stored outside
//! the event log, wrapped (AES-256-GCM) by the master key. Secrets are sealed with the
//! data key *before* they are put in an event, so the immutable log only ever holds
//! ciphertext. Destroying an owner's data key makes its sealed secrets unreadable for
//! good while its history stays: that is how a deleted keypair's secret is erased.

mod aead;
mod master_key;

pub use aead::{AeadError, SealedBlob};
pub use master_key::{MASTER_KEY_ENV, MasterKey, MasterKeyError};

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::store::{Change, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The owner's data key is gone (shredded) or never existed.
    #[error("the secret has been destroyed")]
    Destroyed,
    #[error("the secret could not be opened: {0}")]
    Crypto(#[from] AeadError),
}

/// Seals and opens secrets of owners, and destroys them.
#[derive(Clone)]
pub struct Secrets {
    store: Store,
    master: Arc<MasterKey>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets")
    }
}

fn wrap_context(owner: &str) -> String {
    format!("credgate:data-key:{owner}")
}

fn seal_context(owner: &str, purpose: &str) -> String {
    format!("credgate:{purpose}:{owner}")
}

impl Secrets {
    /// Checks that `master` opens the data keys already stored (start-up refuses a wrong
    /// master key instead of failing later, or silently replacing anything).
    pub async fn open(store: Store, master: MasterKey) -> Result<Self, String> {
        if let Some((owner, wrapped)) = store.sample_data_key().await.map_err(|e| e.to_string())? {
            let blob: SealedBlob = serde_json::from_str(&wrapped).map_err(|e| e.to_string())?;
            aead::open(master.bytes(), &wrap_context(&owner), &blob).map_err(|_| {
                "the master key cannot open the stored data keys: check CREDGATE_MASTER_KEY or \
                 master_key_file (nothing was changed)"
                    .to_owned()
            })?;
        }
        Ok(Self {
            store,
            master: Arc::new(master),
        })
    }

    /// Seals `plaintext` for a new `owner` under a fresh data key, whose wrapped form is
    /// staged in `change`: the key exists exactly when the change that uses it commits.
    pub fn seal_new(
        &self,
        change: &mut Change,
        owner: &str,
        purpose: &str,
        plaintext: &[u8],
    ) -> Result<SealedBlob, SecretsError> {
        let fresh: Zeroizing<[u8; aead::KEY_LEN]> = Zeroizing::new(rand::random());
        let wrapped = aead::seal(self.master.bytes(), &wrap_context(owner), fresh.as_slice())?;
        let text = serde_json::to_string(&wrapped).map_err(|_| AeadError::Malformed)?;
        change.put_data_key(owner, text);
        Ok(aead::seal(
            &fresh,
            &seal_context(owner, purpose),
            plaintext,
        )?)
    }

    pub async fn open_sealed(
        &self,
        owner: &str,
        purpose: &str,
        blob: &SealedBlob,
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let data_key = self.data_key(owner).await?;
        Ok(aead::open(&data_key, &seal_context(owner, purpose), blob)?)
    }

    /// Stages the destruction of the owner's data key: once `change` commits,
    /// everything sealed for the owner stays unreadable.
    pub fn shred(&self, change: &mut Change, owner: &str) {
        change.destroy_data_key(owner);
    }

    async fn data_key(&self, owner: &str) -> Result<Zeroizing<[u8; aead::KEY_LEN]>, SecretsError> {
        let wrapped = self
            .store
            .get_data_key(owner)
            .await?
            .ok_or(SecretsError::Destroyed)?;
        let blob: SealedBlob = serde_json::from_str(&wrapped).map_err(|_| AeadError::Malformed)?;
        let plain = aead::open(self.master.bytes(), &wrap_context(owner), &blob)?;
        let bytes: [u8; aead::KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| AeadError::Malformed)?;
        Ok(Zeroizing::new(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contexts are bound into every stored ciphertext (AEAD associated data): they
    /// are a persisted contract, and changing one makes every stored secret unreadable.
    #[test]
    fn the_contexts_are_a_persisted_contract() {
        assert_eq!(wrap_context("k1"), "credgate:data-key:k1");
        assert_eq!(
            seal_context("k1", "ssh-private-key"),
            "credgate:ssh-private-key:k1"
        );
    }
}
