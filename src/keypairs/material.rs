//! Key material: generating keys, reading imported ones, and the facts credgate shows
//! about a key (algorithm, size, authorized_keys line, SHA256 fingerprint).
//!
//! Encrypted keys name their own key-derivation cost. That cost is checked *before*
//! anything is decrypted, so one request cannot pin a core (bcrypt rounds, PBKDF2
//! iterations) or exhaust memory (scrypt).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::ssh_key::{
    self, Algorithm, EcdsaCurve, HashAlg, Kdf, LineEnding, PrivateKey, PublicKey,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// Most bcrypt rounds accepted in an encrypted OpenSSH key (`ssh-keygen -a`, default 16).
pub const MAX_BCRYPT_ROUNDS: u32 = 64;
/// Most PBKDF2 iterations accepted in an encrypted PKCS#8 key (OpenSSL uses 2048).
pub const MAX_PBKDF2_ITERATIONS: u32 = 600_000;
/// Most memory scrypt may use for an encrypted PKCS#8 key (128 · r · N bytes).
pub const MAX_SCRYPT_BYTES: u64 = 64 << 20;
pub const RSA_SIZES: [u32; 3] = [2048, 3072, 4096];
pub const DEFAULT_RSA_BITS: u32 = 3072;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum KeyAlgorithm {
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    #[serde(rename = "ecdsa-p521")]
    EcdsaP521,
    #[serde(rename = "rsa")]
    Rsa,
}

impl KeyAlgorithm {
    /// The size of the non-RSA algorithms, which have one size each.
    fn fixed_bits(self) -> Option<u32> {
        match self {
            Self::Ed25519 | Self::EcdsaP256 => Some(256),
            Self::EcdsaP384 => Some(384),
            Self::EcdsaP521 => Some(521),
            Self::Rsa => None,
        }
    }
}

/// A refused key, with the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct KeyProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> KeyProblem {
    KeyProblem {
        field,
        message: message.into(),
    }
}

/// What credgate shows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    pub algorithm: KeyAlgorithm,
    pub bits: u32,
    /// `type base64 [comment]`, as in authorized_keys.
    pub public_key: String,
    /// `SHA256:…`, exactly as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Facts about `key`, refusing what credgate does not accept (DSA, RSA under 2048 bits,
/// security keys and other exotic types). `field` names the request field it came from.
pub fn facts(key: &PublicKey, field: &'static str) -> Result<KeyFacts, KeyProblem> {
    let (algorithm, bits) = match key.algorithm() {
        Algorithm::Ed25519 => (KeyAlgorithm::Ed25519, 256),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        } => (KeyAlgorithm::EcdsaP256, 256),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        } => (KeyAlgorithm::EcdsaP384, 384),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        } => (KeyAlgorithm::EcdsaP521, 521),
        Algorithm::Rsa { .. } => {
            let bits = key
                .key_data()
                .rsa()
                .map(|rsa| rsa.key_size())
                .ok_or_else(|| problem(field, "is not a readable RSA key"))?;
            if bits < 2048 {
                return Err(problem(
                    field,
                    format!("is a {bits}-bit RSA key; at least 2048 bits are required"),
                ));
            }
            (KeyAlgorithm::Rsa, bits)
        }
        Algorithm::Dsa => return Err(problem(field, "is a DSA key; DSA keys are not accepted")),
        other => {
            return Err(problem(
                field,
                format!("is a {} key, which is not supported", other.as_str()),
            ));
        }
    };
    let public_key = key
        .to_openssh()
        .map_err(|_| problem(field, "cannot be written in OpenSSH format"))?;
    Ok(KeyFacts {
        algorithm,
        bits,
        public_key,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

/// The size to generate for `algorithm`: RSA takes 2048, 3072 (default) or 4096; the
/// others have one size, which `bits` may repeat.
pub fn generation_bits(algorithm: KeyAlgorithm, bits: Option<u32>) -> Result<u32, KeyProblem> {
    match (algorithm.fixed_bits(), bits) {
        (None, None) => Ok(DEFAULT_RSA_BITS),
        (None, Some(b)) if RSA_SIZES.contains(&b) => Ok(b),
        (None, Some(_)) => Err(problem("bits", "must be 2048, 3072 or 4096 for RSA")),
        (Some(fixed), None) => Ok(fixed),
        (Some(fixed), Some(b)) if b == fixed => Ok(b),
        (Some(fixed), Some(_)) => Err(problem(
            "bits",
            format!("must be {fixed} (or omitted) for this algorithm"),
        )),
    }
}

/// Generates a key. CPU-heavy (RSA especially): runs on a blocking thread.
pub async fn generate(
    algorithm: KeyAlgorithm,
    bits: u32,
    comment: String,
) -> Result<PrivateKey, KeyProblem> {
    let made = tokio::task::spawn_blocking(move || {
        let mut rng = rand::rng();
        let key = match algorithm {
            KeyAlgorithm::Ed25519 => PrivateKey::random(&mut rng, Algorithm::Ed25519),
            KeyAlgorithm::EcdsaP256 => PrivateKey::random(
                &mut rng,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
            ),
            KeyAlgorithm::EcdsaP384 => PrivateKey::random(
                &mut rng,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                },
            ),
            KeyAlgorithm::EcdsaP521 => PrivateKey::random(
                &mut rng,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP521,
                },
            ),
            // `PrivateKey::random` makes RSA keys of one fixed size; ask for the size.
            KeyAlgorithm::Rsa => usize::try_from(bits)
                .map_err(|_| ssh_key::Error::FormatEncoding)
                .and_then(|bits| RsaKeypair::random(&mut rng, bits))
                .and_then(|pair| PrivateKey::new(KeypairData::Rsa(pair), "")),
        };
        key.map(|mut key| {
            key.set_comment(comment);
            key
        })
    })
    .await;
    match made {
        Ok(Ok(key)) => Ok(key),
        Ok(Err(e)) => Err(problem("algorithm", format!("key generation failed: {e}"))),
        Err(e) => Err(problem(
            "algorithm",
            format!("key generation was interrupted: {e}"),
        )),
    }
}

/// Trims surrounding whitespace and turns CRLF into LF (the decoders want LF).
fn normalize(text: &str) -> String {
    let mut out = text.trim().replace("\r\n", "\n").replace('\r', "\n");
    out.push('\n');
    out
}

/// Reads a private key in OpenSSH, PKCS#1, PKCS#8 (plain or encrypted) or SEC1 PEM
/// format. `passphrase` opens an encrypted key and is ignored for a plain one. Runs the
/// (possibly slow) decryption on a blocking thread.
pub async fn read_private_key(
    text: &str,
    passphrase: Option<&str>,
) -> Result<PrivateKey, KeyProblem> {
    let text = Zeroizing::new(normalize(text));
    let passphrase = passphrase.map(|p| Zeroizing::new(p.to_owned()));
    tokio::task::spawn_blocking(move || {
        read_private_key_blocking(&text, passphrase.as_ref().map(|p| p.as_str()))
    })
    .await
    .map_err(|e| problem("private_key", format!("could not be read: {e}")))?
}

fn read_private_key_blocking(
    text: &str,
    passphrase: Option<&str>,
) -> Result<PrivateKey, KeyProblem> {
    let first_line = text.lines().next().unwrap_or("");
    let unreadable = || {
        problem(
            "private_key",
            "is not a readable private key (truncated or damaged?)",
        )
    };
    let needs_passphrase = || problem("passphrase", "is required: the private key is encrypted");
    let wrong_passphrase = || problem("passphrase", "does not open the private key");
    let key = match first_line {
        "-----BEGIN OPENSSH PRIVATE KEY-----" => {
            let key = PrivateKey::from_openssh(text).map_err(|_| unreadable())?;
            if key.is_encrypted() {
                if let Kdf::Bcrypt { rounds, .. } = key.kdf()
                    && *rounds > MAX_BCRYPT_ROUNDS
                {
                    return Err(problem(
                        "private_key",
                        format!(
                            "is encrypted with {rounds} bcrypt rounds; at most {MAX_BCRYPT_ROUNDS} are accepted"
                        ),
                    ));
                }
                let passphrase = passphrase.ok_or_else(needs_passphrase)?;
                key.decrypt(passphrase).map_err(|_| wrong_passphrase())?
            } else {
                key
            }
        }
        "-----BEGIN ENCRYPTED PRIVATE KEY-----" => {
            check_pkcs8_cost(text)?;
            let passphrase = passphrase.ok_or_else(needs_passphrase)?;
            russh::keys::decode_secret_key(text, Some(passphrase))
                .map_err(|_| wrong_passphrase())?
        }
        "-----BEGIN RSA PRIVATE KEY-----" if text.contains("Proc-Type: 4,ENCRYPTED") => {
            let passphrase = passphrase.ok_or_else(needs_passphrase)?;
            russh::keys::decode_secret_key(text, Some(passphrase))
                .map_err(|_| wrong_passphrase())?
        }
        "-----BEGIN RSA PRIVATE KEY-----"
        | "-----BEGIN PRIVATE KEY-----"
        | "-----BEGIN EC PRIVATE KEY-----" => {
            russh::keys::decode_secret_key(text, None).map_err(|_| unreadable())?
        }
        "-----BEGIN DSA PRIVATE KEY-----" => {
            return Err(problem(
                "private_key",
                "is a DSA key; DSA keys are not accepted",
            ));
        }
        _ => {
            return Err(problem(
                "private_key",
                "is not a private key in OpenSSH, PKCS#1, PKCS#8 or SEC1 PEM format",
            ));
        }
    };
    facts(key.public_key(), "private_key")?;
    Ok(key)
}

/// Refuses an encrypted PKCS#8 key whose key derivation would be too costly.
fn check_pkcs8_cost(text: &str) -> Result<(), KeyProblem> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = Zeroizing::new(
        STANDARD
            .decode(body.trim())
            .map_err(|_| problem("private_key", "is not valid PEM"))?,
    );
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|_| problem("private_key", "is not a readable encrypted PKCS#8 key"))?;
    match info.encryption_algorithm {
        pkcs5::EncryptionScheme::Pbes2(params) => match params.kdf {
            pkcs5::pbes2::Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => {
                Err(problem(
                    "private_key",
                    format!(
                        "uses {} PBKDF2 iterations; at most {MAX_PBKDF2_ITERATIONS} are accepted",
                        p.iteration_count
                    ),
                ))
            }
            pkcs5::pbes2::Kdf::Scrypt(p) => {
                let memory = 128u64
                    .saturating_mul(u64::from(p.block_size))
                    .saturating_mul(p.cost_parameter);
                if memory > MAX_SCRYPT_BYTES || p.parallelization > 4 {
                    Err(problem(
                        "private_key",
                        "uses scrypt parameters that need too much memory or time",
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        },
        _ => Err(problem(
            "private_key",
            "uses a legacy PBES1 encryption scheme; re-encrypt it with PBES2",
        )),
    }
}

/// Reads an OpenSSH public key line (`type base64 [comment]`).
pub fn read_public_key(text: &str) -> Result<PublicKey, KeyProblem> {
    let line = text.trim();
    if line.contains('\n') {
        return Err(problem("public_key", "must be a single line"));
    }
    let key = PublicKey::from_openssh(line).map_err(|_| {
        problem(
            "public_key",
            "is not an OpenSSH public key line (`type base64 [comment]`)",
        )
    })?;
    facts(&key, "public_key")?;
    Ok(key)
}

/// The private key in OpenSSH format, encrypted (bcrypt, AES-256-CTR) when a
/// passphrase is given. Runs on a blocking thread (bcrypt is slow on purpose).
pub async fn export_openssh(
    key: PrivateKey,
    passphrase: Option<String>,
) -> Result<Zeroizing<String>, String> {
    let passphrase = passphrase.map(Zeroizing::new);
    tokio::task::spawn_blocking(move || {
        let key = match &passphrase {
            Some(p) => key
                .encrypt(&mut rand::rng(), p.as_bytes())
                .map_err(|e| e.to_string())?,
            None => key,
        };
        key.to_openssh(LineEnding::LF).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Serialises a private key for sealing (OpenSSH format, unencrypted).
pub fn to_sealable(key: &PrivateKey) -> Result<Zeroizing<String>, String> {
    key.to_openssh(LineEnding::LF).map_err(|e| e.to_string())
}

/// Reads back what [`to_sealable`] wrote.
pub fn from_sealed(bytes: &[u8]) -> Result<PrivateKey, String> {
    PrivateKey::from_openssh(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_sizes_follow_the_algorithm() {
        assert_eq!(generation_bits(KeyAlgorithm::Rsa, None), Ok(3072));
        assert_eq!(generation_bits(KeyAlgorithm::Rsa, Some(4096)), Ok(4096));
        assert_eq!(
            generation_bits(KeyAlgorithm::Rsa, Some(1024))
                .unwrap_err()
                .field,
            "bits"
        );
        assert_eq!(generation_bits(KeyAlgorithm::EcdsaP384, None), Ok(384));
        assert_eq!(generation_bits(KeyAlgorithm::Ed25519, Some(256)), Ok(256));
        assert!(generation_bits(KeyAlgorithm::Ed25519, Some(512)).is_err());
    }

    #[tokio::test]
    async fn generated_keys_round_trip_through_sealing_and_reading() {
        let key = generate(KeyAlgorithm::Ed25519, 256, "me@host".into())
            .await
            .unwrap();
        let facts = facts(key.public_key(), "private_key").unwrap();
        assert!(
            facts.public_key.starts_with("ssh-ed25519 ") && facts.public_key.ends_with(" me@host")
        );
        assert!(facts.fingerprint.starts_with("SHA256:"));
        let sealed = to_sealable(&key).unwrap();
        assert_eq!(
            from_sealed(sealed.as_bytes()).unwrap().public_key(),
            key.public_key()
        );
        let crlf = sealed.replace('\n', "\r\n");
        let read = read_private_key(&format!("  \n{crlf}\n "), Some("ignored"))
            .await
            .unwrap();
        assert_eq!(read.public_key(), key.public_key());
    }

    /// An encrypted PKCS#8 PEM whose key derivation uses `params` (the payload is junk:
    /// the cost check must refuse it before any decryption is tried).
    fn pkcs8_with(params: pkcs5::pbes2::Parameters) -> String {
        use pkcs8::der::Encode;
        let info = pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
            encrypted_data: pkcs8::der::asn1::OctetString::new(vec![0u8; 64]).unwrap(),
        };
        let der = info.to_der().unwrap();
        let body = STANDARD.encode(der);
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
    }

    #[tokio::test]
    async fn costly_pkcs8_key_derivations_are_refused_before_decrypting() {
        let salt = [7u8; 16];
        let iv = [9u8; 16];
        let pbkdf2 =
            pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(50_000_000, &salt, iv)
                .unwrap();
        let refused = read_private_key(&pkcs8_with(pbkdf2), Some("x"))
            .await
            .unwrap_err();
        assert_eq!(refused.field, "private_key");
        assert!(refused.message.contains("PBKDF2"), "{}", refused.message);

        let scrypt = pkcs5::scrypt::Params::new(22, 8, 1).unwrap();
        let scrypt =
            pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(scrypt, &salt, iv).unwrap();
        let refused = read_private_key(&pkcs8_with(scrypt), Some("x"))
            .await
            .unwrap_err();
        assert!(refused.message.contains("scrypt"), "{}", refused.message);
        // One over each limit is refused: PBKDF2 600,001, scrypt lanes 5.
        let over =
            pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(600_001, &salt, iv).unwrap();
        let five_lanes = pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(
            pkcs5::scrypt::Params::new(10, 8, 5).unwrap(),
            &salt,
            iv,
        )
        .unwrap();
        for over in [over, five_lanes] {
            let refused = read_private_key(&pkcs8_with(over), Some("x"))
                .await
                .unwrap_err();
            assert_eq!(refused.field, "private_key", "{}", refused.message);
        }

        // Cheap ones pass the check and fail later, on the passphrase: PBKDF2 as
        // OpenSSL makes it, and scrypt at 16 MiB (N = 2^14, r = 8; within the limit).
        let cheap =
            pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(2048, &salt, iv).unwrap();
        let scrypt = pkcs5::scrypt::Params::new(14, 8, 1).unwrap();
        let cheap_scrypt =
            pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(scrypt, &salt, iv).unwrap();
        // Exactly at each limit is still accepted: 600,000 PBKDF2 iterations, scrypt at
        // 64 MiB (N = 2^16, r = 8), and parallelism 4.
        let at_limit_pbkdf2 =
            pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(600_000, &salt, iv).unwrap();
        let at_limit_scrypt = pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(
            pkcs5::scrypt::Params::new(16, 8, 1).unwrap(),
            &salt,
            iv,
        )
        .unwrap();
        let four_lanes = pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(
            pkcs5::scrypt::Params::new(10, 8, 4).unwrap(),
            &salt,
            iv,
        )
        .unwrap();
        for cheap in [
            cheap,
            cheap_scrypt,
            at_limit_pbkdf2,
            at_limit_scrypt,
            four_lanes,
        ] {
            assert_eq!(
                read_private_key(&pkcs8_with(cheap), Some("x"))
                    .await
                    .unwrap_err()
                    .field,
                "passphrase"
            );
        }
    }

    #[tokio::test]
    async fn garbage_and_truncated_keys_name_the_field() {
        assert_eq!(
            read_private_key("hello", None).await.unwrap_err().field,
            "private_key"
        );
        let key = generate(KeyAlgorithm::Ed25519, 256, String::new())
            .await
            .unwrap();
        let text = to_sealable(&key).unwrap();
        let truncated: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(
            read_private_key(&truncated, None).await.unwrap_err().field,
            "private_key"
        );
        assert_eq!(
            read_public_key("ssh-ed25519 AAAA garbage")
                .unwrap_err()
                .field,
            "public_key"
        );
    }

    /// A PEM DSA key is refused for being DSA (the user learns why), not as unreadable.
    #[tokio::test]
    async fn a_pem_dsa_key_is_refused_by_name() {
        let dsa =
            "-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQ==\n-----END DSA PRIVATE KEY-----\n";
        let refused = read_private_key(dsa, None).await.unwrap_err();
        assert_eq!(refused.field, "private_key");
        assert!(refused.message.contains("DSA"), "{}", refused.message);
    }
}
