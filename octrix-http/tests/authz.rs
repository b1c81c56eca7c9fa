//! The authorization matrix: every endpoint x (no token, viewer, operator,
//! admin), each status asserted. Every cell runs on a fresh server with one
//! incident (from a webhook delivery), one healing rule, one traffic rule,
//! and what the simulator and resilience rows act on (`setup_groups`).

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Need {
    /// No credentials needed.
    Public,
    Viewer,
    Operator,
    Admin,
    /// The webhook token, or an operator's or admin's.
    Webhook,
}

struct Endpoint {
    method: Method,
    path: &'static str,
    body: Option<serde_json::Value>,
    need: Need,
    /// The status for a caller who is allowed.
    allowed: StatusCode,
}

fn endpoint(
    method: Method,
    path: &'static str,
    body: Option<serde_json::Value>,
    need: Need,
    allowed: StatusCode,
) -> Endpoint {
    Endpoint {
        method,
        path,
        body,
        need,
        allowed,
    }
}

fn rule() -> serde_json::Value {
    json!({"name": "restarts", "actions": [{"type": "restart-pod"}]})
}

fn traffic_rule() -> serde_json::Value {
    json!({"service": "reviews", "namespace": "bookinfo",
           "destinations": [{"subset": "v1", "labels": {"version": "v1"}, "weight": 90}, {"subset": "v2", "labels": {"version": "v2"}, "weight": 10}]})
}

fn endpoints() -> Vec<Endpoint> {
    use Need::*;
    use StatusCode as S;
    let get = |path, need, allowed| endpoint(Method::GET, path, None, need, allowed);
    vec![
        get("/health", Public, S::OK),
        get("/ready", Public, S::OK),
        get("/metrics", Public, S::OK),
        get("/api/openapi.json", Public, S::OK),
        get("/api/v1/metrics/nodes", Viewer, S::OK),
        get("/api/v1/metrics/pods", Viewer, S::OK),
        get("/api/v1/metrics/cluster", Viewer, S::OK),
        get("/api/v1/metrics/status", Viewer, S::OK),
        get("/api/v1/metrics/query?query=up", Viewer, S::NOT_IMPLEMENTED),
        get(
            "/api/v1/metrics/query_range?query=up&start=0&end=60&step=15",
            Viewer,
            S::NOT_IMPLEMENTED,
        ),
        get("/api/v1/incidents", Viewer, S::OK),
        get("/api/v1/incidents/stats", Viewer, S::OK),
        get("/api/v1/incidents/alerts", Viewer, S::OK),
        get("/api/v1/incidents/INC-000001", Viewer, S::OK),
        get("/api/v1/incidents/export", Admin, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/incidents/INC-000001/acknowledge",
            Some(json!({"note": "mine"})),
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/incidents/INC-000001/resolve",
            Some(json!({})),
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/incidents/INC-000001/assign",
            Some(json!({"assignee": "bob"})),
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/incidents/INC-000001/notes",
            Some(json!({"text": "checked the node"})),
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/incidents/alerts/413724370af55eb6/acknowledge",
            None,
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/alerts",
            Some(serde_json::from_slice(FIRING).unwrap()),
            Webhook,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/alerts",
            Some(serde_json::from_slice(FIRING).unwrap()),
            Webhook,
            S::OK,
        ),
        get("/api/v1/healing/rules", Viewer, S::OK),
        get("/api/v1/healing/rules/restarts", Viewer, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/healing/rules",
            Some(json!({"name": "another", "actions": [{"type": "restart-pod"}]})),
            Admin,
            S::CREATED,
        ),
        endpoint(
            Method::PUT,
            "/api/v1/healing/rules/restarts",
            Some(rule()),
            Admin,
            S::OK,
        ),
        endpoint(
            Method::DELETE,
            "/api/v1/healing/rules/restarts",
            None,
            Admin,
            S::NO_CONTENT,
        ),
        get("/api/v1/healing/config", Viewer, S::OK),
        endpoint(
            Method::PUT,
            "/api/v1/healing/config",
            Some(json!({"rules": []})),
            Admin,
            S::OK,
        ),
        get("/api/v1/healing/dry-run", Viewer, S::OK),
        endpoint(
            Method::PUT,
            "/api/v1/healing/dry-run",
            Some(json!({"dry_run": true})),
            Operator,
            S::OK,
        ),
        get("/api/v1/healing/actions", Viewer, S::OK),
        get("/api/v1/routing/rules", Viewer, S::OK),
        get("/api/v1/routing/rules/bookinfo.reviews", Viewer, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/routing/rules",
            Some(json!({"service": "ratings", "namespace": "bookinfo",
                        "destinations": [{"subset": "v1", "labels": {"version": "v1"}, "weight": 100}]})),
            Admin,
            S::CREATED,
        ),
        endpoint(
            Method::PUT,
            "/api/v1/routing/rules/bookinfo.reviews",
            Some(traffic_rule()),
            Admin,
            S::OK,
        ),
        endpoint(
            Method::DELETE,
            "/api/v1/routing/rules/bookinfo.reviews",
            None,
            Admin,
            S::NO_CONTENT,
        ),
        endpoint(
            Method::POST,
            "/api/v1/routing/rules/bookinfo.reviews/deploy",
            None,
            Operator,
            S::OK,
        ),
        // Without a WebSocket upgrade (oneshot has no connection), the
        // handler refuses with 400 after the credentials were accepted.
        get("/api/v1/events/ws", Viewer, S::BAD_REQUEST),
        get(
            "/api/v1/routing/rules/bookinfo.reviews/canary",
            Viewer,
            S::NOT_FOUND,
        ),
        endpoint(
            Method::POST,
            "/api/v1/routing/rules/bookinfo.reviews/canary",
            Some(json!({"stable_subset": "v1", "canary_subset": "v2",
                        "steps": [{"set_weight": 20}, {"analysis": {"checks": 1}}],
                        "analysis": {"interval": "1m", "window_seconds": 60, "failure_limit": 1}})),
            Operator,
            S::CREATED,
        ),
        // The simulator.
        get("/api/v1/simulator/scenarios", Viewer, S::OK),
        get("/api/v1/simulator/scenarios/lossy-checkout", Viewer, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/simulator/scenarios",
            Some(scenario("another-loss")),
            Admin,
            S::CREATED,
        ),
        endpoint(
            Method::DELETE,
            "/api/v1/simulator/scenarios/lossy-checkout",
            None,
            Admin,
            S::NO_CONTENT,
        ),
        endpoint(
            Method::POST,
            "/api/v1/simulator/scenarios/builtin-latency-injection/start",
            Some(json!({"target": {"namespace": "shop", "labels": {"app": "checkout"}}})),
            Operator,
            S::CREATED,
        ),
        get("/api/v1/simulator/runs", Viewer, S::OK),
        get("/api/v1/simulator/runs/active", Viewer, S::OK),
        get("/api/v1/simulator/runs/run-1", Viewer, S::OK),
        get("/api/v1/simulator/stats", Viewer, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/simulator/runs/run-1/stop",
            None,
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/simulator/runs/run-2/cancel",
            None,
            Operator,
            S::OK,
        ),
        // Resilience.
        get("/api/v1/resilience/services", Viewer, S::OK),
        get("/api/v1/resilience/services/payments", Viewer, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/resilience/services",
            Some(
                json!({"name": "web", "url": "http://127.0.0.1:9", "check_interval_seconds": 3600}),
            ),
            Admin,
            S::CREATED,
        ),
        endpoint(
            Method::DELETE,
            "/api/v1/resilience/services/payments",
            None,
            Admin,
            S::NO_CONTENT,
        ),
        endpoint(
            Method::POST,
            "/api/v1/resilience/services/payments/check",
            None,
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/resilience/services/payments/scale-up",
            None,
            Operator,
            S::OK,
        ),
        endpoint(
            Method::POST,
            "/api/v1/resilience/services/payments/scale-down",
            Some(json!({"by": 1})),
            Operator,
            S::OK,
        ),
        get("/api/v1/resilience/circuit-breakers", Viewer, S::OK),
        endpoint(
            Method::POST,
            "/api/v1/resilience/circuit-breakers/payments/reset",
            None,
            Operator,
            S::OK,
        ),
        get("/api/v1/resilience/load-balancer", Viewer, S::OK),
        endpoint(
            Method::PUT,
            "/api/v1/resilience/load-balancer",
            Some(json!({"algorithm": "weighted"})),
            Operator,
            S::OK,
        ),
        // No load test has run yet.
        get("/api/v1/resilience/load-test/status", Viewer, S::NOT_FOUND),
        endpoint(
            Method::POST,
            "/api/v1/resilience/load-test/start",
            Some(json!({"service": "edge", "requests_per_second": 1, "duration_seconds": 1})),
            Operator,
            S::CREATED,
        ),
        // Nothing is running to stop: refused after the credentials passed.
        endpoint(
            Method::POST,
            "/api/v1/resilience/load-test/stop",
            None,
            Operator,
            S::CONFLICT,
        ),
    ]
}

fn scenario(id: &str) -> serde_json::Value {
    json!({"id": id, "name": "Lossy checkout",
           "target": {"namespace": "shop", "labels": {"app": "checkout"}},
           "type": "packet-loss", "parameters": {"loss_percent": 30, "duration_seconds": 60}})
}

/// What the simulator and resilience rows act on: an observed cluster, a
/// custom scenario, a running run-1 and a pending run-2, a cluster service
/// `payments` with a breaker, and a URL service `edge`.
async fn setup_groups(h: &Harness) {
    h.state.tick().await;
    h.post_json(
        "/api/v1/simulator/scenarios",
        ADMIN,
        scenario("lossy-checkout"),
    )
    .await
    .expect(StatusCode::CREATED);
    let payments = json!({"target": {"namespace": "shop", "labels": {"app": "payments"}}});
    h.post_json(
        "/api/v1/simulator/scenarios/builtin-service-failure/start",
        OPERATOR,
        payments.clone(),
    )
    .await
    .expect(StatusCode::CREATED);
    let mut later = payments;
    later["start_at"] = json!("2026-11-23T12:00:00Z");
    h.post_json(
        "/api/v1/simulator/scenarios/builtin-service-failure/start",
        OPERATOR,
        later,
    )
    .await
    .expect(StatusCode::CREATED);
    h.post_json(
        "/api/v1/resilience/services",
        ADMIN,
        json!({"name": "payments", "namespace": "shop", "deployment": "payments",
               "check_interval_seconds": 3600}),
    )
    .await
    .expect(StatusCode::CREATED);
    h.post_json(
        "/api/v1/resilience/services",
        ADMIN,
        json!({"name": "edge", "url": "http://127.0.0.1:9", "check_interval_seconds": 3600}),
    )
    .await
    .expect(StatusCode::CREATED);
    h.state.resilience().breakers().breaker("payments");
}

/// The status a caller with `token` must get.
fn expected(endpoint: &Endpoint, caller: Option<&str>) -> StatusCode {
    let rank = |token: &str| match token {
        VIEWER => 1,
        OPERATOR => 2,
        ADMIN => 3,
        _ => unreachable!(),
    };
    let needed = match endpoint.need {
        Need::Public => return endpoint.allowed,
        Need::Viewer => 1,
        Need::Operator | Need::Webhook => 2,
        Need::Admin => 3,
    };
    match caller {
        None => StatusCode::UNAUTHORIZED,
        Some(token) if rank(token) < needed => StatusCode::FORBIDDEN,
        Some(_) => endpoint.allowed,
    }
}

#[tokio::test]
async fn every_endpoint_answers_each_role_as_it_should() {
    let mut failures = Vec::new();
    let mut cells = 0;
    for endpoint in endpoints() {
        for caller in [None, Some(VIEWER), Some(OPERATOR), Some(ADMIN)] {
            let h = Harness::new();
            h.deliver(FIRING).await.expect(StatusCode::OK);
            h.post_json("/api/v1/healing/rules", ADMIN, rule())
                .await
                .expect(StatusCode::CREATED);
            h.post_json("/api/v1/routing/rules", ADMIN, traffic_rule())
                .await
                .expect(StatusCode::CREATED);
            setup_groups(&h).await;
            let body = endpoint
                .body
                .as_ref()
                .map(|b| serde_json::to_vec(b).unwrap());
            let reply = h
                .call(endpoint.method.clone(), endpoint.path, caller, body)
                .await;
            let want = expected(&endpoint, caller);
            cells += 1;
            if reply.status != want {
                failures.push(format!(
                    "{} {} as {:?}: got {}, want {} ({})",
                    endpoint.method,
                    endpoint.path,
                    caller,
                    reply.status,
                    want,
                    reply.text()
                ));
            }
            if reply.status == StatusCode::UNAUTHORIZED {
                assert_eq!(
                    reply.headers["www-authenticate"], "Bearer realm=\"octrix\"",
                    "{} {}",
                    endpoint.method, endpoint.path
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, endpoints().len() * 4);
}

#[tokio::test]
async fn the_sse_stream_answers_each_role() {
    for (caller, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(VIEWER), StatusCode::OK),
        (Some(OPERATOR), StatusCode::OK),
        (Some(ADMIN), StatusCode::OK),
    ] {
        let h = Harness::new();
        let mut request = axum::http::Request::get("/api/v1/events/sse?topics=cluster");
        if let Some(token) = caller {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        // The stream never ends: look at the status only.
        let response = tower::ServiceExt::oneshot(h.app(), request).await.unwrap();
        assert_eq!(response.status(), want, "{caller:?}");
    }
}

#[tokio::test]
async fn the_webhook_token_opens_only_the_webhook() {
    let h = Harness::new();
    h.deliver(FIRING).await.expect(StatusCode::OK);
    // It is not a user token: 401 elsewhere.
    h.get("/api/v1/incidents", WEBHOOK)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    h.call(Method::GET, "/api/v1/incidents", Some("not-a-token"), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_authorization_headers_are_401() {
    let h = Harness::new();
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", VIEWER] {
        let request = axum::http::Request::get("/api/v1/incidents")
            .header("authorization", header)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(h.app(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
}

#[tokio::test]
async fn event_streams_accept_the_token_as_a_query_parameter() {
    let h = Harness::new();
    // The stream never ends: look at the status only.
    let request = axum::http::Request::get(format!(
        "/api/v1/events/sse?topics=cluster&access_token={VIEWER}"
    ))
    .body(axum::body::Body::empty())
    .unwrap();
    let response = tower::ServiceExt::oneshot(h.app(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reply = h
        .call(
            Method::GET,
            "/api/v1/events/sse?access_token=wrong",
            None,
            None,
        )
        .await;
    reply.expect(StatusCode::UNAUTHORIZED);
    // Elsewhere the query parameter is not a credential.
    h.call(
        Method::GET,
        &format!("/api/v1/incidents?access_token={VIEWER}"),
        None,
        None,
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
}
