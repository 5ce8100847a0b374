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
use super::attempt::{
    AttemptCommand, Compensation, OpenAttemptView, PairingPhase, RemoteAuthorization,
};
use super::host_keys::{self, PinnedHostKey};
use super::service::{ALIAS_KIND, ConnectionFailure, ConnectionService, KeypairChoice, NAME_KIND};
use super::{exports, service};
use crate::keypairs::{self, Comment, GenerateRequest, KeyAlgorithm, KeypairFailure};
use crate::names::Name;
use crate::remote::{PairingAnswer, PairingOffer, RemoteEndpoint, RemoteError, TlsTrust};
use crate::secrets::SealedBlob;
use crate::ssh::probe::probe;
use crate::ssh::{Port, ProbeFailure, Username};
use crate::store::View;
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
        self.record_remote_authorized(
            request,
            answer,
            tls_verified,
            &fingerprints,
            attempt,
            metadata,
        )
        .await
        .map_err(|e| (PairingPhase::HostKeys, PairingCause::Record(e)))?;
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

    /// What the remote made, with its revocation token sealed under the attempt's own
    /// data key: from here on an abandoned attempt can be undone by the sweeper.
    async fn record_remote_authorized(
        &self,
        request: &SemiAutomaticRequest,
        answer: &PairingAnswer,
        tls_verified: bool,
        fingerprints: &[String],
        attempt: &str,
        metadata: &CommandMetadata,
    ) -> Result<(), ConnectionFailure> {
        let mut change = Change::new();
        let sealed = self
            .secrets
            .seal_new(
                &mut change,
                attempt,
                REVOCATION_TOKEN_PURPOSE,
                answer.revocation_token.as_bytes(),
            )
            .map_err(|e| ConnectionFailure::Keypair(KeypairFailure::Secret(e.to_string())))?;
        let authorization = RemoteAuthorization {
            remote_pairing_id: answer.authorized_key_id,
            endpoint: request.endpoint.clone(),
            tls: request.tls.clone(),
            sealed_revocation_token: sealed,
            sudo_granted: answer.sudo_granted,
            tls_verified,
            host_key_fingerprints: fingerprints.to_vec(),
        };
        let command = AttemptCommand::RecordRemoteAuthorized(Box::new(authorization));
        self.attempts
            .decide(&mut change, attempt, command, metadata, None)
            .await?;
        self.commit(&change).await
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
        self.secrets.shred(change, attempt);
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
        if let Err(error) = self.finish_failed(attempt, command, metadata).await {
            tracing::error!(%error, attempt, "could not record the failed pairing attempt");
        }
        ConnectionFailure::Pairing(Box::new(failure))
    }

    /// Records an attempt's failure and shreds its copy of the revocation token.
    async fn finish_failed(
        &self,
        attempt: &str,
        command: AttemptCommand,
        metadata: &CommandMetadata,
    ) -> Result<(), ConnectionFailure> {
        let mut change = Change::new();
        self.attempts
            .decide(&mut change, attempt, command, metadata, None)
            .await?;
        self.secrets.shred(&mut change, attempt);
        self.commit(&change).await
    }

    /// Undoes attempts abandoned half-way — their request timed out, or the process
    /// stopped — that started before `started_before`: a pairing the remote made is
    /// revoked with the token the attempt kept, and the attempt is recorded as failed.
    /// Returns how many were swept.
    pub async fn sweep_abandoned_attempts(
        &self,
        started_before: chrono::DateTime<chrono::Utc>,
        metadata: &CommandMetadata,
    ) -> Result<usize, ConnectionFailure> {
        let open: Vec<OpenAttemptView> = self.store.all_views(OpenAttemptView::PROJECTION).await?;
        let mut swept = 0;
        for attempt in open.into_iter().filter(|a| a.started_at < started_before) {
            let (remote_revoked, error) = match &attempt.remote {
                None => (None, None),
                Some(remote) => match self
                    .revoke_sealed(
                        &attempt.id,
                        &remote.endpoint,
                        &remote.tls,
                        remote.remote_pairing_id,
                        &remote.sealed_revocation_token,
                        Duration::from_secs(30),
                    )
                    .await
                {
                    Ok(()) => (Some(true), None),
                    Err(why) => (Some(false), Some(why)),
                },
            };
            let detail = match &attempt.remote {
                Some(_) => {
                    "the request ended before the connection was recorded (it timed out, or the process stopped)"
                }
                None => {
                    "the request ended while the remote was being asked; if the remote paired the key, its administrator sees the pairing (labelled with the connection name) and can revoke it"
                }
            };
            let command = AttemptCommand::Fail {
                phase: if attempt.remote.is_some() {
                    PairingPhase::Record
                } else {
                    PairingPhase::RemoteAuthorization
                },
                code: "abandoned".to_owned(),
                detail: detail.to_owned(),
                compensation: Compensation {
                    keypair_discarded: attempt.generated_keypair,
                    remote_revoked,
                    remote_revocation_error: error,
                },
            };
            // Another instance may have swept it meanwhile: note it and go on.
            match self.finish_failed(&attempt.id, command, metadata).await {
                Ok(()) => swept += 1,
                Err(error) => {
                    tracing::warn!(%error, attempt = %attempt.id, "could not end an abandoned attempt");
                }
            }
        }
        Ok(swept)
    }

    /// Revokes a remote pairing with a token sealed for `owner`.
    async fn revoke_sealed(
        &self,
        owner: &str,
        endpoint: &RemoteEndpoint,
        tls: &TlsTrust,
        pairing_id: Uuid,
        sealed: &SealedBlob,
        timeout: Duration,
    ) -> Result<(), String> {
        let token = self
            .secrets
            .open_sealed(owner, REVOCATION_TOKEN_PURPOSE, sealed)
            .await
            .map_err(|e| format!("the revocation token cannot be opened: {e}"))?;
        let token = std::str::from_utf8(&token)
            .map_err(|_| "the revocation token is not text".to_owned())?;
        self.remote
            .revoke(endpoint, tls, timeout, pairing_id, token)
            .await
            .map_err(|error| format!("{}: {error}", error.code()))
    }

    /// Revokes a semi-automatic connection's remote pairing with its sealed token.
    pub(super) async fn revoke_remote(
        &self,
        owner: &str,
        remote: &RemotePairing,
        settings: &ConnectionSettings,
    ) -> RemoteRevocation {
        let timeout = Duration::from_secs(settings.connect_timeout_secs);
        match self
            .revoke_sealed(
                owner,
                &remote.endpoint,
                &remote.tls,
                remote.pairing_id,
                &remote.sealed_revocation_token,
                timeout,
            )
            .await
        {
            Ok(()) => RemoteRevocation {
                outcome: RevocationOutcome::Revoked,
                detail: None,
            },
            Err(detail) => RemoteRevocation {
                outcome: RevocationOutcome::Failed,
                detail: Some(detail),
            },
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
