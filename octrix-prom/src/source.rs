//! [`PrometheusSource`]: the core's [`MetricSource`] port, answered by
//! Prometheus through named, configurable PromQL templates.
//!
//! * Node metrics come from node-exporter (CPU, memory, root filesystem,
//!   network), keyed by a node label (`nodename`, joined from
//!   `node_uname_info`, by default).
//! * Pod metrics come from cAdvisor (CPU, working set) and
//!   kube-state-metrics (restarts).
//! * Service metrics come from request counters and latency histograms
//!   (Istio's by default).
//! * Cluster aggregates come from kube-state-metrics and node-exporter.
//! * [`MetricSource::scrape`] runs a list of watched queries (by default
//!   node and container usage, restarts, waiting and termination reasons,
//!   node conditions, pod phases and target health).
//!
//! Templates use `$name` placeholders (see [`crate::template`]): `$window`
//! everywhere, `$namespace_matcher` in pod queries, and `$namespace`,
//! `$service`, `$version_regex` in service queries.
//!
//! When Prometheus cannot answer, calls fail with
//! [`SourceError::Unavailable`], [`PrometheusSource::status`] says so and, with
//! [`PrometheusSource::with_metrics`], `octrix_source_up{source=...}` drops to
//! 0. Nothing is ever made up: a measure Prometheus has no series for is
//! `NaN` (node and pod usage), `None` (service ratios and latencies) or a
//! [`SourceError::NotFound`] (cluster aggregates); a pod's restarts are the
//! restarts kube-state-metrics reports, 0 when it reports none for the pod.
//!
//! ```
//! use octrix_prom::source::{PrometheusSource, PrometheusSourceConfig};
//!
//! let config: PrometheusSourceConfig = serde_json::from_str(r#"{
//!     "prometheus": {"url": "http://prometheus:9090", "timeout_ms": 3000},
//!     "window": "2m",
//!     "watched": [{"name": "api_errors", "query": "sum(rate(http_errors_total[$window]))"}]
//! }"#).unwrap();
//! assert!(config.queries.node_memory_utilisation.contains("MemAvailable"));
//! let source = PrometheusSource::new(config).unwrap();
//! assert_eq!(source.render_watched()[0].1, "sum(rate(http_errors_total[2m]))");
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use octrix_core::Timestamp;
use octrix_core::metrics::{
    ClusterMetrics, MetricSource, NodeMetrics, PodMetrics, SeriesSample, ServiceMetrics,
    ServiceSelector, SourceError, SourceInfo, SourceKind,
};
use serde::{Deserialize, Serialize};

use crate::exposition::OctrixMetrics;
use crate::prometheus::{
    self, InstantSample, PrometheusClient, PrometheusConfig, QueryData, Range, RangeSeries,
};
use crate::template::{self, escape_regex, escape_string};

/// Why a [`PrometheusSource`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Prometheus client could not be built (bad URL or header).
    #[error("cannot build the Prometheus client")]
    Client(#[source] prometheus::Error),
    /// A template is invalid.
    #[error("query template {name:?} is invalid")]
    Template {
        /// The template's name.
        name: String,
        /// What is wrong with it.
        #[source]
        source: template::Error,
    },
    /// Two watched queries have the same name.
    #[error("watched query {0:?} is defined twice")]
    DuplicateWatched(String),
}

/// The PromQL behind each measure. Every field has a default that works
/// with node-exporter, cAdvisor, kube-state-metrics and Istio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryTemplates {
    /// CPU utilisation of each node, in [0, 1].
    pub node_cpu_utilisation: String,
    /// Memory utilisation of each node, in [0, 1].
    pub node_memory_utilisation: String,
    /// Root filesystem utilisation of each node, in [0, 1].
    pub node_disk_utilisation: String,
    /// Bytes received per second by each node.
    pub node_network_receive: String,
    /// Bytes transmitted per second by each node.
    pub node_network_transmit: String,
    /// CPU cores used by each pod (labels `namespace`, `pod`).
    pub pod_cpu_cores: String,
    /// Working set bytes of each pod.
    pub pod_memory_working_set: String,
    /// Container restarts of each pod.
    pub pod_restarts: String,
    /// Number of nodes (one sample).
    pub cluster_nodes: String,
    /// Number of Ready nodes (one sample).
    pub cluster_ready_nodes: String,
    /// Number of pods (one sample).
    pub cluster_pods: String,
    /// Number of Running pods (one sample).
    pub cluster_running_pods: String,
    /// Mean node CPU utilisation (one sample).
    pub cluster_cpu_utilisation: String,
    /// Mean node memory utilisation (one sample).
    pub cluster_memory_utilisation: String,
    /// Requests per second of a service (one sample).
    pub service_request_rate: String,
    /// Fraction of a service's requests that failed (one sample).
    pub service_error_rate: String,
    /// Median latency of a service, in seconds (one sample).
    pub service_latency_p50: String,
    /// 99th percentile latency of a service, in seconds (one sample).
    pub service_latency_p99: String,
}

/// Joins node-exporter series to `node_uname_info` to label them with the
/// node's name.
const BY_NODENAME: &str = "* on (job, instance) group_left (nodename) node_uname_info";

/// Istio's request counter for a service (and version).
const ISTIO_REQUESTS: &str = r#"istio_requests_total{reporter="destination", destination_service_namespace="$namespace", destination_service_name="$service", destination_version=~"$version_regex"}"#;

/// Istio's latency histogram for a service (and version), in milliseconds.
const ISTIO_LATENCY: &str = r#"istio_request_duration_milliseconds_bucket{reporter="destination", destination_service_namespace="$namespace", destination_service_name="$service", destination_version=~"$version_regex"}"#;

/// Network devices that are not a node's own interfaces.
const VIRTUAL_DEVICES: &str =
    "lo|veth.*|docker.*|br-.*|cni.*|flannel.*|cali.*|vxlan.*|tunl.*|virbr.*|kube-.*|lxc.*|ifb.*";

impl Default for QueryTemplates {
    fn default() -> Self {
        Self {
            node_cpu_utilisation: format!(
                r#"1 - avg by (nodename) (rate(node_cpu_seconds_total{{mode="idle"}}[$window]) {BY_NODENAME})"#
            ),
            node_memory_utilisation: format!(
                "avg by (nodename) ((1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) {BY_NODENAME})"
            ),
            node_disk_utilisation: format!(
                r#"max by (nodename) ((1 - node_filesystem_avail_bytes{{mountpoint="/"}} / node_filesystem_size_bytes{{mountpoint="/"}}) {BY_NODENAME})"#
            ),
            node_network_receive: format!(
                r#"sum by (nodename) (rate(node_network_receive_bytes_total{{device!~"{VIRTUAL_DEVICES}"}}[$window]) {BY_NODENAME})"#
            ),
            node_network_transmit: format!(
                r#"sum by (nodename) (rate(node_network_transmit_bytes_total{{device!~"{VIRTUAL_DEVICES}"}}[$window]) {BY_NODENAME})"#
            ),
            pod_cpu_cores: r#"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!="", container!="POD", $namespace_matcher}[$window]))"#.to_owned(),
            pod_memory_working_set: r#"sum by (namespace, pod) (container_memory_working_set_bytes{container!="", container!="POD", $namespace_matcher})"#.to_owned(),
            pod_restarts: "sum by (namespace, pod) (kube_pod_container_status_restarts_total{$namespace_matcher})".to_owned(),
            cluster_nodes: "count(kube_node_info)".to_owned(),
            cluster_ready_nodes: r#"sum(kube_node_status_condition{condition="Ready", status="true"})"#.to_owned(),
            cluster_pods: "count(kube_pod_info)".to_owned(),
            cluster_running_pods: r#"sum(kube_pod_status_phase{phase="Running"})"#.to_owned(),
            cluster_cpu_utilisation: r#"avg(1 - avg by (job, instance) (rate(node_cpu_seconds_total{mode="idle"}[$window])))"#.to_owned(),
            cluster_memory_utilisation: "avg(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)".to_owned(),
            service_request_rate: format!("sum(rate({ISTIO_REQUESTS}[$window]))"),
            service_error_rate: format!(
                r#"sum(rate({}[$window])) / sum(rate({ISTIO_REQUESTS}[$window]))"#,
                ISTIO_REQUESTS.replace("}", r#", response_code=~"5.."}"#)
            ),
            service_latency_p50: format!(
                "histogram_quantile(0.5, sum by (le) (rate({ISTIO_LATENCY}[$window]))) / 1000"
            ),
            service_latency_p99: format!(
                "histogram_quantile(0.99, sum by (le) (rate({ISTIO_LATENCY}[$window]))) / 1000"
            ),
        }
    }
}

/// A named query whose latest samples [`MetricSource::scrape`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedQuery {
    /// The name given to its samples ([`SeriesSample::metric`]).
    pub name: String,
    /// PromQL returning an instant vector or a scalar; may use `$window`.
    pub query: String,
}

impl WatchedQuery {
    /// A watched query.
    pub fn new(name: impl Into<String>, query: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            query: query.into(),
        }
    }
}

/// The default watched queries: what the engine's detectors and classifier
/// need to see about nodes, pods and targets.
pub fn default_watched() -> Vec<WatchedQuery> {
    let t = QueryTemplates::default();
    vec![
        WatchedQuery::new("target_up", "up"),
        WatchedQuery::new("node_cpu_utilisation", t.node_cpu_utilisation),
        WatchedQuery::new("node_memory_utilisation", t.node_memory_utilisation),
        WatchedQuery::new("node_disk_utilisation", t.node_disk_utilisation),
        WatchedQuery::new(
            "container_cpu_cores",
            r#"sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{container!="", container!="POD"}[$window]))"#,
        ),
        WatchedQuery::new(
            "container_memory_working_set_bytes",
            r#"sum by (namespace, pod, container) (container_memory_working_set_bytes{container!="", container!="POD"})"#,
        ),
        WatchedQuery::new(
            "container_restarts",
            "sum by (namespace, pod, container) (kube_pod_container_status_restarts_total)",
        ),
        WatchedQuery::new(
            "container_waiting",
            "kube_pod_container_status_waiting_reason > 0",
        ),
        WatchedQuery::new(
            "container_last_terminated",
            "kube_pod_container_status_last_terminated_reason > 0",
        ),
        WatchedQuery::new(
            "node_condition",
            r#"kube_node_status_condition{status="true"} > 0"#,
        ),
        WatchedQuery::new("pod_phase", "kube_pod_status_phase > 0"),
    ]
}

/// Settings of a [`PrometheusSource`], as a user writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusSourceConfig {
    /// The source's name in `octrix_source_up{source=...}`.
    pub name: String,
    /// How to reach Prometheus.
    pub prometheus: PrometheusConfig,
    /// Rate window for node, pod, cluster and watched queries (`$window`).
    pub window: String,
    /// The label that names a node in the node queries' results.
    pub node_label: String,
    /// The PromQL behind each measure.
    pub queries: QueryTemplates,
    /// The queries [`MetricSource::scrape`] runs.
    pub watched: Vec<WatchedQuery>,
}

impl Default for PrometheusSourceConfig {
    fn default() -> Self {
        Self {
            name: "prometheus".to_owned(),
            prometheus: PrometheusConfig::default(),
            window: "5m".to_owned(),
            node_label: "nodename".to_owned(),
            queries: QueryTemplates::default(),
            watched: default_watched(),
        }
    }
}

impl PrometheusSourceConfig {
    /// Default settings for the Prometheus at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            prometheus: PrometheusConfig::new(url),
            ..Self::default()
        }
    }
}

/// Whether the source could last reach Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SourceStatus {
    /// Not asked anything yet.
    Unknown,
    /// Prometheus answered the last request.
    Up,
    /// Prometheus could not answer the last request.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The variables every template group may use.
const NODE_VARS: &[&str] = &["window"];
const POD_VARS: &[&str] = &["window", "namespace_matcher"];
const SERVICE_VARS: &[&str] = &["window", "namespace", "service", "version_regex"];

/// Prometheus as the core's [`MetricSource`].
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    client: PrometheusClient,
    config: Arc<PrometheusSourceConfig>,
    metrics: Option<OctrixMetrics>,
    status: Arc<Mutex<SourceStatus>>,
}

impl PrometheusSource {
    /// A source with these settings; every template is checked here.
    pub fn new(config: PrometheusSourceConfig) -> Result<Self, Error> {
        validate(&config)?;
        let client = PrometheusClient::new(config.prometheus.clone()).map_err(Error::Client)?;
        Ok(Self {
            client,
            config: Arc::new(config),
            metrics: None,
            status: Arc::new(Mutex::new(SourceStatus::Unknown)),
        })
    }

    /// The same source, reporting its availability in `metrics`
    /// (`octrix_source_up`).
    pub fn with_metrics(mut self, metrics: OctrixMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The underlying API client, for anything the port does not cover.
    pub fn client(&self) -> &PrometheusClient {
        &self.client
    }

    /// The settings in force.
    pub fn config(&self) -> &PrometheusSourceConfig {
        &self.config
    }

    /// The outcome of the last request.
    pub fn status(&self) -> SourceStatus {
        self.lock_status().clone()
    }

    /// Asks Prometheus whether it is ready and records the answer.
    pub async fn check(&self) -> SourceStatus {
        let status = match self.client.ready().await {
            Ok(true) => SourceStatus::Up,
            Ok(false) => SourceStatus::Unavailable {
                reason: "Prometheus is not ready (/-/ready)".to_owned(),
            },
            Err(e) => SourceStatus::Unavailable {
                reason: e.to_string(),
            },
        };
        self.set_status(status.clone());
        status
    }

    /// Runs an arbitrary instant query.
    pub async fn query(
        &self,
        promql: &str,
        time: Option<Timestamp>,
    ) -> Result<QueryData, SourceError> {
        let result = self.client.query(promql, time).await;
        self.settle(result)
    }

    /// Runs an arbitrary range query.
    pub async fn query_range(
        &self,
        promql: &str,
        range: Range,
    ) -> Result<Vec<RangeSeries>, SourceError> {
        let result = self.client.query_range(promql, range).await;
        self.settle(result)
    }

    /// The watched queries with `$window` filled in, as `(name, promql)`.
    pub fn render_watched(&self) -> Vec<(String, String)> {
        self.config
            .watched
            .iter()
            .map(|w| {
                let promql = template::render(&w.query, &self.vars(&[]))
                    .expect("watched queries are validated in PrometheusSource::new");
                (w.name.clone(), promql)
            })
            .collect()
    }

    fn vars(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut vars = vec![("window", self.config.window.clone())];
        vars.extend_from_slice(extra);
        vars
    }

    fn render(&self, name: &str, template: &str, extra: &[(&'static str, String)]) -> String {
        template::render(template, &self.vars(extra)).unwrap_or_else(|e| {
            panic!("template {name} was validated in PrometheusSource::new, yet: {e}")
        })
    }

    /// Runs a rendered query that must return a vector.
    async fn vector(
        &self,
        name: &str,
        promql: String,
    ) -> Result<(String, Vec<InstantSample>), SourceError> {
        let result = self.client.query_vector(&promql, None).await;
        let samples = self.settle(result).map_err(|e| annotate(e, name))?;
        Ok((name.to_owned(), samples))
    }

    /// Records the outcome of a request and converts its error.
    fn settle<T>(&self, result: Result<T, prometheus::Error>) -> Result<T, SourceError> {
        match result {
            Ok(value) => {
                self.set_status(SourceStatus::Up);
                Ok(value)
            }
            Err(e) => {
                let source_name = self.info().name;
                if e.is_unavailable() {
                    let reason = e.to_string();
                    self.set_status(SourceStatus::Unavailable {
                        reason: reason.clone(),
                    });
                    Err(SourceError::Unavailable {
                        source_name,
                        reason,
                    })
                } else {
                    // Prometheus answered: it is up, the request was wrong.
                    self.set_status(SourceStatus::Up);
                    match e.kind() {
                        Some(prometheus::ErrorKind::NotFound) => Err(SourceError::NotFound {
                            source_name,
                            what: e.to_string(),
                        }),
                        _ => Err(SourceError::Rejected {
                            source_name,
                            reason: e.to_string(),
                        }),
                    }
                }
            }
        }
    }

    fn set_status(&self, status: SourceStatus) {
        if let Some(metrics) = &self.metrics {
            metrics.set_source_up(&self.config.name, status == SourceStatus::Up);
        }
        *self.lock_status() = status;
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, SourceStatus> {
        // A panic while holding this lock cannot leave the status half-written.
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of a label the results must carry.
    fn label<'a>(
        &self,
        query: &str,
        sample: &'a InstantSample,
        label: &str,
    ) -> Result<&'a str, SourceError> {
        sample
            .metric
            .get(label)
            .map(String::as_str)
            .ok_or_else(|| SourceError::Rejected {
                source_name: self.info().name,
                reason: format!(
                    "query {query} returned a series without the label {label:?}: {:?}",
                    sample.metric
                ),
            })
    }

    /// The single value a cluster or service query returns, if any.
    fn single(&self, query: &str, samples: &[InstantSample]) -> Result<Option<f64>, SourceError> {
        match samples {
            [] => Ok(None),
            [one] => Ok(Some(one.value.value)),
            more => Err(SourceError::Rejected {
                source_name: self.info().name,
                reason: format!(
                    "query {query} must return one series, returned {}",
                    more.len()
                ),
            }),
        }
    }
}

/// Names the query in an error's message.
fn annotate(error: SourceError, query: &str) -> SourceError {
    match error {
        SourceError::Rejected {
            source_name,
            reason,
        } => SourceError::Rejected {
            source_name,
            reason: format!("query {query}: {reason}"),
        },
        SourceError::NotFound { source_name, what } => SourceError::NotFound {
            source_name,
            what: format!("query {query}: {what}"),
        },
        unavailable => unavailable,
    }
}

/// Templates that share a set of variables: `(variables, [(name, template)])`.
type TemplateGroup<'a> = (&'a [&'a str], &'a [(&'a str, &'a String)]);

fn validate(config: &PrometheusSourceConfig) -> Result<(), Error> {
    let q = &config.queries;
    let groups: [TemplateGroup<'_>; 3] = [
        (
            NODE_VARS,
            &[
                ("node_cpu_utilisation", &q.node_cpu_utilisation),
                ("node_memory_utilisation", &q.node_memory_utilisation),
                ("node_disk_utilisation", &q.node_disk_utilisation),
                ("node_network_receive", &q.node_network_receive),
                ("node_network_transmit", &q.node_network_transmit),
                ("cluster_nodes", &q.cluster_nodes),
                ("cluster_ready_nodes", &q.cluster_ready_nodes),
                ("cluster_pods", &q.cluster_pods),
                ("cluster_running_pods", &q.cluster_running_pods),
                ("cluster_cpu_utilisation", &q.cluster_cpu_utilisation),
                ("cluster_memory_utilisation", &q.cluster_memory_utilisation),
            ],
        ),
        (
            POD_VARS,
            &[
                ("pod_cpu_cores", &q.pod_cpu_cores),
                ("pod_memory_working_set", &q.pod_memory_working_set),
                ("pod_restarts", &q.pod_restarts),
            ],
        ),
        (
            SERVICE_VARS,
            &[
                ("service_request_rate", &q.service_request_rate),
                ("service_error_rate", &q.service_error_rate),
                ("service_latency_p50", &q.service_latency_p50),
                ("service_latency_p99", &q.service_latency_p99),
            ],
        ),
    ];
    for (vars, templates) in groups {
        let values: Vec<(&str, String)> = vars.iter().map(|v| (*v, String::new())).collect();
        for (name, text) in templates {
            template::render(text, &values).map_err(|source| Error::Template {
                name: (*name).to_owned(),
                source,
            })?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for watched in &config.watched {
        template::render(&watched.query, &[("window", String::new())]).map_err(|source| {
            Error::Template {
                name: format!("watched.{}", watched.name),
                source,
            }
        })?;
        if !seen.insert(watched.name.as_str()) {
            return Err(Error::DuplicateWatched(watched.name.clone()));
        }
    }
    Ok(())
}

fn count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

#[async_trait]
impl MetricSource for PrometheusSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: self.config.prometheus.http.url.clone(),
            kind: SourceKind::Prometheus,
        }
    }

    async fn scrape(&self) -> Result<Vec<SeriesSample>, SourceError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (name, promql)) in self.render_watched().into_iter().enumerate() {
            let client = self.client.clone();
            tasks.spawn(async move {
                let result = client.query_vector(&promql, None).await;
                (index, name, result)
            });
        }
        let mut results = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            let (index, name, result) = joined.map_err(|e| SourceError::Unavailable {
                source_name: self.info().name,
                reason: format!("query task failed: {e}"),
            })?;
            results.push((index, name, result));
        }
        results.sort_by_key(|(index, _, _)| *index);
        let mut samples = Vec::new();
        // Unavailability wins over a rejected query: report the outage.
        if let Some(pos) = results
            .iter()
            .position(|(_, _, r)| r.as_ref().is_err_and(prometheus::Error::is_unavailable))
        {
            let (_, name, result) = results.swap_remove(pos);
            return self
                .settle(result)
                .map(|_| Vec::new())
                .map_err(|e| annotate(e, &name));
        }
        for (_, name, result) in results {
            for sample in self.settle(result).map_err(|e| annotate(e, &name))? {
                let timestamp = sample.value.time().ok_or_else(|| SourceError::Rejected {
                    source_name: self.info().name,
                    reason: format!(
                        "query {name} returned an invalid timestamp {}",
                        sample.value.timestamp
                    ),
                })?;
                samples.push(SeriesSample {
                    metric: name.clone().into(),
                    labels: std::sync::Arc::new(sample.metric),
                    timestamp,
                    value: sample.value.value,
                });
            }
        }
        Ok(samples)
    }

    async fn node_metrics(&self) -> Result<Vec<NodeMetrics>, SourceError> {
        let q = &self.config.queries;
        let results = tokio::try_join!(
            self.vector(
                "node_cpu_utilisation",
                self.render("node_cpu_utilisation", &q.node_cpu_utilisation, &[])
            ),
            self.vector(
                "node_memory_utilisation",
                self.render("node_memory_utilisation", &q.node_memory_utilisation, &[])
            ),
            self.vector(
                "node_disk_utilisation",
                self.render("node_disk_utilisation", &q.node_disk_utilisation, &[])
            ),
            self.vector(
                "node_network_receive",
                self.render("node_network_receive", &q.node_network_receive, &[])
            ),
            self.vector(
                "node_network_transmit",
                self.render("node_network_transmit", &q.node_network_transmit, &[])
            ),
        )?;
        let mut nodes: BTreeMap<String, NodeMetrics> = BTreeMap::new();
        let (cpu, memory, disk, rx, tx) = results;
        let label = self.config.node_label.as_str();
        for (index, (query, samples)) in [cpu, memory, disk, rx, tx].into_iter().enumerate() {
            for sample in &samples {
                let node = self.label(&query, sample, label)?;
                let entry = nodes.entry(node.to_owned()).or_insert_with(|| NodeMetrics {
                    node: node.to_owned(),
                    cpu_utilisation: f64::NAN,
                    memory_utilisation: f64::NAN,
                    disk_utilisation: f64::NAN,
                    network_receive_bytes_per_second: f64::NAN,
                    network_transmit_bytes_per_second: f64::NAN,
                });
                let field = match index {
                    0 => &mut entry.cpu_utilisation,
                    1 => &mut entry.memory_utilisation,
                    2 => &mut entry.disk_utilisation,
                    3 => &mut entry.network_receive_bytes_per_second,
                    _ => &mut entry.network_transmit_bytes_per_second,
                };
                *field = sample.value.value;
            }
        }
        Ok(nodes.into_values().collect())
    }

    async fn pod_metrics(&self, namespace: Option<&str>) -> Result<Vec<PodMetrics>, SourceError> {
        let matcher = match namespace {
            Some(ns) => format!(r#"namespace="{}""#, escape_string(ns)),
            None => r#"namespace!="""#.to_owned(),
        };
        let vars = [("namespace_matcher", matcher)];
        let q = &self.config.queries;
        let (cpu, memory, restarts) = tokio::try_join!(
            self.vector(
                "pod_cpu_cores",
                self.render("pod_cpu_cores", &q.pod_cpu_cores, &vars)
            ),
            self.vector(
                "pod_memory_working_set",
                self.render("pod_memory_working_set", &q.pod_memory_working_set, &vars)
            ),
            self.vector(
                "pod_restarts",
                self.render("pod_restarts", &q.pod_restarts, &vars)
            ),
        )?;
        let mut pods: BTreeMap<(String, String), PodMetrics> = BTreeMap::new();
        for (index, (query, samples)) in [cpu, memory, restarts].into_iter().enumerate() {
            for sample in &samples {
                let ns = self.label(&query, sample, "namespace")?;
                let pod = self.label(&query, sample, "pod")?;
                let entry = pods
                    .entry((ns.to_owned(), pod.to_owned()))
                    .or_insert_with(|| PodMetrics {
                        namespace: ns.to_owned(),
                        pod: pod.to_owned(),
                        cpu_cores: f64::NAN,
                        memory_working_set_bytes: f64::NAN,
                        restarts: 0,
                    });
                match index {
                    0 => entry.cpu_cores = sample.value.value,
                    1 => entry.memory_working_set_bytes = sample.value.value,
                    _ => entry.restarts = count(sample.value.value),
                }
            }
        }
        Ok(pods.into_values().collect())
    }

    async fn cluster_metrics(&self) -> Result<ClusterMetrics, SourceError> {
        let q = &self.config.queries;
        let names = [
            ("cluster_nodes", &q.cluster_nodes),
            ("cluster_ready_nodes", &q.cluster_ready_nodes),
            ("cluster_pods", &q.cluster_pods),
            ("cluster_running_pods", &q.cluster_running_pods),
            ("cluster_cpu_utilisation", &q.cluster_cpu_utilisation),
            ("cluster_memory_utilisation", &q.cluster_memory_utilisation),
        ];
        let rendered: Vec<String> = names.iter().map(|(n, t)| self.render(n, t, &[])).collect();
        let results = tokio::try_join!(
            self.vector(names[0].0, rendered[0].clone()),
            self.vector(names[1].0, rendered[1].clone()),
            self.vector(names[2].0, rendered[2].clone()),
            self.vector(names[3].0, rendered[3].clone()),
            self.vector(names[4].0, rendered[4].clone()),
            self.vector(names[5].0, rendered[5].clone()),
        )?;
        let (a, b, c, d, e, f) = results;
        let mut values = [0.0; 6];
        for (i, (name, samples)) in [a, b, c, d, e, f].into_iter().enumerate() {
            values[i] = self
                .single(&name, &samples)?
                .ok_or_else(|| SourceError::NotFound {
                    source_name: self.info().name,
                    what: format!("series for {name} ({})", rendered[i]),
                })?;
        }
        Ok(ClusterMetrics {
            nodes: count(values[0]),
            ready_nodes: count(values[1]),
            pods: count(values[2]),
            running_pods: count(values[3]),
            cpu_utilisation: values[4],
            memory_utilisation: values[5],
        })
    }

    async fn service_metrics(
        &self,
        selector: &ServiceSelector,
    ) -> Result<ServiceMetrics, SourceError> {
        let vars = [
            ("namespace", escape_string(&selector.namespace)),
            ("service", escape_string(&selector.service)),
            (
                "version_regex",
                selector
                    .version
                    .as_deref()
                    .map_or_else(|| ".*".to_owned(), escape_regex),
            ),
            ("window", format!("{}s", selector.window_seconds)),
        ];
        let q = &self.config.queries;
        // `vars` overrides the configured window with the selector's.
        let render = |name: &str, t: &str| {
            template::render(t, &vars).unwrap_or_else(|e| {
                panic!("template {name} was validated in PrometheusSource::new, yet: {e}")
            })
        };
        let ((_, requests), (_, errors), (_, p50), (_, p99)) = tokio::try_join!(
            self.vector(
                "service_request_rate",
                render("service_request_rate", &q.service_request_rate)
            ),
            self.vector(
                "service_error_rate",
                render("service_error_rate", &q.service_error_rate)
            ),
            self.vector(
                "service_latency_p50",
                render("service_latency_p50", &q.service_latency_p50)
            ),
            self.vector(
                "service_latency_p99",
                render("service_latency_p99", &q.service_latency_p99)
            ),
        )?;
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
        let request_rate = finite(self.single("service_request_rate", &requests)?).unwrap_or(0.0);
        let with_traffic = |v: Option<f64>| finite(v).filter(|_| request_rate > 0.0);
        Ok(ServiceMetrics {
            request_rate,
            error_rate: with_traffic(self.single("service_error_rate", &errors)?),
            latency_p50_seconds: with_traffic(self.single("service_latency_p50", &p50)?),
            latency_p99_seconds: with_traffic(self.single("service_latency_p99", &p99)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_templates_are_valid() {
        let source = PrometheusSource::new(PrometheusSourceConfig::default()).unwrap();
        let watched = source.render_watched();
        assert_eq!(watched[0], ("target_up".to_owned(), "up".to_owned()));
        assert!(watched.iter().all(|(_, q)| !q.contains('$')), "{watched:?}");
        assert_eq!(source.status(), SourceStatus::Unknown);
    }

    #[test]
    fn invalid_templates_are_rejected_at_construction() {
        let mut config = PrometheusSourceConfig::default();
        config.queries.pod_restarts = "kube_pod_container_status_restarts_total{$namespace}".into();
        match PrometheusSource::new(config) {
            Err(Error::Template { name, source }) => {
                assert_eq!(name, "pod_restarts");
                assert_eq!(
                    source,
                    template::Error::UnknownPlaceholder {
                        name: "namespace".into(),
                        position: 41
                    }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut config = PrometheusSourceConfig::default();
        config.watched.push(WatchedQuery::new("target_up", "up"));
        assert!(matches!(
            PrometheusSource::new(config),
            Err(Error::DuplicateWatched(name)) if name == "target_up"
        ));
    }

    #[test]
    fn config_fields_default_one_by_one() {
        let config: PrometheusSourceConfig =
            serde_json::from_str(r#"{"queries": {"cluster_nodes": "count(node_uname_info)"}}"#)
                .unwrap();
        assert_eq!(config.queries.cluster_nodes, "count(node_uname_info)");
        assert_eq!(config.queries.cluster_pods, "count(kube_pod_info)");
        assert_eq!(config.window, "5m");
        assert_eq!(config.watched, default_watched());
        let typo = serde_json::from_str::<PrometheusSourceConfig>(r#"{"querys": {}}"#);
        assert!(typo.is_err());
    }

    #[test]
    fn default_service_error_rate_counts_5xx_only() {
        let q = QueryTemplates::default();
        let rendered = template::render(
            &q.service_error_rate,
            &[
                ("namespace", "shop".into()),
                ("service", "cart".into()),
                ("version_regex", escape_regex("v2")),
                ("window", "60s".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            rendered,
            r#"sum(rate(istio_requests_total{reporter="destination", destination_service_namespace="shop", destination_service_name="cart", destination_version=~"v2", response_code=~"5.."}[60s])) / sum(rate(istio_requests_total{reporter="destination", destination_service_namespace="shop", destination_service_name="cart", destination_version=~"v2"}[60s]))"#
        );
    }
}
