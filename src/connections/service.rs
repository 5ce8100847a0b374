//! Connections as the API uses them. Operations that touch keypairs run as separate
//! commands in a fixed order, dependants first, so an interruption never leaves a
//! connection pointing at a missing keypair.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aggregate::{
    ConnectionCommand, ConnectionError, ConnectionSettings, SshConnection, TestOutcome,
};
use super::exports;
use super::view::ConnectionView;
use crate::keypairs::{KeyAlgorithm, KeypairFailure, KeypairService};
use crate::names::Name;
use crate::ssh::probe::{ProbeReport, probe};
use crate::ssh::{DiscoveredKey, Host, OutboundError, OutboundPolicy};
use crate::store::{
    Aggregates, CommandError, CommandMetadata, Committed, Dependant, Page, ProjectionRunner, Store,
    StoreError, View,
};

pub const NAME_KIND: &str = "ssh-connection";
/// How long a scan result makes a pasted key count as "scanned".
const SCAN_MEMORY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ConnectionFailure {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the name is taken by another connection")]
    NameTaken,
    #[error("no such connection")]
    NotFound,
    #[error(transparent)]
    Outbound(OutboundError),
    #[error("keypair: {0}")]
    Keypair(KeypairFailure),
    #[error(transparent)]
    Command(CommandError<ConnectionError>),
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
    pub port: u16,
    pub username: String,
    pub keypair: KeypairChoice,
    pub remote_host_key: String,
    pub connect_timeout_secs: u64,
}

/// Changes to a connection; `None` keeps the current value.
#[derive(Default)]
pub struct ConnectionChanges {
    pub name: Option<Name>,
    pub host: Option<Host>,
    pub port: Option<u16>,
    pub username: Option<String>,
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
    connections: Aggregates<SshConnection>,
    store: Store,
    keypairs: web::Data<KeypairService>,
    policy: OutboundPolicy,
    scans: Mutex<HashMap<(String, u16), RecentScan>>,
}

/// When a host:port was scanned, and what it offered.
type RecentScan = (Instant, Vec<DiscoveredKey>);

impl ConnectionService {
    pub fn new(
        store: &Store,
        keypairs: web::Data<KeypairService>,
        policy: OutboundPolicy,
        projections: Option<std::sync::Arc<ProjectionRunner>>,
    ) -> Self {
        Self {
            connections: Aggregates::new(store, (), projections),
            store: store.clone(),
            keypairs,
            policy,
            scans: Mutex::new(HashMap::new()),
        }
    }

    pub async fn checked_address(
        &self,
        host: &Host,
        port: u16,
        timeout: Duration,
    ) -> Result<SocketAddr, OutboundError> {
        self.policy.resolve(host, port, timeout).await
    }

    pub fn remember_scan(&self, host: &Host, port: u16, keys: &[DiscoveredKey]) {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        scans.retain(|_, (at, _)| at.elapsed() < SCAN_MEMORY);
        scans.insert((host.to_string(), port), (Instant::now(), keys.to_vec()));
    }

    fn recent_scan(&self, host: &Host, port: u16) -> Vec<DiscoveredKey> {
        let scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        scans
            .get(&(host.to_string(), port))
            .filter(|(at, _)| at.elapsed() < SCAN_MEMORY)
            .map(|(_, keys)| keys.clone())
            .unwrap_or_default()
    }

    fn pin(
        &self,
        host: &Host,
        port: u16,
        text: &str,
    ) -> Result<Vec<super::host_keys::PinnedHostKey>, ConnectionFailure> {
        super::host_keys::parse(text, &self.recent_scan(host, port))
            .map_err(|m| ConnectionFailure::invalid("remote_host_key", m))
    }

    /// Manual setup. A keypair generated for the connection is deleted again if the
    /// connection cannot be created.
    pub async fn create(
        &self,
        request: NewConnection,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, Committed<SshConnection>), ConnectionFailure> {
        let host_keys = self.pin(&request.host, request.port, &request.remote_host_key)?;
        let id = Uuid::new_v4();
        let owner = id.to_string();
        let normalized = request.name.normalized();
        let (keypair_id, generated) = self.choose_keypair(&request, metadata).await?;
        let outcome = async {
            if self
                .store
                .reserve_name(NAME_KIND, &normalized, &owner)
                .await?
                .is_some()
            {
                return Err(ConnectionFailure::NameTaken);
            }
            let dependant = Dependant {
                kind: NAME_KIND.to_owned(),
                id: owner.clone(),
                name: request.name.as_str().to_owned(),
            };
            // Recorded before the keypair is checked, so a concurrent keypair delete
            // either sees this connection or happened before the check.
            self.store
                .add_dependency(&keypair_id.to_string(), &dependant)
                .await?;
            self.require_private_key(keypair_id).await?;
            let settings = ConnectionSettings {
                name: request.name.as_str().to_owned(),
                host: request.host.to_string(),
                port: request.port,
                username: request.username.clone(),
                keypair_id: keypair_id.to_string(),
                host_keys,
                connect_timeout_secs: request.connect_timeout_secs,
            };
            let command = ConnectionCommand::Create {
                settings,
                setup: "manual".to_owned(),
            };
            Ok::<_, ConnectionFailure>(self.connections.execute(&owner, command, metadata).await?)
        }
        .await;
        match outcome {
            Ok(committed) => Ok((id, committed)),
            Err(failure) => {
                let _ = self
                    .store
                    .remove_dependency(&keypair_id.to_string(), NAME_KIND, &owner)
                    .await;
                let _ = self
                    .store
                    .release_name(NAME_KIND, &normalized, &owner)
                    .await;
                if generated {
                    let _ = self
                        .keypairs
                        .delete(keypair_id, false, None, metadata)
                        .await;
                }
                Err(failure)
            }
        }
    }

    async fn choose_keypair(
        &self,
        request: &NewConnection,
        metadata: &CommandMetadata,
    ) -> Result<(Uuid, bool), ConnectionFailure> {
        match &request.keypair {
            KeypairChoice::Existing(id) => Ok((*id, false)),
            KeypairChoice::Generate { name, algorithm } => {
                let name = match name {
                    Some(name) => name.clone(),
                    None => Name::parse(&format!("{} Key", request.name))
                        .map_err(|m| ConnectionFailure::invalid("generate_keypair.name", m))?,
                };
                let algorithm = algorithm.unwrap_or(KeyAlgorithm::Ed25519);
                match self
                    .keypairs
                    .generate(name, algorithm, None, String::new(), metadata)
                    .await
                {
                    Ok((id, _)) => Ok((id, true)),
                    Err(KeypairFailure::NameTaken) => Err(ConnectionFailure::invalid(
                        "generate_keypair.name",
                        "is already used by another keypair",
                    )),
                    Err(other) => Err(ConnectionFailure::Keypair(other)),
                }
            }
        }
    }

    async fn require_private_key(&self, keypair_id: Uuid) -> Result<(), ConnectionFailure> {
        match self.keypairs.private_key(keypair_id).await {
            Ok(_) => Ok(()),
            Err(KeypairFailure::NotFound) => {
                Err(ConnectionFailure::invalid("keypair_id", "no such keypair"))
            }
            Err(KeypairFailure::NoPrivateKey) => Err(ConnectionFailure::invalid(
                "keypair_id",
                "the keypair has only a public key; a connection needs its private key",
            )),
            Err(other) => Err(ConnectionFailure::Keypair(other)),
        }
    }

    async fn load_existing(
        &self,
        id: Uuid,
    ) -> Result<(ConnectionSettings, usize), ConnectionFailure> {
        match self.connections.load(&id.to_string()).await? {
            Some(loaded) if loaded.state.exists() => match loaded.state.settings {
                Some(settings) => Ok((settings, loaded.version)),
                None => Err(ConnectionFailure::NotFound),
            },
            _ => Err(ConnectionFailure::NotFound),
        }
    }

    pub async fn update(
        &self,
        id: Uuid,
        changes: ConnectionChanges,
        expected: Option<usize>,
        metadata: &CommandMetadata,
    ) -> Result<Committed<SshConnection>, ConnectionFailure> {
        let owner = id.to_string();
        let (current, _) = self.load_existing(id).await?;
        let host = match &changes.host {
            Some(host) => host.clone(),
            None => {
                Host::parse(&current.host).map_err(|m| ConnectionFailure::invalid("host", m))?
            }
        };
        let port = changes.port.unwrap_or(current.port);
        let host_keys = match &changes.remote_host_key {
            Some(text) => self.pin(&host, port, text)?,
            None => current.host_keys.clone(),
        };
        let new_name = changes.name.clone();
        let old_normalized = Name::parse(&current.name)
            .map(|n| n.normalized())
            .unwrap_or_default();
        if let Some(name) = &new_name
            && name.normalized() != old_normalized
            && self
                .store
                .reserve_name(NAME_KIND, &name.normalized(), &owner)
                .await?
                .is_some()
        {
            return Err(ConnectionFailure::NameTaken);
        }
        let dependant_name = new_name
            .as_ref()
            .map_or(current.name.clone(), |n| n.as_str().to_owned());
        if let Some(keypair_id) = changes.keypair_id {
            let dependant = Dependant {
                kind: NAME_KIND.to_owned(),
                id: owner.clone(),
                name: dependant_name.clone(),
            };
            self.store
                .add_dependency(&keypair_id.to_string(), &dependant)
                .await?;
            if let Err(e) = self.require_private_key(keypair_id).await {
                if keypair_id.to_string() != current.keypair_id {
                    let _ = self
                        .store
                        .remove_dependency(&keypair_id.to_string(), NAME_KIND, &owner)
                        .await;
                }
                self.release_new_name(&new_name, &old_normalized, &owner)
                    .await;
                return Err(e);
            }
        }
        let settings = ConnectionSettings {
            name: dependant_name.clone(),
            host: host.to_string(),
            port,
            username: changes.username.clone().unwrap_or(current.username.clone()),
            keypair_id: changes
                .keypair_id
                .map_or(current.keypair_id.clone(), |k| k.to_string()),
            host_keys,
            connect_timeout_secs: changes
                .connect_timeout_secs
                .unwrap_or(current.connect_timeout_secs),
        };
        let new_keypair = settings.keypair_id.clone();
        match self
            .connections
            .execute_expecting(
                &owner,
                ConnectionCommand::Update { settings },
                metadata,
                expected,
            )
            .await
        {
            Ok(committed) => {
                if new_name.is_some() {
                    self.store
                        .release_name(NAME_KIND, &old_normalized, &owner)
                        .await
                        .ok();
                    let dependant = Dependant {
                        kind: NAME_KIND.to_owned(),
                        id: owner.clone(),
                        name: dependant_name,
                    };
                    self.store.add_dependency(&new_keypair, &dependant).await?;
                }
                if new_keypair != current.keypair_id {
                    self.store
                        .remove_dependency(&current.keypair_id, NAME_KIND, &owner)
                        .await?;
                }
                Ok(committed)
            }
            Err(e) => {
                if new_keypair != current.keypair_id {
                    let _ = self
                        .store
                        .remove_dependency(&new_keypair, NAME_KIND, &owner)
                        .await;
                }
                self.release_new_name(&new_name, &old_normalized, &owner)
                    .await;
                Err(e.into())
            }
        }
    }

    async fn release_new_name(&self, new_name: &Option<Name>, old_normalized: &str, owner: &str) {
        if let Some(name) = new_name
            && name.normalized() != old_normalized
        {
            let _ = self
                .store
                .release_name(NAME_KIND, &name.normalized(), owner)
                .await;
        }
    }

    /// Deletes the connection. Deleting one already deleted succeeds (cascade retries).
    pub async fn delete(
        &self,
        id: Uuid,
        expected: Option<usize>,
        metadata: &CommandMetadata,
        already_gone_is_ok: bool,
    ) -> Result<(), ConnectionFailure> {
        let owner = id.to_string();
        let Some(loaded) = self.connections.load(&owner).await? else {
            return if already_gone_is_ok {
                Ok(())
            } else {
                Err(ConnectionFailure::NotFound)
            };
        };
        let Some(settings) = loaded.state.settings.clone() else {
            return Err(ConnectionFailure::NotFound);
        };
        if !loaded.state.deleted {
            self.connections
                .execute_expecting(&owner, ConnectionCommand::Delete, metadata, expected)
                .await?;
        } else if !already_gone_is_ok {
            // Finish what an interrupted delete left, then report it gone.
            self.forget(&owner, &settings).await?;
            return Err(ConnectionFailure::NotFound);
        }
        self.forget(&owner, &settings).await
    }

    async fn forget(
        &self,
        owner: &str,
        settings: &ConnectionSettings,
    ) -> Result<(), ConnectionFailure> {
        self.store
            .remove_dependency(&settings.keypair_id, NAME_KIND, owner)
            .await?;
        if let Ok(name) = Name::parse(&settings.name) {
            self.store
                .release_name(NAME_KIND, &name.normalized(), owner)
                .await?;
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
        let (settings, _) = self.load_existing(id).await?;
        let host =
            Host::parse(&settings.host).map_err(|m| ConnectionFailure::invalid("host", m))?;
        let timeout = Duration::from_secs(settings.connect_timeout_secs);
        let address = self
            .checked_address(&host, settings.port, timeout)
            .await
            .map_err(ConnectionFailure::Outbound)?;
        let keypair_id = Uuid::parse_str(&settings.keypair_id)
            .map_err(|e| ConnectionFailure::invalid("keypair_id", e.to_string()))?;
        let key = self
            .keypairs
            .private_key(keypair_id)
            .await
            .map_err(ConnectionFailure::Keypair)?;
        let pinned: Vec<String> = settings
            .host_keys
            .iter()
            .map(|k| k.fingerprint.clone())
            .collect();
        let report = probe(address, timeout, pinned.clone(), &settings.username, key).await;
        let presented_fingerprint = report.presented.as_ref().map(|k| {
            k.fingerprint(russh::keys::ssh_key::HashAlg::Sha256)
                .to_string()
        });
        let mismatch = match (&report.error, &presented_fingerprint) {
            (Some(("host_key_mismatch", _)), Some(presented)) => {
                Some((pinned.clone(), presented.clone()))
            }
            _ => None,
        };
        let outcome = TestOutcome {
            ok: report.ok,
            phase: report.phase.to_owned(),
            latency_ms: report.latency_ms,
            server_key_fingerprint: presented_fingerprint,
            error_code: report.error.as_ref().map(|(code, _)| (*code).to_owned()),
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
        let (settings, _) = self.load_existing(id).await?;
        let keypair_id = Uuid::parse_str(&settings.keypair_id)
            .map_err(|e| ConnectionFailure::invalid("keypair_id", e.to_string()))?;
        let key = self
            .keypairs
            .private_key(keypair_id)
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
