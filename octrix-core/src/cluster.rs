//! The cluster as the core sees it, and the ports that observe and act on it.
//!
//! A [`ClusterObserver`] reports a [`ClusterSnapshot`]: what a kubelet and the
//! API server would say about nodes, deployments and pods. A
//! [`ClusterActuator`] carries out one [`ClusterAction`] at a time. The
//! Kubernetes adapter (`octrix-k8s`) and the simulated cluster ([`crate::sim`])
//! implement both.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::classify::{ConditionStatus, PodPhase};
use crate::{Labels, Timestamp};

/// What kind of backend a cluster port talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterKind {
    /// A real Kubernetes API server.
    Kubernetes,
    /// Octrix's simulated cluster.
    Simulated,
}

/// Identity of a cluster backend, reported wherever its data is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Human-readable name, e.g. the kube context or `sim(seed=42)`.
    pub name: String,
    /// Real or simulated.
    pub kind: ClusterKind,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// Node name.
    pub name: String,
    /// The `Ready` condition.
    pub ready: ConditionStatus,
    /// The `MemoryPressure` condition.
    pub memory_pressure: ConditionStatus,
    /// The `DiskPressure` condition.
    pub disk_pressure: ConditionStatus,
    /// The `PIDPressure` condition.
    pub pid_pressure: ConditionStatus,
    /// `spec.unschedulable`: the node is cordoned.
    pub unschedulable: bool,
    /// Allocatable CPU in cores.
    pub cpu_allocatable_cores: f64,
    /// Allocatable memory in bytes.
    pub memory_allocatable_bytes: f64,
    /// CPU in use, in cores.
    pub cpu_used_cores: f64,
    /// Memory in use, in bytes.
    pub memory_used_bytes: f64,
    /// Node labels.
    pub labels: Labels,
}

/// One deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub name: String,
    /// Desired replicas (`spec.replicas`).
    pub replicas: u32,
    /// Replicas that are ready.
    pub ready_replicas: u32,
    /// Labels of the deployment's pod template.
    pub labels: Labels,
}

/// Status of one container of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// Whether the container passes its readiness probe.
    pub ready: bool,
    /// Restarts so far.
    pub restart_count: u32,
    /// Reason the container is waiting, e.g. `CrashLoopBackOff`.
    pub waiting_reason: Option<String>,
    /// Reason the previous instance terminated, e.g. `OOMKilled`.
    pub last_termination_reason: Option<String>,
    /// CPU in use, in cores.
    pub cpu_used_cores: f64,
    /// CPU limit in cores, if set.
    pub cpu_limit_cores: Option<f64>,
    /// Memory working set, in bytes.
    pub memory_used_bytes: f64,
    /// Memory limit in bytes, if set.
    pub memory_limit_bytes: Option<f64>,
}

/// What created a pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name")]
pub enum PodOwner {
    /// A deployment (through its ReplicaSet).
    Deployment(String),
    /// A DaemonSet: drains skip these pods.
    DaemonSet(String),
    /// Another controller (StatefulSet, Job, ...).
    Other(String),
    /// A static (mirror) pod or a bare pod: drains skip mirror pods.
    None,
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodState {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Node the pod runs on, if scheduled.
    pub node: Option<String>,
    /// Owner of the pod.
    pub owner: PodOwner,
    /// Lifecycle phase.
    pub phase: PodPhase,
    /// Pod labels.
    pub labels: Labels,
    /// Container statuses.
    pub containers: Vec<ContainerState>,
}

impl PodState {
    /// Restarts summed over the pod's containers.
    pub fn restarts(&self) -> u64 {
        self.containers
            .iter()
            .map(|c| u64::from(c.restart_count))
            .sum()
    }

    /// Whether every container is ready and the pod runs.
    pub fn is_ready(&self) -> bool {
        self.phase == PodPhase::Running && self.containers.iter().all(|c| c.ready)
    }

    /// The deployment owning this pod, if any.
    pub fn deployment(&self) -> Option<&str> {
        match &self.owner {
            PodOwner::Deployment(name) => Some(name),
            _ => None,
        }
    }
}

/// Everything an observer saw at one instant. Every field may be left out
/// of its serialized form (an empty list, no time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSnapshot {
    /// When the snapshot was taken.
    pub taken_at: Option<Timestamp>,
    /// Nodes.
    pub nodes: Vec<NodeState>,
    /// Deployments.
    pub deployments: Vec<DeploymentState>,
    /// Pods.
    pub pods: Vec<PodState>,
}

impl ClusterSnapshot {
    /// The pod called `name` in `namespace`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodState> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    /// The deployment called `name` in `namespace`.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<&DeploymentState> {
        self.deployments
            .iter()
            .find(|d| d.namespace == namespace && d.name == name)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// One change to make to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClusterAction {
    /// Delete a pod so its controller replaces it.
    RestartPod {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
    },
    /// Set a deployment's replica count.
    ScaleDeployment {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        deployment: String,
        /// The new replica count.
        replicas: u32,
    },
    /// Mark a node unschedulable.
    CordonNode {
        /// Node name.
        node: String,
    },
    /// Mark a node schedulable again.
    UncordonNode {
        /// Node name.
        node: String,
    },
    /// Cordon a node and evict its pods, respecting disruption budgets and
    /// skipping DaemonSet and mirror pods.
    DrainNode {
        /// Node name.
        node: String,
        /// How long evictions may take before the drain gives up.
        timeout_seconds: u32,
    },
}

impl ClusterAction {
    /// The object the action changes, as `kind/namespace/name` or `kind/name`.
    pub fn target(&self) -> String {
        match self {
            Self::RestartPod { namespace, pod } => format!("pod/{namespace}/{pod}"),
            Self::ScaleDeployment {
                namespace,
                deployment,
                ..
            } => format!("deployment/{namespace}/{deployment}"),
            Self::CordonNode { node }
            | Self::UncordonNode { node }
            | Self::DrainNode { node, .. } => {
                format!("node/{node}")
            }
        }
    }

    /// Namespace of the target, for namespaced objects.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Self::RestartPod { namespace, .. } | Self::ScaleDeployment { namespace, .. } => {
                Some(namespace)
            }
            _ => None,
        }
    }
}

/// What an actuator did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReport {
    /// Whether the action was only validated (server-side dry run).
    pub dry_run: bool,
    /// What changed, in words.
    pub summary: String,
    /// Pods that a drain could not evict, with the reason.
    pub not_evicted: Vec<String>,
}

/// Why an action or an observation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The target does not exist.
    #[error("{target} not found")]
    NotFound {
        /// The missing object.
        target: String,
    },
    /// The backend refused for lack of permission.
    #[error("forbidden: cannot {verb} {resource}: {message}")]
    Forbidden {
        /// The verb that was refused (`delete`, `patch`, ...).
        verb: String,
        /// The resource (`pods`, `deployments/scale`, ...).
        resource: String,
        /// The server's message.
        message: String,
    },
    /// The action is not possible in the object's current state.
    #[error("{target}: {reason}")]
    Rejected {
        /// The object.
        target: String,
        /// Why.
        reason: String,
    },
    /// The backend could not be reached.
    #[error("cluster {cluster} is unavailable: {reason}")]
    Unavailable {
        /// The cluster's name.
        cluster: String,
        /// What went wrong.
        reason: String,
    },
}

/// Reports the state of the cluster.
#[async_trait]
pub trait ClusterObserver: Send + Sync {
    /// Who this observer is, real or simulated.
    fn info(&self) -> ClusterInfo;

    /// The current state of nodes, deployments and pods.
    async fn snapshot(&self) -> Result<ClusterSnapshot, ClusterError>;

    /// Replaces `snapshot` by the current state, reusing its buffers where
    /// the observer can: the engine refreshes one snapshot on every tick, and
    /// building 10,000 pods' strings from scratch each time was a tenth of a
    /// tick. On error `snapshot` is left as it was.
    ///
    /// The default takes a fresh [`snapshot`](Self::snapshot).
    async fn refresh(&self, snapshot: &mut ClusterSnapshot) -> Result<(), ClusterError> {
        *snapshot = self.snapshot().await?;
        Ok(())
    }
}

/// Changes the cluster.
#[async_trait]
pub trait ClusterActuator: Send + Sync {
    /// Who this actuator is, real or simulated.
    fn info(&self) -> ClusterInfo;

    /// Carries out `action`; with `dry_run` only validates it.
    async fn execute(
        &self,
        action: &ClusterAction,
        dry_run: bool,
    ) -> Result<ActionReport, ClusterError>;
}
