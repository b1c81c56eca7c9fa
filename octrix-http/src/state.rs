//! [`AppState`]: everything the handlers share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use octrix_core::cluster::ClusterInfo;
use octrix_core::engine::{ActionRecord, Engine, EngineConfig, Ports, RestoredState, TickReport};
use octrix_core::healing::HealingConfig;
use octrix_core::metrics::{MetricSource, SourceInfo, SourceKind};
use octrix_core::sim::{SimCluster, SimConfig};
use octrix_core::{Clock, Timestamp};
use octrix_prom::source::SourceStatus;
use octrix_prom::{OctrixMetrics, PrometheusSource};
use tokio::sync::{Mutex, MutexGuard};

use crate::auth::AuthConfig;
use crate::commit::{Committer, WriteBehind};
use crate::events::EventHub;
use crate::route_applier::RouteApplier;
use crate::storage::{Document, DocumentKind, Storage, StorageError};

/// The default largest request body, in bytes (1 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Request limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Webhook deliveries allowed per second and client address.
    pub webhook_per_second: u32,
    /// Deliveries a client may send in a burst above the rate.
    pub webhook_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: DEFAULT_BODY_LIMIT,
            webhook_per_second: 200,
            webhook_burst: 400,
        }
    }
}

/// What the server is built from.
pub struct ServerParts {
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// The engine's ports; their `store` and `events` are replaced by the
    /// server's (the storage, through the committer, and the event hub).
    pub ports: Ports,
    /// Where everything is persisted.
    pub storage: Arc<dyn Storage>,
    /// The Prometheus behind `ports.metrics`, when it is one (for PromQL).
    pub prometheus: Option<PrometheusSource>,
    /// The simulated cluster behind the ports, when it is one.
    pub sim: Option<Arc<SimCluster>>,
    /// Who may call what.
    pub auth: AuthConfig,
    /// Request limits.
    pub limits: Limits,
    /// Octrix's own metrics.
    pub metrics: OctrixMetrics,
    /// Events kept for slow consumers before they are dropped.
    pub event_capacity: usize,
    /// A note on the cluster side shown by `/api/v1/metrics/status` and at
    /// start-up (e.g. that no cluster adapter is configured).
    pub cluster_note: Option<String>,
    /// Where deployed traffic rules are exported (GitOps files).
    pub gitops_dir: Option<std::path::PathBuf>,
    /// Where deployed traffic rules are applied (Istio on Kubernetes).
    pub routes: Option<Arc<dyn RouteApplier>>,
}

struct Inner {
    engine: Mutex<Engine>,
    /// What the engine is rebuilt from when the stored state is reloaded.
    engine_config: EngineConfig,
    engine_ports: Ports,
    /// One reload at a time (a take-over never races a follower's mirror).
    reloading: Mutex<()>,
    leadership: crate::leadership::Leadership,
    pending: Arc<WriteBehind>,
    committer: Committer,
    storage: Arc<dyn Storage>,
    source: Arc<dyn MetricSource>,
    prometheus: Option<PrometheusSource>,
    sim: Option<Arc<SimCluster>>,
    clock: Arc<dyn Clock>,
    metrics: OctrixMetrics,
    events: EventHub,
    auth: AuthConfig,
    limits: Limits,
    rate_limit: crate::layers::RateLimit,
    cluster_note: Option<String>,
    gitops_dir: Option<std::path::PathBuf>,
    routes: Option<Arc<dyn RouteApplier>>,
    cluster: ClusterInfo,
    started: Instant,
    // The simulator and resilience API groups.
    run_ledger: crate::api::simulator::RunLedger,
    resilience: crate::api::resilience::Resilience,
    /// [`Engine::actions_recorded`] when the action history was last
    /// persisted (updated under the engine's lock).
    actions_persisted: AtomicU64,
    /// Prefix of the ids of the action records this process stores: the
    /// start time, so that ids never repeat across restarts.
    action_id_prefix: String,
}

/// The handlers' shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("source", &self.inner.source.info())
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// The engine, locked; call [`EngineGuard::commit`] to make what it wrote
/// durable (the lock is released before waiting for the commit).
pub struct EngineGuard<'a> {
    guard: MutexGuard<'a, Engine>,
    state: &'a AppState,
}

impl std::ops::Deref for EngineGuard<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl std::ops::DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.guard
    }
}

impl EngineGuard<'_> {
    /// Queues what the engine wrote, releases the lock, and waits until it
    /// is committed; then stores the actions it recorded meanwhile.
    pub async fn commit(self) -> Result<(), StorageError> {
        let inner = &self.state.inner;
        let batch = inner.pending.take();
        let ticket = inner.committer.submit(batch);
        let recorded = self.guard.actions_recorded();
        let persisted = inner.actions_persisted.swap(recorded, Ordering::Relaxed);
        let actions: Vec<ActionRecord> = if recorded > persisted {
            self.guard.actions_since(persisted).cloned().collect()
        } else {
            Vec::new()
        };
        drop(self.guard);
        ticket.durable().await?;
        // Numbered from the first new one; the history keeps at most its
        // newest 10,000, so older unseen ones (if any) are skipped.
        let first = recorded - actions.len() as u64;
        for (n, record) in (first..).zip(&actions) {
            self.state.save_action(n, record).await?;
        }
        Ok(())
    }
}

impl AppState {
    /// Builds the engine on `parts` and starts the commit task (on the
    /// current tokio runtime).
    pub fn new(parts: ServerParts) -> Result<Self, octrix_core::engine::Error> {
        let events = EventHub::new(parts.event_capacity).with_metrics(parts.metrics.clone());
        let pending = Arc::new(WriteBehind::new(parts.storage.clone()));
        let committer = Committer::start(parts.storage.clone());
        let mut ports = parts.ports;
        ports.store = pending.clone();
        ports.events = Arc::new(events.clone());
        // The server delivers notifications on its live event stream, where
        // subscribers see them, rather than keeping them in memory.
        ports.notifier = Arc::new(octrix_core::engine::EventNotifier::new(
            ports.events.clone(),
        ));
        let source = ports.metrics.clone();
        let cluster = ports.observer.info();
        let clock = ports.clock.clone();
        let clock_for_resilience = clock.clone();
        let clock_now = clock.now();
        let engine = Engine::new(parts.engine.clone(), ports.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine: Mutex::new(engine),
                engine_config: parts.engine,
                engine_ports: ports,
                reloading: Mutex::new(()),
                leadership: crate::leadership::Leadership::single(Some(parts.metrics.clone())),
                pending,
                committer,
                storage: parts.storage,
                source,
                prometheus: parts.prometheus,
                sim: parts.sim,
                clock,
                metrics: parts.metrics,
                events,
                auth: parts.auth,
                rate_limit: crate::layers::RateLimit::new(
                    parts.limits.webhook_per_second,
                    parts.limits.webhook_burst,
                ),
                limits: parts.limits,
                cluster_note: parts.cluster_note,
                gitops_dir: parts.gitops_dir,
                routes: parts.routes,
                cluster,
                started: Instant::now(),
                run_ledger: Default::default(),
                resilience: crate::api::resilience::Resilience::new(clock_for_resilience),
                actions_persisted: AtomicU64::new(0),
                action_id_prefix: action_id_prefix(clock_now),
            }),
        })
    }

    /// A server on a default simulated cluster driven by `clock`.
    pub fn simulated(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        auth: AuthConfig,
    ) -> Result<Self, octrix_core::engine::Error> {
        Self::simulated_with(
            SimConfig::default(),
            storage,
            clock,
            auth,
            Limits::default(),
        )
    }

    /// A server on the simulated cluster `config`, driven by `clock`.
    pub fn simulated_with(
        config: SimConfig,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        auth: AuthConfig,
        limits: Limits,
    ) -> Result<Self, octrix_core::engine::Error> {
        let sim = Arc::new(
            SimCluster::new(config, clock.clone())
                .map_err(|e| octrix_core::engine::Error::Config(e.to_string()))?,
        );
        Self::new(ServerParts {
            engine: EngineConfig::default(),
            ports: Ports::simulated(sim.clone(), clock),
            storage,
            prometheus: None,
            sim: Some(sim),
            auth,
            limits,
            metrics: OctrixMetrics::new(),
            event_capacity: 1024,
            cluster_note: None,
            gitops_dir: None,
            routes: None,
        })
    }

    /// Takes back what the storage keeps for the engine, to call once at
    /// start-up before serving: the healing configuration, the open and
    /// acknowledged incidents (alerts deduplicate into them; new ids
    /// continue after the highest stored one), the incidents resolved within
    /// the reopen window (an alert firing again reopens them), the action
    /// history, chaos scenarios and runs, and registered services.
    pub async fn restore(&self) -> Result<Restored, crate::error::ApiError> {
        let restored = self.reload(Reload::Own).await?;
        crate::api::resilience::restore(self).await?;
        Ok(restored)
    }

    /// Rebuilds the engine from what the storage keeps (see
    /// [`AppState::restore`]): when this replica starts, takes over as the
    /// leader ([`Reload::Own`]), or mirrors the leader ([`Reload::Mirror`]:
    /// nothing is written, and nothing happens unless it still follows).
    pub async fn reload(&self, how: Reload) -> Result<Restored, crate::error::ApiError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        if how == Reload::Mirror && !self.leadership().follows() {
            return Ok(Restored::default());
        }
        let mut fresh = Engine::new(
            self.inner.engine_config.clone(),
            self.inner.engine_ports.clone(),
        )?;
        let storage = self.storage();
        let reopen_window = fresh.book().config().reopen_window;
        let since = self
            .now()
            .checked_sub(reopen_window)
            .unwrap_or(Timestamp::MIN);
        let healing = match storage
            .get_document(DocumentKind::HealingConfig, HEALING_CONFIG_ID)
            .await?
        {
            Some(document) => Some(decode::<HealingConfig>(
                document.body,
                "the healing configuration",
            )?),
            None => None,
        };
        let active = storage.active_incidents().await?;
        // Read second: an incident resolved between the two reads is kept
        // in its resolved version (one id, one version).
        let recently_resolved = storage.resolved_incidents_since(since).await?;
        let mut by_id: std::collections::BTreeMap<_, _> = active
            .into_iter()
            .map(|incident| (incident.id.clone(), incident))
            .collect();
        for incident in recently_resolved {
            by_id.insert(incident.id.clone(), incident);
        }
        let incidents: Vec<_> = by_id.into_values().collect();
        let resolved_count = incidents.iter().filter(|i| !i.is_active()).count();
        let highest_incident_id = storage.highest_incident_id().await?;
        let mut action_history = self.stored_actions().await?;
        action_history.reverse();
        let summary = Restored {
            incidents: incidents.len() - resolved_count,
            recently_resolved: resolved_count,
            actions: action_history.len(),
            highest_incident_id: highest_incident_id.as_ref().map(|id| id.to_string()),
        };
        fresh.restore(RestoredState {
            incidents,
            highest_incident_id,
            healing,
            action_history,
        })?;
        let mut engine = self.engine().await;
        *engine = fresh;
        self.inner
            .actions_persisted
            .store(engine.actions_recorded(), Ordering::Relaxed);
        self.inner.run_ledger.clear();
        drop(engine);
        crate::api::simulator::restore(self, how == Reload::Own).await?;
        Ok(summary)
    }

    /// This replica's role among the replicas sharing the storage.
    pub fn leadership(&self) -> &crate::leadership::Leadership {
        &self.inner.leadership
    }

    /// The stored action history, newest first (at most 10,000 records).
    pub async fn stored_actions(&self) -> Result<Vec<ActionRecord>, StorageError> {
        let documents = self
            .storage()
            .list_documents(DocumentKind::ActionRecord, STORED_ACTIONS)
            .await?;
        let mut records = documents
            .into_iter()
            .map(|document| {
                let what = format!("action record {}", document.id);
                decode::<ActionRecord>(document.body, &what).map(|record| (document.id, record))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Records of one tick share their instant: the id keeps their order.
        records.sort_by(|(a_id, a), (b_id, b)| b.at.cmp(&a.at).then(b_id.cmp(a_id)));
        Ok(records.into_iter().map(|(_, record)| record).collect())
    }

    async fn save_action(&self, number: u64, record: &ActionRecord) -> Result<(), StorageError> {
        let body = serde_json::to_value(record).map_err(|e| StorageError::Corrupt {
            what: "an action record".to_owned(),
            reason: e.to_string(),
        })?;
        self.storage()
            .put_document(&Document {
                kind: DocumentKind::ActionRecord,
                id: format!("{}-{number:012}", self.inner.action_id_prefix),
                updated_at: record.at,
                body,
            })
            .await
    }

    /// Persists the healing configuration.
    pub async fn save_healing_config(&self, config: &HealingConfig) -> Result<(), StorageError> {
        let body = serde_json::to_value(config).map_err(|e| StorageError::Corrupt {
            what: "the healing configuration".to_owned(),
            reason: e.to_string(),
        })?;
        self.storage()
            .put_document(&Document {
                kind: DocumentKind::HealingConfig,
                id: HEALING_CONFIG_ID.to_owned(),
                updated_at: self.now(),
                body,
            })
            .await
    }

    /// Locks the engine.
    pub async fn engine(&self) -> EngineGuard<'_> {
        EngineGuard {
            guard: self.inner.engine.lock().await,
            state: self,
        }
    }

    /// Runs one pass of the engine and commits what it changed.
    pub async fn tick(&self) -> TickReport {
        let mut engine = self.engine().await;
        let mut report = engine.tick().await;
        self.inner
            .metrics
            .set_detector_series(engine.detectors().len() as u64);
        let runs = self.inner.run_ledger.changed(engine.chaos());
        if let Err(error) = engine.commit().await {
            report.errors.push(format!("storage: {error}"));
        }
        crate::api::simulator::persist_changed_runs(self, &runs).await;
        if let Err(error) = crate::api::routing::advance_canaries(self).await {
            report.errors.push(format!("canaries: {error}"));
        }
        report
    }

    /// Runs the engine every `interval` until the returned task is aborted.
    pub fn spawn_ticker(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut timer = tokio::time::interval(interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                timer.tick().await;
                // Followers mirror the leader's state and never run it.
                if !state.leadership().leads() {
                    continue;
                }
                let report = state.tick().await;
                for error in &report.errors {
                    tracing::warn!(%error, "engine tick");
                }
                tracing::debug!(
                    samples = report.samples,
                    opened = report.opened,
                    resolved = report.resolved,
                    actions = report.actions,
                    "engine tick"
                );
            }
        })
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The metric source the engine reads.
    pub fn source(&self) -> &Arc<dyn MetricSource> {
        &self.inner.source
    }

    /// Who the metric source is.
    pub fn source_info(&self) -> SourceInfo {
        self.inner.source.info()
    }

    /// The cluster the engine observes and acts on.
    pub fn cluster_info(&self) -> &ClusterInfo {
        &self.inner.cluster
    }

    /// The Prometheus source, when the server runs on one.
    pub fn prometheus(&self) -> Option<&PrometheusSource> {
        self.inner.prometheus.as_ref()
    }

    /// Asks the metric source whether it answers: Prometheus through its
    /// health check, other sources through a cluster query.
    pub async fn probe_source(&self) -> SourceProbe {
        if let Some(prometheus) = self.prometheus() {
            return match prometheus.check().await {
                SourceStatus::Up => SourceProbe::Answers,
                SourceStatus::Unavailable { reason } => SourceProbe::Unavailable(reason),
                SourceStatus::Unknown => SourceProbe::NotAskedYet,
            };
        }
        if self.source_info().kind == SourceKind::None {
            return SourceProbe::NotConfigured;
        }
        match self.source().cluster_metrics().await {
            Ok(_) => SourceProbe::Answers,
            Err(error) => SourceProbe::Unavailable(error.to_string()),
        }
    }

    /// The simulated cluster, when the server runs on one.
    pub fn sim(&self) -> Option<&Arc<SimCluster>> {
        self.inner.sim.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Octrix's own metrics.
    pub fn metrics(&self) -> &OctrixMetrics {
        &self.inner.metrics
    }

    /// The event hub.
    pub fn events(&self) -> &EventHub {
        &self.inner.events
    }

    /// Who may call what.
    pub fn auth(&self) -> &AuthConfig {
        &self.inner.auth
    }

    /// Request limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The webhook's rate limit (shared by every router built on this state).
    pub fn rate_limit(&self) -> &crate::layers::RateLimit {
        &self.inner.rate_limit
    }

    /// The note on the cluster side, if any.
    pub fn cluster_note(&self) -> Option<&str> {
        self.inner.cluster_note.as_deref()
    }

    /// Where deployed traffic rules are exported, if anywhere.
    pub fn gitops_dir(&self) -> Option<&std::path::Path> {
        self.inner.gitops_dir.as_deref()
    }

    /// Where deployed traffic rules are applied, if anywhere.
    pub fn routes(&self) -> Option<&Arc<dyn RouteApplier>> {
        self.inner.routes.as_ref()
    }

    /// Whether the commit task runs.
    pub fn committer_running(&self) -> bool {
        self.inner.committer.is_running()
    }

    /// What was last persisted of each chaos run.
    pub fn run_ledger(&self) -> &crate::api::simulator::RunLedger {
        &self.inner.run_ledger
    }

    /// The service registry, circuit breakers, balancer and load test.
    pub fn resilience(&self) -> &crate::api::resilience::Resilience {
        &self.inner.resilience
    }

    /// Time since the state was built.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}

/// The id of the healing configuration document.
pub const HEALING_CONFIG_ID: &str = "current";

/// Most action records read back from storage (the engine keeps as many).
const STORED_ACTIONS: usize = 10_000;

/// What the metric source answered when asked ([`AppState::probe_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceProbe {
    /// It answers.
    Answers,
    /// It does not, and why.
    Unavailable(String),
    /// Prometheus has not been asked yet.
    NotAskedYet,
    /// No metric source is configured.
    NotConfigured,
}

/// How [`AppState::reload`] takes the stored state back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// This replica runs the engine (it starts alone, or takes over as the
    /// leader): chaos runs interrupted by the previous leader's end are
    /// marked failed and saved.
    Own,
    /// This replica follows: it mirrors the stored state for reads and
    /// writes nothing.
    Mirror,
}

/// What [`AppState::restore`] took back from storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Open and acknowledged incidents.
    pub incidents: usize,
    /// Incidents resolved within the reopen window (an alert firing again
    /// reopens them).
    pub recently_resolved: usize,
    /// Action records.
    pub actions: usize,
    /// The highest incident id stored, after which new ids continue.
    pub highest_incident_id: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(
    body: serde_json::Value,
    what: &str,
) -> Result<T, StorageError> {
    serde_json::from_value(body).map_err(|e| StorageError::Corrupt {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

/// Start times sort as text: seconds zero-padded, then nanoseconds.
fn action_id_prefix(start: Timestamp) -> String {
    format!(
        "{:012}.{:09}",
        start.as_second().max(0),
        start.subsec_nanosecond().max(0)
    )
}
