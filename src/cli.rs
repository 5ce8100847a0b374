//! The command line: `serve`, `openapi`, `api-keys create`, `projections rebuild`,
//! `audit verify`, `audit export`.
//! Errors end the process with one line on stderr and a non-zero exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::auth::bootstrap::{BOOTSTRAP_ENV, Bootstrap};
use crate::auth::{ApiKeyService, Scope};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Settings, redact_url_password};
use crate::gateway::{Application, StartOptions, all_projections, open_store};
use crate::names::Name;
use crate::secrets::{MASTER_KEY_ENV, MasterKey, Secrets};
use crate::store::{
    AuditQuery, ChainHead, ChainKey, Change, CommandMetadata, ProjectionRunner, Store, Writer,
};
use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Parser)]
#[command(
    name = "credgate",
    version,
    about = "Keeps SSH keypairs and SSH connections for backup and replication jobs, with an audit trail.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// TOML configuration file; CREDGATE_* environment variables override it.
    #[arg(long, env = "CREDGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (SQLite in ./credgate-data unless configured otherwise).
    Serve(ConfigArg),
    /// Print the OpenAPI document of every plugin as JSON.
    Openapi,
    /// Manage API keys directly in the store, without the HTTP API.
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Maintain the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Read and check the audit trail without an API key.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Ask the local service whether it is ready (`GET /health/ready` on the `listen`
    /// port, over loopback); exits 0 when it is, 1 otherwise. For container health
    /// checks, where no HTTP client may be installed.
    Healthcheck(ConfigArg),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the audit chain from the event log; prints the report as JSON and
    /// exits 1 when the log was tampered with.
    Verify {
        #[command(flatten)]
        config: ConfigArg,
        /// A head logged earlier (`POSITION:MAC`): also detects events cut off after it.
        #[arg(long)]
        head: Option<ChainHead>,
    },
    /// Print audit records as NDJSON, oldest first.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// Records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        /// Records before this time (RFC 3339).
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        #[arg(long)]
        resource_type: Option<String>,
        #[arg(long)]
        resource_id: Option<String>,
        /// An API key id, or `cli` / `bootstrap`.
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        event_type: Option<String>,
        #[arg(long)]
        request_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeysCommand {
    /// Create an API key and print its secret (e.g. to recover a lost admin key).
    Create {
        #[command(flatten)]
        config: ConfigArg,
        /// A label for the key.
        #[arg(long)]
        name: String,
        /// Scopes, e.g. `admin` or `keypairs:read,audit:read`.
        #[arg(long, required = true, num_args = 1.., value_delimiter = ',')]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Replay the whole event log into fresh views (progress on stderr).
    Rebuild(ConfigArg),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    let line = format!("{error:#}").replace(['\n', '\r'], " ");
    eprintln!("credgate: {line}");
    ExitCode::from(if error.is::<ConfigError>() { 2 } else { 1 })
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::plugins::full_api_document())?
            );
            Ok(())
        }
        Command::ApiKeys(ApiKeysCommand::Create {
            config,
            name,
            scopes,
        }) => create_api_key(config, &name, &scopes).await,
        Command::Projections(ProjectionsCommand::Rebuild(args)) => rebuild(args).await,
        Command::Healthcheck(args) => healthcheck(args).await,
        Command::Audit(AuditCommand::Verify { config, head }) => verify_audit(config, head).await,
        Command::Audit(AuditCommand::Export {
            config,
            since,
            until,
            resource_type,
            resource_id,
            actor,
            event_type,
            request_id,
        }) => {
            let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
            let query = AuditQuery {
                resource_type,
                resource_id,
                actor,
                event_type,
                request_id,
                since: since.map(stamp),
                until: until.map(stamp),
                newest_first: false,
                after: None,
            };
            export_audit(config, query).await
        }
    }
}

/// `credgate healthcheck`: the service on this host, reached over loopback whatever
/// address it listens on. Its certificate names the host, not `127.0.0.1`, so a TLS
/// probe does not verify it: it asks only whether the local process answers.
async fn healthcheck(args: ConfigArg) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    let mut address = settings.listen;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    crate::gateway::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()?;
    let url = format!("{scheme}://{address}/health/ready");
    let status = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?
        .status();
    if status.is_success() {
        println!("ready");
        Ok(())
    } else {
        Err(anyhow::anyhow!("{url} answered {status}"))
    }
}

async fn serve(args: ConfigArg) -> anyhow::Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    crate::telemetry::init(settings.log_format, &settings.log_level);
    let data_dir = settings.data_dir.clone();
    let store_kind = settings.database_url.clone();
    let environment = |name: &str| std::env::var(name).ok();
    let bootstrap_admin_key = crate::config::secret_from_env(BOOTSTRAP_ENV, &environment)?
        .map(|secret| secret.to_string());
    let options = StartOptions {
        bootstrap_admin_key,
        master_key: std::env::var(crate::secrets::MASTER_KEY_ENV).ok(),
        ..StartOptions::default()
    };
    let app = Application::build(settings, options).await?;
    tracing::info!(
        url = %app.base_url(),
        store = %redact_url_password(store_kind.as_str()),
        "credgate is listening; API docs at {}/docs/",
        app.base_url()
    );
    match app.bootstrap() {
        Bootstrap::WrittenTo(path) => {
            tracing::info!(path = %path.display(), "created the first admin API key; it is in this file (mode 0600)");
        }
        Bootstrap::FromEnvironment => {
            tracing::info!("created the first admin API key from {BOOTSTRAP_ENV}");
        }
        Bootstrap::NotNeeded => {
            let file = data_dir.join(crate::auth::bootstrap::ADMIN_KEY_FILE);
            if file.exists() {
                tracing::info!(path = %file.display(), "the bootstrap admin API key is in this file");
            }
        }
    }
    app.run_until_stopped().await?;
    Ok(())
}

/// Opens the store named by the configuration and brings its views up to date.
async fn open_store_and_views(args: &ConfigArg) -> anyhow::Result<(Store, Arc<ProjectionRunner>)> {
    let settings = Settings::load(args.config.as_deref())?;
    let store = open_store(&settings).await?;
    let runner = Arc::new(ProjectionRunner::new(
        store.clone(),
        all_projections(&crate::plugins::all()),
    ));
    Ok((store, runner))
}

/// The audit chain's key from the master key the service uses (`CREDGATE_MASTER_KEY`,
/// else `master_key_file`), refused when that key cannot open the stored data keys
/// (events chained under a wrong key would all fail verification later).
async fn checked_chain_key(args: &ConfigArg, store: &Store) -> anyhow::Result<ChainKey> {
    let settings = Settings::load(args.config.as_deref())?;
    let from_env = std::env::var(MASTER_KEY_ENV).ok();
    let master = MasterKey::load(from_env.as_deref(), &settings.master_key_file)?;
    let chain_key = master.audit_chain_key();
    Secrets::open(store.clone(), master)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(chain_key)
}

async fn create_api_key(args: ConfigArg, name: &str, scopes: &[String]) -> anyhow::Result<()> {
    let name = Name::parse(name).map_err(|m| anyhow::anyhow!("--name {m}"))?;
    let scopes = scopes
        .iter()
        .map(|s| {
            Scope::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("--scopes: unknown scope `{s}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (store, runner) = open_store_and_views(&args).await?;
    let chain_key = Arc::new(checked_chain_key(&args, &store).await?);
    let clock = SystemClock;
    let service = ApiKeyService::new(
        &Writer::new(&store, Some(runner), chain_key),
        Arc::new(clock),
    );
    let metadata = CommandMetadata::local("cli", clock.now());
    let (id, secret, key) = service
        .create(name, scopes, None, None, &metadata)
        .await
        .map_err(|e| anyhow::anyhow!("could not create the API key: {e}"))?;
    let printed = serde_json::json!({
        "id": id,
        "name": key.name,
        "scopes": key.scopes,
        "secret": secret.expose(),
    });
    println!("{printed}");
    store.close().await;
    Ok(())
}

async fn rebuild(args: ConfigArg) -> anyhow::Result<()> {
    let (store, runner) = open_store_and_views(&args).await?;
    let total = runner
        .rebuild(|projection, applied| eprintln!("rebuilding {projection}: {applied} events read"))
        .await?;
    let mut side_tables = Change::new();
    for plugin in crate::plugins::all() {
        plugin.rebuild_side_tables(&store, &mut side_tables).await?;
    }
    store.commit(&side_tables).await?;
    eprintln!(
        "rebuilt {} view(s) from {total} events, and the name reservations and dependencies",
        runner.projection_names().len()
    );
    store.close().await;
    Ok(())
}

async fn verify_audit(args: ConfigArg, head: Option<ChainHead>) -> anyhow::Result<()> {
    let (store, _) = open_store_and_views(&args).await?;
    let chain_key = checked_chain_key(&args, &store).await?;
    let report = store.verify_chain(&chain_key, head).await?;
    store.close().await;
    println!("{}", serde_json::to_string(&report)?);
    if report.ok {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the audit chain does not verify: {} at position {}",
            serde_json::to_value(report.reason)?
                .as_str()
                .unwrap_or("fault"),
            report.first_bad_position.unwrap_or_default()
        ))
    }
}

/// Catches the views up first (records are derived from events), then writes every
/// matching record, page by page, to stdout.
async fn export_audit(args: ConfigArg, mut query: AuditQuery) -> anyhow::Result<()> {
    use std::io::Write;
    let (store, runner) = open_store_and_views(&args).await?;
    runner.catch_up().await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        let rows = store.audit_records(&query, 500).await?;
        let Some(last) = rows.last().map(|r| r.position) else {
            break;
        };
        for row in rows {
            writeln!(out, "{}", row.record)?;
        }
        query.after = Some(last);
    }
    out.flush()?;
    store.close().await;
    Ok(())
}
