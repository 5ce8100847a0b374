//! How keypair events read in the audit trail.

use super::aggregate::{KeypairEvent, NewKeypair, SshKeypair};
use crate::audit::{AuditFacts, AuditLens, Category, TypedLens};

pub fn lens() -> std::sync::Arc<dyn AuditLens> {
    TypedLens::<SshKeypair>::shared("ssh_keypair", describe)
}

fn created(new: &NewKeypair, how: &str) -> AuditFacts {
    AuditFacts::change()
        .set("name", new.name.as_str())
        .set("algorithm", new.algorithm)
        .set("bits", new.bits)
        .set("comment", &new.comment)
        .set("fingerprint", &new.fingerprint)
        .sealed("private_key", new.private_key.is_some())
        .detail("how", how)
}

fn describe(event: &KeypairEvent) -> AuditFacts {
    match event {
        KeypairEvent::KeypairGenerated(new) => created(new, "generated"),
        KeypairEvent::KeypairImported(new) => created(new, "imported"),
        KeypairEvent::KeypairRenamed { new_name, .. } => {
            AuditFacts::change().set("name", new_name.as_str())
        }
        KeypairEvent::KeypairCommentChanged { comment, .. } => {
            AuditFacts::change().set("comment", comment)
        }
        KeypairEvent::PrivateKeyExported { encrypted } => {
            AuditFacts::new(Category::SecretRead).detail("encrypted", encrypted)
        }
        KeypairEvent::KeypairDeleted { cascade } => {
            AuditFacts::change().detail("cascade", cascade).removes()
        }
    }
}
