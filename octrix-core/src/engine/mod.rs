//! The engine: observe, detect, open incidents, decide a remediation, act
//! within the safety budget, verify, then resolve or escalate.
//!
//! [`Engine::tick`] runs one pass:
//!
//! 1. scrape the [`MetricSource`] and feed every sample to the
//!    [`DetectorBank`]; anomalies become classifier observations;
//! 2. take a [`ClusterSnapshot`] and classify what it reports;
//! 3. update the [`IncidentBook`] (dedup, correlation, auto-resolve);
//! 4. verify actions whose settle time has passed: healthy resolves the
//!    incident (by healing), unhealthy escalates it and moves to the next action;
//! 5. plan the next step of every active incident with the [`Planner`], and act
//!    through the ports within the shared [`SafetyBudget`];
//! 6. persist what changed in the [`IncidentStore`] and publish [`EngineEvent`]s.
//!
//! A source that does not answer is reported ([`EngineEvent::SourceStatus`],
//! [`TickReport::errors`]) and its part of the tick is skipped: nothing is
//! invented in its place. The engine is deterministic under a [`ManualClock`](crate::ManualClock).
//!
//! ```
//! use std::sync::Arc;
//! use octrix_core::engine::{Engine, EngineConfig, Ports};
//! use octrix_core::sim::{SimCluster, SimConfig};
//! use octrix_core::{ManualClock, Timestamp};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_700_000_000).unwrap()));
//! let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
//! let mut engine = Engine::new(EngineConfig::default(), Ports::simulated(sim, clock)).unwrap();
//! let report = engine.tick().await;
//! assert!(report.errors.is_empty());
//! assert_eq!(report.samples, 35); // 7 pods x 5 metrics
//! # });
//! ```

mod events;
mod observe;
mod plan_queue;
mod ports;
mod restore;
mod series;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use events::{ClusterSummary, EngineEvent, HealingEvent, SourceStatus};
pub use ports::{
    EventSink, Notifier, PortError, ScriptOutcome, ScriptRunner, SilenceRequest, Silencer,
    TrafficControl,
};
pub use restore::RestoredState;

use crate::alert::Alert;
use crate::chaos::{
    ChaosConfig, ChaosController, ChaosExecutor, GuardObservation, GuardSignal, IncidentScope,
    RunId, Scenario, ScenarioCatalog, ScenarioId, StartOptions,
};
use crate::classify::{
    Category, Classification, Classifier, Observation, Reading, ResourceKind, ResourceRef,
    SeverityPolicy,
};
use crate::cluster::{ClusterActuator, ClusterObserver, ClusterSnapshot};
use crate::detect::{DetectorBank, DetectorBankConfig};
use crate::healing::{
    Decision, Denial, HealingConfig, Notification, PlannedAction, Planner, Remediation,
    SafetyBudget, Subject,
};
use crate::incident::{
    HealingOutcome, HealingStep, Incident, IncidentBook, IncidentBookConfig, IncidentId,
    IncidentSource, IncidentStore, Ingested, SYSTEM_ACTOR,
};
use crate::metrics::MetricSource;
use crate::time::SignedDuration;
use crate::{Clock, Timestamp};

/// Errors building an engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A part of the configuration is invalid.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The incident book refused an operation.
    #[error(transparent)]
    Incident(#[from] crate::incident::Error),
    /// The incident store could not persist a change.
    #[error("incident store: {0}")]
    Store(String),
    /// A chaos operation was refused.
    #[error(transparent)]
    Chaos(#[from] crate::chaos::Error),
    /// No chaos executor is configured.
    #[error("chaos is not available: no chaos executor is configured")]
    ChaosUnavailable,
    /// A change asked for by hand was refused (a protected namespace, the
    /// safety budget).
    #[error("refused: {0}")]
    Refused(String),
    /// The cluster has no such workload.
    #[error("{0} not found in the cluster")]
    UnknownWorkload(String),
    /// The cluster could not be observed or changed.
    #[error("cluster: {0}")]
    Cluster(String),
}

/// What a scale request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleOutcome {
    /// `namespace/deployment`.
    pub workload: String,
    /// Replicas before.
    pub previous_replicas: u32,
    /// Replicas asked for.
    pub replicas: u32,
    /// What the actuator reported.
    pub summary: String,
}

/// Everything the engine is configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Anomaly detection per series.
    pub detection: DetectorBankConfig,
    /// Severity thresholds per category.
    pub severity: SeverityPolicy,
    /// Incident lifecycle rules.
    pub incidents: IncidentBookConfig,
    /// Healing rules, policies and budget.
    pub healing: HealingConfig,
    /// Chaos runs (protected namespaces, history).
    pub chaos: ChaosConfig,
}

/// The ports the engine works through.
#[derive(Clone)]
pub struct Ports {
    /// Where metrics come from.
    pub metrics: Arc<dyn MetricSource>,
    /// Who reports the cluster's state.
    pub observer: Arc<dyn ClusterObserver>,
    /// Who changes the cluster.
    pub actuator: Arc<dyn ClusterActuator>,
    /// Where incidents are persisted.
    pub store: Arc<dyn IncidentStore>,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Who sends notifications.
    pub notifier: Arc<dyn Notifier>,
    /// Who runs custom scripts, if anyone: without one, a `custom-script`
    /// action fails (and escalates) with a clear reason.
    pub scripts: Option<Arc<dyn ScriptRunner>>,
    /// Who rolls canary traffic back, if anyone.
    pub traffic: Option<Arc<dyn TrafficControl>>,
    /// Who injects chaos faults, if anyone: without one, chaos operations
    /// fail with [`Error::ChaosUnavailable`].
    pub chaos: Option<Arc<dyn ChaosExecutor>>,
    /// Who mutes the alerts Octrix's own chaos runs and remediations are
    /// expected to cause, if anyone.
    pub silencer: Option<Arc<dyn Silencer>>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("metrics", &self.metrics.info())
            .field("observer", &self.observer.info())
            .finish_non_exhaustive()
    }
}

/// A notifier that records what it was asked to send, for the simulated
/// setup and tests. It never pretends to deliver anywhere.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl RecordingNotifier {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(notification.clone());
        Ok(())
    }
}

/// A notifier that delivers notifications on the event stream
/// (`notification:sent`), for whoever subscribes to it: the channel named
/// in a rule is a topic for subscribers, not an external integration.
pub struct EventNotifier {
    events: Arc<dyn EventSink>,
}

impl EventNotifier {
    /// Delivers to `events`.
    pub fn new(events: Arc<dyn EventSink>) -> Self {
        Self { events }
    }
}

impl std::fmt::Debug for EventNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventNotifier").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Notifier for EventNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), PortError> {
        self.events
            .publish(EngineEvent::Notification(notification.clone()));
        Ok(())
    }
}

impl Ports {
    /// Every port on the simulated cluster, an in-memory store, no event
    /// consumer and a [`RecordingNotifier`].
    pub fn simulated(sim: Arc<crate::sim::SimCluster>, clock: Arc<dyn Clock>) -> Self {
        Self {
            metrics: sim.clone(),
            observer: sim.clone(),
            actuator: sim.clone(),
            chaos: Some(Arc::new(crate::chaos::SimChaosExecutor::new(sim))),
            silencer: None,
            store: Arc::new(crate::incident::InMemoryIncidentStore::default()),
            events: Arc::new(|_event: EngineEvent| {}),
            notifier: Arc::new(RecordingNotifier::default()),
            scripts: None,
            traffic: None,
            clock,
        }
    }
}

/// One action the engine took (or was denied), for the action history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// When.
    pub at: Timestamp,
    /// For which incident.
    pub incident_id: String,
    /// Rule.
    pub rule: String,
    /// Action name.
    pub action: String,
    /// Target.
    pub target: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// What came of it.
    pub outcome: HealingOutcome,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TickReport {
    /// When the tick ran.
    pub at: Option<Timestamp>,
    /// Samples scraped.
    pub samples: usize,
    /// Samples judged anomalous.
    pub anomalies: usize,
    /// Observations classified.
    pub observations: usize,
    /// Incidents opened or reopened.
    pub opened: usize,
    /// Incidents resolved (by source, healing or because their object is gone).
    pub resolved: usize,
    /// Actions carried out (including dry runs).
    pub actions: usize,
    /// Actions denied.
    pub denied: usize,
    /// Incidents escalated to a human.
    pub escalated: usize,
    /// What went wrong (a source down, the store failing...).
    pub errors: Vec<String>,
}

/// An action waiting for its settle time before it is verified.
#[derive(Debug, Clone)]
struct PendingVerification {
    incident: IncidentId,
    planned: PlannedAction,
    permit: Option<crate::healing::Permit>,
    acted_at: Timestamp,
    due: Timestamp,
    category: Category,
    workload: String,
}

const ACTION_HISTORY: usize = 10_000;

/// Labels identifying what a chaos target's alerts are about.
fn silence_matchers(target: &crate::chaos::Target) -> crate::Labels {
    match target {
        crate::chaos::Target::Pod { namespace, name } => {
            crate::labels::from_pairs([("namespace", namespace.as_str()), ("pod", name)])
        }
        crate::chaos::Target::Node { name } => crate::labels::from_pairs([("node", name.as_str())]),
        crate::chaos::Target::Service { namespace, name } => {
            crate::labels::from_pairs([("namespace", namespace.as_str()), ("service", name)])
        }
    }
}

/// Labels identifying what a remediation's expected alerts are about.
fn action_matchers(action: &crate::cluster::ClusterAction) -> crate::Labels {
    use crate::cluster::ClusterAction;
    match action {
        ClusterAction::RestartPod { namespace, pod } => {
            crate::labels::from_pairs([("namespace", namespace.as_str()), ("pod", pod)])
        }
        ClusterAction::ScaleDeployment {
            namespace,
            deployment,
            ..
        } => crate::labels::from_pairs([
            ("namespace", namespace.as_str()),
            ("deployment", deployment),
        ]),
        ClusterAction::CordonNode { node }
        | ClusterAction::UncordonNode { node }
        | ClusterAction::DrainNode { node, .. } => {
            crate::labels::from_pairs([("node", node.as_str())])
        }
    }
}

/// The key healing progress is tracked by: a category on a workload.
fn case_key(category: Category, workload: &str) -> String {
    format!("{category}/{workload}")
}

/// The engine. Holds the pure state; every interaction goes through [`Ports`].
pub struct Engine {
    ports: Ports,
    bank: DetectorBank,
    classifier: Classifier,
    book: IncidentBook,
    planner: Planner,
    /// One budget for healing and chaos alike.
    budget: SafetyBudget,
    chaos: Option<ChaosController>,
    /// Anomalies detected this tick (metric and labels, shared with the
    /// scrape), for chaos abort guards.
    anomalies: Vec<(std::borrow::Cow<'static, str>, Arc<crate::Labels>)>,
    /// Silences created for each chaos run, expired when the run ends.
    silences: HashMap<RunId, Vec<String>>,
    /// Failures of the silencer since the last tick, reported by it.
    silence_errors: Vec<String>,
    pending: Vec<PendingVerification>,
    history: VecDeque<ActionRecord>,
    /// Actions pushed to `history` since the engine was built.
    actions_recorded: u64,
    /// Series whose last sample was anomalous: their next samples go to the
    /// classifier too, so that it sees the anomaly end. Looked up for
    /// every sample while any series is anomalous: foldhash, as SipHash
    /// was about a tenth of a tick's instructions (callgrind).
    anomalous_series: HashSet<crate::detect::SeriesId, foldhash::fast::RandomState>,
    /// Series ids of the samples' label sets, so that a series is resolved
    /// once rather than on every sample.
    series: series::SeriesIds,
    /// The scrape's vector, empty between ticks.
    samples: Vec<crate::metrics::SeriesSample>,
    /// Last denial recorded per incident, so a denial repeated every tick is
    /// written to the timeline once.
    last_denial: HashMap<IncidentId, String>,
    /// The incident being healed on a workload; other incidents on the same
    /// workload (an OOM kill next to a memory leak) wait for its outcome
    /// instead of acting on it too.
    leaders: HashMap<String, IncidentId>,
    /// When each (category, workload) problem was last raised, to verify
    /// actions over their settle window rather than at one instant.
    last_raised: HashMap<(Category, String), Timestamp>,
    snapshot: ClusterSnapshot,
    pods: observe::PodIndex,
    /// Reused to observe the snapshot's pods and nodes one by one.
    observation_buffer: observe::ObservationBuffer,
    /// This tick's anomaly observations first, then stale ones whose strings
    /// the next tick reuses.
    anomaly_observations: Vec<Observation>,
    changed: HashSet<IncidentId>,
    /// The incidents [`Engine::heal`] plans on the next pass.
    plan_queue: plan_queue::PlanQueue,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ports", &self.ports)
            .field("incidents", &self.book.incidents().len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine on `ports`, with the safety budget of `config.healing`
    /// shared by healing and chaos runs.
    pub fn new(config: EngineConfig, ports: Ports) -> Result<Self, Error> {
        config
            .healing
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            bank: DetectorBank::new(config.detection).map_err(|e| Error::Config(e.to_string()))?,
            classifier: Classifier::new(config.severity)
                .map_err(|e| Error::Config(e.to_string()))?,
            book: IncidentBook::new(config.incidents)?,
            budget: SafetyBudget::new(config.healing.budget.clone()),
            chaos: ports.chaos.clone().map(|executor| {
                ChaosController::new(config.chaos, ScenarioCatalog::with_builtins(), executor)
            }),
            anomalies: Vec::new(),
            silences: HashMap::new(),
            silence_errors: Vec::new(),
            planner: Planner::new(config.healing),
            ports,
            pending: Vec::new(),
            history: VecDeque::new(),
            actions_recorded: 0,
            anomalous_series: HashSet::default(),
            series: series::SeriesIds::default(),
            samples: Vec::new(),
            last_denial: HashMap::new(),
            leaders: HashMap::new(),
            last_raised: HashMap::new(),
            snapshot: ClusterSnapshot::default(),
            pods: observe::PodIndex::default(),
            observation_buffer: observe::ObservationBuffer::default(),
            anomaly_observations: Vec::new(),
            changed: HashSet::new(),
            plan_queue: plan_queue::PlanQueue::default(),
        })
    }

    /// The incidents.
    pub fn book(&self) -> &IncidentBook {
        &self.book
    }

    /// The healing planner (rules, dry-run switch).
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// Replaces the healing configuration (rules, policies, switches).
    pub fn set_healing_config(&mut self, config: HealingConfig) -> Result<(), Error> {
        config
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        self.budget.set_config(config.budget.clone());
        self.planner.set_config(config);
        // New rules may match incidents no rule matched.
        self.plan_queue.mark_all_active(&self.book);
        Ok(())
    }

    /// Sets the global dry-run switch.
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.planner.set_dry_run(dry_run);
        self.plan_queue.mark_all_active(&self.book);
    }

    /// The safety budget shared by healing and chaos.
    pub fn budget(&self) -> &SafetyBudget {
        &self.budget
    }

    /// The chaos controller (scenarios, runs, statistics), when a chaos
    /// executor is configured.
    pub fn chaos(&self) -> Option<&ChaosController> {
        self.chaos.as_ref()
    }

    /// Actions taken or denied, oldest first (the last 10,000).
    pub fn action_history(&self) -> impl ExactSizeIterator<Item = &ActionRecord> {
        self.history.iter()
    }

    /// The detector bank (series count, counters).
    pub fn detectors(&self) -> &DetectorBank {
        &self.bank
    }

    /// The last cluster snapshot.
    pub fn snapshot(&self) -> &ClusterSnapshot {
        &self.snapshot
    }

    /// The ports.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Ingests alerts (an Alertmanager delivery) and persists the incidents
    /// they touch before returning, so a caller can acknowledge the delivery
    /// only once it is durable.
    pub async fn ingest_alerts(&mut self, alerts: &[Alert]) -> Result<Vec<Ingested>, Error> {
        let now = self.ports.clock.now();
        let mut results = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let ingested = self.book.ingest_alert(alert, now);
            if let Ingested::Opened(id) | Ingested::Reopened(id) = &ingested {
                self.link_to_chaos(id, now);
            }
            if let Some(id) = ingested.incident_id() {
                self.changed.insert(id.clone());
                if !matches!(ingested, Ingested::Duplicate(_)) {
                    self.ports.events.publish(EngineEvent::AlertNew {
                        fingerprint: alert.fingerprint.clone(),
                        alert_name: alert.name().map(str::to_owned),
                        incident_id: id.to_string(),
                    });
                }
            }
            self.publish_ingested(&ingested);
            results.push(ingested);
        }
        self.persist().await.map_err(Error::Store)?;
        for ingested in &results {
            if let Some(id) = ingested.incident_id() {
                self.settle_if_no_rule(id);
            }
        }
        Ok(results)
    }

    /// Files an incident that no rule matches as settled right away, while
    /// its delivery holds the lock anyway: otherwise the next tick would
    /// plan every alert received since the last one under the lock (a burst
    /// of 100,000 alerts held every delivery for seconds). Only a decision
    /// that changes nothing is taken here; anything else waits for the tick.
    fn settle_if_no_rule(&mut self, id: &IncidentId) {
        let Some(incident) = self.book.get(id) else {
            return;
        };
        if !incident.is_active() || incident.escalated {
            return;
        }
        let workload = self.workload_of(incident);
        let mut subject = self.subject_of(incident);
        subject.case = case_key(incident.category, &workload);
        if self.planner.matches_no_rule(&subject) {
            self.plan_queue
                .file(incident, &workload, &Decision::NoMatchingRule);
        }
    }

    /// Acknowledges an incident on behalf of `actor` and persists it.
    pub async fn acknowledge(
        &mut self,
        id: &IncidentId,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Incident, Error> {
        self.change(id, |book, now| book.acknowledge(id, actor, note, now))
            .await
    }

    /// Resolves an incident on behalf of `actor` and persists it.
    pub async fn resolve(
        &mut self,
        id: &IncidentId,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Incident, Error> {
        self.change(id, |book, now| book.resolve(id, actor, note, now))
            .await
    }

    /// Assigns an incident and persists it.
    pub async fn assign(
        &mut self,
        id: &IncidentId,
        assignee: &str,
        actor: &str,
    ) -> Result<Incident, Error> {
        self.change(id, |book, now| book.assign(id, assignee, actor, now))
            .await
    }

    /// Adds a note and persists it.
    pub async fn add_note(
        &mut self,
        id: &IncidentId,
        actor: &str,
        text: &str,
    ) -> Result<Incident, Error> {
        self.change(id, |book, now| book.add_note(id, actor, text, now))
            .await
    }

    /// Links an incident to a chaos run (an expected effect) and persists it.
    pub async fn link_chaos_run(
        &mut self,
        id: &IncidentId,
        run_id: &str,
    ) -> Result<Incident, Error> {
        self.change(id, |book, now| book.link_chaos_run(id, run_id, now))
            .await
    }

    /// Applies a change asked for through the API, persists the incident and
    /// publishes it (resolved, or updated).
    async fn change(
        &mut self,
        id: &IncidentId,
        apply: impl FnOnce(&mut IncidentBook, Timestamp) -> Result<&Incident, crate::incident::Error>,
    ) -> Result<Incident, Error> {
        let now = self.ports.clock.now();
        let incident = apply(&mut self.book, now)?.clone();
        if !incident.is_active() {
            self.finish_healing(id);
        }
        self.changed.insert(id.clone());
        self.persist().await.map_err(Error::Store)?;
        let event = if incident.is_active() {
            EngineEvent::IncidentUpdated(Box::new(incident.clone()))
        } else {
            EngineEvent::IncidentResolved(Box::new(incident.clone()))
        };
        self.ports.events.publish(event);
        Ok(incident)
    }

    /// Records circuit breaker state changes (drained from a
    /// [`BreakerRegistry`](crate::resilience::BreakerRegistry)) on the
    /// timelines of their services' active incidents, persists them, and
    /// publishes each change.
    pub async fn record_breaker_transitions(
        &mut self,
        transitions: &[crate::resilience::BreakerTransition],
    ) -> Result<(), Error> {
        for transition in transitions {
            let ids = self.book.record_breaker_transition(transition);
            self.changed.extend(ids);
            self.ports
                .events
                .publish(EngineEvent::CircuitBreaker(transition.clone()));
        }
        self.persist().await.map_err(Error::Store)
    }

    fn chaos_mut(&mut self) -> Result<&mut ChaosController, Error> {
        self.chaos.as_mut().ok_or(Error::ChaosUnavailable)
    }

    /// Adds a custom chaos scenario.
    pub fn add_scenario(&mut self, scenario: Scenario) -> Result<(), Error> {
        self.chaos_mut()?.add_scenario(scenario)?;
        Ok(())
    }

    /// Removes a custom chaos scenario.
    pub fn remove_scenario(&mut self, id: &ScenarioId) -> Result<Scenario, Error> {
        Ok(self.chaos_mut()?.remove_scenario(id)?)
    }

    /// Takes back chaos runs recorded before a restart; see
    /// [`ChaosController::restore_runs`]. Returns the runs it marked failed.
    pub fn restore_chaos_runs(
        &mut self,
        runs: Vec<crate::chaos::ScenarioRun>,
    ) -> Result<Vec<RunId>, Error> {
        let now = self.ports.clock.now();
        Ok(self.chaos_mut()?.restore_runs(runs, now))
    }

    /// Scales a deployment by `change` replicas on request (the API's scale
    /// up and down, never below zero), through the actuator and within the safety budget healing and
    /// chaos share. A protected namespace or a budget denial refuses it;
    /// scaling down counts the replicas removed as disrupted, so the
    /// budget's fraction and last-ready-replica rules hold. The permit is
    /// returned once the actuator has answered.
    pub async fn scale_deployment(
        &mut self,
        namespace: &str,
        deployment: &str,
        change: i32,
    ) -> Result<ScaleOutcome, Error> {
        use crate::healing::{DisruptionRequest, Disruptor, WorkloadImpact};
        let workload = format!("{namespace}/{deployment}");
        if self
            .planner
            .config()
            .protected_namespaces
            .iter()
            .any(|p| p == namespace)
        {
            return Err(Error::Refused(format!(
                "namespace {namespace} is protected"
            )));
        }
        let snapshot = self
            .ports
            .observer
            .snapshot()
            .await
            .map_err(|e| Error::Cluster(e.to_string()))?;
        let current = snapshot
            .deployment(namespace, deployment)
            .ok_or_else(|| Error::UnknownWorkload(format!("deployment {workload}")))?
            .clone();
        if change < 0 && current.replicas == 0 {
            return Err(Error::Refused(format!(
                "deployment {workload} has no replica to remove"
            )));
        }
        let replicas = current.replicas.saturating_add_signed(change);
        let mut request =
            DisruptionRequest::new(Disruptor::Healing, format!("deployment/{workload}"))
                .in_namespace(namespace);
        if replicas < current.replicas {
            let removed = current.replicas - replicas;
            request = request.with_impact(WorkloadImpact {
                workload: workload.clone(),
                pods: current.replicas,
                ready_pods: current.ready_replicas,
                disrupted_pods: removed,
                disrupted_ready_pods: removed.min(current.ready_replicas),
            });
        }
        let now = self.ports.clock.now();
        let permit = self
            .budget
            .try_acquire(&request, now)
            .map_err(|denial| Error::Refused(format!("safety budget: {denial}")))?;
        let action = crate::cluster::ClusterAction::ScaleDeployment {
            namespace: namespace.to_owned(),
            deployment: deployment.to_owned(),
            replicas,
        };
        let result = self.ports.actuator.execute(&action, false).await;
        self.budget.release(permit);
        let report = result.map_err(|e| Error::Cluster(e.to_string()))?;
        Ok(ScaleOutcome {
            workload,
            previous_replicas: current.replicas,
            replicas,
            summary: report.summary,
        })
    }

    /// Starts a chaos run on the last observed cluster, within the safety
    /// budget healing also draws on.
    pub async fn start_chaos(
        &mut self,
        scenario: &ScenarioId,
        options: StartOptions,
    ) -> Result<RunId, Error> {
        let now = self.ports.clock.now();
        let chaos = self.chaos.as_mut().ok_or(Error::ChaosUnavailable)?;
        let result = chaos
            .start(scenario, options, &self.snapshot, &mut self.budget, now)
            .await;
        self.publish_chaos_events().await;
        Ok(result?)
    }

    /// Stops a running chaos run and restores what it changed.
    pub async fn stop_chaos(&mut self, run: RunId) -> Result<(), Error> {
        let now = self.ports.clock.now();
        let chaos = self.chaos.as_mut().ok_or(Error::ChaosUnavailable)?;
        let result = chaos.stop(run, &mut self.budget, now).await;
        self.publish_chaos_events().await;
        Ok(result?)
    }

    /// Cancels a chaos run that has not started.
    pub async fn cancel_chaos(&mut self, run: RunId) -> Result<(), Error> {
        let now = self.ports.clock.now();
        let result = self.chaos_mut()?.cancel(run, now);
        self.publish_chaos_events().await;
        Ok(result?)
    }

    /// Aborts a chaos run with a reason and restores what it changed.
    pub async fn abort_chaos(&mut self, run: RunId, reason: &str) -> Result<(), Error> {
        let now = self.ports.clock.now();
        let chaos = self.chaos.as_mut().ok_or(Error::ChaosUnavailable)?;
        let result = chaos.abort(run, reason, &mut self.budget, now).await;
        self.publish_chaos_events().await;
        Ok(result?)
    }

    /// Publishes what chaos runs did, and mutes the alerts a started run is
    /// expected to cause until it ends.
    async fn publish_chaos_events(&mut self) {
        let Some(chaos) = self.chaos.as_mut() else {
            return;
        };
        for event in chaos.drain_events() {
            match &event {
                crate::chaos::ChaosEvent::RunStarted {
                    run,
                    scenario,
                    targets,
                    dry_run: false,
                    deadline,
                    at,
                    ..
                } => {
                    let comment = format!("octrix chaos {run} ({scenario}): expected effects");
                    let requests: Vec<SilenceRequest> = targets
                        .iter()
                        .map(|target| SilenceRequest {
                            matchers: silence_matchers(target),
                            starts_at: *at,
                            ends_at: *deadline,
                            comment: comment.clone(),
                        })
                        .collect();
                    let ids = self.silence(&requests).await;
                    self.silences.entry(*run).or_default().extend(ids);
                }
                crate::chaos::ChaosEvent::RunCompleted { run, .. }
                | crate::chaos::ChaosEvent::RunStopped { run, .. }
                | crate::chaos::ChaosEvent::RunAborted { run, .. }
                | crate::chaos::ChaosEvent::RunFailed { run, .. } => {
                    if let (Some(ids), Some(silencer)) =
                        (self.silences.remove(run), self.ports.silencer.clone())
                    {
                        for id in ids {
                            if let Err(error) = silencer.expire(&id).await {
                                self.silence_errors.push(error.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
            self.ports.events.publish(EngineEvent::Chaos(event));
        }
    }

    /// Creates silences through the silencer, if any; returns their ids.
    async fn silence(&mut self, requests: &[SilenceRequest]) -> Vec<String> {
        let Some(silencer) = self.ports.silencer.clone() else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for request in requests {
            match silencer.silence(request).await {
                Ok(id) => ids.push(id),
                Err(error) => self.silence_errors.push(error.to_string()),
            }
        }
        ids
    }

    /// Completes expired runs, starts due ones, and aborts runs whose guard
    /// signals breach.
    async fn run_chaos(&mut self, now: Timestamp) {
        let Some(chaos) = self.chaos.as_mut() else {
            return;
        };
        chaos.tick(&self.snapshot, &mut self.budget, now).await;
        let active = chaos.active();
        let guarded: Vec<(String, String)> = active
            .iter()
            .flat_map(|run| run.scenario.guards.iter())
            .filter_map(|guard| match &guard.signal {
                GuardSignal::ErrorRateAbove {
                    namespace, service, ..
                }
                | GuardSignal::LatencyP99Above {
                    namespace, service, ..
                } => Some((namespace.clone(), service.clone())),
                GuardSignal::Anomaly { .. } => None,
            })
            .collect();
        // Guards only judge running runs: without one, the anomalies are
        // not copied for them.
        let judged = if active.is_empty() {
            &[][..]
        } else {
            &self.anomalies[..]
        };
        let mut observations: Vec<GuardObservation> = judged
            .iter()
            .map(|(metric, labels)| GuardObservation::Anomaly {
                metric: metric.to_string(),
                labels: (**labels).clone(),
            })
            .collect();
        for (namespace, service) in guarded {
            let selector = crate::metrics::ServiceSelector {
                namespace: namespace.clone(),
                service: service.clone(),
                version: None,
                window_seconds: 60,
            };
            // Missing data does not breach a guard; the source's own status
            // reports that it is down.
            if let Ok(metrics) = self.ports.metrics.service_metrics(&selector).await {
                observations.push(GuardObservation::Service {
                    namespace,
                    service,
                    metrics,
                });
            }
        }
        if let Some(chaos) = self.chaos.as_mut() {
            chaos
                .enforce_guards(&observations, &mut self.budget, now)
                .await;
        }
        self.publish_chaos_events().await;
    }

    /// Links a newly opened incident to the chaos runs covering what it is
    /// about: it is an expected effect of the experiment.
    fn link_to_chaos(&mut self, id: &IncidentId, now: Timestamp) {
        let Some(incident) = self.book.get(id) else {
            return;
        };
        let subject = self.subject_of(incident);
        let scope = IncidentScope {
            namespace: subject.namespace,
            service: subject.service,
            deployment: subject.deployment,
            pod: incident
                .resource
                .as_ref()
                .filter(|r| r.kind == ResourceKind::Pod)
                .map(|r| r.name.clone()),
            node: subject.node,
        };
        let Some(chaos) = self.chaos.as_mut() else {
            return;
        };
        for run in chaos.runs_covering(&scope, now) {
            if chaos.link_incident(run, id.to_string()).is_ok()
                && self.book.link_chaos_run(id, &run.to_string(), now).is_ok()
            {
                self.changed.insert(id.clone());
            }
        }
    }

    /// Runs one pass of the loop. Never fails as a whole: what went wrong is
    /// in the report's `errors` and published as events.
    pub async fn tick(&mut self) -> TickReport {
        let now = self.ports.clock.now();
        let mut report = TickReport {
            at: Some(now),
            ..TickReport::default()
        };
        let anomalies = self.detect(now, &mut report).await;
        let observations = std::mem::take(&mut self.anomaly_observations);
        let observed_cluster = match self.ports.observer.refresh(&mut self.snapshot).await {
            Ok(()) => {
                self.pods.rebuild(&self.snapshot);
                true
            }
            Err(error) => {
                report.errors.push(format!(
                    "cluster observer {}: {error}",
                    self.ports.observer.info().name
                ));
                false
            }
        };
        self.run_chaos(now).await;
        let active_problems = self.classify(
            &observations[..anomalies],
            observed_cluster,
            now,
            &mut report,
        );
        self.anomaly_observations = observations;
        self.resolve_vanished(now, &active_problems, &mut report);
        self.verify(now, &mut report).await;
        self.heal(now, &mut report).await;
        self.housekeeping(now);
        report.errors.append(&mut self.silence_errors);
        if let Err(error) = self.persist().await {
            report.errors.push(format!("incident store: {error}"));
        }
        self.publish_cluster_update(now);
        report
    }

    /// Observes a scrape; returns how many anomaly observations it left at
    /// the start of `anomaly_observations`.
    async fn detect(&mut self, now: Timestamp, report: &mut TickReport) -> usize {
        let source = self.ports.metrics.info();
        // The scrape's vector is kept from tick to tick (emptied after
        // use, so the samples' labels are not held).
        let mut samples = std::mem::take(&mut self.samples);
        match self.ports.metrics.scrape_into(&mut samples).await {
            Ok(()) => {
                self.ports
                    .events
                    .publish(EngineEvent::SourceStatus(SourceStatus {
                        source,
                        up: true,
                        error: None,
                        at: now,
                    }));
            }
            Err(error) => {
                report.errors.push(error.to_string());
                self.ports
                    .events
                    .publish(EngineEvent::SourceStatus(SourceStatus {
                        source,
                        up: false,
                        error: Some(error.to_string()),
                        at: now,
                    }));
                samples.clear();
                self.samples = samples;
                return 0;
            }
        }
        report.samples = samples.len();
        self.anomalies.clear();
        // Observations are rewritten in place from tick to tick; see
        // `observe::load_anomaly`.
        let mut observations = std::mem::take(&mut self.anomaly_observations);
        let mut count = 0;
        for sample in &samples {
            // Rejected values and a full bank are counted by the bank.
            let Ok((id, detection)) = self.series.observe(&mut self.bank, sample) else {
                continue;
            };
            if detection.is_anomaly {
                report.anomalies += 1;
                self.anomalies
                    .push((sample.metric.clone(), sample.labels.clone()));
                self.anomalous_series.insert(id);
            } else if self.anomalous_series.is_empty() || !self.anomalous_series.remove(&id) {
                continue;
            }
            if count == observations.len() {
                observations.push(Observation::new(
                    sample.timestamp,
                    ResourceRef::node(String::new()),
                    Reading::CpuUtilisation { ratio: 0.0 },
                ));
            }
            observe::load_anomaly(&mut observations[count], sample, &detection);
            count += 1;
        }
        // A burst of anomalies does not keep its observations for good.
        if observations.len() > 2 * count + 64 {
            observations.truncate(2 * count + 64);
        }
        self.anomaly_observations = observations;
        samples.clear();
        self.samples = samples;
        self.series.forget_dropped();
        count
    }

    /// Classifies `anomalies`, then (when this tick's snapshot was taken)
    /// every pod and node of the snapshot, and updates incidents; returns the
    /// (category, workload) pairs with a problem raised this tick.
    fn classify(
        &mut self,
        anomalies: &[Observation],
        observed_cluster: bool,
        now: Timestamp,
        report: &mut TickReport,
    ) -> HashSet<(Category, String)> {
        let mut active = HashSet::new();
        for observation in anomalies {
            self.classify_one(observation, now, report, &mut active);
        }
        report.observations = anomalies.len();
        if !observed_cluster {
            return active;
        }
        // Indexed loops: classifying needs `&mut self` while the snapshot
        // is read, and it is not changed until the next tick.
        let mut buffer = std::mem::take(&mut self.observation_buffer);
        for index in 0..self.snapshot.pods.len() {
            let count = buffer.load_pod(&self.snapshot.pods[index], now);
            for reading in 0..count {
                self.classify_one(buffer.observation(reading), now, report, &mut active);
            }
            report.observations += count;
        }
        for index in 0..self.snapshot.nodes.len() {
            let count = buffer.load_node(&self.snapshot.nodes[index], now);
            for reading in 0..count {
                self.classify_one(buffer.observation(reading), now, report, &mut active);
            }
            report.observations += count;
        }
        self.observation_buffer = buffer;
        active
    }

    /// Classifies one observation and updates incidents; adds the
    /// (category, workload) of a raised problem to `active`.
    fn classify_one(
        &mut self,
        observation: &Observation,
        now: Timestamp,
        report: &mut TickReport,
        active: &mut HashSet<(Category, String)>,
    ) {
        for classification in self.classifier.observe(observation) {
            if let Classification::Raised(signal) = &classification {
                let key = (
                    signal.category,
                    observe::workload_of(&self.pods, &self.snapshot, &signal.resource),
                );
                self.last_raised.insert(key.clone(), now);
                active.insert(key);
            }
            let ingested = self.book.ingest(&classification, now);
            match &ingested {
                Ingested::Opened(id) | Ingested::Reopened(id) => {
                    report.opened += 1;
                    self.link_to_chaos(id, now);
                }
                Ingested::AutoResolved(id) => {
                    report.resolved += 1;
                    self.settle_resolved(id, now);
                }
                _ => {}
            }
            if let Some(id) = ingested.incident_id()
                && !matches!(ingested, Ingested::Duplicate(_))
            {
                self.changed.insert(id.clone());
            }
            self.publish_ingested(&ingested);
        }
    }

    /// An incident resolved by its source while an action awaited
    /// verification was healed by that action.
    fn settle_resolved(&mut self, id: &IncidentId, now: Timestamp) {
        if let Some(index) = self.pending.iter().position(|p| &p.incident == id) {
            let pending = self.pending.swap_remove(index);
            self.conclude(pending, true, now);
        }
    }

    /// Cluster incidents about a pod that no longer exists, and whose
    /// workload shows no such problem any more, are resolved: nothing is
    /// left to heal or to clear them.
    fn resolve_vanished(
        &mut self,
        now: Timestamp,
        active_problems: &HashSet<(Category, String)>,
        report: &mut TickReport,
    ) {
        if self.snapshot.taken_at.is_none() {
            return;
        }
        let vanished: Vec<IncidentId> = self
            .book
            .incidents()
            // An incident handed to a human stays until the human closes it.
            .filter(|i| i.is_active() && !i.escalated && i.source == IncidentSource::Cluster)
            .filter(|i| !self.pending.iter().any(|p| p.incident == i.id))
            .filter_map(|i| {
                let resource = i.resource.as_ref()?;
                let [kind, namespace, name] = resource.identity();
                let gone = kind == "pod" && self.pod(namespace, name).is_none();
                let workload = format!("deployment/{namespace}/{}", i.service.as_deref()?);
                (gone && !active_problems.contains(&(i.category, workload))).then(|| i.id.clone())
            })
            .collect();
        for id in vanished {
            if self
                .book
                .resolve(&id, SYSTEM_ACTOR, Some("the pod no longer exists"), now)
                .is_ok()
            {
                report.resolved += 1;
                self.changed.insert(id.clone());
                self.finish_healing(&id);
                if let Some(incident) = self.book.get(&id) {
                    self.ports
                        .events
                        .publish(EngineEvent::IncidentResolved(Box::new(incident.clone())));
                }
            }
        }
    }

    /// Verifies actions whose settle time has passed. An action healed its
    /// incident when the problem was not raised again on the workload during
    /// the second half of the settle window: the first half lets the
    /// cluster react (a replaced pod start, load spread), and judging a window
    /// rather than the last instant catches problems that oscillate, such as a
    /// leak that OOM-kills and starts over.
    async fn verify(&mut self, now: Timestamp, report: &mut TickReport) {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due <= now);
        self.pending = waiting;
        for pending in due {
            let still_active = self
                .book
                .get(&pending.incident)
                .is_some_and(Incident::is_active);
            let judged_from = pending
                .acted_at
                .checked_add(pending.due.duration_since(pending.acted_at) / 2)
                .unwrap_or(pending.due);
            let raised_again = self
                .last_raised
                .get(&(pending.category, pending.workload.clone()))
                .is_some_and(|at| *at >= judged_from);
            let healed = !still_active || !raised_again;
            if healed && still_active {
                report.resolved += 1;
            }
            if let Some(escalation) = self.conclude(pending, healed, now) {
                self.escalate(escalation, now, report).await;
            }
        }
    }

    /// Records the verification of `pending`; returns an escalation to carry
    /// out when the action did not help.
    fn conclude(
        &mut self,
        pending: PendingVerification,
        healed: bool,
        now: Timestamp,
    ) -> Option<(IncidentId, String)> {
        if let Some(permit) = pending.permit {
            self.budget.release(permit);
        }
        let outcome = if healed {
            HealingOutcome::Healed
        } else {
            HealingOutcome::NotHealed
        };
        self.record(&pending.incident, &pending.planned, outcome, now);
        let case = case_key(pending.category, &pending.workload);
        let id = pending.incident;
        if healed {
            let action = pending.planned.action.name();
            let still_active = self.book.get(&id).is_some_and(Incident::is_active);
            let result = if still_active {
                self.book
                    .resolve_by_healing(&id, &format!("{action} healed the incident"), now)
                    .map(|_| ())
            } else {
                self.book.mark_resolved_by_healing(&id)
            };
            if result.is_ok()
                && let Some(incident) = self.book.get(&id)
            {
                self.ports
                    .events
                    .publish(EngineEvent::IncidentResolved(Box::new(incident.clone())));
            }
            self.planner.finish(&case);
            self.finish_healing(&id);
            None
        } else {
            self.planner.advance(&case);
            Some((
                id,
                format!(
                    "{} did not heal the incident",
                    pending.planned.action.name()
                ),
            ))
        }
    }

    /// Raises severity and notifies the escalation channel; the next action
    /// of the rule is planned on the next pass.
    async fn escalate(
        &mut self,
        (id, reason): (IncidentId, String),
        now: Timestamp,
        report: &mut TickReport,
    ) {
        let channel = self.planner.config().escalation_channel.clone();
        let Ok(incident) = self.book.escalate_severity(&id, &reason, &channel, now) else {
            return;
        };
        let notification = Notification {
            channel,
            subject: format!("[{}] {}", incident.severity, incident.title),
            body: format!("Incident {id}: {reason}; trying the next action."),
        };
        let incident = incident.clone();
        self.changed.insert(id.clone());
        if let Err(error) = self.ports.notifier.notify(&notification).await {
            report.errors.push(error.to_string());
        }
        self.ports
            .events
            .publish(EngineEvent::IncidentUpdated(Box::new(incident)));
    }

    /// Forgets an incident that is over. Its case's progress goes too,
    /// unless another active incident carries the same case on.
    fn finish_healing(&mut self, id: &IncidentId) {
        if let Some(incident) = self.book.get(id) {
            // An incident without a cluster resource is its own case
            // (`incident/<id>`), and only incidents with one can share a
            // case: no scan of every alert's incident for those.
            let workload = self.workload_of(incident);
            let case = case_key(incident.category, &workload);
            let carried_on = incident.resource.is_some()
                && self.book.incidents().any(|other| {
                    other.id != *id
                        && other.resource.is_some()
                        && other.is_active()
                        && other.category == incident.category
                        && self.is_on_workload(other, &workload)
                });
            if !carried_on {
                self.planner.finish(&case);
            }
        }
        self.leaders.retain(|_, leader| leader != id);
        self.last_denial.remove(id);
    }

    /// Whether `incident` is on `workload`, as [`Engine::workload_of`]
    /// names it, without building the name of a workload that is not a
    /// pod's (an alert's `instance`): the book may hold 100,000 of those.
    fn is_on_workload(&self, incident: &Incident, workload: &str) -> bool {
        match &incident.resource {
            Some(resource) if resource.kind != ResourceKind::Pod => {
                let [kind, namespace, name] = resource.identity();
                workload
                    .strip_prefix(kind)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .and_then(|rest| rest.strip_prefix(namespace))
                    .and_then(|rest| rest.strip_prefix('/'))
                    == Some(name)
            }
            _ => self.workload_of(incident) == workload,
        }
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<&crate::cluster::PodState> {
        self.pods.get(&self.snapshot, namespace, name)
    }

    /// The workload an incident is about (see [`observe::workload_of`]);
    /// a pod that is gone is still known by its deployment, recorded as the
    /// incident's service.
    fn workload_of(&self, incident: &Incident) -> String {
        let Some(resource) = &incident.resource else {
            return format!("incident/{}", incident.id);
        };
        let [kind, namespace, name] = resource.identity();
        match (kind, &incident.service) {
            ("pod", Some(service)) if self.pod(namespace, name).is_none() => {
                format!("deployment/{namespace}/{service}")
            }
            _ => observe::workload_of(&self.pods, &self.snapshot, resource),
        }
    }

    /// Plans the incidents that may need an action (see [`plan_queue`]):
    /// never a scan of the whole book, which holds every alert received.
    async fn heal(&mut self, now: Timestamp, report: &mut TickReport) {
        let candidates = self.plan_queue.take(&self.book, &self.changed);
        for id in candidates {
            let Some(incident) = self.book.get(&id) else {
                continue;
            };
            // Expected incidents (a chaos run's effects) are healed too:
            // watching the system heal is what the experiment is for. An
            // inactive or escalated incident waits for a change (reopening,
            // a human), which marks it again.
            if !incident.is_active() || incident.escalated {
                continue;
            }
            if self.pending.iter().any(|p| p.incident == id) {
                self.plan_queue.mark(id);
                continue;
            }
            let category = incident.category;
            let workload = self.workload_of(incident);
            let mut subject = self.subject_of(incident);
            subject.case = case_key(category, &workload);
            let busy = self.leaders.get(&workload).is_some_and(|leader| {
                *leader != id && self.book.get(leader).is_some_and(Incident::is_active)
            });
            if busy {
                self.plan_queue.mark(id);
                continue;
            }
            let decision = self.planner.plan(&subject, &self.snapshot, now);
            if let Some(incident) = self.book.get(&id) {
                self.plan_queue.file(incident, &workload, &decision);
            }
            match decision {
                Decision::Act(planned) => {
                    self.leaders.insert(workload.clone(), id.clone());
                    self.act((&id, category), planned, workload, now, report)
                        .await;
                }
                Decision::Deny(denial) => self.deny(&id, None, &denial, now, report),
                Decision::Escalate {
                    reason,
                    notification,
                } => {
                    let channel = notification.channel.clone();
                    if self
                        .book
                        .escalate(&id, &reason.to_string(), &channel, now)
                        .is_ok()
                    {
                        report.escalated += 1;
                        self.changed.insert(id.clone());
                        if let Err(error) = self.ports.notifier.notify(&notification).await {
                            report.errors.push(error.to_string());
                        }
                        if let Some(escalated) = self.book.get(&id) {
                            self.ports
                                .events
                                .publish(EngineEvent::IncidentEscalated(Box::new(
                                    escalated.clone(),
                                )));
                        }
                    }
                }
                Decision::NoMatchingRule | Decision::AwaitingHuman => {}
            }
        }
    }

    async fn act(
        &mut self,
        (id, category): (&IncidentId, Category),
        planned: PlannedAction,
        workload: String,
        now: Timestamp,
        report: &mut TickReport,
    ) {
        let acquired = match &planned.disruption {
            Some(request) if !planned.dry_run => Some(self.budget.try_acquire(request, now)),
            _ => None,
        };
        let permit = match acquired {
            Some(Ok(permit)) => Some(permit),
            Some(Err(denial)) => {
                self.deny(id, Some(&planned), &Denial::Budget(denial), now, report);
                return;
            }
            None => None,
        };
        self.last_denial.remove(id);
        let case = case_key(category, &workload);
        self.planner.record_attempt(&case, &planned, now);
        report.actions += 1;
        let result = self.execute(&planned).await;
        match result {
            Ok(summary) => {
                let outcome = if planned.dry_run {
                    HealingOutcome::DryRun { summary }
                } else {
                    HealingOutcome::Executed { summary }
                };
                self.record(id, &planned, outcome, now);
                if planned.dry_run {
                    // Nothing changed, so there is nothing to verify; the
                    // next step is planned after the cooldown.
                    self.planner.advance(&case);
                    return;
                }
                let settle =
                    SignedDuration::from_secs(i64::from(self.planner.config().settle_seconds));
                if let Remediation::Cluster(action) = &planned.remediation {
                    let request = SilenceRequest {
                        matchers: action_matchers(action),
                        starts_at: now,
                        ends_at: now.checked_add(settle).unwrap_or(Timestamp::MAX),
                        comment: format!(
                            "octrix healing {}: {} on {} (expected while it settles)",
                            id,
                            planned.action.name(),
                            action.target()
                        ),
                    };
                    self.silence(std::slice::from_ref(&request)).await;
                }
                self.pending.push(PendingVerification {
                    incident: id.clone(),
                    acted_at: now,
                    due: now.checked_add(settle).unwrap_or(Timestamp::MAX),
                    planned,
                    permit,
                    category,
                    workload,
                });
            }
            Err(error) => {
                if let Some(permit) = permit {
                    self.budget.release(permit);
                }
                self.record(
                    id,
                    &planned,
                    HealingOutcome::Failed {
                        error: error.clone(),
                    },
                    now,
                );
                self.planner.advance(&case);
                let reason = format!("{} failed: {error}", planned.action.name());
                self.escalate((id.clone(), reason), now, report).await;
            }
        }
    }

    async fn execute(&self, planned: &PlannedAction) -> Result<String, String> {
        match &planned.remediation {
            Remediation::Cluster(action) => self
                .ports
                .actuator
                .execute(action, planned.dry_run)
                .await
                .map(|r| r.summary)
                .map_err(|e| e.to_string()),
            Remediation::Notify(notification) => {
                if planned.dry_run {
                    return Ok(format!("would notify {}", notification.channel));
                }
                self.ports
                    .notifier
                    .notify(notification)
                    .await
                    .map(|()| format!("notified {}", notification.channel))
                    .map_err(|e| e.to_string())
            }
            Remediation::Script(script) => {
                let runner = self
                    .ports
                    .scripts
                    .as_ref()
                    .ok_or("no script runner is configured")?;
                if planned.dry_run {
                    return Ok(format!("would run {}", script.program));
                }
                let outcome = runner.run(script).await.map_err(|e| e.to_string())?;
                match outcome.exit_code {
                    Some(0) => Ok(format!("{} exited 0", script.program)),
                    code => Err(format!(
                        "{} exited with {code:?}: {}",
                        script.program, outcome.output_tail
                    )),
                }
            }
            Remediation::RollbackTraffic { namespace, service } => {
                let traffic = self
                    .ports
                    .traffic
                    .as_ref()
                    .ok_or("no traffic control is configured")?;
                if planned.dry_run {
                    return Ok(format!("would roll {namespace}/{service} back to stable"));
                }
                traffic
                    .rollback(namespace, service)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn deny(
        &mut self,
        id: &IncidentId,
        planned: Option<&PlannedAction>,
        denial: &Denial,
        now: Timestamp,
        report: &mut TickReport,
    ) {
        let reason = denial.to_string();
        if self.last_denial.get(id) == Some(&reason) {
            return;
        }
        self.last_denial.insert(id.clone(), reason.clone());
        report.denied += 1;
        let (rule, action, target) = match planned {
            Some(p) => (
                p.rule.clone(),
                p.action.name().to_owned(),
                p.remediation.target(),
            ),
            None => match denial {
                Denial::Cooldown {
                    rule,
                    action,
                    target,
                    ..
                } => (rule.clone(), action.clone(), target.clone()),
                _ => (String::new(), String::new(), String::new()),
            },
        };
        let outcome = HealingOutcome::Denied { reason };
        let step = HealingStep {
            rule: &rule,
            action: &action,
            target: &target,
        };
        if self
            .book
            .record_healing(id, step, outcome.clone(), now)
            .is_ok()
        {
            self.changed.insert(id.clone());
        }
        self.push_history(ActionRecord {
            at: now,
            incident_id: id.to_string(),
            rule,
            action,
            target,
            dry_run: false,
            outcome,
        });
    }

    fn record(
        &mut self,
        id: &IncidentId,
        planned: &PlannedAction,
        outcome: HealingOutcome,
        now: Timestamp,
    ) {
        let target = planned.remediation.target();
        let step = HealingStep {
            rule: &planned.rule,
            action: planned.action.name(),
            target: &target,
        };
        if self
            .book
            .record_healing(id, step, outcome.clone(), now)
            .is_ok()
        {
            self.changed.insert(id.clone());
        }
        self.ports
            .events
            .publish(EngineEvent::Healing(HealingEvent {
                incident_id: id.to_string(),
                rule: planned.rule.clone(),
                action: planned.action.name().to_owned(),
                target: target.clone(),
                outcome: outcome.clone(),
                at: now,
            }));
        self.push_history(ActionRecord {
            at: now,
            incident_id: id.to_string(),
            rule: planned.rule.clone(),
            action: planned.action.name().to_owned(),
            target,
            dry_run: planned.dry_run,
            outcome,
        });
    }

    fn push_history(&mut self, record: ActionRecord) {
        if self.history.len() == ACTION_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(record);
        self.actions_recorded += 1;
    }

    fn subject_of(&self, incident: &Incident) -> Subject {
        Subject::from_incident_with(incident, |namespace, name| self.pod(namespace, name))
    }

    fn housekeeping(&mut self, now: Timestamp) {
        self.bank.evict_idle(now);
        let forget = now
            .checked_sub(SignedDuration::from_hours(1))
            .unwrap_or(Timestamp::MIN);
        self.last_raised.retain(|_, at| *at >= forget);
        let idle = now
            .checked_sub(SignedDuration::from_mins(30))
            .unwrap_or(Timestamp::MIN);
        self.classifier.evict_idle(idle);
    }

    async fn persist(&mut self) -> Result<(), String> {
        let changed: Vec<IncidentId> = self.changed.drain().collect();
        for id in &changed {
            // What changed may need healing now.
            self.plan_queue.mark(id.clone());
        }
        for id in &changed {
            if let Some(incident) = self.book.get(id).cloned()
                && let Err(error) = self.ports.store.put(incident).await
            {
                // Keep what failed so the next pass tries again.
                self.changed.extend(changed.iter().cloned());
                return Err(error.to_string());
            }
        }
        Ok(())
    }

    fn publish_ingested(&self, ingested: &Ingested) {
        let event = match ingested {
            Ingested::Opened(id) | Ingested::Reopened(id) => self
                .book
                .get(id)
                .map(|i| EngineEvent::IncidentOpened(Box::new(i.clone()))),
            Ingested::Recurred(id) => self
                .book
                .get(id)
                .map(|i| EngineEvent::IncidentUpdated(Box::new(i.clone()))),
            Ingested::AutoResolved(id) => self
                .book
                .get(id)
                .map(|i| EngineEvent::IncidentResolved(Box::new(i.clone()))),
            Ingested::Duplicate(_) | Ingested::Ignored(_) => None,
        };
        if let Some(event) = event {
            self.ports.events.publish(event);
        }
    }

    fn publish_cluster_update(&self, now: Timestamp) {
        let snapshot = &self.snapshot;
        self.ports
            .events
            .publish(EngineEvent::ClusterUpdate(ClusterSummary {
                cluster: self.ports.observer.info(),
                at: now,
                nodes: snapshot.nodes.len(),
                ready_nodes: snapshot
                    .nodes
                    .iter()
                    .filter(|n| n.ready == crate::cluster::ConditionStatus::True)
                    .count(),
                pods: snapshot.pods.len(),
                ready_pods: snapshot.pods.iter().filter(|p| p.is_ready()).count(),
                active_incidents: self.book.incidents().filter(|i| i.is_active()).count(),
            }));
    }
}

#[cfg(test)]
mod tests;
