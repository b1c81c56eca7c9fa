//! `/api/v1/metrics`: nodes, pods, cluster, PromQL, and which source answers.
//!
//! Every answer names its source, real (`prometheus`) or `simulated`.
//! PromQL (`query`, `query_range`) needs a Prometheus source: on the
//! simulator it is a 501 that says so.

use axum::Json;
use axum::extract::State;
use octrix_core::cluster::ClusterInfo;
use octrix_core::metrics::{ClusterMetrics, NodeMetrics, PodMetrics, SourceInfo, SourceKind};
use octrix_prom::PrometheusSource;
use octrix_prom::prometheus::{QueryData, Range, Sample};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, parse_duration, parse_time};
use crate::schemas::{
    ClusterInfoSchema, ClusterMetricsSchema, NodeMetricsSchema, PodMetricsSchema, SourceInfoSchema,
};
use crate::state::{AppState, SourceProbe};

/// Node metrics and their source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodesResponse {
    /// Who answered.
    #[schema(value_type = SourceInfoSchema)]
    pub source: SourceInfo,
    /// One entry per node.
    #[schema(value_type = Vec<NodeMetricsSchema>)]
    pub items: Vec<NodeMetrics>,
}

/// Pod metrics and their source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PodsResponse {
    /// Who answered.
    #[schema(value_type = SourceInfoSchema)]
    pub source: SourceInfo,
    /// One entry per pod.
    #[schema(value_type = Vec<PodMetricsSchema>)]
    pub items: Vec<PodMetrics>,
}

/// Cluster metrics and their source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterResponse {
    /// Who answered.
    #[schema(value_type = SourceInfoSchema)]
    pub source: SourceInfo,
    /// The aggregates.
    #[schema(value_type = ClusterMetricsSchema)]
    pub metrics: ClusterMetrics,
}

/// Node metrics.
#[utoipa::path(get, path = "/api/v1/metrics/nodes", tag = "metrics",
    responses(
        (status = 200, body = NodesResponse),
        (status = 401, body = ErrorBody), (status = 503, description = "The source is unavailable", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn nodes(State(state): State<AppState>) -> Result<Json<NodesResponse>, ApiError> {
    let items = state.source().node_metrics().await?;
    Ok(Json(NodesResponse {
        source: state.source_info(),
        items,
    }))
}

/// Query of `/api/v1/metrics/pods`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PodsQuery {
    /// Only pods of this namespace.
    pub namespace: Option<String>,
}

/// Pod metrics, optionally of one namespace.
#[utoipa::path(get, path = "/api/v1/metrics/pods", tag = "metrics", params(PodsQuery),
    responses(
        (status = 200, body = PodsResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, description = "The source is unavailable", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn pods(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PodsQuery>,
) -> Result<Json<PodsResponse>, ApiError> {
    let namespace = query.namespace.filter(|n| !n.is_empty());
    let items = state.source().pod_metrics(namespace.as_deref()).await?;
    Ok(Json(PodsResponse {
        source: state.source_info(),
        items,
    }))
}

/// Cluster-wide aggregates.
#[utoipa::path(get, path = "/api/v1/metrics/cluster", tag = "metrics",
    responses(
        (status = 200, body = ClusterResponse),
        (status = 401, body = ErrorBody), (status = 503, description = "The source is unavailable", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn cluster(State(state): State<AppState>) -> Result<Json<ClusterResponse>, ApiError> {
    let metrics = state.source().cluster_metrics().await?;
    Ok(Json(ClusterResponse {
        source: state.source_info(),
        metrics,
    }))
}

/// Which source the server runs on, and whether it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceStatusResponse {
    /// The source.
    #[schema(value_type = SourceInfoSchema)]
    pub source: SourceInfo,
    /// Whether it is a real Prometheus (`false`: the simulated cluster).
    pub real: bool,
    /// Whether it answers now.
    pub up: bool,
    /// Why not, when it does not.
    pub error: Option<String>,
    /// The Prometheus URL, for a real source.
    pub prometheus_url: Option<String>,
    /// The cluster observed and acted on.
    #[schema(value_type = ClusterInfoSchema)]
    pub cluster: ClusterInfo,
    /// A note on the cluster side (observer and actuator).
    pub cluster_note: Option<String>,
    /// This replica's role (`single`, `leader`, `follower`) and its leader.
    pub replication: crate::leadership::Replication,
}

/// Whether the metric source answers, whether it is real or simulated, and
/// which cluster the server observes.
#[utoipa::path(get, path = "/api/v1/metrics/status", tag = "metrics",
    responses((status = 200, body = SourceStatusResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn status(State(state): State<AppState>) -> Json<SourceStatusResponse> {
    let source = state.source_info();
    let (up, error) = match state.probe_source().await {
        SourceProbe::Answers => (true, None),
        SourceProbe::Unavailable(reason) => (false, Some(reason)),
        SourceProbe::NotAskedYet => (false, Some("not asked yet".to_owned())),
        SourceProbe::NotConfigured => (
            false,
            Some("no metric source is configured (set PROMETHEUS_URL)".to_owned()),
        ),
    };
    let prometheus_url = state
        .prometheus()
        .map(|prometheus| prometheus.client().base_url().to_string());
    Json(SourceStatusResponse {
        real: source.kind == SourceKind::Prometheus,
        source,
        up,
        error,
        prometheus_url,
        cluster: state.cluster_info().clone(),
        cluster_note: state.cluster_note().map(str::to_owned),
        replication: state.leadership().status(),
    })
}

fn require_prometheus(state: &AppState) -> Result<&PrometheusSource, ApiError> {
    state.prometheus().ok_or_else(|| {
        let info = state.source_info();
        ApiError::NotImplemented(format!(
            "PromQL queries need a Prometheus source (set PROMETHEUS_URL); this server runs on {} ({})",
            info.name,
            info.kind.as_str()
        ))
    })
}

/// Query of `/api/v1/metrics/query`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstantQuery {
    /// The PromQL expression.
    pub query: Option<String>,
    /// Evaluation time, RFC 3339 or Unix seconds (Prometheus's now when absent).
    pub time: Option<String>,
}

/// A PromQL answer, in the Prometheus HTTP API's `data` format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromData {
    /// `vector`, `matrix`, `scalar` or `string`.
    pub result_type: String,
    /// As Prometheus returns it: `[{metric, value: [t, "v"]}]`,
    /// `[{metric, values: [[t, "v"], ...]}]`, `[t, "v"]`.
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

fn sample(s: &Sample) -> serde_json::Value {
    serde_json::json!([s.timestamp, format_value(s.value)])
}

fn prom_data(data: &QueryData) -> PromData {
    let result = match data {
        QueryData::Vector(samples) => samples
            .iter()
            .map(|s| serde_json::json!({"metric": s.metric, "value": sample(&s.value)}))
            .collect(),
        QueryData::Matrix(series) => series
            .iter()
            .map(|s| {
                let values: Vec<_> = s.values.iter().map(sample).collect();
                serde_json::json!({"metric": s.metric, "values": values})
            })
            .collect(),
        QueryData::Scalar(s) => sample(s),
        QueryData::String(s) => serde_json::json!([s.timestamp, s.value]),
    };
    PromData {
        result_type: data.result_type().to_owned(),
        result,
    }
}

fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(field, "is required"))
}

/// Runs an instant PromQL query on the Prometheus source.
#[utoipa::path(get, path = "/api/v1/metrics/query", tag = "metrics", params(InstantQuery),
    responses(
        (status = 200, body = PromData),
        (status = 400, description = "Missing or rejected query (Prometheus's message)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 501, description = "The server runs on the simulator, not Prometheus", body = ErrorBody),
        (status = 503, description = "Prometheus is unavailable", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn query(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<InstantQuery>,
) -> Result<Json<PromData>, ApiError> {
    let prometheus = require_prometheus(&state)?;
    let promql = required("query", &query.query)?;
    let time = query
        .time
        .as_deref()
        .map(|t| parse_time("time", t))
        .transpose()?;
    let data = prometheus.query(promql, time).await?;
    Ok(Json(prom_data(&data)))
}

/// Query of `/api/v1/metrics/query_range`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// The PromQL expression.
    pub query: Option<String>,
    /// Start, RFC 3339 or Unix seconds.
    pub start: Option<String>,
    /// End, RFC 3339 or Unix seconds.
    pub end: Option<String>,
    /// Resolution: seconds or a duration (`15s`, `1m`).
    pub step: Option<String>,
}

/// Runs a range PromQL query on the Prometheus source.
#[utoipa::path(get, path = "/api/v1/metrics/query_range", tag = "metrics", params(RangeQuery),
    responses(
        (status = 200, body = PromData),
        (status = 400, description = "A missing or invalid parameter, or a query Prometheus rejected", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 501, description = "The server runs on the simulator, not Prometheus", body = ErrorBody),
        (status = 503, description = "Prometheus is unavailable", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn query_range(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Json<PromData>, ApiError> {
    let prometheus = require_prometheus(&state)?;
    let promql = required("query", &query.query)?;
    let start = parse_time("start", required("start", &query.start)?)?;
    let end = parse_time("end", required("end", &query.end)?)?;
    let step = parse_duration("step", required("step", &query.step)?)?;
    if end < start {
        return Err(ApiError::bad_request("end", "is before start"));
    }
    let series = prometheus
        .query_range(promql, Range { start, end, step })
        .await?;
    Ok(Json(prom_data(&QueryData::Matrix(series))))
}
