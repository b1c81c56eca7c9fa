//! `/health`, `/ready`, `/metrics` and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::{AppState, SourceProbe};

/// The server is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// This replica's role (`single`, `leader`, `follower`) and its leader.
    pub replication: crate::leadership::Replication,
}

/// Liveness: answers as long as the process serves requests.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: state.uptime().as_secs(),
        replication: state.leadership().status(),
    })
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// What was checked: `storage`, `committer`, `metrics_source`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Details: the source's name and kind, or why it failed.
    pub detail: String,
}

/// Whether the server can do its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// The names of the failing checks.
    pub failing: Vec<String>,
    /// Every check.
    pub checks: Vec<Check>,
    /// This replica's role (`single`, `leader`, `follower`) and its leader:
    /// a follower is ready (it serves reads and forwards writes).
    pub replication: crate::leadership::Replication,
}

/// Readiness: the storage answers, the commit task runs and the metric
/// source answers; 503 naming what fails otherwise.
#[utoipa::path(get, path = "/ready", tag = "system",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `failing` names the failing parts", body = Readiness),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut checks = Vec::new();
    checks.push(match state.storage().ping().await {
        Ok(()) => Check {
            name: "storage".to_owned(),
            ok: true,
            detail: "answers".to_owned(),
        },
        Err(error) => {
            tracing::warn!(%error, "readiness: storage");
            Check {
                name: "storage".to_owned(),
                ok: false,
                detail: "does not answer".to_owned(),
            }
        }
    });
    checks.push(Check {
        name: "committer".to_owned(),
        ok: state.committer_running(),
        detail: if state.committer_running() {
            "running".to_owned()
        } else {
            "stopped".to_owned()
        },
    });
    let info = state.source_info();
    let kind = info.kind.as_str();
    let (ok, detail) = match state.probe_source().await {
        SourceProbe::Answers => (true, format!("{} ({kind}) answers", info.name)),
        SourceProbe::Unavailable(reason) => (
            false,
            format!("{} ({kind}) is unavailable: {reason}", info.name),
        ),
        SourceProbe::NotAskedYet => (
            false,
            format!("{} ({kind}) has not answered yet", info.name),
        ),
        SourceProbe::NotConfigured => (
            true,
            format!(
                "{} (none): no metric source is configured, so there are no metric signals; cluster state comes from the cluster API",
                info.name
            ),
        ),
    };
    checks.push(Check {
        name: "metrics_source".to_owned(),
        ok,
        detail,
    });
    let failing: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.clone())
        .collect();
    let readiness = Readiness {
        ready: failing.is_empty(),
        failing,
        checks,
        replication: state.leadership().status(),
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// Octrix's own metrics in the Prometheus text format, or OpenMetrics when
/// the `Accept` header asks for it.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "The exposition", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "No valid credentials (unless /metrics is public)", body = crate::error::ErrorBody),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = state
        .metrics()
        .encode_for(accept)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi() -> Response {
    use utoipa::OpenApi;
    Json(crate::openapi::ApiDoc::openapi()).into_response()
}
