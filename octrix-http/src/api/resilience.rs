//! Resilience (seed 003): a service registry with health checks, circuit
//! breakers, the load-balancing strategy, load tests and scaling.
//!
//! * A service is reached by URL (health: a real `GET <url><health_path>`
//!   every `check_interval_seconds`) or lives on the cluster (health: the
//!   engine's metric source, the simulator's state or Prometheus, for its
//!   namespace and name). A check that cannot tell says `unknown` with the
//!   reason; nothing is invented. Services are persisted as
//!   [`DocumentKind::Service`].
//! * One circuit breaker per service ([`BreakerRegistry`]), fed by load-test
//!   calls; their transitions go to the engine, which records them on the
//!   services' incidents and publishes `circuit:changed`.
//! * A load test sends real HTTP requests to the registered URL services at
//!   a bounded rate and concurrency, choosing each target with the core's
//!   [`LoadBalancer`] (healthy services only) and calling it through its
//!   breaker ([`load_test`]).
//! * Scaling goes through the engine's actuator and safety budget
//!   ([`Engine::scale_deployment`](octrix_core::engine::Engine::scale_deployment)).

mod load_test;
mod registry;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use octrix_core::Clock;
use octrix_core::engine::ScaleOutcome;
use octrix_core::resilience::{BreakerConfig, BreakerRegistry, BreakerSnapshot};
use octrix_core::routing::balancer::BalancingStrategy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use load_test::{LatencySummary, LoadTestRequest, LoadTestStatus, ServiceCounts};
pub use registry::{HealthState, ServiceHealth, ServiceSpec, ServiceView};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, OptionalJson};
use crate::state::AppState;
use crate::storage::{Document, DocumentKind, StorageError};

/// The resilience group's shared state.
pub struct Resilience {
    breakers: Arc<BreakerRegistry>,
    services: registry::Registry,
    strategy: std::sync::Mutex<BalancingStrategy>,
    load_test: load_test::Slot,
    http: reqwest::Client,
}

impl std::fmt::Debug for Resilience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilience")
            .field("breakers", &self.breakers)
            .finish_non_exhaustive()
    }
}

impl Resilience {
    /// Nothing registered yet; breakers with the default configuration.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        // reqwest is built without a default TLS provider (see the workspace).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let breakers = BreakerRegistry::new(BreakerConfig::default(), clock.clone())
            .expect("the default breaker configuration is valid");
        Self {
            breakers: Arc::new(breakers),
            services: registry::Registry::default(),
            strategy: std::sync::Mutex::new(BalancingStrategy::RoundRobin),
            load_test: load_test::Slot::default(),
            http: reqwest::Client::new(),
        }
    }

    /// The circuit breakers, one per service.
    pub fn breakers(&self) -> &Arc<BreakerRegistry> {
        &self.breakers
    }

    /// The load-balancing strategy of load tests.
    pub fn strategy(&self) -> BalancingStrategy {
        *self.strategy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Loads the registered services (at start-up) and starts their health checks.
pub async fn restore(state: &AppState) -> Result<(), ApiError> {
    let documents = state
        .storage()
        .list_documents(DocumentKind::Service, 100_000)
        .await?;
    for document in documents {
        let stored: registry::StoredService =
            serde_json::from_value(document.body).map_err(|e| StorageError::Corrupt {
                what: format!("service {}", document.id),
                reason: e.to_string(),
            })?;
        registry::start(state, stored);
    }
    Ok(())
}

async fn save_service(state: &AppState, stored: &registry::StoredService) -> Result<(), ApiError> {
    let body = serde_json::to_value(stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .storage()
        .put_document(&Document {
            kind: DocumentKind::Service,
            id: stored.spec.name.clone(),
            updated_at: state.now(),
            body,
        })
        .await?;
    Ok(())
}

/// Registered services with their health, by name.
#[utoipa::path(get, path = "/api/v1/resilience/services", tag = "resilience",
    responses((status = 200, body = Vec<ServiceView>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_services(State(state): State<AppState>) -> Json<Vec<ServiceView>> {
    Json(
        state
            .resilience()
            .services
            .views(&state.resilience().breakers),
    )
}

/// One service with its health.
#[utoipa::path(get, path = "/api/v1/resilience/services/{name}", tag = "resilience",
    params(("name" = String, Path, description = "Service name")),
    responses((status = 200, body = ServiceView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, ApiError> {
    let resilience = state.resilience();
    resilience
        .services
        .view(&name, &resilience.breakers)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("service {name}")))
}

/// Registers a service and starts its health checks.
#[utoipa::path(post, path = "/api/v1/resilience/services", tag = "resilience",
    request_body = ServiceSpec,
    responses(
        (status = 201, body = ServiceView),
        (status = 400, description = "Invalid; `field` names it (`name`, `url`, `namespace`, `check_interval_seconds`...)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A service has this name", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn register_service(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<ServiceSpec>,
) -> Result<Response, ApiError> {
    spec.validate()?;
    let resilience = state.resilience();
    if resilience.services.contains(&spec.name) {
        return Err(ApiError::Conflict(format!(
            "a service named {:?} is registered",
            spec.name
        )));
    }
    let stored = registry::StoredService {
        spec,
        registered_at: state.now(),
    };
    save_service(&state, &stored).await?;
    let name = stored.spec.name.clone();
    registry::start(&state, stored);
    let view = resilience
        .services
        .view(&name, &resilience.breakers)
        .ok_or_else(|| ApiError::Internal("the registered service is missing".into()))?;
    state
        .events()
        .publish_json("resilience:service-registered", &view);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Unregisters a service and stops its health checks.
#[utoipa::path(delete, path = "/api/v1/resilience/services/{name}", tag = "resilience",
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn delete_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.resilience().services.contains(&name) {
        return Err(ApiError::not_found(format!("service {name}")));
    }
    state
        .storage()
        .delete_document(DocumentKind::Service, &name)
        .await?;
    state.resilience().services.remove(&name);
    state.events().publish_json(
        "resilience:service-deleted",
        &serde_json::json!({ "name": name }),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a service's health now (besides its schedule) and answers it.
#[utoipa::path(post, path = "/api/v1/resilience/services/{name}/check", tag = "resilience",
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, body = ServiceView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn check_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceView>, ApiError> {
    let resilience = state.resilience();
    let entry = resilience
        .services
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("service {name}")))?;
    registry::check_and_publish(&state, &entry).await;
    resilience
        .services
        .view(&name, &resilience.breakers)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("service {name}")))
}

/// How many replicas to add or remove.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleBody {
    /// Replicas to add (scale-up) or remove (scale-down), 1 to 100 (default 1).
    pub by: u32,
}

impl Default for ScaleBody {
    fn default() -> Self {
        Self { by: 1 }
    }
}

/// What a scale request did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScaleReply {
    /// The service.
    pub service: String,
    /// `namespace/deployment`.
    pub workload: String,
    /// Replicas before.
    pub previous_replicas: u32,
    /// Replicas now asked for.
    pub replicas: u32,
    /// What the actuator reported.
    pub summary: String,
}

async fn scale(
    state: &AppState,
    name: &str,
    body: ScaleBody,
    up: bool,
) -> Result<Json<ScaleReply>, ApiError> {
    if body.by == 0 || body.by > 100 {
        return Err(ApiError::bad_request("by", "must be within 1..=100"));
    }
    let entry = state
        .resilience()
        .services
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("service {name}")))?;
    let spec = &entry.stored.spec;
    let (Some(namespace), Some(deployment)) = (&spec.namespace, &spec.deployment) else {
        return Err(ApiError::bad_request(
            "deployment",
            format!("service {name} names no namespace and deployment to scale"),
        ));
    };
    let change = if up {
        body.by as i32
    } else {
        -(body.by as i32)
    };
    let mut engine = state.engine().await;
    let outcome: ScaleOutcome = engine
        .scale_deployment(namespace, deployment, change)
        .await?;
    drop(engine);
    let reply = ScaleReply {
        service: name.to_owned(),
        workload: outcome.workload,
        previous_replicas: outcome.previous_replicas,
        replicas: outcome.replicas,
        summary: outcome.summary,
    };
    state.events().publish_json("resilience:scaled", &reply);
    Ok(Json(reply))
}

/// Adds replicas to a service's deployment, through the actuator and the
/// safety budget.
#[utoipa::path(post, path = "/api/v1/resilience/services/{name}/scale-up", tag = "resilience",
    params(("name" = String, Path, description = "Service name")),
    request_body(content = ScaleBody, description = "Optional; `{by: 1}` by default"),
    responses(
        (status = 200, body = ScaleReply),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such service or deployment", body = ErrorBody),
        (status = 409, description = "Refused: protected namespace or safety budget", body = ErrorBody),
        (status = 503, description = "The cluster cannot be observed or changed", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn scale_up(
    State(state): State<AppState>,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson<ScaleBody>,
) -> Result<Json<ScaleReply>, ApiError> {
    scale(&state, &name, body, true).await
}

/// Removes replicas from a service's deployment, through the actuator and
/// the safety budget (never the last ready replica).
#[utoipa::path(post, path = "/api/v1/resilience/services/{name}/scale-down", tag = "resilience",
    params(("name" = String, Path, description = "Service name")),
    request_body(content = ScaleBody, description = "Optional; `{by: 1}` by default"),
    responses(
        (status = 200, body = ScaleReply),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such service or deployment", body = ErrorBody),
        (status = 409, description = "Refused: protected namespace or safety budget", body = ErrorBody),
        (status = 503, description = "The cluster cannot be observed or changed", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn scale_down(
    State(state): State<AppState>,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson<ScaleBody>,
) -> Result<Json<ScaleReply>, ApiError> {
    scale(&state, &name, body, false).await
}

/// A circuit breaker's state and counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerView {
    /// The protected service.
    pub service: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Calls in the sliding window.
    pub window_calls: u64,
    /// Failed calls in the window.
    pub window_failures: u64,
    /// Slow calls in the window.
    pub window_slow_calls: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// When it last opened, while open.
    pub opened_at: Option<jiff::Timestamp>,
}

impl From<BreakerSnapshot> for BreakerView {
    fn from(s: BreakerSnapshot) -> Self {
        Self {
            service: s.service,
            state: serde_json::to_value(s.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| s.state.to_string()),
            window_calls: s.window_calls,
            window_failures: s.window_failures,
            window_slow_calls: s.window_slow_calls,
            consecutive_failures: s.consecutive_failures,
            opened_at: s.opened_at,
        }
    }
}

/// Every circuit breaker, by service (one exists once a service was called).
#[utoipa::path(get, path = "/api/v1/resilience/circuit-breakers", tag = "resilience",
    responses((status = 200, body = Vec<BreakerView>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_breakers(State(state): State<AppState>) -> Json<Vec<BreakerView>> {
    Json(
        state
            .resilience()
            .breakers
            .snapshots()
            .into_iter()
            .map(BreakerView::from)
            .collect(),
    )
}

/// Drains breaker transitions into the engine: it records them on the
/// services' incidents and publishes `circuit:changed`.
pub(crate) async fn record_transitions(state: &AppState) {
    let transitions = state.resilience().breakers.drain_transitions();
    if transitions.is_empty() {
        return;
    }
    let mut engine = state.engine().await;
    let recorded = engine.record_breaker_transitions(&transitions).await;
    let committed = engine.commit().await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "cannot record circuit breaker transitions");
    }
    if let Err(error) = committed {
        tracing::warn!(%error, "cannot persist circuit breaker transitions");
    }
}

/// Closes a service's breaker and clears its window.
#[utoipa::path(post, path = "/api/v1/resilience/circuit-breakers/{service}/reset", tag = "resilience",
    params(("service" = String, Path, description = "Service name")),
    responses(
        (status = 200, body = BreakerView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No breaker for this service", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn reset_breaker(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Json<BreakerView>, ApiError> {
    let breaker = state
        .resilience()
        .breakers
        .get(&service)
        .ok_or_else(|| ApiError::not_found(format!("circuit breaker of {service}")))?;
    breaker.reset();
    record_transitions(&state).await;
    Ok(Json(breaker.snapshot().into()))
}

/// The load-balancing strategy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Balancer {
    /// `round_robin`, `least_outstanding`, `weighted` or `power_of_two_choices`.
    #[schema(value_type = String, example = "round_robin")]
    pub algorithm: BalancingStrategy,
}

/// The load-balancing strategy load tests use.
#[utoipa::path(get, path = "/api/v1/resilience/load-balancer", tag = "resilience",
    responses((status = 200, body = Balancer), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_balancer(State(state): State<AppState>) -> Json<Balancer> {
    Json(Balancer {
        algorithm: state.resilience().strategy(),
    })
}

/// Switches the load-balancing strategy (a running load test switches too).
#[utoipa::path(put, path = "/api/v1/resilience/load-balancer", tag = "resilience",
    request_body = Balancer,
    responses(
        (status = 200, body = Balancer),
        (status = 400, description = "`algorithm` is not a known strategy", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn put_balancer(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Balancer>,
) -> Json<Balancer> {
    *state
        .resilience()
        .strategy
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = body.algorithm;
    state.resilience().load_test.set_strategy(body.algorithm);
    state.events().publish_json("resilience:balancer", &body);
    Json(body)
}

/// Starts a load test against the registered URL services.
#[utoipa::path(post, path = "/api/v1/resilience/load-test/start", tag = "resilience",
    request_body = LoadTestRequest,
    responses(
        (status = 201, body = LoadTestStatus),
        (status = 400, description = "Invalid; `field` names it (`requests_per_second`, `concurrency`, `service`...)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A load test is running", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn start_load_test(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoadTestRequest>,
) -> Result<Response, ApiError> {
    let status = load_test::start(&state, request)?;
    state.events().publish_json("resilience:load-test", &status);
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// Stops the running load test and answers its final status.
#[utoipa::path(post, path = "/api/v1/resilience/load-test/stop", tag = "resilience",
    responses(
        (status = 200, body = LoadTestStatus),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "No load test is running", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn stop_load_test(
    State(state): State<AppState>,
) -> Result<Json<LoadTestStatus>, ApiError> {
    let status = load_test::stop(&state).await?;
    state.events().publish_json("resilience:load-test", &status);
    Ok(Json(status))
}

/// The current (or last) load test: counts, status codes, latency
/// percentiles, errors.
#[utoipa::path(get, path = "/api/v1/resilience/load-test/status", tag = "resilience",
    responses(
        (status = 200, body = LoadTestStatus), (status = 401, body = ErrorBody),
        (status = 404, description = "No load test has run", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn load_test_status(
    State(state): State<AppState>,
) -> Result<Json<LoadTestStatus>, ApiError> {
    state
        .resilience()
        .load_test
        .status()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("load test"))
}

/// Counts of something per key, sorted.
pub type Counts = BTreeMap<String, u64>;
