//! How authorized-key (pairing) events read in the audit trail.

use super::aggregate::{AuthorizedKey, AuthorizedKeyEvent};
use crate::audit::{AuditFacts, AuditLens, TypedLens};

pub fn lens() -> std::sync::Arc<dyn AuditLens> {
    TypedLens::<AuthorizedKey>::shared("authorized_key", describe)
}

fn describe(event: &AuthorizedKeyEvent) -> AuditFacts {
    match event {
        AuthorizedKeyEvent::AuthorizedKeyAdded { key, .. } => AuditFacts::change()
            .set(
                "name",
                key.label
                    .as_ref()
                    .map_or_else(|| key.username.to_string(), |l| l.to_string()),
            )
            .set("username", key.username.as_str())
            .set("fingerprint", &key.fingerprint)
            .set("sudo_granted", key.sudo_granted)
            .set("authorized_keys_file", &key.authorized_keys_file)
            .sealed("revocation_token", true),
        AuthorizedKeyEvent::AuthorizedKeyPairedAgain { .. } => {
            AuditFacts::change().detail("revocation_token_reissued", true)
        }
        AuthorizedKeyEvent::AuthorizedKeyRevoked { reason } => {
            AuditFacts::change().detail("reason", reason).removes()
        }
    }
}
