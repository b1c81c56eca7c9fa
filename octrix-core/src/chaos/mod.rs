//! Chaos engineering: scenarios, safe and reversible runs, abort guards and
//! run statistics.
//!
//! * A [`Scenario`] has a [`ScenarioType`] (seed 000's pod-failure,
//!   node-failure, cpu-stress, memory-stress, latency-injection, packet-loss,
//!   disk-stress, network-partition and seed 003's service-failure,
//!   database-overload, memory-leak), a [`TargetSelector`] (namespace,
//!   labels, mode one / all / fixed / percent, as in Chaos Mesh), typed
//!   [`Parameters`] validated with errors naming the field, and
//!   [`AbortGuard`]s. The [`ScenarioCatalog`] holds one built-in per type and
//!   custom scenarios.
//! * [`select_targets`] picks pods, nodes or services from a
//!   [`ClusterSnapshot`](crate::cluster::ClusterSnapshot) with a seeded
//!   generator; [`blast_radius`] says what a run touches and which replicas
//!   it takes away.
//! * The [`ChaosController`] runs scenarios through a [`ChaosExecutor`]
//!   (the simulator's is [`SimChaosExecutor`]): runs are pending, running,
//!   completed, stopped, cancelled, aborted or failed ([`RunStatus`]);
//!   illegal transitions are typed errors. Every run draws on the
//!   [`SafetyBudget`](crate::healing::SafetyBudget) shared with healing,
//!   never targets protected namespaces nor takes a workload's last ready
//!   replica, can be a dry run, and is reverted when it completes, is
//!   stopped or is aborted (by hand or when a guard breaches).
//! * [`ChaosController::runs_covering`] tells the incident book which runs
//!   explain an incident, so it is linked to them and marked expected.
//!
//! ```
//! use std::sync::Arc;
//! use octrix_core::chaos::{
//!     ChaosConfig, ChaosController, RunStatus, ScenarioCatalog, ScenarioId, ScenarioType,
//!     SimChaosExecutor, StartOptions, TargetSelector,
//! };
//! use octrix_core::healing::{BudgetConfig, SafetyBudget};
//! use octrix_core::metrics::{MetricSource, ServiceSelector};
//! use octrix_core::sim::{SimCluster, SimConfig};
//! use octrix_core::time::SignedDuration;
//! use octrix_core::{Clock, ManualClock, Timestamp, labels};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
//! let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
//! let executor = Arc::new(SimChaosExecutor::new(sim.clone()));
//! let mut chaos = ChaosController::new(ChaosConfig::default(), ScenarioCatalog::default(), executor);
//! let mut budget = SafetyBudget::new(BudgetConfig::default());
//!
//! // Slow checkout down with the built-in latency scenario (+200 ms, 2 minutes).
//! let checkout = TargetSelector {
//!     namespace: Some("shop".into()),
//!     labels: labels::from_pairs([("app", "checkout")]),
//!     ..TargetSelector::default()
//! };
//! let options = StartOptions { target: Some(checkout), ..StartOptions::default() };
//! let scenario = ScenarioId::builtin(ScenarioType::LatencyInjection);
//! let run = chaos
//!     .start(&scenario, options, &sim.snapshot_now(), &mut budget, clock.now())
//!     .await
//!     .unwrap();
//! assert_eq!(budget.in_flight(), 1, "the run holds a permit");
//!
//! clock.advance(SignedDuration::from_secs(30));
//! let service = ServiceSelector {
//!     namespace: "shop".into(),
//!     service: "checkout".into(),
//!     version: None,
//!     window_seconds: 60,
//! };
//! let p99 = sim.service_metrics(&service).await.unwrap().latency_p99_seconds.unwrap();
//! assert!(p99 > 0.5, "p99 {p99} s");
//!
//! chaos.stop(run, &mut budget, clock.now()).await.unwrap();
//! assert_eq!(chaos.get(run).unwrap().status, RunStatus::Stopped);
//! assert!(sim.faults().is_empty(), "stopping reverts the run");
//! assert_eq!(budget.in_flight(), 0, "and returns its permit");
//! # });
//! ```

mod catalog;
mod controller;
mod event;
mod executor;
mod guard;
mod impact;
mod parameters;
mod run;
mod scenario;
mod select;
mod selector;
mod sim_executor;
mod stats;

pub use catalog::{ScenarioCatalog, builtin_scenario};
pub use controller::{ChaosConfig, ChaosController, StartOptions};
pub use event::ChaosEvent;
pub use executor::{Change, ChaosExecutor, ExecutorError, Injection, InjectionPlan};
pub use guard::{AbortGuard, GuardBreach, GuardObservation, GuardSignal, first_breach};
pub use impact::{
    AffectedObjects, BlastRadius, DISK_PRESSURE_PERCENT, IncidentScope, blast_radius, workload_key,
};
pub use parameters::{Intensity, MAX_DURATION_SECONDS, Parameters, PartitionDirection};
pub use run::{RunAction, RunId, RunStatus, ScenarioRun};
pub use scenario::{Scenario, ScenarioId, ScenarioType, TargetKind};
pub use select::{Target, eligible_targets, select_targets, selection_size};
pub use selector::{SelectionMode, TargetSelector};
pub use sim_executor::{SimChaosExecutor, sim_faults};
pub use stats::{ChaosStats, OutcomeStats};

use crate::healing::BudgetDenial;

/// Errors of the chaos module.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A field has a value that is not allowed.
    #[error("invalid chaos scenario: {field} {reason}")]
    Invalid {
        /// Path of the field, e.g. `parameters.loss_percent`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The text is not a scenario.
    #[error("cannot parse chaos scenario: {0}")]
    Parse(String),
    /// No scenario has this id.
    #[error("no scenario {0}")]
    UnknownScenario(ScenarioId),
    /// A scenario with this id exists already.
    #[error("scenario {0} already exists")]
    DuplicateScenario(ScenarioId),
    /// Built-in scenarios are fixed.
    #[error("built-in scenario {0} cannot be removed or replaced")]
    BuiltinScenario(ScenarioId),
    /// Chaos never targets this namespace.
    #[error("namespace {namespace} is protected from chaos")]
    ProtectedNamespace {
        /// The namespace.
        namespace: String,
    },
    /// The selector matches nothing eligible.
    #[error("no eligible {kind} matches {selector}")]
    NoTargets {
        /// What was looked for.
        kind: TargetKind,
        /// The selector, in words.
        selector: String,
    },
    /// The safety budget refused the run.
    #[error("safety budget: {0}")]
    Budget(#[from] BudgetDenial),
    /// The executor failed.
    #[error("chaos executor: {0}")]
    Executor(#[from] ExecutorError),
    /// No run has this id.
    #[error("no run {0}")]
    UnknownRun(RunId),
    /// The run's state does not allow this.
    #[error("cannot {action} {run}: it is {from}")]
    IllegalTransition {
        /// The run.
        run: RunId,
        /// Its status.
        from: RunStatus,
        /// What was asked.
        action: RunAction,
    },
    /// The run was recorded but could not start; it is failed now.
    #[error("{run} failed to start: {cause}")]
    StartFailed {
        /// The run.
        run: RunId,
        /// Why.
        #[source]
        cause: Box<Error>,
    },
    /// The run ended but its changes could not be undone; it is failed,
    /// keeps its budget permit, and the revert is retried on every tick.
    #[error("{run} could not be reverted: {source}")]
    RevertFailed {
        /// The run.
        run: RunId,
        /// The executor's error.
        source: ExecutorError,
    },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests;
