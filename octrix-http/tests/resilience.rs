//! The resilience API against real HTTP services: small axum apps on
//! 127.0.0.1 that answer or fail on demand. Health checks, load tests, the
//! balancer and the circuit breakers all make real requests to them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use common::*;
use octrix_core::metrics::ServiceSelector;
use octrix_http::storage::{DocumentKind, Storage};
use serde_json::{Value, json};

/// A service that counts its requests and fails (503) while told to.
#[derive(Clone, Default)]
struct Backend {
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicU64>,
}

async fn answer(State(backend): State<Backend>) -> (StatusCode, &'static str) {
    backend.hits.fetch_add(1, Ordering::SeqCst);
    if backend.failing.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "down")
    } else {
        (StatusCode::OK, "ok")
    }
}

impl Backend {
    /// Serves on a free port; answers the base URL.
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/", get(answer))
            .route("/health", get(answer))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits for the health check that registration schedules at once.
    async fn checked(&self) {
        for _ in 0..250 {
            if self.hits() > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the scheduled health check never came");
    }
}

async fn register(h: &Harness, body: Value) -> Value {
    let reply = h
        .post_json("/api/v1/resilience/services", ADMIN, body)
        .await;
    reply.expect(StatusCode::CREATED);
    reply.json()
}

async fn check(h: &Harness, name: &str) -> Value {
    let reply = h
        .post_json(
            &format!("/api/v1/resilience/services/{name}/check"),
            OPERATOR,
            json!({}),
        )
        .await;
    reply.expect(StatusCode::OK);
    reply.json()
}

/// Polls the load test until it is over.
async fn finished(h: &Harness) -> Value {
    for _ in 0..200 {
        let status = h.get("/api/v1/resilience/load-test/status", VIEWER).await;
        status.expect(StatusCode::OK);
        let status = status.json();
        if status["status"] != "running" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the load test did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_call_the_service_and_report_failures_honestly() {
    let h = Harness::new();
    let backend = Backend::default();
    let url = backend.start().await;
    let registered = register(
        &h,
        json!({"name": "payments", "url": url, "check_interval_seconds": 3600}),
    )
    .await;
    assert_eq!(registered["backend"], "url");
    assert_eq!(
        h.storage
            .get_document(DocumentKind::Service, "payments")
            .await
            .unwrap()
            .unwrap()
            .body["spec"]["url"],
        url
    );
    // The scheduled check runs at once on registration.
    backend.checked().await;

    let healthy = check(&h, "payments").await;
    assert_eq!(healthy["health"]["state"], "healthy");
    assert_eq!(healthy["health"]["http_status"], 200);

    backend.fail(true);
    let degraded = check(&h, "payments").await;
    assert_eq!(degraded["health"]["state"], "degraded");
    assert_eq!(degraded["health"]["http_status"], 503);
    assert!(
        degraded["health"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{degraded}"
    );
    assert!(degraded["health"]["consecutive_failures"].as_u64().unwrap() >= 1);

    // Nothing listens here: unhealthy, with the transport error.
    register(
        &h,
        json!({"name": "ghost", "url": "http://127.0.0.1:9", "check_interval_seconds": 3600}),
    )
    .await;
    let ghost = check(&h, "ghost").await;
    assert_eq!(ghost["health"]["state"], "unhealthy");
    assert!(ghost["health"]["last_error"].is_string());

    backend.fail(false);
    let recovered = check(&h, "payments").await;
    assert_eq!(recovered["health"]["state"], "healthy");
    assert!(
        recovered["health"]["last_error"].is_string(),
        "the last error stays visible"
    );
    assert_eq!(recovered["health"]["consecutive_failures"], 0);

    let list = h.get("/api/v1/resilience/services", VIEWER).await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ghost", "payments"]);
    h.call(
        Method::DELETE,
        "/api/v1/resilience/services/ghost",
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    h.get("/api/v1/resilience/services/ghost", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registrations_are_checked_field_by_field() {
    let h = Harness::new();
    for (body, field) in [
        (json!({"name": "Bad Name", "url": "http://x"}), "name"),
        (json!({"name": "a", "url": "not a url"}), "url"),
        (json!({"name": "a"}), "url"),
        (
            json!({"name": "a", "url": "http://x", "check_interval_seconds": 0}),
            "check_interval_seconds",
        ),
        (
            json!({"name": "a", "url": "http://x", "colour": "red"}),
            ".",
        ),
    ] {
        let reply = h
            .post_json("/api/v1/resilience/services", ADMIN, body.clone())
            .await;
        reply.expect(StatusCode::BAD_REQUEST);
        if field != "." {
            assert_eq!(reply.json()["error"]["field"], field, "{body}");
        }
    }
    register(&h, json!({"name": "a", "url": "http://127.0.0.1:9"})).await;
    h.post_json(
        "/api/v1/resilience/services",
        ADMIN,
        json!({"name": "a", "url": "http://127.0.0.1:9"}),
    )
    .await
    .expect(StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_test_balances_real_requests_and_measures_them() {
    let h = Harness::new();
    let (one, two) = (Backend::default(), Backend::default());
    let (url_one, url_two) = (one.start().await, two.start().await);
    for (name, url) in [("one", &url_one), ("two", &url_two)] {
        register(
            &h,
            json!({"name": name, "url": url, "check_interval_seconds": 3600}),
        )
        .await;
    }
    one.checked().await;
    two.checked().await;
    let before = (one.hits(), two.hits());
    let started = h
        .post_json(
            "/api/v1/resilience/load-test/start",
            OPERATOR,
            json!({"requests_per_second": 200, "concurrency": 8, "duration_seconds": 1}),
        )
        .await;
    started.expect(StatusCode::CREATED);
    assert_eq!(started.json()["status"], "running");
    assert_eq!(started.json()["algorithm"], "round_robin");
    h.post_json(
        "/api/v1/resilience/load-test/start",
        OPERATOR,
        json!({"requests_per_second": 1, "duration_seconds": 1}),
    )
    .await
    .expect(StatusCode::CONFLICT);

    let status = finished(&h).await;
    assert_eq!(status["status"], "completed");
    let sent = status["sent"].as_u64().unwrap();
    // 200/s for one second: the rate is a ceiling (a busy machine may send
    // fewer, never more).
    assert!((50..=202).contains(&sent), "sent {sent}");
    assert_eq!(status["succeeded"], sent);
    assert_eq!(status["failed"], 0);
    assert_eq!(status["status_codes"]["200"], sent);
    let latency = &status["latency_ms"];
    assert_eq!(latency["count"], sent);
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(latency["p99"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());
    // Round robin over two healthy services: an even split, and the
    // services really received the requests.
    let (a, b) = (
        status["per_service"]["one"]["sent"].as_u64().unwrap(),
        status["per_service"]["two"]["sent"].as_u64().unwrap(),
    );
    assert!(a.abs_diff(b) <= 1, "{a} vs {b}");
    assert_eq!(one.hits() - before.0, a);
    assert_eq!(two.hits() - before.1, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_service_opens_its_breaker_and_traffic_avoids_it() {
    let h = Harness::new();
    let (good, bad) = (Backend::default(), Backend::default());
    let (good_url, bad_url) = (good.start().await, bad.start().await);
    register(
        &h,
        json!({"name": "good", "url": good_url, "check_interval_seconds": 3600}),
    )
    .await;
    register(
        &h,
        json!({"name": "bad", "url": bad_url, "check_interval_seconds": 3600}),
    )
    .await;
    good.checked().await;
    bad.checked().await;
    let mut events = h.state.events().subscribe();
    bad.fail(true);
    h.post_json(
        "/api/v1/resilience/load-test/start",
        OPERATOR,
        json!({"requests_per_second": 100, "concurrency": 1, "duration_seconds": 1}),
    )
    .await
    .expect(StatusCode::CREATED);
    let status = finished(&h).await;
    // The default breaker opens after 5 failures in a row; afterwards the
    // bad service's picks are rejected without a request.
    let bad_counts = &status["per_service"]["bad"];
    assert_eq!(bad_counts["failed"], 5, "{status}");
    assert!(bad_counts["rejected_by_breaker"].as_u64().unwrap() > 0);
    assert_eq!(bad.hits(), 5 + 1, "five calls and the registration's check");
    assert_eq!(status["status_codes"]["503"], 5);
    assert_eq!(status["per_service"]["good"]["failed"], 0);

    let breakers = h
        .get("/api/v1/resilience/circuit-breakers", VIEWER)
        .await
        .json();
    let bad_breaker = breakers
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["service"] == "bad")
        .unwrap()
        .clone();
    assert_eq!(bad_breaker["state"], "open");
    let mut names = Vec::new();
    while let Ok(event) = events.try_recv() {
        names.push(event.name.clone());
    }
    assert!(names.iter().any(|n| n == "circuit:changed"), "{names:?}");

    let reset = h
        .post_json(
            "/api/v1/resilience/circuit-breakers/bad/reset",
            OPERATOR,
            json!({}),
        )
        .await;
    reset.expect(StatusCode::OK);
    assert_eq!(reset.json()["state"], "closed");
    h.post_json(
        "/api/v1/resilience/circuit-breakers/nobody/reset",
        OPERATOR,
        json!({}),
    )
    .await
    .expect(StatusCode::NOT_FOUND);

    // Once its health check fails, the balancer sends it nothing at all.
    check(&h, "bad").await;
    let hits = bad.hits();
    h.post_json(
        "/api/v1/resilience/load-test/start",
        OPERATOR,
        json!({"requests_per_second": 50, "duration_seconds": 1}),
    )
    .await
    .expect(StatusCode::CREATED);
    let status = finished(&h).await;
    assert_eq!(status["per_service"]["bad"]["sent"], 0, "{status}");
    assert_eq!(bad.hits(), hits);
    assert!(status["per_service"]["good"]["sent"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_test_can_be_stopped_and_the_algorithm_switched() {
    let h = Harness::new();
    let backend = Backend::default();
    let url = backend.start().await;
    register(
        &h,
        json!({"name": "api", "url": url, "check_interval_seconds": 3600}),
    )
    .await;
    h.get("/api/v1/resilience/load-test/status", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
    h.post_json("/api/v1/resilience/load-test/stop", OPERATOR, json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    let put = h
        .call(
            Method::PUT,
            "/api/v1/resilience/load-balancer",
            Some(OPERATOR),
            Some(serde_json::to_vec(&json!({"algorithm": "least_outstanding"})).unwrap()),
        )
        .await;
    put.expect(StatusCode::OK);
    let bad = h
        .call(
            Method::PUT,
            "/api/v1/resilience/load-balancer",
            Some(OPERATOR),
            Some(serde_json::to_vec(&json!({"algorithm": "random"})).unwrap()),
        )
        .await;
    bad.expect(StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["field"], "algorithm");
    assert_eq!(
        h.get("/api/v1/resilience/load-balancer", VIEWER)
            .await
            .json()["algorithm"],
        "least_outstanding"
    );

    let started = h
        .post_json(
            "/api/v1/resilience/load-test/start",
            OPERATOR,
            json!({"requests_per_second": 50, "duration_seconds": 600}),
        )
        .await;
    started.expect(StatusCode::CREATED);
    assert_eq!(started.json()["algorithm"], "least_outstanding");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = h
        .post_json("/api/v1/resilience/load-test/stop", OPERATOR, json!({}))
        .await;
    stopped.expect(StatusCode::OK);
    let stopped = stopped.json();
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped["ended_at"].is_string());
    assert!(stopped["sent"].as_u64().unwrap() > 0);
    assert_eq!(stopped["in_flight"], 0);

    let bad_field = h
        .post_json(
            "/api/v1/resilience/load-test/start",
            OPERATOR,
            json!({"requests_per_second": 0, "duration_seconds": 1}),
        )
        .await;
    bad_field.expect(StatusCode::BAD_REQUEST);
    assert_eq!(bad_field.json()["error"]["field"], "requests_per_second");
}

#[tokio::test]
async fn cluster_services_report_the_sim_and_scale_through_the_budget() {
    let h = Harness::new();
    h.state.tick().await;
    let registered = register(
        &h,
        json!({"name": "payments", "namespace": "shop", "deployment": "payments",
               "check_interval_seconds": 3600}),
    )
    .await;
    assert_eq!(registered["backend"], "cluster");
    let checked = check(&h, "payments").await;
    assert_ne!(checked["health"]["state"], "unhealthy", "{checked}");
    assert!(checked["health"]["checks"].as_u64().unwrap() >= 1);

    let before = h
        .state
        .sim()
        .unwrap()
        .snapshot_now()
        .deployment("shop", "payments")
        .unwrap()
        .replicas;
    let up = h
        .post_json(
            "/api/v1/resilience/services/payments/scale-up",
            OPERATOR,
            json!({"by": 2}),
        )
        .await;
    up.expect(StatusCode::OK);
    assert_eq!(up.json()["previous_replicas"], before);
    assert_eq!(up.json()["replicas"], before + 2);
    let after = h
        .state
        .sim()
        .unwrap()
        .snapshot_now()
        .deployment("shop", "payments")
        .unwrap()
        .replicas;
    assert_eq!(after, before + 2, "the sim really scaled");
    let down = h
        .call(
            Method::POST,
            "/api/v1/resilience/services/payments/scale-down",
            Some(OPERATOR),
            None,
        )
        .await;
    down.expect(StatusCode::OK);
    assert_eq!(down.json()["replicas"], before + 1);
    let zero = h
        .post_json(
            "/api/v1/resilience/services/payments/scale-down",
            OPERATOR,
            json!({"by": 0}),
        )
        .await;
    zero.expect(StatusCode::BAD_REQUEST);
    assert_eq!(zero.json()["error"]["field"], "by");

    // A protected namespace is refused, with the reason.
    register(
        &h,
        json!({"name": "dns", "namespace": "kube-system", "deployment": "coredns",
               "check_interval_seconds": 3600}),
    )
    .await;
    let refused = h
        .post_json(
            "/api/v1/resilience/services/dns/scale-up",
            OPERATOR,
            json!({}),
        )
        .await;
    refused.expect(StatusCode::CONFLICT);
    assert!(refused.text().contains("protected"), "{}", refused.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_test_on_the_sim_draws_from_the_simulated_service() {
    let h = Harness::new();
    h.state.tick().await;
    register(
        &h,
        json!({"name": "payments", "namespace": "shop", "check_interval_seconds": 3600}),
    )
    .await;
    let figures = h
        .state
        .source()
        .service_metrics(&ServiceSelector {
            namespace: "shop".into(),
            service: "payments".into(),
            version: None,
            window_seconds: 60,
        })
        .await
        .expect("the sim serves the service's figures");
    let p50_ms = figures.latency_p50_seconds.expect("traffic") * 1000.0;

    let started = h
        .post_json(
            "/api/v1/resilience/load-test/start",
            OPERATOR,
            json!({"requests_per_second": 200, "concurrency": 100, "duration_seconds": 1,
                   "timeout_ms": 10000}),
        )
        .await;
    started.expect(StatusCode::CREATED);
    assert_eq!(started.json()["simulated_services"], json!(["payments"]));
    let status = finished(&h).await;
    assert_eq!(status["status"], "completed", "{status}");
    let sent = status["sent"].as_u64().unwrap();
    assert!(sent >= 50, "{status}");
    assert_eq!(
        status["succeeded"].as_u64().unwrap() + status["failed"].as_u64().unwrap(),
        sent,
        "{status}"
    );
    let codes = status["status_codes"].as_object().unwrap();
    assert!(
        codes.keys().all(|code| code == "200" || code == "503"),
        "{status}"
    );
    // Latencies are drawn around the service's median: the measured median
    // (which includes scheduling) is near it.
    let measured = status["latency_ms"]["p50"].as_f64().unwrap();
    assert!(
        (0.5 * p50_ms..=2.0 * p50_ms + 20.0).contains(&measured),
        "measured p50 {measured} ms, the sim's {p50_ms} ms"
    );
}

#[tokio::test]
async fn services_survive_a_restart() {
    let h = Harness::new();
    register(
        &h,
        json!({"name": "api", "url": "http://127.0.0.1:9", "check_interval_seconds": 3600}),
    )
    .await;
    let state =
        octrix_http::AppState::simulated(h.storage.clone(), h.clock.clone(), auth()).unwrap();
    state.restore().await.unwrap();
    let reply = call(
        octrix_http::app(state),
        Method::GET,
        "/api/v1/resilience/services/api",
        Some(VIEWER),
        None,
    )
    .await;
    reply.expect(StatusCode::OK);
    assert_eq!(reply.json()["url"], "http://127.0.0.1:9");
}
