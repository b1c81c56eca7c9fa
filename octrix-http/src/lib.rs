//! # octrix-http
//!
//! The Octrix server: REST API, Alertmanager webhook, live events,
//! authentication and durable storage, and the `octrix` binary.
//!
//! [`app`] builds the whole API as an axum [`Router`] over an [`AppState`],
//! so that tests drive it with `tower::ServiceExt::oneshot` and no socket:
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use octrix_core::{ManualClock, Timestamp};
//! use octrix_http::auth::{AuthConfig, Role};
//! use octrix_http::{AppState, MemoryStorage, app};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
//! let auth = AuthConfig::builder().token("ops", Role::Operator, "s3cret").build();
//! let state = AppState::simulated(Arc::new(MemoryStorage::new()), clock, auth).unwrap();
//! let response = app(state)
//!     .oneshot(Request::get("/api/v1/incidents").header("authorization", "Bearer s3cret")
//!         .body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! # });
//! ```
//!
//! Modules:
//!
//! * [`api`]: the handlers, one module per endpoint group;
//! * [`auth`]: roles, hashed bearer tokens, JWT, the webhook's token and
//!   allowlist;
//! * [`events`]: the broadcast [`events::EventHub`] (the engine's
//!   `EventSink`) and the WebSocket and SSE streams;
//! * [`commit`]: durable acknowledgement with group commit;
//! * [`storage`]: the [`storage::Storage`] port, and [`MemoryStorage`];
//! * [`config`]: the server's configuration (file plus environment);
//! * [`leadership`]: several replicas on one PostgreSQL database (a lease
//!   elects the leader; followers forward writes to it);
//! * [`openapi`]: the OpenAPI 3 document served at `/api/openapi.json`;
//! * [`error`]: [`ApiError`], the one place errors become responses.

pub mod api;
pub mod auth;
pub mod clock;
pub mod commit;
pub mod config;
pub mod error;
pub mod events;
pub mod extract;
pub mod kubernetes;
pub mod layers;
pub mod leadership;
pub mod memory_storage;
pub mod openapi;
pub mod route_applier;
mod schemas;
pub mod state;
pub mod storage;
pub mod unwired;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use clock::SystemClock;
pub use error::ApiError;
pub use memory_storage::MemoryStorage;
pub use state::{AppState, Limits, ServerParts};

use crate::api::{alerts, healing, incidents, metrics, resilience, routing, simulator, system};
use crate::auth::{Gate, Role};

fn gated(state: &AppState, role: Role, router: Router<AppState>) -> Router<AppState> {
    router.route_layer(from_fn_with_state(
        Gate {
            auth: state.auth().clone(),
            role,
        },
        auth::require_role,
    ))
}

/// The routes every role may read.
fn viewer_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/metrics/nodes", get(metrics::nodes))
        .route("/api/v1/metrics/pods", get(metrics::pods))
        .route("/api/v1/metrics/cluster", get(metrics::cluster))
        .route("/api/v1/metrics/query", get(metrics::query))
        .route("/api/v1/metrics/query_range", get(metrics::query_range))
        .route("/api/v1/metrics/status", get(metrics::status))
        .route("/api/v1/incidents", get(incidents::list_incidents))
        .route("/api/v1/incidents/stats", get(incidents::stats))
        .route("/api/v1/incidents/alerts", get(alerts::list_alerts))
        .route("/api/v1/incidents/{id}", get(incidents::get_incident))
        .route("/api/v1/healing/rules", get(healing::list_rules))
        .route("/api/v1/healing/rules/{name}", get(healing::get_rule))
        .route("/api/v1/healing/config", get(healing::get_config))
        .route("/api/v1/healing/dry-run", get(healing::get_dry_run))
        .route("/api/v1/healing/actions", get(healing::actions))
        .route("/api/v1/routing/rules", get(routing::list))
        .route("/api/v1/routing/rules/{id}", get(routing::get))
        .route("/api/v1/routing/rules/{id}/canary", get(routing::canary))
        .merge(simulator_read_routes())
        .merge(resilience_read_routes())
}

fn simulator_read_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/simulator/scenarios",
            get(simulator::list_scenarios),
        )
        .route(
            "/api/v1/simulator/scenarios/{id}",
            get(simulator::get_scenario),
        )
        .route("/api/v1/simulator/runs", get(simulator::list_runs))
        .route("/api/v1/simulator/runs/active", get(simulator::active_runs))
        .route("/api/v1/simulator/runs/{id}", get(simulator::get_run))
        .route("/api/v1/simulator/stats", get(simulator::stats))
}

fn resilience_read_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/resilience/services",
            get(resilience::list_services),
        )
        .route(
            "/api/v1/resilience/services/{name}",
            get(resilience::get_service),
        )
        .route(
            "/api/v1/resilience/circuit-breakers",
            get(resilience::list_breakers),
        )
        .route(
            "/api/v1/resilience/load-balancer",
            get(resilience::get_balancer),
        )
        .route(
            "/api/v1/resilience/load-test/status",
            get(resilience::load_test_status),
        )
}

/// Simulator and resilience routes that act: operators and admins.
fn acting_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/simulator/scenarios/{id}/start",
            post(simulator::start),
        )
        .route("/api/v1/simulator/runs/{id}/stop", post(simulator::stop))
        .route(
            "/api/v1/simulator/runs/{id}/cancel",
            post(simulator::cancel),
        )
        .route(
            "/api/v1/resilience/services/{name}/check",
            post(resilience::check_service),
        )
        .route(
            "/api/v1/resilience/services/{name}/scale-up",
            post(resilience::scale_up),
        )
        .route(
            "/api/v1/resilience/services/{name}/scale-down",
            post(resilience::scale_down),
        )
        .route(
            "/api/v1/resilience/circuit-breakers/{service}/reset",
            post(resilience::reset_breaker),
        )
        .route(
            "/api/v1/resilience/load-balancer",
            axum::routing::put(resilience::put_balancer),
        )
        .route(
            "/api/v1/resilience/load-test/start",
            post(resilience::start_load_test),
        )
        .route(
            "/api/v1/resilience/load-test/stop",
            post(resilience::stop_load_test),
        )
}

/// Simulator and resilience routes that change configuration: admins.
fn configuring_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/simulator/scenarios",
            post(simulator::create_scenario),
        )
        .route(
            "/api/v1/simulator/scenarios/{id}",
            axum::routing::delete(simulator::delete_scenario),
        )
        .route(
            "/api/v1/resilience/services",
            post(resilience::register_service),
        )
        .route(
            "/api/v1/resilience/services/{name}",
            axum::routing::delete(resilience::delete_service),
        )
}

/// The routes that act: operators and admins.
fn operator_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/incidents/{id}/acknowledge",
            post(incidents::acknowledge),
        )
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{id}/assign", post(incidents::assign))
        .route("/api/v1/incidents/{id}/notes", post(incidents::add_note))
        .route(
            "/api/v1/incidents/alerts/{fingerprint}/acknowledge",
            post(alerts::acknowledge_alert),
        )
        .route(
            "/api/v1/healing/dry-run",
            axum::routing::put(healing::put_dry_run),
        )
        .route("/api/v1/routing/rules/{id}/deploy", post(routing::deploy))
        .route(
            "/api/v1/routing/rules/{id}/canary",
            post(routing::start_canary),
        )
        .merge(acting_routes())
}

/// The routes that change rules and configuration: admins.
fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/healing/rules", post(healing::create_rule))
        .route(
            "/api/v1/healing/rules/{name}",
            axum::routing::put(healing::update_rule).delete(healing::delete_rule),
        )
        .route(
            "/api/v1/healing/config",
            axum::routing::put(healing::put_config),
        )
        .route("/api/v1/incidents/export", get(incidents::export))
        .route("/api/v1/routing/rules", post(routing::create))
        .route(
            "/api/v1/routing/rules/{id}",
            axum::routing::put(routing::update).delete(routing::delete),
        )
        .merge(configuring_routes())
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
}

/// The whole API over `state`, with CORS allowing the origins of
/// `state.limits()`'s configuration (see [`app_with_cors`]) left closed.
pub fn app(state: AppState) -> Router {
    app_with_cors(state, &[])
}

/// The whole API over `state`, answering CORS requests from `cors_origins`
/// (`*` for any origin; none: no CORS headers at all).
pub fn app_with_cors(state: AppState, cors_origins: &[String]) -> Router {
    let limits = state.limits().clone();
    let public = Router::new()
        .route("/health", get(system::health))
        .route("/ready", get(system::ready))
        .route("/api/openapi.json", get(system::openapi));
    let exposition = Router::new().route("/metrics", get(system::metrics));
    let exposition = if state.auth().public_metrics() {
        exposition
    } else {
        gated(&state, Role::Viewer, exposition)
    };
    let streams = Router::new()
        .route("/api/v1/events/ws", get(events::ws))
        .route("/api/v1/events/sse", get(events::sse))
        .route_layer(from_fn_with_state(
            Gate {
                auth: state.auth().clone(),
                role: Role::Viewer,
            },
            auth::require_role_stream,
        ));
    let webhook = Router::new()
        .route("/api/v1/alerts", post(alerts::receive))
        .route("/alerts", post(alerts::receive))
        .route_layer(from_fn_with_state(
            state.rate_limit().clone(),
            layers::rate_limit,
        ))
        .route_layer(from_fn_with_state(
            state.auth().clone(),
            auth::require_webhook,
        ));
    let mut router = Router::new()
        .merge(public)
        .merge(exposition)
        .merge(streams)
        .merge(webhook)
        .merge(gated(&state, Role::Viewer, viewer_routes()))
        .merge(gated(&state, Role::Operator, operator_routes()))
        .merge(gated(&state, Role::Admin, admin_routes()))
        .fallback(|| async { ApiError::not_found("route") })
        // Before authentication: the leader checks the caller's credentials.
        .layer(from_fn_with_state(
            state.clone(),
            leadership::forward_writes,
        ))
        .layer(from_fn_with_state(state.clone(), layers::record_http))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TraceLayer::new_for_http());
    if !cors_origins.is_empty() {
        router = router.layer(cors(cors_origins));
    }
    router.with_state(state)
}
