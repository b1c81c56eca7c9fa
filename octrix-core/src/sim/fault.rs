//! Failures the simulated cluster can be told to suffer; chaos runs drive them.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Identifies an injected fault, so that it can be cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FaultId(pub u64);

impl std::fmt::Display for FaultId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fault-{}", self.0)
    }
}

/// What a fault affects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultTarget {
    /// One pod.
    Pod {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
    /// Every pod of a deployment, including replacements.
    Deployment {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
    },
    /// One node.
    Node {
        /// Node name.
        name: String,
    },
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FaultKind {
    /// Containers exit at start and back off (`CrashLoopBackOff`).
    ///
    /// A transient crash loop ends when its pod is replaced; a persistent one
    /// follows the pod to its replacement, as a bad configuration would.
    CrashLoop {
        /// Whether replacements crash too.
        persistent: bool,
    },
    /// Memory jumps past the limit: the container is `OOMKilled` and restarts.
    OomKill,
    /// Extra CPU burnt, in cores per pod.
    CpuSpike {
        /// Extra cores per pod.
        extra_cores: f64,
    },
    /// The working set grows steadily; a restart only resets it.
    MemoryLeak {
        /// Growth in bytes per second.
        bytes_per_second: f64,
    },
    /// Memory held by a stress process in the pod (a chaos tool's memory
    /// hog): `bytes` at once plus `bytes_per_second` more over time.
    ///
    /// Unlike [`FaultKind::MemoryLeak`], the memory is the tool's, not the
    /// application's: it is freed when the fault clears (or when the container
    /// is OOM-killed), so a chaos run can be reverted without a restart.
    MemoryStress {
        /// Held from the first step, in bytes.
        bytes: f64,
        /// Growth in bytes per second (0 for a fixed allocation).
        bytes_per_second: f64,
    },
    /// The node stops reporting ready; its pods turn unready.
    NodeNotReady,
    /// The node reports memory pressure.
    NodeMemoryPressure,
    /// The node's disk is filled to at least `fraction` of its capacity; at
    /// 90 % the node reports `DiskPressure`, as the kubelet's default
    /// `nodefs.available<10%` eviction threshold would.
    DiskFill {
        /// Used fraction of the disk in [0, 1].
        fraction: f64,
    },
    /// Requests are slower by this much.
    Latency {
        /// Added latency in seconds.
        added_seconds: f64,
    },
    /// A fraction of requests fail.
    ErrorBurst {
        /// Added error rate in [0, 1].
        error_rate: f64,
    },
}

/// A fault in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Its id.
    pub id: FaultId,
    /// What goes wrong.
    pub kind: FaultKind,
    /// What it affects.
    pub target: FaultTarget,
    /// When it clears by itself, if ever.
    pub until: Option<Timestamp>,
}

impl Fault {
    pub(super) fn applies_to_pod(
        &self,
        namespace: &str,
        pod: &str,
        deployment: Option<&str>,
    ) -> bool {
        match &self.target {
            FaultTarget::Pod {
                namespace: ns,
                name,
            } => ns == namespace && name == pod,
            FaultTarget::Deployment {
                namespace: ns,
                name,
            } => ns == namespace && deployment == Some(name.as_str()),
            FaultTarget::Node { .. } => false,
        }
    }

    pub(super) fn applies_to_deployment(&self, namespace: &str, deployment: &str) -> bool {
        matches!(&self.target, FaultTarget::Deployment { namespace: ns, name } if ns == namespace && name == deployment)
    }

    pub(super) fn applies_to_node(&self, node: &str) -> bool {
        matches!(&self.target, FaultTarget::Node { name } if name == node)
    }
}
