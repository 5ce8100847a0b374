//! How API key events read in the audit trail.

use super::aggregate::{ApiKey, ApiKeyEvent};
use crate::audit::{AuditFacts, AuditLens, TypedLens};

pub fn lens() -> std::sync::Arc<dyn AuditLens> {
    TypedLens::<ApiKey>::shared("api_key", describe)
}

fn describe(event: &ApiKeyEvent) -> AuditFacts {
    match event {
        ApiKeyEvent::ApiKeyCreated {
            name,
            scopes,
            expires_at,
            ..
        } => AuditFacts::change()
            .set("name", name)
            .set("scopes", scopes)
            .set("expires_at", expires_at)
            // Only its hash is stored; the record says a secret exists, nothing more.
            .sealed("secret", true),
        ApiKeyEvent::ApiKeyRevoked { revoked_at } => {
            AuditFacts::change().set("revoked_at", revoked_at).removes()
        }
    }
}
