//! Pinned remote host keys: parsed from `remote_host_key` text, with where each came from.

use russh::keys::ssh_key::{HashAlg, PublicKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ssh::client::acceptable_host_key;
use crate::ssh::scan::DiscoveredKey;

/// How credgate learned a pinned key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Found by credgate's own host-key scan of this host and port.
    Scanned,
    /// Given by the caller.
    Pasted,
    /// Handed over by the remote credgate during semi-automatic setup (whether that
    /// answer came over verified TLS is in `tls_verified`).
    Paired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"algorithm": "ssh-ed25519", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdeQpOm7RORiAIECD0mmF2jnzqDpLMeEZRLES3AbTDd", "fingerprint": "SHA256:Se77u09GRMmtYkkzv8QBMfngEvAZfxnqplBgTY2cRGg", "provenance": "scanned"})))]
pub struct PinnedHostKey {
    pub algorithm: String,
    /// `type base64`.
    pub key: String,
    pub fingerprint: String,
    pub provenance: Provenance,
    /// For `paired` keys: whether the remote's TLS certificate was verified when it
    /// handed them over (`false`: plain HTTP, or verification turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verified: Option<bool>,
}

impl PinnedHostKey {
    pub fn matches(&self, presented: &PublicKey) -> bool {
        presented.fingerprint(HashAlg::Sha256).to_string() == self.fingerprint
    }
}

/// Reads `type base64 [comment]` lines; known_hosts host patterns in front (`host`,
/// `[host]:2222`, hashed `|1|…`) are tolerated and dropped. Refuses DSA, `ssh-rsa`
/// keys under 2048 bits and anything unreadable, naming the line.
pub fn parse(text: &str, recently_scanned: &[DiscoveredKey]) -> Result<Vec<PinnedHostKey>, String> {
    let mut keys: Vec<PinnedHostKey> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = index + 1;
        if line.starts_with('@') {
            return Err(format!(
                "line {n}: markers such as @cert-authority are not supported"
            ));
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let is_type =
            |t: &str| t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-");
        let (kind, body) = match tokens.as_slice() {
            [kind, body, ..] if is_type(kind) => (*kind, *body),
            [_host, kind, body, ..] if is_type(kind) => (*kind, *body),
            _ => return Err(format!("line {n}: expected `type base64 [comment]`")),
        };
        let key = PublicKey::from_openssh(&format!("{kind} {body}"))
            .map_err(|_| format!("line {n}: not a readable {kind} key"))?;
        if !acceptable_host_key(&key) {
            return Err(format!(
                "line {n}: {kind} keys of this kind or size are not accepted (no DSA, RSA at least 2048 bits)"
            ));
        }
        let Some(found) = DiscoveredKey::from_public(&key) else {
            return Err(format!("line {n}: the key cannot be re-encoded"));
        };
        let provenance = if recently_scanned
            .iter()
            .any(|k| k.fingerprint == found.fingerprint)
        {
            Provenance::Scanned
        } else {
            Provenance::Pasted
        };
        if !keys.iter().any(|k| k.fingerprint == found.fingerprint) {
            keys.push(PinnedHostKey {
                algorithm: found.algorithm,
                key: found.key,
                fingerprint: found.fingerprint,
                provenance,
                tls_verified: None,
            });
        }
    }
    if keys.is_empty() {
        return Err("at least one host key is required".to_owned());
    }
    Ok(keys)
}

/// The host keys a remote credgate handed over when pairing: the same rules as pasted
/// keys, marked `paired` and with whether the answer came over verified TLS.
pub fn parse_paired(lines: &[String], tls_verified: bool) -> Result<Vec<PinnedHostKey>, String> {
    let mut keys = parse(&lines.join("\n"), &[])?;
    for key in &mut keys {
        key.provenance = Provenance::Paired;
        key.tls_verified = Some(tls_verified);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOct3ml8Qehl2O4/24oMxHvCbm8rGjkJdTNXsZbV+R55";

    #[test]
    fn lines_with_or_without_host_patterns() {
        let text = format!("# comment\n\n{ED} me@host\n[127.0.0.1]:2222 {ED}\n");
        let keys = parse(&text, &[]).unwrap();
        assert_eq!(keys.len(), 1, "duplicates collapse");
        assert_eq!(keys[0].algorithm, "ssh-ed25519");
        assert_eq!(keys[0].provenance, Provenance::Pasted);
        assert!(keys[0].fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(parse("", &[]).unwrap_err().contains("at least one"));
        assert!(parse("garbage", &[]).unwrap_err().contains("line 1"));
        assert!(
            parse("ssh-ed25519 AAAAnotbase64", &[])
                .unwrap_err()
                .contains("line 1")
        );
        assert!(parse(&format!("@cert-authority * {ED}"), &[]).is_err());
    }
}
