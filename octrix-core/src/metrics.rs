//! The [`MetricSource`] port: how the core reads the metrics of the world.
//!
//! A source is either real (Prometheus, through `octrix-prom`) or the
//! simulated cluster; [`SourceInfo::kind`] always says which, so nothing
//! simulated is ever presented as real. A source that cannot answer returns
//! [`SourceError::Unavailable`]; it never invents data.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Labels, Timestamp};

/// What kind of backend a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A Prometheus server.
    Prometheus,
    /// Octrix's simulated cluster.
    Simulated,
    /// No metric source is configured: scrapes are empty and queries say
    /// there is no data (Octrix then works on cluster state alone).
    None,
}

impl SourceKind {
    /// The wire name: `prometheus`, `simulated` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::Simulated => "simulated",
            Self::None => "none",
        }
    }
}

/// Identity of a source, reported wherever its data is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Human-readable name, e.g. the Prometheus URL or `sim(seed=42)`.
    pub name: String,
    /// Real or simulated.
    pub kind: SourceKind,
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSample {
    /// Metric name, e.g. `container_cpu_usage_ratio`: borrowed when the
    /// source's names are constants (the simulator's), so that a scrape of
    /// 50,000 samples does not allocate 50,000 copies of five names.
    pub metric: std::borrow::Cow<'static, str>,
    /// The series' labels, shared: a source reporting several metrics of one
    /// object (five per pod) allocates its labels once.
    pub labels: std::sync::Arc<Labels>,
    /// When the value was observed.
    pub timestamp: Timestamp,
    /// The observed value.
    pub value: f64,
}

/// Resource usage of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// Node name.
    pub node: String,
    /// CPU utilisation in [0, 1].
    pub cpu_utilisation: f64,
    /// Memory utilisation in [0, 1].
    pub memory_utilisation: f64,
    /// Root filesystem utilisation in [0, 1].
    pub disk_utilisation: f64,
    /// Network bytes received per second.
    pub network_receive_bytes_per_second: f64,
    /// Network bytes transmitted per second.
    pub network_transmit_bytes_per_second: f64,
}

/// Resource usage and health of one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodMetrics {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// CPU used, in cores.
    pub cpu_cores: f64,
    /// Memory working set, in bytes.
    pub memory_working_set_bytes: f64,
    /// Container restarts, summed over the pod's containers.
    pub restarts: u64,
}

/// Traffic of one service (or one version of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceMetrics {
    /// Requests per second.
    pub request_rate: f64,
    /// Fraction of requests that failed, in [0, 1]; `None` without traffic.
    pub error_rate: Option<f64>,
    /// Median latency in seconds; `None` without traffic.
    pub latency_p50_seconds: Option<f64>,
    /// 99th percentile latency in seconds; `None` without traffic.
    pub latency_p99_seconds: Option<f64>,
}

/// Cluster-wide aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterMetrics {
    /// Number of nodes.
    pub nodes: u64,
    /// Nodes whose Ready condition is true.
    pub ready_nodes: u64,
    /// Number of pods.
    pub pods: u64,
    /// Pods in the Running phase.
    pub running_pods: u64,
    /// Mean node CPU utilisation in [0, 1].
    pub cpu_utilisation: f64,
    /// Mean node memory utilisation in [0, 1].
    pub memory_utilisation: f64,
}

/// Which traffic [`MetricSource::service_metrics`] should report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceSelector {
    /// Namespace of the service.
    pub namespace: String,
    /// Service name.
    pub service: String,
    /// A version (subset) of the service, or all of its traffic when `None`.
    pub version: Option<String>,
    /// The look-back window, in seconds.
    pub window_seconds: u32,
}

/// Why a source could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The backend could not be reached or did not answer in time.
    #[error("metric source {source_name} is unavailable: {reason}")]
    Unavailable {
        /// The source's name.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The backend answered but rejected the query.
    #[error("metric source {source_name} rejected the query: {reason}")]
    Rejected {
        /// The source's name.
        source_name: String,
        /// The backend's message.
        reason: String,
    },
    /// The asked-for object does not exist in the source.
    #[error("{what} not found in metric source {source_name}")]
    NotFound {
        /// The source's name.
        source_name: String,
        /// What was looked for.
        what: String,
    },
}

/// A source of metrics: Prometheus or the simulated cluster.
///
/// Object-safe so that the engine and the HTTP server can hold an
/// `Arc<dyn MetricSource>`.
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// Who this source is, real or simulated.
    fn info(&self) -> SourceInfo;

    /// The latest sample of every series the engine watches.
    async fn scrape(&self) -> Result<Vec<SeriesSample>, SourceError>;

    /// Replaces `samples` by a fresh [`scrape`](Self::scrape), reusing the
    /// vector where the source can: the engine scrapes on every tick, and
    /// allocating and freeing 50,000 samples' worth each time was a tenth of
    /// a tick. On error `samples` is left empty.
    ///
    /// The default takes a fresh scrape.
    async fn scrape_into(&self, samples: &mut Vec<SeriesSample>) -> Result<(), SourceError> {
        samples.clear();
        *samples = self.scrape().await?;
        Ok(())
    }

    /// Usage of every node.
    async fn node_metrics(&self) -> Result<Vec<NodeMetrics>, SourceError>;

    /// Usage of every pod, in one namespace or in all of them.
    async fn pod_metrics(&self, namespace: Option<&str>) -> Result<Vec<PodMetrics>, SourceError>;

    /// Cluster-wide aggregates.
    async fn cluster_metrics(&self) -> Result<ClusterMetrics, SourceError>;

    /// Traffic of a service or of one of its versions.
    async fn service_metrics(
        &self,
        selector: &ServiceSelector,
    ) -> Result<ServiceMetrics, SourceError>;
}
