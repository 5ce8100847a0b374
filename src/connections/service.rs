//! Connections as the API uses them. Each operation stages its events and side-table
//! edits (name, dependency on the keypair, a keypair generated for it) in one [`Change`]
//! and commits it once: all of it is written, or none.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::{
    ConnectionCommand, ConnectionError, ConnectionSettings, Mismatch, RemoteRevocation,
    RevocationOutcome, SetupMethod, SshConnection, TestOutcome,
};
use super::attempt::PairingAttempt;
use super::exports;
use super::view::ConnectionView;
use crate::keypairs::{
    self, Comment, GenerateRequest, KeyAlgorithm, KeypairFailure, KeypairService,
};
use crate::names::Name;
use crate::remote::PairingClient;
use crate::secrets::Secrets;
use crate::ssh::probe::probe;
use crate::ssh::{
    DiscoveredKey, Host, OutboundError, OutboundPolicy, Port, ProbeError, ProbeReport, Username,
};
use crate::store::{
    Aggregates, Change, CommandError, CommandMetadata, CommitError, Committed, Dependant, Page,
    Store, StoreError, View, Writer,
};

pub const NAME_KIND: &str = "ssh-connection";
/// The `Host` alias a connection's exported ssh_config uses (a slug of its name) is
/// reserved too: two connections exporting the same alias would make two jobs write
/// their keys to the same file.
pub const ALIAS_KIND: &str = "ssh-connection-alias";
/// How long a scan result makes a pasted key count as "scanned".
const SCAN_MEMORY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ConnectionFailure {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the name is taken by another connection")]
    NameTaken,
    #[error("another connection exports the same ssh_config alias")]
    AliasTaken,
    #[error("no such connection")]
    NotFound,
    #[error(transparent)]
    Outbound(OutboundError),
    /// The connection's host is (or resolves to) an address the outbound policy
    /// forbids: refused when it is recorded and before its credentials are handed out.
    #[error("the host resolves to {0}, which the outbound policy forbids")]
    HostForbidden(std::net::IpAddr),
    #[error("keypair: {0}")]
    Keypair(KeypairFailure),
    #[error(transparent)]
    Command(CommandError<ConnectionError>),
    /// The remote credgate's URL is (or resolves to) a forbidden address.
    #[error("the remote's URL resolves to {0}, which the outbound policy forbids")]
    RemoteForbidden(std::net::IpAddr),
    /// Semi-automatic setup failed after it started (what was undone is inside).
    #[error("semi-automatic setup failed: {}", .0.cause.detail())]
    Pairing(Box<super::semi_automatic::PairingFailed>),
    #[error(transparent)]
    Attempt(CommandError<super::attempt::AttemptError>),
}

impl From<CommandError<super::attempt::AttemptError>> for ConnectionFailure {
    fn from(err: CommandError<super::attempt::AttemptError>) -> Self {
        Self::Attempt(err)
    }
}

impl ConnectionFailure {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<CommandError<ConnectionError>> for ConnectionFailure {
    fn from(err: CommandError<ConnectionError>) -> Self {
        match err {
            CommandError::Rejected(ConnectionError::NotFound) => Self::NotFound,
            other => Self::Command(other),
        }
    }
}

impl From<StoreError> for ConnectionFailure {
    fn from(err: StoreError) -> Self {
        Self::Command(CommandError::Store(err))
    }
}

/// Which keypair a new connection uses.
pub enum KeypairChoice {
    Existing(Uuid),
    Generate {
        name: Option<Name>,
        algorithm: Option<KeyAlgorithm>,
    },
}

pub struct NewConnection {
    pub name: Name,
    pub host: Host,
    pub port: Port,
    pub username: Username,
    pub keypair: KeypairChoice,
    pub remote_host_key: String,
    pub connect_timeout_secs: u64,
}

/// Changes to a connection; `None` keeps the current value.
#[derive(Default)]
pub struct ConnectionChanges {
    pub name: Option<Name>,
    pub host: Option<Host>,
    pub port: Option<Port>,
    pub username: Option<Username>,
    pub keypair_id: Option<Uuid>,
    pub remote_host_key: Option<String>,
    pub connect_timeout_secs: Option<u64>,
}

/// What a job needs to reach the remote host.
pub struct CredentialsBundle {
    pub settings: ConnectionSettings,
    pub private_key: Zeroizing<String>,
    pub known_hosts: String,
    pub ssh_config: String,
}

pub struct ConnectionService {
    pub(super) connections: Aggregates<SshConnection>,
    pub(super) attempts: Aggregates<PairingAttempt>,
    pub(super) store: Store,
    pub(super) keypairs: web::Data<KeypairService>,
    pub(super) policy: OutboundPolicy,
    pub(super) secrets: Secrets,
    pub(super) remote: PairingClient,
    scans: Mutex<HashMap<(String, u16), RecentScan>>,
}

/// When a host:port was scanned, and what it offered.
type RecentScan = (Instant, Vec<DiscoveredKey>);

impl ConnectionService {
    pub fn new(
        writer: &Writer,
        keypairs: web::Data<KeypairService>,
        policy: OutboundPolicy,
        secrets: Secrets,
    ) -> Self {
        Self {
            connections: Aggregates::new(writer, ()),
            attempts: Aggregates::new(writer, ()),
            store: writer.store().clone(),
            keypairs,
            remote: PairingClient::new(policy.clone()),
            policy,
            secrets,
            scans: Mutex::new(HashMap::new()),
        }
    }

    pub async fn checked_address(
        &self,
        host: &Host,
        port: Port,
        timeout: Duration,
    ) -> Result<SocketAddr, OutboundError> {
        self.policy.resolve(host, port, timeout).await
    }

    /// Refuses a host the outbound policy forbids (see [`OutboundPolicy::admits`]).
    pub(super) async fn admit(
        &self,
        host: &Host,
        port: Port,
        timeout_secs: u64,
    ) -> Result<(), ConnectionFailure> {
        self.policy
            .admits(host, port, Duration::from_secs(timeout_secs))
            .await
            .map_err(|e| match e {
                OutboundError::Forbidden(ip) => ConnectionFailure::HostForbidden(ip),
                other => ConnectionFailure::Outbound(other),
            })
    }

    pub fn remember_scan(&self, host: &Host, port: Port, keys: &[DiscoveredKey]) {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        scans.retain(|_, (at, _)| at.elapsed() < SCAN_MEMORY);
        scans.insert(
            (host.to_string(), port.get()),
            (Instant::now(), keys.to_vec()),
        );
    }

    fn recent_scan(&self, host: &Host, port: Port) -> Vec<DiscoveredKey> {
        let scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        scans
            .get(&(host.to_string(), port.get()))
            .filter(|(at, _)| at.elapsed() < SCAN_MEMORY)
            .map(|(_, keys)| keys.clone())
            .unwrap_or_default()
    }

    fn pin(
        &self,
        host: &Host,
        port: Port,
        text: &str,
    ) -> Result<Vec<super::host_keys::PinnedHostKey>, ConnectionFailure> {
        super::host_keys::parse(text, &self.recent_scan(host, port))
            .map_err(|m| ConnectionFailure::invalid("remote_host_key", m))
    }

    /// Manual setup: the connection, its name, its dependency on the keypair and (when
    /// asked) the keypair generated for it, all in one change.
    pub async fn create(
        &self,
        request: NewConnection,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshConnection>), ConnectionFailure> {
        let host_keys = self.pin(&request.host, request.port, &request.remote_host_key)?;
        self.admit(&request.host, request.port, request.connect_timeout_secs)
            .await?;
        let id = Uuid::new_v4();
        let owner = id.to_string();
        let mut change = Change::new();
        let keypair_id = self.choose_keypair(&mut change, &request, metadata).await?;
        let settings = ConnectionSettings {
            name: request.name,
            host: request.host,
            port: request.port,
            username: request.username,
            keypair_id,
            host_keys,
            connect_timeout_secs: request.connect_timeout_secs,
        };
        stage_side_tables(&mut change, &owner, &settings);
        let command = ConnectionCommand::Create {
            settings,
            setup: SetupMethod::Manual,
            remote: None,
        };
        let committed = self
            .connections
            .decide(&mut change, &owner, command, metadata, None)
            .await?;
        self.commit(&change).await?;
        Ok((id, committed))
    }

    pub(super) async fn commit(&self, change: &Change) -> Result<(), ConnectionFailure> {
        self.connections
            .writer()
            .commit(change)
            .await
            .map_err(|e| match e {
                CommitError::NameTaken { kind } if kind == keypairs::NAME_KIND => {
                    ConnectionFailure::invalid(
                        "generate_keypair.name",
                        "is already used by another keypair",
                    )
                }
                CommitError::NameTaken { kind } if kind == ALIAS_KIND => {
                    ConnectionFailure::AliasTaken
                }
                CommitError::NameTaken { .. } => ConnectionFailure::NameTaken,
                CommitError::NotLive { .. } => {
                    ConnectionFailure::invalid("keypair_id", "no such keypair")
                }
                e @ (CommitError::InUse(_) | CommitError::NoneLeft { .. }) => {
                    ConnectionFailure::Command(CommandError::Store(StoreError::Fault(format!(
                        "a connection change stages no such guard: {e}"
                    ))))
                }
                CommitError::Store(e) => e.into(),
            })
    }

    /// The keypair the new connection uses: an existing one (checked to have a private
    /// key), or one generated into `change`.
    async fn choose_keypair(
        &self,
        change: &mut Change,
        request: &NewConnection,
        metadata: &CommandMetadata,
    ) -> Result<Uuid, ConnectionFailure> {
        match &request.keypair {
            KeypairChoice::Existing(id) => {
                self.require_private_key(*id).await?;
                Ok(*id)
            }
            KeypairChoice::Generate { name, algorithm } => {
                let name = match name {
                    Some(name) => name.clone(),
                    None => Name::parse(&format!("{} Key", request.name))
                        .map_err(|m| ConnectionFailure::invalid("generate_keypair.name", m))?,
                };
                let generate = GenerateRequest {
                    name,
                    algorithm: algorithm.unwrap_or(KeyAlgorithm::Ed25519),
                    bits: None,
                    comment: Comment::default(),
                };
                let (id, _) = self
                    .keypairs
                    .stage_generate(change, generate, metadata)
                    .await
                    .map_err(ConnectionFailure::Keypair)?;
                Ok(id)
            }
        }
    }

    /// A connection needs a keypair that exists and has a private key. (That it still
    /// exists when the change commits is the `require_live` guard's job.)
    pub(super) async fn require_private_key(
        &self,
        keypair_id: Uuid,
    ) -> Result<(), ConnectionFailure> {
        match self.keypairs.load_existing(keypair_id).await {
            Ok(keypair) if keypair.private_key.is_some() => Ok(()),
            Ok(_) => Err(ConnectionFailure::invalid(
                "keypair_id",
                "the keypair has only a public key; a connection needs its private key",
            )),
            Err(KeypairFailure::NotFound) => {
                Err(ConnectionFailure::invalid("keypair_id", "no such keypair"))
            }
            Err(other) => Err(ConnectionFailure::Keypair(other)),
        }
    }

    async fn load_existing(&self, id: Uuid) -> Result<ConnectionSettings, ConnectionFailure> {
        match self.connections.load(&id.to_string()).await? {
            Some(loaded) if loaded.state.exists() => {
                loaded.state.settings.ok_or(ConnectionFailure::NotFound)
            }
            _ => Err(ConnectionFailure::NotFound),
        }
    }

    /// Applies `changes` as one command; the name, the dependency and the new settings
    /// commit together.
    pub async fn update(
        &self,
        id: Uuid,
        changes: ConnectionChanges,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<Committed<SshConnection>, ConnectionFailure> {
        let owner = id.to_string();
        let current = self.load_existing(id).await?;
        if let Some(keypair_id) = changes.keypair_id {
            self.require_private_key(keypair_id).await?;
        }
        let moved = changes.host.is_some() || changes.port.is_some();
        let host = changes.host.unwrap_or(current.host);
        let port = changes.port.unwrap_or(current.port);
        if moved {
            self.admit(&host, port, current.connect_timeout_secs)
                .await?;
        }
        let host_keys = match &changes.remote_host_key {
            Some(text) => self.pin(&host, port, text)?,
            None => current.host_keys,
        };
        let settings = ConnectionSettings {
            name: changes.name.unwrap_or(current.name),
            host,
            port,
            username: changes.username.unwrap_or(current.username),
            keypair_id: changes.keypair_id.unwrap_or(current.keypair_id),
            host_keys,
            connect_timeout_secs: changes
                .connect_timeout_secs
                .unwrap_or(current.connect_timeout_secs),
        };
        let mut change = Change::new();
        stage_side_tables(&mut change, &owner, &settings);
        let committed = self
            .connections
            .decide(
                &mut change,
                &owner,
                ConnectionCommand::Update { settings },
                metadata,
                expected,
            )
            .await?;
        self.commit(&change).await?;
        Ok(committed)
    }

    /// Deletes a connection. A semi-automatic one's remote pairing is revoked first
    /// with its token (best effort), unless `keep_remote`; what happened is recorded
    /// and returned.
    pub async fn delete(
        &self,
        id: Uuid,
        expected: Option<usize>,
        keep_remote: bool,
        metadata: &CommandMetadata,
    ) -> Result<Option<RemoteRevocation>, ConnectionFailure> {
        let owner = id.to_string();
        let loaded = match self.connections.load(&owner).await? {
            Some(loaded) if loaded.state.exists() => loaded,
            _ => return Err(ConnectionFailure::NotFound),
        };
        // A stale delete must not revoke anything.
        if let Some(expected) = expected
            && expected != loaded.version
        {
            return Err(ConnectionFailure::Command(CommandError::Stale {
                current: loaded.version,
            }));
        }
        let revocation = match (&loaded.state.remote, &loaded.state.settings) {
            (Some(remote), Some(settings)) if !keep_remote => {
                Some(self.revoke_remote(&owner, remote, settings).await)
            }
            (Some(_), _) => Some(RemoteRevocation {
                outcome: RevocationOutcome::Skipped,
                detail: Some("kept on request (keep_remote=true)".to_owned()),
            }),
            (None, _) => None,
        };
        let mut change = Change::new();
        self.stage_delete_recording(&mut change, &owner, expected, metadata, revocation.clone())
            .await?;
        self.commit(&change).await?;
        Ok(revocation)
    }

    /// The connection's deletion, its name given up and its dependency dropped, staged
    /// in `change` (a cascading keypair delete's). It does not call out: a
    /// semi-automatic connection's remote pairing stays, and the event says so.
    pub async fn stage_delete(
        &self,
        change: &mut Change,
        owner: &str,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<(), ConnectionFailure> {
        let paired = self
            .connections
            .load(owner)
            .await?
            .is_some_and(|loaded| loaded.state.remote.is_some());
        let revocation = paired.then(|| RemoteRevocation {
            outcome: RevocationOutcome::Skipped,
            detail: Some(
                "deleted by a cascading keypair delete, which does not call out; revoke the pairing on the remote"
                    .to_owned(),
            ),
        });
        self.stage_delete_recording(change, owner, expected, metadata, revocation)
            .await
    }

    async fn stage_delete_recording(
        &self,
        change: &mut Change,
        owner: &str,
        expected: Option<usize>,
        metadata: &CommandMetadata,
        remote_revocation: Option<RemoteRevocation>,
    ) -> Result<(), ConnectionFailure> {
        let paired = remote_revocation.is_some();
        self.connections
            .decide(
                change,
                owner,
                ConnectionCommand::Delete { remote_revocation },
                metadata,
                expected,
            )
            .await?;
        change.release_names(NAME_KIND, owner);
        change.release_names(ALIAS_KIND, owner);
        change.drop_dependant(NAME_KIND, owner);
        if paired {
            // The sealed revocation token becomes unreadable with the connection.
            self.secrets.shred(change, owner);
        }
        Ok(())
    }

    /// Logs in over SSH with the pinned host keys and records the outcome. Returns the
    /// report and the fingerprints that were pinned when it ran.
    pub async fn test(
        &self,
        id: Uuid,
        metadata: &CommandMetadata,
    ) -> Result<(ProbeReport, Vec<String>), ConnectionFailure> {
        let settings = self.load_existing(id).await?;
        let host = settings.host.clone();
        let timeout = Duration::from_secs(settings.connect_timeout_secs);
        let address = self
            .checked_address(&host, settings.port, timeout)
            .await
            .map_err(ConnectionFailure::Outbound)?;
        let key = self
            .keypairs
            .private_key(settings.keypair_id)
            .await
            .map_err(ConnectionFailure::Keypair)?;
        let pinned: Vec<String> = settings
            .host_keys
            .iter()
            .map(|k| k.fingerprint.clone())
            .collect();
        let report = probe(
            address,
            timeout,
            pinned.clone(),
            settings.username.as_str(),
            key,
        )
        .await;
        let presented_fingerprint = report.presented.as_ref().map(|k| {
            k.fingerprint(russh::keys::ssh_key::HashAlg::Sha256)
                .to_string()
        });
        let mismatch = match (&report.error, &presented_fingerprint) {
            (Some(failure), Some(presented)) if failure.code == ProbeError::HostKeyMismatch => {
                Some(Mismatch {
                    expected: pinned.clone(),
                    presented: presented.clone(),
                })
            }
            _ => None,
        };
        let outcome = TestOutcome {
            ok: report.ok,
            phase: report.phase,
            latency_ms: report.latency_ms,
            server_key_fingerprint: presented_fingerprint,
            error_code: report.error.as_ref().map(|failure| failure.code),
        };
        self.connections
            .execute(
                &id.to_string(),
                ConnectionCommand::RecordTest { outcome, mismatch },
                metadata,
            )
            .await?;
        Ok((report, pinned))
    }

    /// The bundle a job needs. The issue is recorded before the secret is handed out.
    pub async fn credentials(
        &self,
        id: Uuid,
        metadata: &CommandMetadata,
    ) -> Result<CredentialsBundle, ConnectionFailure> {
        let settings = self.load_existing(id).await?;
        // Recorded before the policy said otherwise, or a name that resolves elsewhere
        // now: a job must not be sent there with a key.
        self.admit(&settings.host, settings.port, settings.connect_timeout_secs)
            .await?;
        let key = self
            .keypairs
            .private_key(settings.keypair_id)
            .await
            .map_err(ConnectionFailure::Keypair)?;
        let private_key = crate::keypairs::material::to_sealable(&key)
            .map_err(|e| ConnectionFailure::Keypair(KeypairFailure::Secret(e)))?;
        self.connections
            .execute(
                &id.to_string(),
                ConnectionCommand::RecordCredentialsIssued,
                metadata,
            )
            .await?;
        Ok(CredentialsBundle {
            known_hosts: exports::known_hosts(&settings),
            ssh_config: exports::ssh_config(&settings, &id.to_string()),
            settings,
            private_key,
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<ConnectionView>, StoreError> {
        self.store
            .view_find(ConnectionView::PROJECTION, &id.to_string())
            .await
    }

    pub async fn list(&self, after: i64, limit: i64) -> Result<Page<ConnectionView>, StoreError> {
        self.store
            .view_list(ConnectionView::PROJECTION, after, limit)
            .await
    }
}

/// The side-table rows a live connection implies: its name, and its use of its keypair
/// (which must still be alive when the change commits).
pub(super) fn stage_side_tables(change: &mut Change, owner: &str, settings: &ConnectionSettings) {
    let keypair = settings.keypair_id.to_string();
    change.hold_name(NAME_KIND, owner, &settings.name.normalized());
    change.hold_name(
        ALIAS_KIND,
        owner,
        &exports::slug(settings.name.as_str(), owner),
    );
    change.require_live(keypairs::NAME_KIND, &keypair);
    change.depend_on(
        &keypair,
        Dependant {
            kind: NAME_KIND.to_owned(),
            id: owner.to_owned(),
            name: settings.name.as_str().to_owned(),
        },
    );
}
