//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{alerts, healing, incidents, metrics, resilience, routing, simulator, system};
use crate::{error, events, schemas};

/// The API's OpenAPI document; `ApiDoc::openapi()` builds it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Octrix",
        description = "Octrix, a self-healing reliability engine for Kubernetes: incidents, \
            Alertmanager ingestion, healing, metrics and live events.\n\n\
            Authentication: `Authorization: Bearer <token>`. Roles: viewer (read), operator \
            (acknowledge/resolve, start/stop runs, deploy routes, healing switches), admin \
            (rules and configuration). Missing or invalid credentials: 401; a role too low: 403."
    ),
    paths(
        system::health, system::ready, system::metrics, system::openapi,
        metrics::nodes, metrics::pods, metrics::cluster, metrics::status, metrics::query,
        metrics::query_range,
        incidents::list_incidents, incidents::stats, incidents::get_incident,
        incidents::acknowledge, incidents::resolve, incidents::assign, incidents::add_note,
        incidents::export,
        alerts::receive, alerts::list_alerts, alerts::acknowledge_alert,
        healing::list_rules, healing::get_rule, healing::create_rule, healing::update_rule,
        healing::delete_rule, healing::get_config, healing::put_config, healing::get_dry_run,
        healing::put_dry_run, healing::actions,
        routing::list, routing::get, routing::create, routing::update, routing::delete,
        routing::deploy, routing::start_canary, routing::canary,
        simulator::list_scenarios, simulator::get_scenario, simulator::create_scenario,
        simulator::delete_scenario, simulator::start, simulator::list_runs,
        simulator::active_runs, simulator::get_run, simulator::stop, simulator::cancel,
        simulator::stats,
        resilience::list_services, resilience::get_service, resilience::register_service,
        resilience::delete_service, resilience::check_service, resilience::scale_up,
        resilience::scale_down, resilience::list_breakers, resilience::reset_breaker,
        resilience::get_balancer, resilience::put_balancer, resilience::start_load_test,
        resilience::stop_load_test, resilience::load_test_status,
        events::sse, events::ws,
    ),
    components(schemas(
        error::ErrorBody, error::ErrorDetail,
        schemas::IncidentSchema, schemas::IncidentPageSchema, schemas::SeveritySchema,
        schemas::CategorySchema, schemas::IncidentStatusSchema, schemas::DurationSummarySchema,
        schemas::SourceInfoSchema, schemas::NodeMetricsSchema, schemas::PodMetricsSchema,
        schemas::ClusterMetricsSchema, schemas::HealingRuleSchema, schemas::HealingConfigSchema,
        schemas::ActionRecordSchema,
        events::Dropped, events::Control, routing::StoredRule, routing::Deployment,
        routing::GitOpsFile, routing::CanaryStatus,
        resilience::ServiceSpec, resilience::ServiceView, resilience::ServiceHealth,
        resilience::HealthState, resilience::BreakerView, resilience::Balancer,
        resilience::ScaleBody, resilience::ScaleReply, resilience::LoadTestRequest,
        resilience::LoadTestStatus, resilience::LatencySummary, resilience::ServiceCounts,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "system", description = "Health, readiness, Octrix's own metrics, this document"),
        (name = "metrics", description = "Cluster metrics from Prometheus or the simulator"),
        (name = "incidents", description = "Incidents and what people do to them"),
        (name = "alerts", description = "Alertmanager ingestion and the alerts view"),
        (name = "healing", description = "Healing rules, dry run, action history"),
        (name = "routing", description = "Traffic rules, Istio manifests, GitOps export"),
        (name = "simulator", description = "Chaos scenarios, runs and statistics"),
        (name = "resilience", description = "Services and health checks, circuit breakers, load balancing, load tests, scaling"),
        (name = "events", description = "Live events over WebSocket and SSE"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A static token (viewer, operator, admin, or the webhook's), or an HS256 JWT with `sub`, `role`, `exp` when JWT_SECRET is set",
                    ))
                    .build(),
            ),
        );
    }
}
