//! Typed observations of the cluster: what adapters report to the
//! [`Classifier`](super::Classifier).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Labels, Timestamp};

/// The kind of object a resource reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A Kubernetes pod.
    Pod,
    /// A Kubernetes node.
    Node,
    /// A Kubernetes deployment.
    Deployment,
    /// A Kubernetes stateful set.
    StatefulSet,
    /// A Kubernetes daemon set.
    DaemonSet,
    /// A Kubernetes service.
    Service,
    /// A scrape target (Prometheus `instance`), when nothing better is known.
    Instance,
    /// A metric series with no Kubernetes object behind it.
    Series,
}

impl ResourceKind {
    /// The lowercase name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Pod => "pod",
            ResourceKind::Node => "node",
            ResourceKind::Deployment => "deployment",
            ResourceKind::StatefulSet => "statefulset",
            ResourceKind::DaemonSet => "daemonset",
            ResourceKind::Service => "service",
            ResourceKind::Instance => "instance",
            ResourceKind::Series => "series",
        }
    }
}

/// What a signal or an incident is about.
///
/// Identity is kind, namespace and name; `node` is where a pod happened to
/// run and is deliberately left out of [`ResourceRef::identity`], so that a
/// pod rescheduled under the same name stays the same resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    /// The kind of object.
    pub kind: ResourceKind,
    /// Its namespace, for namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The node it runs on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl ResourceRef {
    /// A pod in `namespace`.
    pub fn pod(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::namespaced(ResourceKind::Pod, namespace, name)
    }

    /// A node.
    pub fn node(name: impl Into<String>) -> Self {
        Self::cluster_scoped(ResourceKind::Node, name)
    }

    /// A namespaced object of any kind.
    pub fn namespaced(
        kind: ResourceKind,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            namespace: Some(namespace.into()),
            name: name.into(),
            node: None,
        }
    }

    /// A cluster-scoped object (node, scrape target, series).
    pub fn cluster_scoped(kind: ResourceKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: None,
            name: name.into(),
            node: None,
        }
    }

    /// The same resource, noted as running on `node`.
    pub fn on_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Kind, namespace (empty when cluster-scoped) and name: what identifies
    /// the resource, in a fixed order for hashing.
    pub fn identity(&self) -> [&str; 3] {
        [
            self.kind.as_str(),
            self.namespace.as_deref().unwrap_or(""),
            &self.name,
        ]
    }
}

impl fmt::Display for ResourceRef {
    /// `pod shop/cart-1`, `node worker-2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// One observation: what was seen, about what, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When it was observed (scrape or watch time); drives the classifier's
    /// durations.
    pub at: Timestamp,
    /// The object observed.
    pub resource: ResourceRef,
    /// The service the object belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Extra labels carried into the signals (`environment`, `team`, ...).
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// What was seen.
    pub reading: Reading,
}

impl Observation {
    /// An observation with no service and no extra labels.
    pub fn new(at: Timestamp, resource: ResourceRef, reading: Reading) -> Self {
        Self {
            at,
            resource,
            service: None,
            labels: Labels::new(),
            reading,
        }
    }

    /// The same observation, attributed to `service`.
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// The same observation with one more label.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }
}

/// The content of an [`Observation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reading {
    /// A pod's status: phase and containers.
    Pod(PodStatus),
    /// A node's conditions.
    Node(NodeConditions),
    /// CPU utilisation of a pod or node: usage over limit (or capacity),
    /// 1.0 meaning fully used.
    CpuUtilisation {
        /// The ratio, normally within [0, 1].
        ratio: f64,
    },
    /// Memory utilisation of a pod or node: working set over limit (or
    /// capacity), 1.0 meaning fully used.
    MemoryUtilisation {
        /// The ratio, normally within [0, 1].
        ratio: f64,
    },
    /// A restart rate measured by the source, for example Prometheus'
    /// `increase(kube_pod_container_status_restarts_total[1h])`.
    RestartRate {
        /// Restarts per hour.
        per_hour: f64,
    },
    /// A detector's verdict on one metric sample.
    Anomaly(AnomalyReading),
}

/// A pod's phase (`status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    /// Accepted, not all containers running yet.
    Pending,
    /// Bound to a node, at least one container running.
    Running,
    /// All containers terminated successfully.
    Succeeded,
    /// All containers terminated, at least one in failure.
    Failed,
    /// The state could not be obtained.
    Unknown,
}

/// A pod's status as far as classification needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodStatus {
    /// The pod's phase.
    pub phase: PodPhase,
    /// Its containers (init containers included, if the adapter wants them
    /// judged).
    #[serde(default)]
    pub containers: Vec<ContainerStatus>,
}

impl PodStatus {
    /// Restarts summed over all containers.
    pub fn total_restarts(&self) -> u64 {
        self.containers
            .iter()
            .map(|container| u64::from(container.restart_count))
            .sum()
    }
}

/// One container's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// Whether it passes its readiness probe.
    #[serde(default)]
    pub ready: bool,
    /// Restarts since the pod was created.
    #[serde(default)]
    pub restart_count: u32,
    /// Why it is waiting, if it is (`state.waiting.reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<WaitingReason>,
    /// Why it terminated, if it is terminated now (`state.terminated.reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_reason: Option<TerminationReason>,
    /// Why its previous run ended (`lastState.terminated.reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination_reason: Option<TerminationReason>,
}

impl ContainerStatus {
    /// A running, ready container with no restarts.
    pub fn running(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ready: true,
            restart_count: 0,
            waiting_reason: None,
            terminated_reason: None,
            last_termination_reason: None,
        }
    }

    /// Whether the current or the previous run ended in an OOM kill.
    pub fn was_oom_killed(&self) -> bool {
        [&self.terminated_reason, &self.last_termination_reason]
            .into_iter()
            .any(|reason| reason == &Some(TerminationReason::OomKilled))
    }
}

/// Why a container is waiting. Kubernetes reasons are open-ended strings, so
/// anything unknown is kept verbatim in [`WaitingReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum WaitingReason {
    /// Restarting with exponential back-off after repeated crashes.
    CrashLoopBackOff,
    /// Backing off after failing to pull the image.
    ImagePullBackOff,
    /// The image pull failed.
    ErrImagePull,
    /// The image name is invalid.
    InvalidImageName,
    /// The container's configuration (a missing secret or config map) is invalid.
    CreateContainerConfigError,
    /// The runtime failed to create the container.
    CreateContainerError,
    /// The runtime failed to start the container.
    RunContainerError,
    /// Normal start-up.
    ContainerCreating,
    /// Normal start-up, init containers running.
    PodInitializing,
    /// Any other reason.
    Other(String),
}

impl WaitingReason {
    /// The Kubernetes spelling.
    pub fn as_str(&self) -> &str {
        match self {
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
            WaitingReason::ImagePullBackOff => "ImagePullBackOff",
            WaitingReason::ErrImagePull => "ErrImagePull",
            WaitingReason::InvalidImageName => "InvalidImageName",
            WaitingReason::CreateContainerConfigError => "CreateContainerConfigError",
            WaitingReason::CreateContainerError => "CreateContainerError",
            WaitingReason::RunContainerError => "RunContainerError",
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::PodInitializing => "PodInitializing",
            WaitingReason::Other(reason) => reason,
        }
    }

    /// Whether the container cannot run without intervention: a crash loop
    /// or a failure to pull, create or start it. Normal start-up reasons and
    /// unknown ones are not failures.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            WaitingReason::ContainerCreating
                | WaitingReason::PodInitializing
                | WaitingReason::Other(_)
        )
    }
}

impl From<String> for WaitingReason {
    fn from(reason: String) -> Self {
        match reason.as_str() {
            "CrashLoopBackOff" => WaitingReason::CrashLoopBackOff,
            "ImagePullBackOff" => WaitingReason::ImagePullBackOff,
            "ErrImagePull" => WaitingReason::ErrImagePull,
            "InvalidImageName" => WaitingReason::InvalidImageName,
            "CreateContainerConfigError" => WaitingReason::CreateContainerConfigError,
            "CreateContainerError" => WaitingReason::CreateContainerError,
            "RunContainerError" => WaitingReason::RunContainerError,
            "ContainerCreating" => WaitingReason::ContainerCreating,
            "PodInitializing" => WaitingReason::PodInitializing,
            _ => WaitingReason::Other(reason),
        }
    }
}

impl From<WaitingReason> for String {
    fn from(reason: WaitingReason) -> Self {
        match reason {
            WaitingReason::Other(reason) => reason,
            known => known.as_str().to_owned(),
        }
    }
}

/// Why a container terminated. Unknown reasons are kept verbatim in
/// [`TerminationReason::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TerminationReason {
    /// Killed by the kernel for exceeding its memory limit.
    OomKilled,
    /// Exited with a non-zero code.
    Error,
    /// Exited with code zero.
    Completed,
    /// The runtime could not run it.
    ContainerCannotRun,
    /// Any other reason.
    Other(String),
}

impl TerminationReason {
    /// The Kubernetes spelling.
    pub fn as_str(&self) -> &str {
        match self {
            TerminationReason::OomKilled => "OOMKilled",
            TerminationReason::Error => "Error",
            TerminationReason::Completed => "Completed",
            TerminationReason::ContainerCannotRun => "ContainerCannotRun",
            TerminationReason::Other(reason) => reason,
        }
    }
}

impl From<String> for TerminationReason {
    fn from(reason: String) -> Self {
        match reason.as_str() {
            "OOMKilled" => TerminationReason::OomKilled,
            "Error" => TerminationReason::Error,
            "Completed" => TerminationReason::Completed,
            "ContainerCannotRun" => TerminationReason::ContainerCannotRun,
            _ => TerminationReason::Other(reason),
        }
    }
}

impl From<TerminationReason> for String {
    fn from(reason: TerminationReason) -> Self {
        match reason {
            TerminationReason::Other(reason) => reason,
            known => known.as_str().to_owned(),
        }
    }
}

/// The status of a node condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// The kubelet stopped reporting it.
    Unknown,
}

/// A node's conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConditions {
    /// `Ready`; anything but True (including Unknown, a lost kubelet) is not ready.
    pub ready: ConditionStatus,
    /// `MemoryPressure` is True.
    #[serde(default)]
    pub memory_pressure: bool,
    /// `DiskPressure` is True.
    #[serde(default)]
    pub disk_pressure: bool,
    /// `PIDPressure` is True.
    #[serde(default)]
    pub pid_pressure: bool,
}

impl NodeConditions {
    /// A ready node with no pressure.
    pub fn healthy() -> Self {
        Self {
            ready: ConditionStatus::True,
            memory_pressure: false,
            disk_pressure: false,
            pid_pressure: false,
        }
    }

    /// The names of the pressure conditions that hold, in a fixed order.
    pub fn pressures(&self) -> Vec<&'static str> {
        [
            (self.memory_pressure, "MemoryPressure"),
            (self.disk_pressure, "DiskPressure"),
            (self.pid_pressure, "PIDPressure"),
        ]
        .into_iter()
        .filter_map(|(holds, name)| holds.then_some(name))
        .collect()
    }
}

/// Which way an anomalous value departed from normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Above the expected range.
    Up,
    /// Below the expected range.
    Down,
}

impl Direction {
    /// `up` or `down`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// A detector's verdict on one sample, as plain fields so that any detector
/// can report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyReading {
    /// The metric's name.
    pub metric: String,
    /// The series' labels.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// The sample's value.
    pub value: f64,
    /// Anomaly score in [0, 1]; graded by the policy.
    pub score: f64,
    /// Distance from normal in standard deviations.
    pub z: f64,
    /// Which way the value departed.
    pub direction: Direction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_reasons_round_trip_through_serde() {
        let container = ContainerStatus {
            waiting_reason: Some(WaitingReason::CrashLoopBackOff),
            last_termination_reason: Some(TerminationReason::OomKilled),
            ..ContainerStatus::running("cart")
        };
        let json = serde_json::to_value(&container).unwrap();
        assert_eq!(json["waiting_reason"], "CrashLoopBackOff");
        assert_eq!(json["last_termination_reason"], "OOMKilled");
        let back: ContainerStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, container);

        let odd: WaitingReason = serde_json::from_str("\"SomethingNew\"").unwrap();
        assert_eq!(odd, WaitingReason::Other("SomethingNew".into()));
        assert!(!odd.is_failure());
        assert!(WaitingReason::ImagePullBackOff.is_failure());
    }

    #[test]
    fn readings_are_tagged_by_type() {
        let observation = Observation::new(
            Timestamp::UNIX_EPOCH,
            ResourceRef::pod("shop", "cart-1").on_node("worker-1"),
            Reading::CpuUtilisation { ratio: 0.5 },
        );
        let json = serde_json::to_value(&observation).unwrap();
        assert_eq!(json["reading"]["type"], "cpu_utilisation");
        assert_eq!(json["resource"]["kind"], "pod");
        assert_eq!(json["resource"]["node"], "worker-1");
        let back: Observation = serde_json::from_value(json).unwrap();
        assert_eq!(back, observation);
    }

    #[test]
    fn identity_leaves_out_the_node() {
        let here = ResourceRef::pod("shop", "db-0").on_node("a");
        let there = ResourceRef::pod("shop", "db-0").on_node("b");
        assert_eq!(here.identity(), there.identity());
        assert_eq!(here.to_string(), "pod shop/db-0");
        assert_eq!(ResourceRef::node("w1").to_string(), "node w1");
    }

    #[test]
    fn oom_is_seen_in_current_or_previous_run() {
        let mut container = ContainerStatus::running("app");
        assert!(!container.was_oom_killed());
        container.terminated_reason = Some(TerminationReason::OomKilled);
        assert!(container.was_oom_killed());
        container.terminated_reason = None;
        container.last_termination_reason = Some(TerminationReason::Error);
        assert!(!container.was_oom_killed());
    }
}
