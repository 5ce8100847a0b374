//! Builds and runs the service: opens the store, starts the projection runner, makes
//! sure an admin key exists, and serves the enabled plugins.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::SwaggerUi;

use super::caller::TrustedProxies;
use super::json::BodyLimit;
use super::limits::{self, RequestTimeout};
use super::metrics::{self, Metrics};
use super::openapi::BaseDoc;
use super::plugin::{Plugin, select_plugins};
use super::refusals::{RefusalLog, record_refusals};
use super::request_id::request_id_middleware;
use super::services::SharedServices;
use super::tracing_span::CredgateRootSpan;
use super::{health, responses, tls};
use crate::auth::bootstrap::{Bootstrap, ensure_admin_key};
use crate::auth::{ApiKeyService, FailureThrottle, SecretReadLimit, require_api_key};
use crate::clock::Clock;
use crate::config::{MetricsExposure, Settings, redact_url_password};
use crate::secrets::{MasterKey, Secrets};
use crate::store::{Failpoints, ProjectionRunner, Store, Writer};

/// Everything under this prefix passes authentication.
pub const API_PREFIX: &str = "/api/v1";

/// What a plugin's routes may use when the service is running.
#[derive(Clone)]
pub struct Runtime {
    pub store: Store,
    pub projections: Arc<ProjectionRunner>,
    /// Commits changes and catches the projections up afterwards.
    pub writer: Writer,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub secrets: Secrets,
    /// What plugins offer each other (e.g. the keypairs service), by type.
    pub services: Arc<SharedServices>,
}

/// Inputs that are not settings: secrets from the environment and the clock.
pub struct StartOptions {
    pub bootstrap_admin_key: Option<String>,
    /// `CREDGATE_MASTER_KEY`, if set; else `master_key_file` is used.
    pub master_key: Option<String>,
    pub clock: Arc<dyn Clock>,
    /// Every plugin there is (the `plugins` setting picks among them); the default is
    /// the application's list (`crate::plugins::all`).
    pub plugins: Vec<Arc<dyn Plugin>>,
}

/// A service that is listening and ready to be run.
pub struct Application {
    server: Server,
    /// `GET /metrics` on its own address (`metrics.listen`), when it has one.
    metrics_server: Option<(Server, SocketAddr)>,
    local_addr: SocketAddr,
    https: bool,
    poller: tokio::task::JoinHandle<()>,
    store: Store,
    bootstrap: Bootstrap,
    failpoints: Failpoints,
}

/// The OpenAPI document of the given plugins (all of them for `credgate openapi`).
pub fn api_document(plugins: &[Arc<dyn Plugin>]) -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(BaseDoc::openapi())
        .configure(|cfg| mount(cfg, plugins, None))
        .split_for_parts();
    let mut document = document;
    responses::complete_api_operations(&mut document, API_PREFIX);
    super::contract::refine(&mut document);
    let codes = all_problem_codes(plugins);
    super::contract::declare_problems(
        &mut document,
        &codes,
        plugins.iter().flat_map(|p| p.problem_members()).collect(),
    );
    super::contract::exemplify(&mut document, &codes);
    document
}

fn mount(cfg: &mut ServiceConfig, plugins: &[Arc<dyn Plugin>], runtime: Option<&Runtime>) {
    cfg.service(health::check_liveness)
        .service(health::check_readiness);
    for plugin in plugins {
        plugin.public_routes(cfg, runtime);
    }
    cfg.service(
        utoipa_actix_web::scope(API_PREFIX)
            .wrap(from_fn(require_api_key))
            .configure(|api| {
                for plugin in plugins {
                    plugin.routes(api, runtime);
                }
            }),
    );
}

/// Every problem code the gateway and `plugins` can answer with, each once, sorted.
pub fn all_problem_codes(plugins: &[Arc<dyn Plugin>]) -> Vec<super::ProblemCode> {
    let mut codes: Vec<super::ProblemCode> = super::GATEWAY_CODES
        .iter()
        .copied()
        .chain(plugins.iter().flat_map(|p| p.problem_codes()))
        .collect();
    codes.sort_by_key(|c| c.name());
    codes.dedup();
    codes
}

/// Opens the configured store; the error names it (without its password).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.database_url, &settings.database)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the store at {}: {e}",
                redact_url_password(settings.database_url.as_str())
            )
        })
}

/// The projections every process keeps, whatever plugins it serves.
pub fn all_projections(plugins: &[Arc<dyn Plugin>]) -> Vec<Arc<dyn crate::store::Projection>> {
    plugins.iter().flat_map(|p| p.projections()).collect()
}

impl Application {
    pub async fn build(settings: Settings, options: StartOptions) -> anyhow::Result<Self> {
        tls::install_crypto_provider();
        let plugins = select_plugins(settings.plugins.as_deref(), options.plugins)?;
        let tls_config = settings.tls.as_ref().map(tls::server_config).transpose()?;
        let listener = TcpListener::bind(settings.listen).map_err(|e| {
            anyhow::anyhow!(
                "invalid setting `listen`: cannot listen on {}: {e}",
                settings.listen
            )
        })?;
        let local_addr = listener.local_addr()?;

        let store = open_store(&settings).await?;
        let projections = Arc::new(ProjectionRunner::new(
            store.clone(),
            all_projections(&plugins),
        ));
        projections.catch_up().await?;

        let master = MasterKey::load(options.master_key.as_deref(), &settings.master_key_file)?;
        let chain_key = Arc::new(master.audit_chain_key());
        let secrets = Secrets::open(store.clone(), master)
            .await
            .map_err(anyhow::Error::msg)?;
        let adopted = store.adopt_unchained_events(&chain_key).await?;
        if adopted > 0 {
            tracing::warn!(
                events = adopted,
                "the audit chain started over events written before it existed"
            );
        }

        let writer = Writer::new(&store, Some(projections.clone()), chain_key);
        let api_keys = Arc::new(ApiKeyService::new(&writer, options.clock.clone()));
        let mut backfill = crate::store::Change::new();
        for plugin in &plugins {
            plugin.backfill_side_tables(&store, &mut backfill).await?;
        }
        store.commit(&backfill).await?;
        let bootstrap = ensure_admin_key(
            &api_keys,
            &settings.data_dir,
            options.bootstrap_admin_key.as_deref(),
        )
        .await?;

        let poller =
            spawn_projection_poller(projections.clone(), settings.projection_poll_interval);
        let settings = Arc::new(settings);
        let runtime = Runtime {
            store: store.clone(),
            projections,
            writer,
            clock: options.clock,
            settings: settings.clone(),
            secrets,
            services: Arc::default(),
        };
        for plugin in &plugins {
            plugin.start(&runtime)?;
        }
        let refusal_log = runtime.services.get::<RefusalLog>().ok();
        let failpoints = runtime.writer.failpoints().clone();
        let clock_data: web::Data<dyn Clock> = web::Data::from(runtime.clock.clone());
        // One document, as `credgate openapi` prints it, serves both the 404/405 routing
        // and `/api/openapi.json`.
        let document = api_document(&plugins);
        let known_routes = limits::KnownRoutes::from_document(&document);
        let api_keys = web::Data::from(api_keys);
        let store_data = web::Data::new(store.clone());
        let throttle = web::Data::new(FailureThrottle::new(
            runtime.settings.limits.auth_failures_per_minute,
        ));
        let secret_reads = web::Data::new(SecretReadLimit::new(
            runtime.settings.limits.secret_reads_per_minute,
        ));
        let https = tls_config.is_some();
        let metrics = web::Data::new(Metrics::default());
        let projections_data = web::Data::from(runtime.projections.clone());
        let exposure = runtime.settings.metrics;
        let metrics_server = match exposure {
            MetricsExposure::Separate(address) => Some(metrics_server(
                address,
                metrics.clone(),
                store_data.clone(),
                projections_data.clone(),
            )?),
            MetricsExposure::WithApi | MetricsExposure::Off => None,
        };
        let factory = move || {
            let mut app = App::new();
            if let Some(log) = &refusal_log {
                app = app.app_data(log.clone());
            }
            if exposure == MetricsExposure::WithApi {
                app = app.route("/metrics", web::get().to(metrics::serve_metrics));
            }
            app.app_data(store_data.clone())
                .app_data(metrics.clone())
                .app_data(projections_data.clone())
                .app_data(api_keys.clone())
                .app_data(throttle.clone())
                .app_data(secret_reads.clone())
                .app_data(clock_data.clone())
                .app_data(BodyLimit(runtime.settings.limits.body_bytes))
                .app_data(RequestTimeout(runtime.settings.limits.request_timeout))
                .app_data(TrustedProxies(runtime.settings.trusted_proxies.clone()))
                .app_data(known_routes.clone())
                .app_data(limits::path_config())
                .app_data(limits::query_config())
                .wrap(from_fn(record_refusals))
                .wrap(from_fn(limits::request_timeout_middleware))
                .wrap(TracingLogger::<CredgateRootSpan>::new())
                .wrap(from_fn(request_id_middleware))
                .wrap(from_fn(metrics::record_requests))
                // Served over TLS: browsers must not fall back to plain HTTP for a year.
                .wrap(Condition::new(
                    https,
                    from_fn(tls::strict_transport_security),
                ))
                .into_utoipa_app()
                .configure(|cfg| mount(cfg, &plugins, Some(&runtime)))
                .into_app()
                .service(SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", document.clone()))
                .default_service(web::to(limits::not_found))
        };
        let mut server = HttpServer::new(factory)
            // Headers must arrive within this time (slow-loris protection).
            .client_request_timeout(Duration::from_secs(10))
            .shutdown_timeout(10);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = match tls_config {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Self {
            server,
            metrics_server,
            local_addr,
            https,
            poller,
            store,
            bootstrap,
            failpoints,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Where `GET /metrics` is served on its own (`metrics.listen`), if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(_, address)| *address)
    }

    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// Where the bootstrap admin key was written on this start, if it was.
    pub fn admin_key_file(&self) -> Option<PathBuf> {
        match &self.bootstrap {
            Bootstrap::WrittenTo(path) => Some(path.clone()),
            _ => None,
        }
    }

    /// The failpoints of this instance's commits (armed only by tests, with the
    /// `failpoints` feature).
    pub fn failpoints(&self) -> Failpoints {
        self.failpoints.clone()
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM or its handle).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics_server = self.metrics_server.map(|(server, _)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        if let Some((running, handle)) = metrics_server {
            handle.stop(true).await;
            let _ = running.await;
        }
        self.poller.abort();
        // The last head, for whoever keeps it outside (see `store::chain`).
        match self.store.chain_head().await {
            Ok(Some(head)) => {
                tracing::info!(head = %head, position = head.position, "audit chain head at shutdown");
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not read the audit chain head at shutdown"),
        }
        self.store.close().await;
        result
    }
}

/// The server of `GET /metrics` alone, on `address` (`metrics.listen`).
fn metrics_server(
    address: SocketAddr,
    metrics: web::Data<Metrics>,
    store: web::Data<Store>,
    projections: web::Data<ProjectionRunner>,
) -> anyhow::Result<(Server, SocketAddr)> {
    let listener = TcpListener::bind(address).map_err(|e| {
        anyhow::anyhow!("invalid setting `metrics.listen`: cannot listen on {address}: {e}")
    })?;
    let bound = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .app_data(store.clone())
            .app_data(projections.clone())
            .route("/metrics", web::get().to(metrics::serve_metrics))
    })
    .workers(1)
    .client_request_timeout(Duration::from_secs(10))
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok((server, bound))
}

/// Looks for events written by other processes, every `interval`. A failure is logged
/// once when it starts and once when it ends, not on every tick of an outage.
fn spawn_projection_poller(
    runner: Arc<ProjectionRunner>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticker.tick().await;
            match runner.catch_up().await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("projections are catching up again");
                }
                Ok(_) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "projection catch-up failed; retrying");
                }
                Err(_) => {}
            }
        }
    })
}
