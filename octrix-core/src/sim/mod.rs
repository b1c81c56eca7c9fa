//! A simulated Kubernetes cluster: pure, seeded and driven by a [`Clock`].
//!
//! The simulator is the embedded default of Octrix's main job and the test bed
//! of the engine: it implements [`MetricSource`], [`ClusterObserver`] and
//! [`ClusterActuator`], always reporting itself as
//! [`SourceKind::Simulated`] / [`ClusterKind::Simulated`], so nothing it says
//! can be mistaken for a real cluster.
//!
//! * Nodes, deployments with replicas, pods (and a node-exporter DaemonSet).
//! * Per-pod and per-service metrics (CPU, memory, request rate, error rate,
//!   latency) with noise and a daily pattern; load spreads over ready replicas,
//!   and latency grows with utilisation.
//! * Faults ([`FaultKind`]): crash loops (transient or persistent), OOM kills,
//!   CPU spikes, memory leaks, memory stress (freed when cleared), NotReady
//!   nodes, node memory pressure, full disks (`DiskPressure`), latency and
//!   error bursts.
//! * It answers actions as a cluster would: a restart replaces the pod (curing a
//!   transient crash loop but not a persistent one), scaling adds or removes
//!   pods, a cordon stops scheduling, a drain evicts within disruption budgets,
//!   and an action on a missing object fails with [`ClusterError::NotFound`].
//!
//! State advances in whole steps of [`SimConfig::step_seconds`] up to the
//! clock's current time whenever a port is called, so the same seed and the
//! same clock readings always give the same cluster.
//!
//! ```
//! use std::sync::Arc;
//! use octrix_core::cluster::{ClusterAction, ClusterActuator, ClusterObserver};
//! use octrix_core::sim::{FaultKind, FaultTarget, SimCluster, SimConfig};
//! use octrix_core::time::SignedDuration;
//! use octrix_core::{ManualClock, Timestamp};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
//! let sim = SimCluster::new(SimConfig::default(), clock.clone()).unwrap();
//! let target = FaultTarget::Pod { namespace: "shop".into(), name: "checkout-1".into() };
//! sim.inject(FaultKind::CrashLoop { persistent: false }, target, None).unwrap();
//! clock.advance(SignedDuration::from_secs(60));
//!
//! let snapshot = sim.snapshot().await.unwrap();
//! let pod = snapshot.pod("shop", "checkout-1").unwrap();
//! assert_eq!(pod.containers[0].waiting_reason.as_deref(), Some("CrashLoopBackOff"));
//!
//! // A restart replaces the pod, which cures a transient crash loop.
//! let restart = ClusterAction::RestartPod { namespace: "shop".into(), pod: "checkout-1".into() };
//! sim.execute(&restart, false).await.unwrap();
//! clock.advance(SignedDuration::from_secs(60));
//! let snapshot = sim.snapshot().await.unwrap();
//! assert!(snapshot.pod("shop", "checkout-1").is_none());
//! assert!(snapshot.pods.iter().filter(|p| p.deployment() == Some("checkout")).all(|p| p.is_ready()));
//! # });
//! ```

mod config;
mod fault;
mod snapshot;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

pub use config::{SimConfig, SimDeploymentConfig};
pub use fault::{Fault, FaultId, FaultKind, FaultTarget};
use state::SimState;

use crate::cluster::{
    ActionReport, ClusterAction, ClusterActuator, ClusterError, ClusterInfo, ClusterKind,
    ClusterObserver, ClusterSnapshot, ConditionStatus,
};
use crate::metrics::{
    ClusterMetrics, MetricSource, NodeMetrics, PodMetrics, SeriesSample, ServiceMetrics,
    ServiceSelector, SourceError, SourceInfo, SourceKind,
};
use crate::{Clock, Timestamp};

/// Errors of the simulator's own API (the ports use their own error types).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A configuration field is wrong.
    #[error("invalid simulator configuration: {field} {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `deployments[1].replicas`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A fault was aimed at something that does not exist.
    #[error("no such fault target in the simulated cluster: {0:?}")]
    UnknownTarget(FaultTarget),
    /// No fault has this id (it may have expired).
    #[error("no active fault {0}")]
    UnknownFault(FaultId),
}

/// The simulated cluster behind the core's ports. Cheap to share in an `Arc`.
pub struct SimCluster {
    state: Mutex<SimState>,
    clock: Arc<dyn Clock>,
    name: String,
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCluster")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SimCluster {
    /// Builds the cluster described by `config`, starting at the clock's current time.
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Result<Self, SimError> {
        let name = format!("sim(seed={})", config.seed);
        let state = SimState::new(config, clock.now())?;
        Ok(Self {
            state: Mutex::new(state),
            clock,
            name,
        })
    }

    /// The state, advanced to the clock's current time.
    fn current(&self) -> MutexGuard<'_, SimState> {
        // The state is only mutated through complete steps, so a panic in another
        // holder cannot leave it half-updated in a way that matters for a simulator.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.advance_to(self.clock.now());
        state
    }

    /// Injects a fault; it lasts until `until` or until [`SimCluster::clear`].
    pub fn inject(
        &self,
        kind: FaultKind,
        target: FaultTarget,
        until: Option<Timestamp>,
    ) -> Result<FaultId, SimError> {
        self.current().inject(kind, target, until)
    }

    /// Clears a fault, returning it.
    pub fn clear(&self, id: FaultId) -> Result<Fault, SimError> {
        self.current().clear(id)
    }

    /// Faults in force.
    pub fn faults(&self) -> Vec<Fault> {
        self.current().faults.clone()
    }

    /// The current state, without going through the async port.
    pub fn snapshot_now(&self) -> ClusterSnapshot {
        self.current().snapshot()
    }

    fn source_info(&self) -> SourceInfo {
        SourceInfo {
            name: self.name.clone(),
            kind: SourceKind::Simulated,
        }
    }

    fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            name: self.name.clone(),
            kind: ClusterKind::Simulated,
        }
    }
}

/// Metric names the simulator reports per pod in [`MetricSource::scrape`].
pub mod metric_names {
    /// CPU used, in cores.
    pub const POD_CPU_CORES: &str = "octrix_sim_pod_cpu_cores";
    /// Memory working set, in bytes.
    pub const POD_MEMORY_BYTES: &str = "octrix_sim_pod_memory_working_set_bytes";
    /// Requests per second served by the pod.
    pub const POD_REQUEST_RATE: &str = "octrix_sim_pod_request_rate";
    /// Fraction of the pod's service's requests that fail.
    pub const POD_ERROR_RATE: &str = "octrix_sim_pod_error_rate";
    /// 99th percentile latency of the pod's service, in seconds.
    pub const POD_LATENCY_P99: &str = "octrix_sim_pod_latency_p99_seconds";
}

#[async_trait]
impl MetricSource for SimCluster {
    fn info(&self) -> SourceInfo {
        self.source_info()
    }

    async fn scrape(&self) -> Result<Vec<SeriesSample>, SourceError> {
        let mut samples = Vec::new();
        self.scrape_into(&mut samples).await?;
        Ok(samples)
    }

    async fn scrape_into(&self, samples: &mut Vec<SeriesSample>) -> Result<(), SourceError> {
        let state = self.current();
        samples.clear();
        samples.reserve(state.pods.len() * 5);
        for pod in state.pods.iter().filter(|p| p.node.is_some()) {
            let (Some(d), Some(labels)) = (
                pod.deployment.map(|d| &state.deployments[d]),
                &pod.series_labels,
            ) else {
                continue;
            };
            for (metric, value) in [
                (metric_names::POD_CPU_CORES, pod.cpu_cores),
                (metric_names::POD_MEMORY_BYTES, pod.memory_bytes),
                (metric_names::POD_REQUEST_RATE, pod.request_rate),
                (metric_names::POD_ERROR_RATE, d.error_rate),
                (metric_names::POD_LATENCY_P99, d.latency_p99),
            ] {
                samples.push(SeriesSample {
                    metric: metric.into(),
                    labels: labels.clone(),
                    timestamp: state.now,
                    value,
                });
            }
        }
        Ok(())
    }

    async fn node_metrics(&self) -> Result<Vec<NodeMetrics>, SourceError> {
        let state = self.current();
        let snapshot = state.snapshot();
        Ok(snapshot
            .nodes
            .iter()
            .enumerate()
            .map(|(n, node)| {
                let network = state.node_network_bytes(n);
                NodeMetrics {
                    node: node.name.clone(),
                    cpu_utilisation: node.cpu_used_cores / node.cpu_allocatable_cores,
                    memory_utilisation: node.memory_used_bytes / node.memory_allocatable_bytes,
                    disk_utilisation: state.disk_utilisation(n),
                    network_receive_bytes_per_second: network,
                    network_transmit_bytes_per_second: network,
                }
            })
            .collect())
    }

    async fn pod_metrics(&self, namespace: Option<&str>) -> Result<Vec<PodMetrics>, SourceError> {
        let state = self.current();
        Ok(state
            .pods
            .iter()
            .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
            .map(|p| PodMetrics {
                namespace: p.namespace.clone(),
                pod: p.name.clone(),
                cpu_cores: p.cpu_cores,
                memory_working_set_bytes: p.memory_bytes,
                restarts: u64::from(p.restart_count),
            })
            .collect())
    }

    async fn cluster_metrics(&self) -> Result<ClusterMetrics, SourceError> {
        let snapshot = self.current().snapshot();
        let nodes = snapshot.nodes.len() as f64;
        Ok(ClusterMetrics {
            nodes: snapshot.nodes.len() as u64,
            ready_nodes: snapshot
                .nodes
                .iter()
                .filter(|n| n.ready == ConditionStatus::True)
                .count() as u64,
            pods: snapshot.pods.len() as u64,
            running_pods: snapshot
                .pods
                .iter()
                .filter(|p| p.phase == crate::cluster::PodPhase::Running)
                .count() as u64,
            cpu_utilisation: snapshot
                .nodes
                .iter()
                .map(|n| n.cpu_used_cores / n.cpu_allocatable_cores)
                .sum::<f64>()
                / nodes,
            memory_utilisation: snapshot
                .nodes
                .iter()
                .map(|n| n.memory_used_bytes / n.memory_allocatable_bytes)
                .sum::<f64>()
                / nodes,
        })
    }

    async fn service_metrics(
        &self,
        selector: &ServiceSelector,
    ) -> Result<ServiceMetrics, SourceError> {
        let state = self.current();
        // A version of a service is simulated as its own deployment `<service>-<version>`.
        let deployment_name = match &selector.version {
            Some(version) => format!("{}-{version}", selector.service),
            None => selector.service.clone(),
        };
        let d = state
            .deployments
            .iter()
            .find(|d| d.config.namespace == selector.namespace && d.config.name == deployment_name)
            .ok_or_else(|| SourceError::NotFound {
                source_name: self.name.clone(),
                what: format!("service {}/{deployment_name}", selector.namespace),
            })?;
        let has_traffic = d.request_rate > 0.0;
        Ok(ServiceMetrics {
            request_rate: d.request_rate,
            error_rate: has_traffic.then_some(d.error_rate),
            latency_p50_seconds: has_traffic.then_some(d.latency_p50),
            latency_p99_seconds: has_traffic.then_some(d.latency_p99),
        })
    }
}

#[async_trait]
impl ClusterObserver for SimCluster {
    fn info(&self) -> ClusterInfo {
        self.cluster_info()
    }

    async fn snapshot(&self) -> Result<ClusterSnapshot, ClusterError> {
        Ok(self.current().snapshot())
    }

    async fn refresh(&self, snapshot: &mut ClusterSnapshot) -> Result<(), ClusterError> {
        self.current().refresh(snapshot);
        Ok(())
    }
}

#[async_trait]
impl ClusterActuator for SimCluster {
    fn info(&self) -> ClusterInfo {
        self.cluster_info()
    }

    async fn execute(
        &self,
        action: &ClusterAction,
        dry_run: bool,
    ) -> Result<ActionReport, ClusterError> {
        self.current().execute(action, dry_run)
    }
}

#[cfg(test)]
mod tests;
