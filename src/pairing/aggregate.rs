//! The `AuthorizedKey` aggregate (remote side of semi-automatic setup): a public key a
//! caller paired in for a local user, and its revocation. Its events are the audit
//! trail of who may log in to this host through credgate.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::names::Name;
use crate::ssh::Username;

/// What was authorized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedKey {
    pub username: Username,
    /// `type base64`, as written into authorized_keys.
    pub public_key: String,
    /// SHA256 fingerprint of the key.
    pub fingerprint: String,
    pub label: Option<Name>,
    pub sudo_granted: bool,
    /// The authorized_keys file the line was written to, and its owner.
    pub authorized_keys_file: String,
    pub uid: u32,
    pub gid: u32,
}

/// Why a pairing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// The caller that paired it revoked it with its revocation token.
    RevocationToken,
    /// An administrator of this host revoked it.
    Admin,
    /// The line could not be written into authorized_keys, so the pairing never took
    /// effect.
    NotWritten,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthorizedKey {
    pub key: Option<PairedKey>,
    /// SHA-256 digests (hex) of the revocation tokens handed out for this pairing.
    pub token_digests: Vec<String>,
    pub revoked: Option<RevocationReason>,
}

#[derive(Debug, Clone)]
pub enum AuthorizedKeyCommand {
    Add {
        key: PairedKey,
        token_sha256: String,
    },
    /// The same key for the same user was paired again: one more token may revoke it.
    AddToken {
        token_sha256: String,
    },
    Revoke {
        reason: RevocationReason,
    },
}

/// Persisted contract: variant names are the `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthorizedKeyEvent {
    AuthorizedKeyAdded {
        key: PairedKey,
        /// SHA-256 of the revocation token, hex. The token itself is never stored.
        revocation_token_sha256: String,
    },
    AuthorizedKeyPairedAgain {
        revocation_token_sha256: String,
    },
    AuthorizedKeyRevoked {
        reason: RevocationReason,
    },
}

impl DomainEvent for AuthorizedKeyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AuthorizedKeyAdded { .. } => "AuthorizedKeyAdded",
            Self::AuthorizedKeyPairedAgain { .. } => "AuthorizedKeyPairedAgain",
            Self::AuthorizedKeyRevoked { .. } => "AuthorizedKeyRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizedKeyError {
    #[error("a pairing with this id already exists")]
    AlreadyExists,
    #[error("no such pairing")]
    NotFound,
    #[error("the pairing is already revoked")]
    AlreadyRevoked,
}

impl AuthorizedKey {
    pub fn is_live(&self) -> bool {
        self.key.is_some() && self.revoked.is_none()
    }

    /// Whether `token` revokes this pairing (constant-time per stored digest).
    pub fn accepts(&self, token: &crate::auth::SecretDigest) -> bool {
        self.token_digests
            .iter()
            .fold(false, |found, stored| token.matches(stored) | found)
    }
}

impl crate::store::Upcasted for AuthorizedKey {}

impl Aggregate for AuthorizedKey {
    const TYPE: &'static str = "AuthorizedKey";
    type Command = AuthorizedKeyCommand;
    type Event = AuthorizedKeyEvent;
    type Error = AuthorizedKeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AuthorizedKeyCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AuthorizedKeyError> {
        let event = match command {
            AuthorizedKeyCommand::Add { key, token_sha256 } => {
                if self.key.is_some() {
                    return Err(AuthorizedKeyError::AlreadyExists);
                }
                AuthorizedKeyEvent::AuthorizedKeyAdded {
                    key,
                    revocation_token_sha256: token_sha256,
                }
            }
            AuthorizedKeyCommand::AddToken { token_sha256 } => {
                self.require_live()?;
                AuthorizedKeyEvent::AuthorizedKeyPairedAgain {
                    revocation_token_sha256: token_sha256,
                }
            }
            AuthorizedKeyCommand::Revoke { reason } => {
                self.require_live()?;
                AuthorizedKeyEvent::AuthorizedKeyRevoked { reason }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AuthorizedKeyEvent) {
        match event {
            AuthorizedKeyEvent::AuthorizedKeyAdded {
                key,
                revocation_token_sha256,
            } => {
                self.key = Some(key);
                self.token_digests = vec![revocation_token_sha256];
            }
            AuthorizedKeyEvent::AuthorizedKeyPairedAgain {
                revocation_token_sha256,
            } => self.token_digests.push(revocation_token_sha256),
            AuthorizedKeyEvent::AuthorizedKeyRevoked { reason } => self.revoked = Some(reason),
        }
    }
}

impl AuthorizedKey {
    fn require_live(&self) -> Result<(), AuthorizedKeyError> {
        match (&self.key, self.revoked) {
            (None, _) => Err(AuthorizedKeyError::NotFound),
            (Some(_), Some(_)) => Err(AuthorizedKeyError::AlreadyRevoked),
            (Some(_), None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<AuthorizedKey>;

    fn key() -> PairedKey {
        PairedKey {
            username: Username::root(),
            public_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "SHA256:x".into(),
            label: None,
            sudo_granted: false,
            authorized_keys_file: "/root/.ssh/authorized_keys".into(),
            uid: 0,
            gid: 0,
        }
    }

    fn added() -> AuthorizedKeyEvent {
        AuthorizedKeyEvent::AuthorizedKeyAdded {
            key: key(),
            revocation_token_sha256: "aa".into(),
        }
    }

    #[test]
    fn add_records_the_key_and_the_token_digest() {
        Given::with(())
            .given_no_previous_events()
            .when(AuthorizedKeyCommand::Add {
                key: key(),
                token_sha256: "aa".into(),
            })
            .then_expect_events(vec![added()]);
        Given::with(())
            .given(vec![added()])
            .when(AuthorizedKeyCommand::Add {
                key: key(),
                token_sha256: "bb".into(),
            })
            .then_expect_error(AuthorizedKeyError::AlreadyExists);
    }

    #[test]
    fn pairing_again_adds_a_token_while_live() {
        Given::with(())
            .given(vec![added()])
            .when(AuthorizedKeyCommand::AddToken {
                token_sha256: "bb".into(),
            })
            .then_expect_events(vec![AuthorizedKeyEvent::AuthorizedKeyPairedAgain {
                revocation_token_sha256: "bb".into(),
            }]);
        Given::with(())
            .given_no_previous_events()
            .when(AuthorizedKeyCommand::AddToken {
                token_sha256: "bb".into(),
            })
            .then_expect_error(AuthorizedKeyError::NotFound);
    }

    #[test]
    fn revoke_once() {
        let revoked = AuthorizedKeyEvent::AuthorizedKeyRevoked {
            reason: RevocationReason::Admin,
        };
        Given::with(())
            .given(vec![added()])
            .when(AuthorizedKeyCommand::Revoke {
                reason: RevocationReason::Admin,
            })
            .then_expect_events(vec![revoked.clone()]);
        Given::with(())
            .given(vec![added(), revoked])
            .when(AuthorizedKeyCommand::Revoke {
                reason: RevocationReason::RevocationToken,
            })
            .then_expect_error(AuthorizedKeyError::AlreadyRevoked);
        Given::with(())
            .given_no_previous_events()
            .when(AuthorizedKeyCommand::Revoke {
                reason: RevocationReason::Admin,
            })
            .then_expect_error(AuthorizedKeyError::NotFound);
    }

    #[test]
    fn any_handed_out_token_is_accepted() {
        let mut state = AuthorizedKey::default();
        state.apply(added());
        state.apply(AuthorizedKeyEvent::AuthorizedKeyPairedAgain {
            revocation_token_sha256: crate::auth::digest_of("second").0,
        });
        assert!(state.accepts(&crate::auth::digest_of("second")));
        assert!(!state.accepts(&crate::auth::digest_of("third")));
    }
}
