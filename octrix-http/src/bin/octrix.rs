//! `octrix`: the Octrix server.
//!
//! * `octrix serve [--config FILE] [--log-format text|json]` runs the engine
//!   and the API. With no configuration it runs on the embedded simulated
//!   cluster and an SQLite file in the data directory (PostgreSQL when
//!   `DATABASE_URL` names one), takes back what a previous run stored, and
//!   prints the URL, the token to use, the sources and the store it runs on.
//! * `octrix check-config [--config FILE]` validates the file and the
//!   environment and prints the settings (secrets redacted).
//!
//! Settings are listed in `octrix_http::config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use octrix_core::cluster::{ClusterActuator, ClusterKind, ClusterObserver};
use octrix_core::engine::{EngineConfig, Ports, RecordingNotifier};
use octrix_core::metrics::{MetricSource, SourceKind};
use octrix_core::sim::{SimCluster, SimConfig};
use octrix_core::{Clock, Timestamp};
use octrix_http::config::{ProcessEnv, ServerConfig, redact_url};
use octrix_http::kubernetes::KubeCluster;
use octrix_http::leadership::{DEFAULT_LEASE, Elector, LeaseSettings, replica_id};
use octrix_http::route_applier::RouteApplier;
use octrix_http::state::{Reload, Restored};
use octrix_http::storage::{SqlBackend, SqlStorage, Storage};
use octrix_http::unwired::UnwiredCluster;
use octrix_http::{AppState, Limits, MemoryStorage, ServerParts, SystemClock, app_with_cors};
use octrix_k8s::NoMetricSource;
use octrix_prom::{OctrixMetrics, PrometheusSource, PrometheusSourceConfig};
use tracing_subscriber::EnvFilter;

/// How long open connections may take to finish after SIGINT or SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "octrix",
    version,
    about = "Octrix, a self-healing reliability engine for Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the engine and the HTTP API.
    Serve {
        /// A TOML or YAML configuration file; the environment overrides it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validates the configuration and prints it, secrets redacted.
    CheckConfig {
        /// A TOML or YAML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => check_config(config.as_deref()),
        Command::Serve { config, log_format } => {
            init_logs(log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(config.as_deref()))
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.init(),
    }
}

fn check_config(file: Option<&Path>) -> anyhow::Result<()> {
    let config = ServerConfig::load(file, &ProcessEnv).context("invalid configuration")?;
    println!("configuration is valid");
    println!("{}", config.summary());
    Ok(())
}

/// The admin token generated at first start, kept next to the database.
fn first_start_token(data_dir: &Path) -> anyhow::Result<(String, PathBuf, bool)> {
    let path = data_dir.join("admin.token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim().to_owned();
        if token.len() >= 32 {
            return Ok((token, path, false));
        }
    }
    let token = octrix_http::auth::generate_token()
        .map_err(|e| anyhow::anyhow!("cannot generate a token: {e}"))?;
    write_private(&path, &format!("{token}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((token, path, true))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Connects the durable storage: the SQLite file in the data directory by
/// default (WAL), PostgreSQL when `DATABASE_URL` names one. Returns it with
/// a line saying which it is.
async fn storage_for(config: &ServerConfig) -> anyhow::Result<(SqlStorage, String)> {
    let url = config.database_url();
    let shown = redact_url(&url);
    let storage = SqlStorage::connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {shown}: {e}"))?;
    let note = match storage.backend() {
        SqlBackend::Sqlite => format!("SQLite {shown} (WAL, durable: state survives a restart)"),
        SqlBackend::Postgres => {
            format!("PostgreSQL {shown} (durable: state survives a restart)")
        }
    };
    Ok((storage, note))
}

async fn serve(file: Option<&Path>) -> anyhow::Result<()> {
    // reqwest is built without a default TLS provider (see the workspace notes).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ServerConfig::load(file, &ProcessEnv).context("invalid configuration")?;
    tracing::info!(config = %config.summary(), "starting");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;

    let generated = if config.tokens.is_empty() && config.jwt_secret.is_none() {
        Some(first_start_token(&config.data_dir)?)
    } else {
        None
    };
    let auth = config.auth(generated.as_ref().map(|(t, _, _)| t.as_str()))?;
    let (database, storage_note) = storage_for(&config).await?;
    let storage: Arc<dyn Storage> = Arc::new(database.clone());
    let metrics = OctrixMetrics::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let Wiring {
        ports,
        prometheus,
        sim,
        cluster_note,
        kube,
    } = wire(&config, &clock, &metrics).await?;
    let source_info = ports.metrics.info();
    let cluster_info = ports.observer.info();
    let state = AppState::new(ServerParts {
        engine: EngineConfig::default(),
        ports,
        storage: storage.clone(),
        prometheus,
        sim,
        auth,
        limits: Limits {
            body_bytes: config.max_body_bytes,
            webhook_per_second: config.webhook_rate_per_second,
            webhook_burst: config.webhook_burst,
        },
        metrics,
        event_capacity: 1024,
        cluster_note,
        gitops_dir: Some(config.data_dir.join("gitops")),
        routes: kube
            .as_ref()
            .map(|k| k.routes.clone() as Arc<dyn RouteApplier>),
    })
    .context("cannot build the engine")?;

    // Bound before the election: the advertised URL names the real port.
    let address: SocketAddr = format!("{}:{}", config.host, config.port)
        .parse()
        .with_context(|| format!("invalid listen address {}:{}", config.host, config.port))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;

    let (restored, elector) = take_back(&config, &state, &database, local).await?;
    tracing::info!(
        incidents = restored.incidents,
        recently_resolved = restored.recently_resolved,
        actions = restored.actions,
        highest_incident_id = restored.highest_incident_id.as_deref().unwrap_or("none"),
        "restored"
    );
    if config.kubernetes().is_some_and(|k| k.dry_run) && state.leadership().leads() {
        start_in_dry_run(&state).await?;
    }

    let ticker = state.spawn_ticker(Duration::from_millis(config.scrape_interval_ms));
    let retention = spawn_retention(
        storage.clone(),
        state.clock().clone(),
        config.retention_days,
    );

    let source_kind = match source_info.kind {
        SourceKind::Prometheus => "real",
        SourceKind::Simulated => "simulated",
        SourceKind::None => "none configured",
    };
    let cluster_kind = match cluster_info.kind {
        ClusterKind::Kubernetes => "real",
        ClusterKind::Simulated => "simulated",
    };
    println!(
        "Octrix {} is serving on http://{local}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  metrics source: {} ({})", source_info.name, source_kind);
    println!("  cluster:        {} ({})", cluster_info.name, cluster_kind);
    if let Some(note) = state.cluster_note() {
        println!("  note:           {note}");
    }
    println!("  storage:        {storage_note}");
    println!(
        "  restored:       {} open or acknowledged incidents, {} resolved within the reopen window, {} healing actions",
        restored.incidents, restored.recently_resolved, restored.actions
    );
    let replication = state.leadership().status();
    println!(
        "  replication:    {} ({})",
        replication.role.as_str(),
        replication.detail
    );
    match &generated {
        Some((token, path, true)) => {
            println!("  admin token:    {token}");
            println!(
                "                  (generated now and kept in {}; it is not shown again)",
                path.display()
            );
        }
        Some((_, path, false)) => {
            println!(
                "  admin token:    in {} (Authorization: Bearer $(cat {}))",
                path.display(),
                path.display()
            );
        }
        None => println!("  tokens:         from the configuration"),
    }
    println!("  API document:   http://{local}/api/openapi.json");

    let router = app_with_cors(state, &config.cors_origins);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        signalled.notify_one();
    });
    // Event streams never end by themselves: give open connections a grace
    // period, then stop anyway.
    tokio::select! {
        result = server => result.context("server failed")?,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    ticker.abort();
    retention.abort();
    if let Some(elector) = elector {
        elector.stop().await;
    }
    if let Some(leader) = kube.and_then(|k| k.leader)
        && let Err(error) = leader.stop().await
    {
        tracing::warn!(%error, "could not release the leader lease; it expires by itself");
    }
    // Every answered request was committed; closing checkpoints SQLite's WAL.
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Takes the stored state back. On SQLite this process is the only
/// replica; on PostgreSQL it competes for the leader lease: as the leader it
/// reloads everything and runs the engine, as a follower it mirrors the
/// stored state and forwards writes.
async fn take_back(
    config: &ServerConfig,
    state: &AppState,
    database: &SqlStorage,
    local: SocketAddr,
) -> anyhow::Result<(Restored, Option<Elector>)> {
    if database.backend() == SqlBackend::Sqlite {
        let restored = state
            .restore()
            .await
            .map_err(|e| anyhow::anyhow!("cannot restore the stored state: {e}"))?;
        return Ok((restored, None));
    }
    if config
        .kubernetes()
        .is_some_and(|k| k.leader_election.enabled)
    {
        tracing::warn!(
            "[kubernetes.leader_election] is on as well as the PostgreSQL leader lease: if the two elect different replicas, the engine's leader has every cluster action refused; turn the Kubernetes election off when replicas share PostgreSQL"
        );
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "octrix".to_owned());
    let base = config.replica_id.clone().unwrap_or_else(|| host.clone());
    let advertised_url = match &config.advertise_url {
        Some(url) => url.clone(),
        None if local.ip().is_unspecified() => {
            tracing::warn!(
                "OCTRIX_ADVERTISE_URL is not set and the server listens on every address: other replicas forward writes to http://{host}:{}; set OCTRIX_ADVERTISE_URL if that name does not reach this replica",
                local.port()
            );
            format!("http://{host}:{}", local.port())
        }
        None => format!("http://{local}"),
    };
    let settings = LeaseSettings {
        name: DEFAULT_LEASE.to_owned(),
        replica: replica_id(&base),
        advertised_url,
        duration: Duration::from_secs(config.lease_seconds),
        renew_every: Duration::from_secs(config.lease_renew_seconds),
        refresh_every: Duration::from_millis(config.follower_refresh_ms),
        forward_token: octrix_http::auth::generate_token()
            .map_err(|e| anyhow::anyhow!("cannot generate the forwarding token: {e}"))?,
    };
    octrix_http::api::resilience::restore(state)
        .await
        .map_err(|e| anyhow::anyhow!("cannot restore the registered services: {e}"))?;
    let (elector, restored) = Elector::start(state.clone(), database.clone(), settings).await;
    let restored = match restored {
        Some(restored) => restored,
        None => state
            .reload(Reload::Mirror)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the stored state: {e}"))?,
    };
    Ok((restored, Some(elector)))
}

/// The engine's ports and what the server shows about them.
struct Wiring {
    ports: Ports,
    prometheus: Option<PrometheusSource>,
    sim: Option<Arc<SimCluster>>,
    cluster_note: Option<String>,
    kube: Option<KubeCluster>,
}

/// How long the cluster watches may take to list the cluster at start.
const KUBE_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Picks the sources: Kubernetes when configured (with Prometheus metrics
/// when `PROMETHEUS_URL` is set), Prometheus alone (no cluster: actions
/// fail and say why), or the embedded simulated cluster.
async fn wire(
    config: &ServerConfig,
    clock: &Arc<dyn Clock>,
    metrics: &OctrixMetrics,
) -> anyhow::Result<Wiring> {
    let prometheus = match &config.prometheus_url {
        Some(url) => Some(
            PrometheusSource::new(PrometheusSourceConfig::new(url.clone()))
                .context("invalid Prometheus settings")?
                .with_metrics(metrics.clone()),
        ),
        None => None,
    };
    let real_ports = |source: Arc<dyn MetricSource>,
                      observer: Arc<dyn ClusterObserver>,
                      actuator: Arc<dyn ClusterActuator>| Ports {
        metrics: source,
        observer,
        actuator,
        // Replaced by the server's write-behind store on its storage.
        store: Arc::new(MemoryStorage::new()),
        events: Arc::new(|_| {}),
        notifier: Arc::new(RecordingNotifier::default()),
        scripts: None,
        traffic: None,
        chaos: None,
        silencer: None,
        clock: clock.clone(),
    };
    if let Some(k8s) = config.kubernetes() {
        let kube = KubeCluster::connect(&k8s, KUBE_SYNC_TIMEOUT)
            .await
            .context("cannot start the Kubernetes adapter")?;
        let (source, cluster_note): (Arc<dyn MetricSource>, _) = match &prometheus {
            Some(source) => (Arc::new(source.clone()), None),
            None => (
                Arc::new(NoMetricSource),
                Some("PROMETHEUS_URL is not set: no metrics are read, so CPU, memory and anomaly signals are off; pod and node status come from the Kubernetes API".to_owned()),
            ),
        };
        let mut ports = real_ports(source, kube.observer.clone(), kube.actuator.clone());
        ports.chaos = Some(kube.chaos.clone());
        ports.traffic = Some(kube.routes.clone());
        return Ok(Wiring {
            ports,
            prometheus,
            sim: None,
            cluster_note,
            kube: Some(kube),
        });
    }
    if let Some(source) = prometheus {
        let reason = "no cluster adapter is configured (set KUBECONFIG_PATH or a [kubernetes] section): cluster state is not observed and healing actions on the cluster fail".to_owned();
        let cluster = Arc::new(UnwiredCluster::new(reason.clone()));
        return Ok(Wiring {
            ports: real_ports(Arc::new(source.clone()), cluster.clone(), cluster),
            prometheus: Some(source),
            sim: None,
            cluster_note: Some(reason),
            kube: None,
        });
    }
    let sim_config = SimConfig {
        seed: config.sim_seed,
        ..SimConfig::default()
    };
    let sim = Arc::new(
        SimCluster::new(sim_config, clock.clone()).context("cannot build the simulated cluster")?,
    );
    Ok(Wiring {
        ports: Ports::simulated(sim.clone(), clock.clone()),
        prometheus: None,
        sim: Some(sim),
        cluster_note: None,
        kube: None,
    })
}

/// `[kubernetes] dry_run = true`: healing starts in dry run (each action is
/// only validated by the API server); an admin may switch it through
/// `PUT /api/v1/healing/dry-run`.
async fn start_in_dry_run(state: &AppState) -> anyhow::Result<()> {
    let mut engine = state.engine().await;
    let mut healing = engine.planner().config().clone();
    if healing.dry_run {
        return Ok(());
    }
    healing.dry_run = true;
    state
        .save_healing_config(&healing)
        .await
        .map_err(|e| anyhow::anyhow!("cannot store the healing configuration: {e}"))?;
    engine
        .set_healing_config(healing)
        .map_err(|e| anyhow::anyhow!("cannot switch healing to dry run: {e}"))?;
    tracing::info!("healing starts in dry run ([kubernetes] dry_run = true)");
    Ok(())
}

fn spawn_retention(
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    days: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(Duration::from_secs(3600));
        loop {
            timer.tick().await;
            let keep = jiff::SignedDuration::from_hours(24 * i64::from(days));
            let cutoff = clock.now().checked_sub(keep).unwrap_or(Timestamp::MIN);
            match storage.apply_retention(cutoff).await {
                Ok(removed) if removed > 0 => tracing::info!(removed, %cutoff, "retention"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention failed"),
            }
        }
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
