//! The port through which runs change a cluster.
//!
//! The controller decides what to do (an [`InjectionPlan`]); a
//! [`ChaosExecutor`] does it and reports every change it made as an
//! [`Injection`], which is all it needs to undo them. The simulated cluster's
//! executor is [`SimChaosExecutor`](super::SimChaosExecutor); a Kubernetes
//! one lives in `octrix-k8s`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::run::RunId;
use super::select::Target;
use super::{Parameters, ScenarioType};
use crate::Timestamp;

/// What to inject for a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionPlan {
    /// The run.
    pub run: RunId,
    /// What to do and how hard.
    pub parameters: Parameters,
    /// Where.
    pub targets: Vec<Target>,
    /// When the run is due to end. Executors should make their changes expire
    /// by then on their own where the backend allows it, so that a crashed
    /// controller cannot leave faults behind.
    pub until: Timestamp,
}

impl InjectionPlan {
    /// The scenario type of the plan.
    pub fn scenario_type(&self) -> ScenarioType {
        self.parameters.scenario_type()
    }
}

/// One change an executor made, with what it takes to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// A fault, known to the executor by `id`.
    Fault {
        /// The executor's id for it (a simulator fault id, a resource name).
        id: String,
        /// What it affects.
        target: Target,
        /// What it does, in words.
        effect: String,
    },
    /// A node the run cordoned; it was schedulable before.
    Cordon {
        /// Node name.
        node: String,
    },
}

/// Everything an executor changed for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injection {
    /// The run.
    pub run: RunId,
    /// The changes, in the order they were made.
    pub changes: Vec<Change>,
}

/// Why an executor could not do its part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecutorError {
    /// The backend refused a change.
    #[error("{target}: {reason}")]
    Rejected {
        /// What the change was aimed at.
        target: String,
        /// Why.
        reason: String,
    },
    /// The backend could not be reached.
    #[error("chaos backend unavailable: {0}")]
    Unavailable(String),
    /// This executor cannot inject this kind of chaos.
    #[error("{executor} cannot run {scenario_type} scenarios")]
    Unsupported {
        /// The executor.
        executor: String,
        /// The scenario type.
        scenario_type: ScenarioType,
    },
    /// A change to revert is not one this executor made.
    #[error("unknown change {0}")]
    UnknownChange(String),
}

/// Injects and reverts chaos. Object-safe, so the controller holds an
/// `Arc<dyn ChaosExecutor>`.
///
/// Contract: `inject` is all or nothing (when it fails it undoes what it did
/// before returning); `revert` is idempotent (a change already gone, such as
/// an expired fault, counts as reverted) and attempts every change even when
/// one fails, so it can simply be retried.
#[async_trait]
pub trait ChaosExecutor: Send + Sync {
    /// The executor's name, for messages.
    fn name(&self) -> String;

    /// Makes the changes of `plan`.
    async fn inject(&self, plan: &InjectionPlan) -> Result<Injection, ExecutorError>;

    /// Undoes the changes of `injection`.
    async fn revert(&self, injection: &Injection) -> Result<(), ExecutorError>;
}
