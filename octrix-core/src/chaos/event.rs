//! Events about runs, drained from the controller for the engine to publish.

use serde::{Deserialize, Serialize};

use super::{RunId, ScenarioId, ScenarioType, Target};
use crate::Timestamp;

/// What happened to a run, for the engine to publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ChaosEvent {
    /// A run was scheduled for later.
    RunScheduled {
        /// The run.
        run: RunId,
        /// Its scenario.
        scenario: ScenarioId,
        /// When it is due.
        start_at: Timestamp,
    },
    /// A run's faults are in force (or, for a dry run, were planned).
    RunStarted {
        /// The run.
        run: RunId,
        /// Its scenario.
        scenario: ScenarioId,
        /// The scenario's type.
        scenario_type: ScenarioType,
        /// What it acts on.
        targets: Vec<Target>,
        /// Whether nothing was changed.
        dry_run: bool,
        /// When it is due to complete.
        deadline: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// A run ran its full duration.
    RunCompleted {
        /// The run.
        run: RunId,
        /// When.
        at: Timestamp,
    },
    /// A run was stopped early.
    RunStopped {
        /// The run.
        run: RunId,
        /// When.
        at: Timestamp,
    },
    /// A pending run was cancelled.
    RunCancelled {
        /// The run.
        run: RunId,
        /// When.
        at: Timestamp,
    },
    /// A run was aborted.
    RunAborted {
        /// The run.
        run: RunId,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A run failed to start or to be reverted.
    RunFailed {
        /// The run.
        run: RunId,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A run's changes were undone.
    RunReverted {
        /// The run.
        run: RunId,
        /// When.
        at: Timestamp,
    },
    /// Undoing a run's changes failed; it is retried on every tick.
    RevertFailed {
        /// The run.
        run: RunId,
        /// The executor's error.
        error: String,
        /// When.
        at: Timestamp,
    },
}

impl ChaosEvent {
    /// The run the event is about.
    pub fn run(&self) -> RunId {
        match self {
            Self::RunScheduled { run, .. }
            | Self::RunStarted { run, .. }
            | Self::RunCompleted { run, .. }
            | Self::RunStopped { run, .. }
            | Self::RunCancelled { run, .. }
            | Self::RunAborted { run, .. }
            | Self::RunFailed { run, .. }
            | Self::RunReverted { run, .. }
            | Self::RevertFailed { run, .. } => *run,
        }
    }
}
