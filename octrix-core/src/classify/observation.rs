//! Typed observations of the cluster: what adapters report to the
//! [`Classifier`](super::Classifier).

use serde::{Deserialize, Serialize};

use super::{ResourceRef, TerminationReason, WaitingReason};
use crate::{Labels, Timestamp};

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

pub use crate::detect::Direction;

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
