//! The `SshKeypair` aggregate. Private key material only ever appears here sealed
//! (see `secrets`); its events are the keypair's audit trail, and outlive it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::material::{KeyAlgorithm, KeyFacts};
use crate::names::Name;
use crate::secrets::SealedBlob;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SshKeypair {
    /// `None` before the keypair's first event.
    pub name: Option<Name>,
    pub algorithm: Option<KeyAlgorithm>,
    pub bits: u32,
    pub comment: String,
    pub public_key: String,
    pub fingerprint: String,
    pub private_key: Option<SealedBlob>,
    pub deleted: bool,
}

/// What a new keypair is made of, prepared (and its secret sealed) before the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewKeypair {
    pub name: Name,
    pub comment: String,
    pub algorithm: KeyAlgorithm,
    pub bits: u32,
    pub public_key: String,
    pub fingerprint: String,
    pub private_key: Option<SealedBlob>,
}

impl NewKeypair {
    pub fn new(
        name: Name,
        comment: String,
        facts: KeyFacts,
        private_key: Option<SealedBlob>,
    ) -> Self {
        Self {
            name,
            comment,
            algorithm: facts.algorithm,
            bits: facts.bits,
            public_key: facts.public_key,
            fingerprint: facts.fingerprint,
            private_key,
        }
    }
}

#[derive(Debug, Clone)]
pub enum KeypairCommand {
    Generate(NewKeypair),
    Import(NewKeypair),
    /// A rename, a new comment, or both, as one command (one PATCH, one commit).
    Update {
        name: Option<Name>,
        comment: Option<NewComment>,
    },
    RecordExport {
        encrypted: bool,
    },
    Delete {
        cascade: bool,
    },
}

/// A new comment and the public key line that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    pub comment: String,
    pub public_key: String,
}

/// Persisted contract: variant names are the `event_type`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeypairEvent {
    KeypairGenerated(NewKeypair),
    KeypairImported(NewKeypair),
    KeypairRenamed {
        old_name: Name,
        new_name: Name,
    },
    KeypairCommentChanged {
        comment: String,
        public_key: String,
    },
    /// Someone took the private key out: who and when are in the metadata.
    PrivateKeyExported {
        encrypted: bool,
    },
    KeypairDeleted {
        cascade: bool,
    },
}

impl DomainEvent for KeypairEvent {
    fn event_type(&self) -> String {
        match self {
            Self::KeypairGenerated(_) => "KeypairGenerated",
            Self::KeypairImported(_) => "KeypairImported",
            Self::KeypairRenamed { .. } => "KeypairRenamed",
            Self::KeypairCommentChanged { .. } => "KeypairCommentChanged",
            Self::PrivateKeyExported { .. } => "PrivateKeyExported",
            Self::KeypairDeleted { .. } => "KeypairDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeypairError {
    #[error("a keypair with this id already exists")]
    AlreadyExists,
    #[error("no such keypair")]
    NotFound,
    #[error("the keypair has no private key")]
    NoPrivateKey,
}

impl crate::store::Upcasted for SshKeypair {
    fn is_edit(event: &KeypairEvent) -> bool {
        !matches!(event, KeypairEvent::PrivateKeyExported { .. })
    }
}

impl SshKeypair {
    pub fn exists(&self) -> bool {
        self.algorithm.is_some() && !self.deleted
    }
}

impl Aggregate for SshKeypair {
    const TYPE: &'static str = "SshKeypair";
    type Command = KeypairCommand;
    type Event = KeypairEvent;
    type Error = KeypairError;
    type Services = ();

    async fn handle(
        &mut self,
        command: KeypairCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), KeypairError> {
        let event = match command {
            KeypairCommand::Generate(_) | KeypairCommand::Import(_) if self.algorithm.is_some() => {
                return Err(KeypairError::AlreadyExists);
            }
            KeypairCommand::Generate(new) => KeypairEvent::KeypairGenerated(new),
            KeypairCommand::Import(new) => KeypairEvent::KeypairImported(new),
            _ if !self.exists() => return Err(KeypairError::NotFound),
            KeypairCommand::Update { name, comment } => {
                if let (Some(new_name), Some(old_name)) = (name, self.name.clone())
                    && new_name != old_name
                {
                    sink.write(KeypairEvent::KeypairRenamed { old_name, new_name }, self)
                        .await;
                }
                if let Some(new) = comment.filter(|c| c.comment != self.comment) {
                    sink.write(
                        KeypairEvent::KeypairCommentChanged {
                            comment: new.comment,
                            public_key: new.public_key,
                        },
                        self,
                    )
                    .await;
                }
                return Ok(());
            }
            KeypairCommand::RecordExport { encrypted } => {
                if self.private_key.is_none() {
                    return Err(KeypairError::NoPrivateKey);
                }
                KeypairEvent::PrivateKeyExported { encrypted }
            }
            KeypairCommand::Delete { cascade } => KeypairEvent::KeypairDeleted { cascade },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: KeypairEvent) {
        match event {
            KeypairEvent::KeypairGenerated(new) | KeypairEvent::KeypairImported(new) => {
                *self = Self {
                    name: Some(new.name),
                    algorithm: Some(new.algorithm),
                    bits: new.bits,
                    comment: new.comment,
                    public_key: new.public_key,
                    fingerprint: new.fingerprint,
                    private_key: new.private_key,
                    deleted: false,
                };
            }
            KeypairEvent::KeypairRenamed { new_name, .. } => self.name = Some(new_name),
            KeypairEvent::KeypairCommentChanged {
                comment,
                public_key,
            } => {
                self.comment = comment;
                self.public_key = public_key;
            }
            KeypairEvent::PrivateKeyExported { .. } => {}
            KeypairEvent::KeypairDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }

    type Given = TestFramework<SshKeypair>;

    fn new_keypair(private: bool) -> NewKeypair {
        NewKeypair {
            name: name("backup"),
            comment: "c".into(),
            algorithm: KeyAlgorithm::Ed25519,
            bits: 256,
            public_key: "ssh-ed25519 AAAA c".into(),
            fingerprint: "SHA256:x".into(),
            private_key: private.then(|| SealedBlob {
                nonce: "n".into(),
                ciphertext: "c".into(),
            }),
        }
    }

    #[test]
    fn generate_and_import_record_the_keypair_once() {
        Given::with(())
            .given_no_previous_events()
            .when(KeypairCommand::Generate(new_keypair(true)))
            .then_expect_events(vec![KeypairEvent::KeypairGenerated(new_keypair(true))]);
        Given::with(())
            .given_no_previous_events()
            .when(KeypairCommand::Import(new_keypair(false)))
            .then_expect_events(vec![KeypairEvent::KeypairImported(new_keypair(false))]);
        Given::with(())
            .given(vec![KeypairEvent::KeypairImported(new_keypair(false))])
            .when(KeypairCommand::Import(new_keypair(false)))
            .then_expect_error(KeypairError::AlreadyExists);
    }

    #[test]
    fn rename_records_old_and_new_and_ignores_no_change() {
        Given::with(())
            .given(vec![KeypairEvent::KeypairGenerated(new_keypair(true))])
            .when(KeypairCommand::Update {
                name: Some(name("offsite")),
                comment: None,
            })
            .then_expect_events(vec![KeypairEvent::KeypairRenamed {
                old_name: name("backup"),
                new_name: name("offsite"),
            }]);
        Given::with(())
            .given(vec![KeypairEvent::KeypairGenerated(new_keypair(true))])
            .when(KeypairCommand::Update {
                name: Some(name("backup")),
                comment: None,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn one_update_renames_and_recomments_together() {
        Given::with(())
            .given(vec![KeypairEvent::KeypairGenerated(new_keypair(true))])
            .when(KeypairCommand::Update {
                name: Some(name("offsite")),
                comment: Some(NewComment {
                    comment: "new".into(),
                    public_key: "ssh-ed25519 AAAA new".into(),
                }),
            })
            .then_expect_events(vec![
                KeypairEvent::KeypairRenamed {
                    old_name: name("backup"),
                    new_name: name("offsite"),
                },
                KeypairEvent::KeypairCommentChanged {
                    comment: "new".into(),
                    public_key: "ssh-ed25519 AAAA new".into(),
                },
            ]);
    }

    #[test]
    fn commands_on_missing_or_deleted_keypairs_are_refused() {
        Given::with(())
            .given_no_previous_events()
            .when(KeypairCommand::Update {
                name: Some(name("x")),
                comment: None,
            })
            .then_expect_error(KeypairError::NotFound);
        Given::with(())
            .given(vec![
                KeypairEvent::KeypairGenerated(new_keypair(true)),
                KeypairEvent::KeypairDeleted { cascade: false },
            ])
            .when(KeypairCommand::Delete { cascade: false })
            .then_expect_error(KeypairError::NotFound);
        Given::with(())
            .given(vec![
                KeypairEvent::KeypairGenerated(new_keypair(true)),
                KeypairEvent::KeypairDeleted { cascade: false },
            ])
            .when(KeypairCommand::Generate(new_keypair(true)))
            .then_expect_error(KeypairError::AlreadyExists);
    }

    #[test]
    fn export_needs_a_private_key() {
        Given::with(())
            .given(vec![KeypairEvent::KeypairImported(new_keypair(false))])
            .when(KeypairCommand::RecordExport { encrypted: false })
            .then_expect_error(KeypairError::NoPrivateKey);
        Given::with(())
            .given(vec![KeypairEvent::KeypairGenerated(new_keypair(true))])
            .when(KeypairCommand::RecordExport { encrypted: true })
            .then_expect_events(vec![KeypairEvent::PrivateKeyExported { encrypted: true }]);
    }

    #[test]
    fn comment_changes_and_deletion_are_recorded() {
        Given::with(())
            .given(vec![KeypairEvent::KeypairGenerated(new_keypair(true))])
            .when(KeypairCommand::Update {
                name: None,
                comment: Some(NewComment {
                    comment: "new".into(),
                    public_key: "ssh-ed25519 AAAA new".into(),
                }),
            })
            .then_expect_events(vec![KeypairEvent::KeypairCommentChanged {
                comment: "new".into(),
                public_key: "ssh-ed25519 AAAA new".into(),
            }]);
        Given::with(())
            .given(vec![KeypairEvent::KeypairGenerated(new_keypair(true))])
            .when(KeypairCommand::Delete { cascade: true })
            .then_expect_events(vec![KeypairEvent::KeypairDeleted { cascade: true }]);
    }

    /// Names are typed now; events stored with plain strings load and serialise back
    /// to the same JSON.
    #[test]
    fn events_stored_with_plain_string_names_still_load() {
        let renamed = serde_json::json!({"KeypairRenamed": {"old_name": "backup", "new_name": "Offsite Key"}});
        let event: KeypairEvent = serde_json::from_value(renamed.clone()).unwrap();
        assert_eq!(
            event,
            KeypairEvent::KeypairRenamed {
                old_name: name("backup"),
                new_name: name("Offsite Key"),
            }
        );
        assert_eq!(serde_json::to_value(&event).unwrap(), renamed);
    }
}
