//! Semi-automatic setup (the caller side of pairing): credgate hands a keypair's public
//! key to a remote credgate, pins the host keys it answers with, proves the pairing by
//! logging in, and records the connection. Each step is recorded on a `PairingAttempt`;
//! a failure undoes what was made: a keypair generated for the call is simply never
//! recorded (it lives only in the change that would have recorded the connection), and
//! a pairing the remote already made is revoked with its token.

use std::time::Duration;

use russh::keys::ssh_key::{PrivateKey, PublicKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::{
    ConnectionCommand, ConnectionSettings, RemotePairing, RemoteRevocation, RevocationOutcome,
    SetupMethod, SshConnection,
};
use super::attempt::{AttemptCommand, Compensation, PairingPhase};
use super::host_keys::{self, PinnedHostKey};
use super::service::{ALIAS_KIND, ConnectionFailure, ConnectionService, KeypairChoice, NAME_KIND};
use super::{exports, service};
use crate::keypairs::{self, Comment, GenerateRequest, KeyAlgorithm, KeypairFailure};
use crate::names::Name;
use crate::remote::{PairingAnswer, PairingOffer, RemoteEndpoint, RemoteError, TlsTrust};
use crate::ssh::probe::probe;
use crate::ssh::{Port, ProbeFailure, Username};
use crate::store::{Change, CommandMetadata, Committed};

/// What the sealed revocation token is bound to.
pub const REVOCATION_TOKEN_PURPOSE: &str = "remote-revocation-token";

/// A semi-automatic setup request, parsed.
pub struct SemiAutomaticRequest {
    pub name: Name,
    pub endpoint: RemoteEndpoint,
    /// Used for the one call to the remote; never stored, logged or echoed.
    pub remote_api_key: Zeroizing<String>,
    pub username: Username,
    pub keypair: KeypairChoice,
    pub tls: TlsTrust,
    pub connect_timeout_secs: u64,
    pub sudo: bool,
    pub prove_login: bool,
}

/// Why a semi-automatic setup failed, and whether the remote's pairing was undone.
#[derive(Debug)]
pub struct PairingFailed {
    pub phase: PairingPhase,
    pub cause: PairingCause,
    /// `None`: the remote made nothing; else whether revoking its pairing worked.
    pub remote_revoked: Option<bool>,
}

#[derive(Debug)]
pub enum PairingCause {
    Remote(RemoteError),
    HostKeys(String),
    Login(ProbeFailure),
    Record(ConnectionFailure),
}

impl PairingCause {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Remote(e) => e.code(),
            Self::HostKeys(_) => "remote_rejected",
            Self::Login(_) => "login_failed",
            Self::Record(_) => "record_failed",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::Remote(e) => e.to_string(),
            Self::HostKeys(why) => format!("the remote's host keys cannot be pinned: {why}"),
            Self::Login(failure) => format!(
                "logging in with the new key failed ({:?}): {}",
                failure.code, failure.detail
            ),
            Self::Record(e) => e.to_string(),
        }
    }
}

/// The key the remote authorizes: an existing keypair's, or one generated into `change`.
struct ChosenKey {
    keypair_id: Uuid,
    private: PrivateKey,
    generated: bool,
}

impl ConnectionService {
    /// Semi-automatic setup. Everything local is checked before anything leaves the
    /// process.
    pub async fn create_semi_automatic(
        &self,
        request: SemiAutomaticRequest,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshConnection>), ConnectionFailure> {
        let id = Uuid::new_v4();
        let owner = id.to_string();
        let timeout = Duration::from_secs(request.connect_timeout_secs);
        self.check_names_free(&request, &owner).await?;
        if let KeypairChoice::Existing(keypair_id) = &request.keypair {
            self.require_private_key(*keypair_id).await?;
        }
        self.admit(
            request.endpoint.host(),
            request.endpoint.port(),
            request.connect_timeout_secs,
        )
        .await
        .map_err(|e| match e {
            ConnectionFailure::HostForbidden(ip) => ConnectionFailure::RemoteForbidden(ip),
            other => other,
        })?;

        let attempt = Uuid::new_v4().to_string();
        let start = AttemptCommand::Start {
            connection_id: id,
            connection_name: request.name.as_str().to_owned(),
            url: request.endpoint.as_str().to_owned(),
            username: request.username.as_str().to_owned(),
            generated_keypair: matches!(request.keypair, KeypairChoice::Generate { .. }),
        };
        self.attempts.execute(&attempt, start, metadata).await?;

        let mut change = Change::new();
        let key = self.choose_key(&mut change, &request, metadata).await?;
        let public = public_line(key.private.public_key())?;
        let offer = PairingOffer {
            username: request.username.as_str(),
            public_key: &public,
            label: request.name.as_str(),
            sudo: request.sudo,
        };
        let answer = match self
            .remote
            .pair(
                &request.endpoint,
                &request.tls,
                timeout,
                &request.remote_api_key,
                &offer,
            )
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                let failure = PairingFailed {
                    phase: PairingPhase::RemoteAuthorization,
                    cause: PairingCause::Remote(error),
                    remote_revoked: None,
                };
                return Err(self.fail(&attempt, failure, &key, metadata).await);
            }
        };
        let tls_verified = request.endpoint.is_https() && request.tls.verify;
        match self
            .prove(&request, &answer, &key, tls_verified, &attempt, metadata)
            .await
        {
            Ok((host_keys, port)) => {
                let settings = ConnectionSettings {
                    name: request.name.clone(),
                    host: request.endpoint.host().clone(),
                    port,
                    username: request.username.clone(),
                    keypair_id: key.keypair_id,
                    host_keys,
                    connect_timeout_secs: request.connect_timeout_secs,
                };
                match self
                    .record(
                        &mut change,
                        &owner,
                        settings,
                        &request,
                        &answer,
                        &attempt,
                        metadata,
                    )
                    .await
                {
                    Ok(committed) => Ok((id, committed)),
                    Err(cause) => {
                        let failure = self
                            .undo_remote(&request, &answer, PairingPhase::Record, cause)
                            .await;
                        Err(self.fail(&attempt, failure, &key, metadata).await)
                    }
                }
            }
            Err((phase, cause)) => {
                let failure = self.undo_remote(&request, &answer, phase, cause).await;
                Err(self.fail(&attempt, failure, &key, metadata).await)
            }
        }
    }

    /// The connection's name and alias, and a generated keypair's name, must be free
    /// before the remote is asked (the commit checks again).
    async fn check_names_free(
        &self,
        request: &SemiAutomaticRequest,
        owner: &str,
    ) -> Result<(), ConnectionFailure> {
        if self
            .store
            .name_owner(NAME_KIND, &request.name.normalized())
            .await?
            .is_some()
        {
            return Err(ConnectionFailure::NameTaken);
        }
        let alias = exports::slug(request.name.as_str(), owner);
        if self.store.name_owner(ALIAS_KIND, &alias).await?.is_some() {
            return Err(ConnectionFailure::AliasTaken);
        }
        if let KeypairChoice::Generate { name, .. } = &request.keypair {
            let name = generated_name(name.as_ref(), &request.name)?;
            if self
                .store
                .name_owner(keypairs::NAME_KIND, &name.normalized())
                .await?
                .is_some()
            {
                return Err(ConnectionFailure::Invalid {
                    field: "generate_keypair.name".to_owned(),
                    message: "is already used by another keypair".to_owned(),
                });
            }
        }
        Ok(())
    }

    async fn choose_key(
        &self,
        change: &mut Change,
        request: &SemiAutomaticRequest,
        metadata: &CommandMetadata,
    ) -> Result<ChosenKey, ConnectionFailure> {
        match &request.keypair {
            KeypairChoice::Existing(id) => {
                let private = self
                    .keypairs
                    .private_key(*id)
                    .await
                    .map_err(ConnectionFailure::Keypair)?;
                Ok(ChosenKey {
                    keypair_id: *id,
                    private,
                    generated: false,
                })
            }
            KeypairChoice::Generate { name, algorithm } => {
                let generate = GenerateRequest {
                    name: generated_name(name.as_ref(), &request.name)?,
                    algorithm: algorithm.unwrap_or(KeyAlgorithm::Ed25519),
                    bits: None,
                    comment: Comment::default(),
                };
                let (keypair_id, _, private) = self
                    .keypairs
                    .stage_generate_with_key(change, generate, metadata)
                    .await
                    .map_err(ConnectionFailure::Keypair)?;
                Ok(ChosenKey {
                    keypair_id,
                    private,
                    generated: true,
                })
            }
        }
    }

    /// Pins the host keys the remote answered with and, if asked, logs in with them.
    async fn prove(
        &self,
        request: &SemiAutomaticRequest,
        answer: &PairingAnswer,
        key: &ChosenKey,
        tls_verified: bool,
        attempt: &str,
        metadata: &CommandMetadata,
    ) -> Result<(Vec<PinnedHostKey>, Port), (PairingPhase, PairingCause)> {
        let host_keys = host_keys::parse_paired(&answer.host_keys, tls_verified)
            .map_err(|why| (PairingPhase::HostKeys, PairingCause::HostKeys(why)))?;
        let port = Port::parse(i64::from(answer.ssh_port)).map_err(|m| {
            (
                PairingPhase::HostKeys,
                PairingCause::HostKeys(format!("ssh_port: {m}")),
            )
        })?;
        let fingerprints: Vec<String> = host_keys.iter().map(|k| k.fingerprint.clone()).collect();
        let authorized = AttemptCommand::RecordRemoteAuthorized {
            remote_pairing_id: answer.authorized_key_id,
            sudo_granted: answer.sudo_granted,
            tls_verified,
            host_key_fingerprints: fingerprints.clone(),
        };
        self.attempts
            .execute(attempt, authorized, metadata)
            .await
            .map_err(|e| (PairingPhase::HostKeys, PairingCause::Record(e.into())))?;
        if !request.prove_login {
            return Ok((host_keys, port));
        }
        let timeout = Duration::from_secs(request.connect_timeout_secs);
        let address = self
            .checked_address(request.endpoint.host(), port, timeout)
            .await
            .map_err(|e| (PairingPhase::Login, PairingCause::Remote(e.into())))?;
        let report = probe(
            address,
            timeout,
            fingerprints,
            request.username.as_str(),
            key.private.clone(),
        )
        .await;
        if let Some(failure) = report.error.filter(|_| !report.ok) {
            return Err((PairingPhase::Login, PairingCause::Login(failure)));
        }
        let proven = AttemptCommand::RecordLoginProven {
            latency_ms: report.latency_ms,
        };
        self.attempts
            .execute(attempt, proven, metadata)
            .await
            .map_err(|e| (PairingPhase::Login, PairingCause::Record(e.into())))?;
        Ok((host_keys, port))
    }

    /// The connection (with the sealed revocation token), the generated keypair if any,
    /// and the attempt's completion: one change.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        change: &mut Change,
        owner: &str,
        settings: ConnectionSettings,
        request: &SemiAutomaticRequest,
        answer: &PairingAnswer,
        attempt: &str,
        metadata: &CommandMetadata,
    ) -> Result<Committed<SshConnection>, PairingCause> {
        let sealed = self
            .secrets
            .seal_new(
                change,
                owner,
                REVOCATION_TOKEN_PURPOSE,
                answer.revocation_token.as_bytes(),
            )
            .map_err(|e| {
                PairingCause::Record(ConnectionFailure::Keypair(KeypairFailure::Secret(
                    e.to_string(),
                )))
            })?;
        let remote = RemotePairing {
            endpoint: request.endpoint.clone(),
            tls: request.tls.clone(),
            pairing_id: answer.authorized_key_id,
            sealed_revocation_token: sealed,
            sudo_granted: answer.sudo_granted,
        };
        service::stage_side_tables(change, owner, &settings);
        let command = ConnectionCommand::Create {
            settings,
            setup: SetupMethod::SemiAutomatic,
            remote: Some(Box::new(remote)),
        };
        let committed = self
            .connections
            .decide(change, owner, command, metadata, None)
            .await
            .map_err(|e| PairingCause::Record(e.into()))?;
        self.attempts
            .decide(change, attempt, AttemptCommand::Complete, metadata, None)
            .await
            .map_err(|e| PairingCause::Record(e.into()))?;
        self.commit(change).await.map_err(PairingCause::Record)?;
        Ok(committed)
    }

    /// Revokes the pairing the remote made for this attempt (best effort).
    async fn undo_remote(
        &self,
        request: &SemiAutomaticRequest,
        answer: &PairingAnswer,
        phase: PairingPhase,
        cause: PairingCause,
    ) -> PairingFailed {
        let timeout = Duration::from_secs(request.connect_timeout_secs);
        let revoked = self
            .remote
            .revoke(
                &request.endpoint,
                &request.tls,
                timeout,
                answer.authorized_key_id,
                &answer.revocation_token,
            )
            .await;
        if let Err(error) = &revoked {
            tracing::warn!(%error, pairing = %answer.authorized_key_id, "could not revoke the remote pairing of a failed setup");
        }
        PairingFailed {
            phase,
            cause,
            remote_revoked: Some(revoked.is_ok()),
        }
    }

    /// Records the failure and what was undone; the generated keypair (if any) is
    /// dropped with the uncommitted change.
    async fn fail(
        &self,
        attempt: &str,
        failure: PairingFailed,
        key: &ChosenKey,
        metadata: &CommandMetadata,
    ) -> ConnectionFailure {
        let command = AttemptCommand::Fail {
            phase: failure.phase,
            code: failure.cause.code().to_owned(),
            detail: failure.cause.detail(),
            compensation: Compensation {
                keypair_discarded: key.generated,
                remote_revoked: failure.remote_revoked,
                remote_revocation_error: None,
            },
        };
        if let Err(error) = self.attempts.execute(attempt, command, metadata).await {
            tracing::error!(%error, attempt, "could not record the failed pairing attempt");
        }
        ConnectionFailure::Pairing(Box::new(failure))
    }

    /// Revokes a semi-automatic connection's remote pairing with its sealed token.
    pub(super) async fn revoke_remote(
        &self,
        owner: &str,
        remote: &RemotePairing,
        settings: &ConnectionSettings,
    ) -> RemoteRevocation {
        let failed = |detail: String| RemoteRevocation {
            outcome: RevocationOutcome::Failed,
            detail: Some(detail),
        };
        let token = match self
            .secrets
            .open_sealed(
                owner,
                REVOCATION_TOKEN_PURPOSE,
                &remote.sealed_revocation_token,
            )
            .await
        {
            Ok(token) => token,
            Err(e) => return failed(format!("the revocation token cannot be opened: {e}")),
        };
        let Ok(token) = std::str::from_utf8(&token) else {
            return failed("the revocation token is not text".to_owned());
        };
        let timeout = Duration::from_secs(settings.connect_timeout_secs);
        match self
            .remote
            .revoke(
                &remote.endpoint,
                &remote.tls,
                timeout,
                remote.pairing_id,
                token,
            )
            .await
        {
            Ok(()) => RemoteRevocation {
                outcome: RevocationOutcome::Revoked,
                detail: None,
            },
            Err(error) => failed(format!("{}: {error}", error.code())),
        }
    }
}

/// A generated keypair's name: as asked, or "<connection name> Key".
fn generated_name(asked: Option<&Name>, connection: &Name) -> Result<Name, ConnectionFailure> {
    match asked {
        Some(name) => Ok(name.clone()),
        None => Name::parse(&format!("{} Key", connection.as_str())).map_err(|m| {
            ConnectionFailure::Invalid {
                field: "generate_keypair.name".to_owned(),
                message: m.to_owned(),
            }
        }),
    }
}

/// `type base64` of a public key (no comment: the remote tags the line itself).
fn public_line(key: &PublicKey) -> Result<String, ConnectionFailure> {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh()
        .map(|text| text.trim().to_owned())
        .map_err(|e| ConnectionFailure::Keypair(KeypairFailure::Secret(e.to_string())))
}
