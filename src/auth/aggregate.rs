//! The `ApiKey` aggregate: created, then perhaps revoked. Its events are the audit trail
//! of who may call credgate.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::scope::Scope;
use crate::names::Name;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub secret_sha256: String,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub enum ApiKeyCommand {
    Create {
        name: Name,
        scopes: Vec<Scope>,
        secret_sha256: String,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    Revoke {
        now: DateTime<Utc>,
    },
}

/// Persisted contract: variant names are the `event_type`s; change a payload only with a
/// new `event_version` and an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    ApiKeyCreated {
        name: String,
        scopes: Vec<Scope>,
        /// SHA-256 of the secret, hex. The secret itself is never stored.
        secret_sha256: String,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    },
    ApiKeyRevoked {
        revoked_at: DateTime<Utc>,
    },
}

impl DomainEvent for ApiKeyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ApiKeyCreated { .. } => "ApiKeyCreated",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("an API key with this secret already exists")]
    AlreadyExists,
    #[error("no such API key")]
    NotFound,
    #[error("the API key is already revoked")]
    AlreadyRevoked,
    #[error("an API key needs at least one scope")]
    NoScopes,
    #[error("the expiry time is not in the future")]
    ExpiryNotInFuture,
    /// Not the aggregate's decision but the store's (no other active admin key): kept
    /// here so every refusal of a key command has one type.
    #[error("this is the last active admin key")]
    LastAdminKey,
}

/// Why a presented secret does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Unknown,
    Revoked,
    Expired,
}

impl ApiKey {
    pub fn exists(&self) -> bool {
        self.created_at.is_some()
    }

    /// Whether `presented_sha256` opens this key at `now`.
    pub fn check(
        &self,
        presented: &super::token::SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        if !self.exists() || !presented.matches(&self.secret_sha256) {
            return Err(Rejection::Unknown);
        }
        if self.revoked_at.is_some() {
            return Err(Rejection::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(Rejection::Expired);
        }
        Ok(())
    }
}

impl crate::store::Upcasted for ApiKey {}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "ApiKey";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ApiKeyCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ApiKeyError> {
        match command {
            ApiKeyCommand::Create {
                name,
                scopes,
                secret_sha256,
                expires_at,
                now,
            } => {
                if self.exists() {
                    return Err(ApiKeyError::AlreadyExists);
                }
                if scopes.is_empty() {
                    return Err(ApiKeyError::NoScopes);
                }
                if expires_at.is_some_and(|at| at <= now) {
                    return Err(ApiKeyError::ExpiryNotInFuture);
                }
                let mut scopes = scopes;
                scopes.sort();
                scopes.dedup();
                let event = ApiKeyEvent::ApiKeyCreated {
                    name: name.as_str().to_owned(),
                    scopes,
                    secret_sha256,
                    created_at: now,
                    expires_at,
                };
                sink.write(event, self).await;
            }
            ApiKeyCommand::Revoke { now } => {
                if !self.exists() {
                    return Err(ApiKeyError::NotFound);
                }
                if self.revoked_at.is_some() {
                    return Err(ApiKeyError::AlreadyRevoked);
                }
                sink.write(ApiKeyEvent::ApiKeyRevoked { revoked_at: now }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: ApiKeyEvent) {
        match event {
            ApiKeyEvent::ApiKeyCreated {
                name,
                scopes,
                secret_sha256,
                created_at,
                expires_at,
            } => {
                self.name = name;
                self.scopes = scopes;
                self.secret_sha256 = secret_sha256;
                self.created_at = Some(created_at);
                self.expires_at = expires_at;
            }
            ApiKeyEvent::ApiKeyRevoked { revoked_at } => self.revoked_at = Some(revoked_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::auth::token::digest_of;

    type Given = TestFramework<ApiKey>;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap()
    }

    fn created() -> ApiKeyEvent {
        ApiKeyEvent::ApiKeyCreated {
            name: "ops".into(),
            scopes: vec![Scope::AuditRead],
            secret_sha256: digest_of("s").0,
            created_at: at(0),
            expires_at: None,
        }
    }

    fn create(scopes: Vec<Scope>, expires_at: Option<DateTime<Utc>>) -> ApiKeyCommand {
        ApiKeyCommand::Create {
            name: Name::parse("ops").unwrap(),
            scopes,
            secret_sha256: digest_of("s").0,
            expires_at,
            now: at(0),
        }
    }

    #[test]
    fn create_records_the_key_with_sorted_unique_scopes() {
        let expected = ApiKeyEvent::ApiKeyCreated {
            name: "ops".into(),
            scopes: vec![Scope::KeypairsRead, Scope::AuditRead],
            secret_sha256: digest_of("s").0,
            created_at: at(0),
            expires_at: Some(at(60)),
        };
        Given::with(())
            .given_no_previous_events()
            .when(create(
                vec![Scope::AuditRead, Scope::KeypairsRead, Scope::AuditRead],
                Some(at(60)),
            ))
            .then_expect_events(vec![expected]);
    }

    #[test]
    fn create_refuses_an_existing_key() {
        Given::with(())
            .given(vec![created()])
            .when(create(vec![Scope::Admin], None))
            .then_expect_error(ApiKeyError::AlreadyExists);
    }

    #[test]
    fn create_refuses_no_scopes() {
        Given::with(())
            .given_no_previous_events()
            .when(create(vec![], None))
            .then_expect_error(ApiKeyError::NoScopes);
    }

    #[test]
    fn create_refuses_an_expiry_in_the_past() {
        Given::with(())
            .given_no_previous_events()
            .when(create(vec![Scope::Admin], Some(at(0))))
            .then_expect_error(ApiKeyError::ExpiryNotInFuture);
    }

    #[test]
    fn revoke_records_the_time() {
        Given::with(())
            .given(vec![created()])
            .when(ApiKeyCommand::Revoke { now: at(5) })
            .then_expect_events(vec![ApiKeyEvent::ApiKeyRevoked { revoked_at: at(5) }]);
    }

    #[test]
    fn revoke_refuses_unknown_and_revoked_keys() {
        Given::with(())
            .given_no_previous_events()
            .when(ApiKeyCommand::Revoke { now: at(5) })
            .then_expect_error(ApiKeyError::NotFound);
        Given::with(())
            .given(vec![
                created(),
                ApiKeyEvent::ApiKeyRevoked { revoked_at: at(1) },
            ])
            .when(ApiKeyCommand::Revoke { now: at(5) })
            .then_expect_error(ApiKeyError::AlreadyRevoked);
    }

    #[test]
    fn check_tells_unknown_revoked_and_expired_apart() {
        let mut key = ApiKey::default();
        let right = digest_of("s");
        assert_eq!(key.check(&right, at(0)), Err(Rejection::Unknown));
        key.apply(created());
        assert_eq!(key.check(&right, at(0)), Ok(()));
        assert_eq!(key.check(&digest_of("t"), at(0)), Err(Rejection::Unknown));
        key.expires_at = Some(at(10));
        assert_eq!(key.check(&right, at(10)), Err(Rejection::Expired));
        key.expires_at = None;
        key.apply(ApiKeyEvent::ApiKeyRevoked { revoked_at: at(1) });
        assert_eq!(key.check(&right, at(2)), Err(Rejection::Revoked));
    }
}
