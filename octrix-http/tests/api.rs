//! Handler tests without sockets: the app is driven with `oneshot`.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use octrix_http::Limits;
use octrix_http::storage::{DocumentKind, Storage};
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn a_webhook_delivery_opens_an_incident_and_a_redelivery_changes_nothing() {
    let h = Harness::new();
    let first = h.deliver(FIRING).await;
    first.expect(StatusCode::OK);
    let summary = first.json();
    assert_eq!(summary["received"], 1);
    assert_eq!(summary["opened"], json!(["INC-000001"]));

    let page = h.get("/api/v1/incidents", VIEWER).await.json();
    assert_eq!(page["total"], 1);
    let incident = &page["items"][0];
    assert_eq!(incident["fingerprint"], "413724370af55eb6");
    assert_eq!(incident["status"], "open");
    assert_eq!(incident["source"], "alert");
    assert_eq!(incident["occurrences"], 1);
    let before = h.get("/api/v1/incidents/INC-000001", VIEWER).await.json();

    // Alertmanager redelivers the same group: deduplicated by fingerprint.
    h.advance(30);
    let again = h.deliver(FIRING).await;
    again.expect(StatusCode::OK);
    assert_eq!(again.json()["duplicates"], 1);
    assert_eq!(again.json()["opened"], json!([]));
    let page = h.get("/api/v1/incidents", VIEWER).await.json();
    assert_eq!(page["total"], 1);
    let after = h.get("/api/v1/incidents/INC-000001", VIEWER).await.json();
    assert_eq!(after["occurrences"], 1);
    assert_eq!(after["status"], "open");
    assert_eq!(after["timeline"], before["timeline"]);

    // The durable copy is what the API reads.
    let stored = h.storage.export_jsonl().await;
    assert_eq!(stored.lines().count(), 1);
}

#[tokio::test]
async fn a_resolved_notification_resolves_the_incident() {
    let h = Harness::new();
    // The firing notification of the alert the captured resolved one ends.
    let mut firing: serde_json::Value = serde_json::from_slice(RESOLVED).unwrap();
    firing["status"] = json!("firing");
    firing["alerts"][0]["status"] = json!("firing");
    firing["alerts"][0]["endsAt"] = json!("0001-01-01T00:00:00Z");
    h.deliver(&serde_json::to_vec(&firing).unwrap())
        .await
        .expect(StatusCode::OK);
    h.advance(60);
    let reply = h.deliver(RESOLVED).await;
    reply.expect(StatusCode::OK);
    assert_eq!(reply.json()["resolved"], json!(["INC-000001"]));
    let incident = h.get("/api/v1/incidents/INC-000001", VIEWER).await.json();
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["labels"]["alertname"], "ManualAlert");
    let resolved = h
        .get("/api/v1/incidents?status=resolved", VIEWER)
        .await
        .json();
    assert_eq!(resolved["total"], 1);
    let alerts = h.get("/api/v1/incidents/alerts", VIEWER).await.json();
    assert_eq!(alerts["items"][0]["status"], "resolved");
    assert_eq!(alerts["items"][0]["fingerprint"], "7e871ffd3ec70305");
}

#[tokio::test]
async fn a_malformed_payload_is_a_400_naming_the_field() {
    let h = Harness::new();
    let mut payload: serde_json::Value = serde_json::from_slice(FIRING).unwrap();
    payload["alerts"][0]["startsAt"] = json!("yesterday");
    let reply = h.deliver(&serde_json::to_vec(&payload).unwrap()).await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "alerts[0].startsAt");

    let mut payload: serde_json::Value = serde_json::from_slice(FIRING).unwrap();
    payload["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("fingerprint");
    let reply = h.deliver(&serde_json::to_vec(&payload).unwrap()).await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "alerts[0]");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fingerprint")
    );

    let reply = h.deliver(b"{not json").await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], "bad_request");
    // Nothing was opened.
    assert_eq!(h.get("/api/v1/incidents", VIEWER).await.json()["total"], 0);
}

#[tokio::test]
async fn the_alias_route_takes_deliveries_too() {
    let h = Harness::new();
    h.call(
        Method::POST,
        "/alerts",
        Some(WEBHOOK),
        Some(FIRING.to_vec()),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(h.get("/api/v1/incidents", VIEWER).await.json()["total"], 1);
}

#[tokio::test]
async fn acknowledge_resolve_and_the_statistics() {
    let h = Harness::new();
    h.deliver(FIRING).await.expect(StatusCode::OK);
    h.advance(120);
    let acknowledged = h
        .post_json(
            "/api/v1/incidents/INC-000001/acknowledge",
            OPERATOR,
            json!({"note": "looking"}),
        )
        .await;
    acknowledged.expect(StatusCode::OK);
    assert_eq!(acknowledged.json()["status"], "acknowledged");
    let last = acknowledged.json()["timeline"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["actor"], "otto");
    assert_eq!(last["note"], "looking");

    // Twice is a conflict.
    h.post_json(
        "/api/v1/incidents/INC-000001/acknowledge",
        OPERATOR,
        json!({}),
    )
    .await
    .expect(StatusCode::CONFLICT);

    h.post_json(
        "/api/v1/incidents/INC-000001/assign",
        OPERATOR,
        json!({"assignee": "alice@example.com"}),
    )
    .await
    .expect(StatusCode::OK);
    h.advance(480);
    let resolved = h
        .post_json(
            "/api/v1/incidents/INC-000001/resolve",
            OPERATOR,
            json!({"actor": "alice@example.com", "note": "node replaced"}),
        )
        .await;
    resolved.expect(StatusCode::OK);
    assert_eq!(resolved.json()["status"], "resolved");
    assert_eq!(resolved.json()["assignee"], "alice@example.com");

    let stats = h.get("/api/v1/incidents/stats", VIEWER).await.json();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_status"]["resolved"], 1);
    assert_eq!(stats["by_severity"]["medium"], 1);
    assert_eq!(stats["mtta_seconds"], 120.0);
    assert_eq!(stats["mttr_seconds"], 600.0);
    assert_eq!(stats["mtta"]["count"], 1);

    // Out of range: nothing counted.
    let stats = h
        .get("/api/v1/incidents/stats?from=2030-01-01T00:00:00Z", VIEWER)
        .await
        .json();
    assert_eq!(stats["total"], 0);
    assert_eq!(stats["mttr_seconds"], serde_json::Value::Null);

    h.post_json("/api/v1/incidents/INC-000404/resolve", OPERATOR, json!({}))
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let h = Harness::new();
    h.deliver(FIRING).await.expect(StatusCode::OK);
    h.advance(10);
    h.deliver(AMTOOL_FIRING).await.expect(StatusCode::OK);

    let all = h
        .get("/api/v1/incidents?sort=first_seen&order=asc", VIEWER)
        .await
        .json();
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["id"], "INC-000001");
    let page = h
        .get(
            "/api/v1/incidents?sort=first_seen&order=desc&limit=1&offset=1",
            VIEWER,
        )
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], "INC-000001");
    let text = h
        .get("/api/v1/incidents?q=manualalert", VIEWER)
        .await
        .json();
    assert_eq!(text["total"], 1);
    assert_eq!(text["items"][0]["id"], "INC-000002");
    let none = h
        .get("/api/v1/incidents?status=resolved,acknowledged", VIEWER)
        .await
        .json();
    assert_eq!(none["total"], 0);
    let late = h
        .get("/api/v1/incidents?from=2026-11-23T09:06:45Z", VIEWER)
        .await
        .json();
    assert_eq!(late["total"], 1);

    for (query, field) in [
        ("severity=urgent", "severity"),
        ("status=closed", "status"),
        ("category=fire", "category"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("sort=colour", "sort"),
        ("from=yesterday", "from"),
    ] {
        let reply = h.get(&format!("/api/v1/incidents?{query}"), VIEWER).await;
        reply.expect(StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn alerts_are_listed_and_acknowledged_by_fingerprint() {
    let h = Harness::new();
    h.deliver(FIRING).await.expect(StatusCode::OK);
    let alerts = h
        .get("/api/v1/incidents/alerts?status=firing", VIEWER)
        .await
        .json();
    assert_eq!(alerts["total"], 1);
    assert_eq!(alerts["items"][0]["name"], "NodeUp");
    assert_eq!(alerts["items"][0]["incident_id"], "INC-000001");
    let reply = h
        .post_json(
            "/api/v1/incidents/alerts/413724370af55eb6/acknowledge",
            OPERATOR,
            json!({}),
        )
        .await;
    reply.expect(StatusCode::OK);
    assert_eq!(reply.json()["status"], "acknowledged");
    let alerts = h.get("/api/v1/incidents/alerts", VIEWER).await.json();
    assert_eq!(alerts["items"][0]["acknowledged"], true);
    h.post_json(
        "/api/v1/incidents/alerts/ffff/acknowledge",
        OPERATOR,
        json!({}),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn healing_rules_crud_with_validation_and_persistence() {
    let h = Harness::new();
    let rule = json!({
        "name": "crashloops",
        "match": {"categories": ["pod-crash"]},
        "actions": [{"type": "restart-pod"}, {"type": "notify", "channel": "sre"}]
    });
    let created = h
        .post_json("/api/v1/healing/rules", ADMIN, rule.clone())
        .await;
    created.expect(StatusCode::CREATED);
    assert_eq!(created.json()["name"], "crashloops");
    h.post_json("/api/v1/healing/rules", ADMIN, rule.clone())
        .await
        .expect(StatusCode::CONFLICT);

    let invalid = h
        .post_json(
            "/api/v1/healing/rules",
            ADMIN,
            json!({"name": "empty", "actions": []}),
        )
        .await;
    invalid.expect(StatusCode::BAD_REQUEST);
    assert_eq!(invalid.json()["error"]["field"], "rules[1].actions");
    let unknown = h
        .post_json(
            "/api/v1/healing/rules",
            ADMIN,
            json!({"name": "x", "actions": [{"type": "reboot-datacenter"}]}),
        )
        .await;
    unknown.expect(StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["error"]["field"], "actions[0].type");

    let rules = h.get("/api/v1/healing/rules", VIEWER).await.json();
    assert_eq!(rules.as_array().unwrap().len(), 1);

    let mut changed = rule.clone();
    changed["priority"] = json!(5);
    let put = h
        .call(
            Method::PUT,
            "/api/v1/healing/rules/crashloops",
            Some(ADMIN),
            Some(serde_json::to_vec(&changed).unwrap()),
        )
        .await;
    put.expect(StatusCode::OK);
    assert_eq!(
        h.get("/api/v1/healing/rules/crashloops", VIEWER)
            .await
            .json()["priority"],
        5
    );

    // The configuration is persisted as a document.
    let stored = h.storage.healing_config().await.unwrap();
    assert_eq!(stored["rules"][0]["priority"], 5);

    let dry = h
        .call(
            Method::PUT,
            "/api/v1/healing/dry-run",
            Some(OPERATOR),
            Some(br#"{"dry_run": true}"#.to_vec()),
        )
        .await;
    dry.expect(StatusCode::OK);
    assert_eq!(
        h.get("/api/v1/healing/dry-run", VIEWER).await.json()["dry_run"],
        true
    );
    assert_eq!(h.storage.healing_config().await.unwrap()["dry_run"], true);

    h.call(
        Method::DELETE,
        "/api/v1/healing/rules/crashloops",
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    h.call(
        Method::DELETE,
        "/api/v1/healing/rules/crashloops",
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_name_the_simulated_source_and_promql_needs_prometheus() {
    let h = Harness::new();
    let nodes = h.get("/api/v1/metrics/nodes", VIEWER).await;
    nodes.expect(StatusCode::OK);
    assert_eq!(nodes.json()["source"]["kind"], "simulated");
    assert!(!nodes.json()["items"].as_array().unwrap().is_empty());
    let pods = h
        .get("/api/v1/metrics/pods?namespace=shop", VIEWER)
        .await
        .json();
    let items = pods["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|p| p["namespace"] == "shop"));
    let cluster = h.get("/api/v1/metrics/cluster", VIEWER).await.json();
    assert!(cluster["metrics"]["nodes"].as_u64().unwrap() > 0);
    let status = h.get("/api/v1/metrics/status", VIEWER).await.json();
    assert_eq!(status["real"], false);
    assert_eq!(status["up"], true);
    let query = h.get("/api/v1/metrics/query?query=up", VIEWER).await;
    query.expect(StatusCode::NOT_IMPLEMENTED);
    assert!(query.text().contains("simulated"), "{}", query.text());
    h.get("/api/v1/metrics/query_range?query=up", VIEWER)
        .await
        .expect(StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn health_ready_metrics_and_the_openapi_document() {
    let h = Harness::new();
    let health = h.call(Method::GET, "/health", None, None).await;
    health.expect(StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = h.call(Method::GET, "/ready", None, None).await;
    ready.expect(StatusCode::OK);
    assert_eq!(ready.json()["ready"], true);

    h.get("/api/v1/incidents/INC-000009", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
    let exposition = h.call(Method::GET, "/metrics", None, None).await;
    exposition.expect(StatusCode::OK);
    let text = exposition.text();
    assert!(
        text.contains(
            r#"octrix_http_requests_total{method="GET",route="/api/v1/incidents/{id}",status="404"} 1"#
        ),
        "{text}"
    );

    let doc = h.call(Method::GET, "/api/openapi.json", None, None).await;
    doc.expect(StatusCode::OK);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["Incident"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in common_routes() {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"))[method];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the document"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            !responses.is_empty(),
            "{method} {path} documents no response"
        );
    }
}

/// Every route of the API, as (lowercase method, OpenAPI path).
fn common_routes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
        ("get", "/api/v1/metrics/nodes"),
        ("get", "/api/v1/metrics/pods"),
        ("get", "/api/v1/metrics/cluster"),
        ("get", "/api/v1/metrics/query"),
        ("get", "/api/v1/metrics/query_range"),
        ("get", "/api/v1/metrics/status"),
        ("get", "/api/v1/incidents"),
        ("get", "/api/v1/incidents/stats"),
        ("get", "/api/v1/incidents/alerts"),
        ("get", "/api/v1/incidents/export"),
        ("get", "/api/v1/incidents/{id}"),
        ("post", "/api/v1/incidents/{id}/acknowledge"),
        ("post", "/api/v1/incidents/{id}/resolve"),
        ("post", "/api/v1/incidents/{id}/assign"),
        ("post", "/api/v1/incidents/{id}/notes"),
        ("post", "/api/v1/incidents/alerts/{fingerprint}/acknowledge"),
        ("post", "/api/v1/alerts"),
        ("get", "/api/v1/healing/rules"),
        ("post", "/api/v1/healing/rules"),
        ("get", "/api/v1/healing/rules/{name}"),
        ("put", "/api/v1/healing/rules/{name}"),
        ("delete", "/api/v1/healing/rules/{name}"),
        ("get", "/api/v1/healing/config"),
        ("put", "/api/v1/healing/config"),
        ("get", "/api/v1/healing/dry-run"),
        ("put", "/api/v1/healing/dry-run"),
        ("get", "/api/v1/healing/actions"),
        ("get", "/api/v1/routing/rules"),
        ("post", "/api/v1/routing/rules"),
        ("get", "/api/v1/routing/rules/{id}"),
        ("put", "/api/v1/routing/rules/{id}"),
        ("delete", "/api/v1/routing/rules/{id}"),
        ("post", "/api/v1/routing/rules/{id}/deploy"),
        ("get", "/api/v1/routing/rules/{id}/canary"),
        ("post", "/api/v1/routing/rules/{id}/canary"),
        ("get", "/api/v1/simulator/scenarios"),
        ("post", "/api/v1/simulator/scenarios"),
        ("get", "/api/v1/simulator/scenarios/{id}"),
        ("delete", "/api/v1/simulator/scenarios/{id}"),
        ("post", "/api/v1/simulator/scenarios/{id}/start"),
        ("get", "/api/v1/simulator/runs"),
        ("get", "/api/v1/simulator/runs/active"),
        ("get", "/api/v1/simulator/runs/{id}"),
        ("post", "/api/v1/simulator/runs/{id}/stop"),
        ("post", "/api/v1/simulator/runs/{id}/cancel"),
        ("get", "/api/v1/simulator/stats"),
        ("get", "/api/v1/resilience/services"),
        ("post", "/api/v1/resilience/services"),
        ("get", "/api/v1/resilience/services/{name}"),
        ("delete", "/api/v1/resilience/services/{name}"),
        ("post", "/api/v1/resilience/services/{name}/check"),
        ("post", "/api/v1/resilience/services/{name}/scale-up"),
        ("post", "/api/v1/resilience/services/{name}/scale-down"),
        ("get", "/api/v1/resilience/circuit-breakers"),
        (
            "post",
            "/api/v1/resilience/circuit-breakers/{service}/reset",
        ),
        ("get", "/api/v1/resilience/load-balancer"),
        ("put", "/api/v1/resilience/load-balancer"),
        ("post", "/api/v1/resilience/load-test/start"),
        ("post", "/api/v1/resilience/load-test/stop"),
        ("get", "/api/v1/resilience/load-test/status"),
        ("get", "/api/v1/events/sse"),
        ("get", "/api/v1/events/ws"),
    ]
}

#[tokio::test]
async fn the_webhook_is_rate_limited_with_retry_after() {
    let h = Harness::with_limits(Limits {
        webhook_per_second: 1,
        webhook_burst: 1,
        ..Limits::default()
    });
    h.deliver(FIRING).await.expect(StatusCode::OK);
    let limited = h.deliver(FIRING).await;
    limited.expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let h = Harness::with_limits(Limits {
        body_bytes: 4096,
        ..Limits::default()
    });
    let big = vec![b' '; 8192];
    let reply = h.deliver(&big).await;
    reply.expect(StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_sse_stream_carries_subscribed_topics_only() {
    let h = Harness::new();
    let app = h.app();
    let request = Request::get("/api/v1/events/sse?topics=incident,alert")
        .header("authorization", format!("Bearer {VIEWER}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    // A tick publishes cluster:update and source:status, which are filtered out;
    // the delivery publishes alert:new and incident:opened.
    h.state.tick().await;
    h.deliver(FIRING).await.expect(StatusCode::OK);

    let mut seen = String::new();
    while !(seen.contains("event: incident:opened") && seen.contains("event: alert:new")) {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("events within 5 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(!seen.contains("cluster:update"), "{seen}");
    assert!(!seen.contains("source:status"), "{seen}");
    assert!(
        seen.contains(r#""fingerprint":"413724370af55eb6""#),
        "{seen}"
    );

    let bad = h.get("/api/v1/events/sse?topics=weather", VIEWER).await;
    bad.expect(StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["field"], "topics");
}

#[tokio::test]
async fn a_crash_loop_on_the_sim_opens_an_incident_that_healing_resolves() {
    use octrix_core::sim::{FaultKind, FaultTarget};
    let h = Harness::new();
    h.post_json(
        "/api/v1/healing/rules",
        ADMIN,
        json!({"name": "crashloops", "match": {"categories": ["pod-crash"]},
               "actions": [{"type": "restart-pod"}], "cooldown_seconds": 60}),
    )
    .await
    .expect(StatusCode::CREATED);
    let sim = h.state.sim().unwrap().clone();
    let pod = sim
        .snapshot_now()
        .pods
        .iter()
        .find(|p| p.namespace == "shop" && p.deployment().is_some())
        .map(|p| p.name.clone())
        .unwrap();
    sim.inject(
        FaultKind::CrashLoop { persistent: false },
        FaultTarget::Pod {
            namespace: "shop".into(),
            name: pod.clone(),
        },
        None,
    )
    .unwrap();

    let mut opened = None;
    let mut healed = false;
    for _ in 0..60 {
        h.advance(15);
        h.state.tick().await;
        let page = h
            .get(
                "/api/v1/incidents?category=pod-crash&sort=first_seen&order=asc",
                VIEWER,
            )
            .await
            .json();
        if let Some(first) = page["items"].as_array().unwrap().first() {
            opened.get_or_insert_with(|| first["id"].as_str().unwrap().to_owned());
            if first["status"] == "resolved" && first["resolved_by_healing"] == true {
                healed = true;
                break;
            }
        }
    }
    let id = opened.expect("the crash loop opened an incident");
    assert!(healed, "the restart healed {id}");
    let actions = h.get("/api/v1/healing/actions", VIEWER).await.json();
    let actions = actions.as_array().unwrap();
    assert!(
        actions
            .iter()
            .any(|a| a["action"] == "restart-pod" && a["outcome"]["result"] == "healed"),
        "{actions:?}"
    );

    // Each record is stored as it is taken, and listed from storage.
    let stored = h
        .storage
        .list_documents(DocumentKind::ActionRecord, 10_000)
        .await
        .unwrap();
    assert_eq!(stored.len(), actions.len());
    let filtered = h
        .get(
            &format!(
                "/api/v1/healing/actions?incident={id}&action=restart-pod&dry_run=false&limit=1"
            ),
            VIEWER,
        )
        .await
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered[0]["incident_id"], id.as_str());
    let newest_matching = actions
        .iter()
        .find(|a| a["incident_id"] == id.as_str() && a["action"] == "restart-pod")
        .unwrap();
    assert_eq!(&filtered[0], newest_matching);
    let rest = h
        .get("/api/v1/healing/actions?offset=1", VIEWER)
        .await
        .json();
    assert_eq!(rest.as_array().unwrap()[..], actions[1..]);
    let none = h
        .get("/api/v1/healing/actions?rule=no-such-rule", VIEWER)
        .await
        .json();
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn readiness_names_a_failing_storage() {
    let h = Harness::new();
    h.storage.fail(true);
    let ready = h.call(Method::GET, "/ready", None, None).await;
    ready.expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["failing"], json!(["storage"]));
    // A delivery is not acknowledged when it cannot be committed.
    let reply = h.deliver(FIRING).await;
    reply.expect(StatusCode::SERVICE_UNAVAILABLE);
    assert!(!reply.text().contains("injected"), "{}", reply.text());
    h.storage.fail(false);
    h.deliver(FIRING).await.expect(StatusCode::OK);
    assert_eq!(h.get("/api/v1/incidents", VIEWER).await.json()["total"], 1);
}

#[tokio::test]
async fn traffic_rules_are_validated_stored_and_deployed() {
    let h = Harness::new();
    let rule = json!({
        "service": "reviews", "namespace": "bookinfo",
        "destinations": [{"subset": "v1", "labels": {"version": "v1"}, "weight": 80}, {"subset": "v2", "labels": {"version": "v2"}, "weight": 20}]
    });
    let created = h
        .post_json("/api/v1/routing/rules", ADMIN, rule.clone())
        .await;
    created.expect(StatusCode::CREATED);
    assert_eq!(created.json()["id"], "bookinfo.reviews");
    assert_eq!(created.json()["deployed_at"], serde_json::Value::Null);
    h.post_json("/api/v1/routing/rules", ADMIN, rule.clone())
        .await
        .expect(StatusCode::CONFLICT);

    let bad = h
        .post_json(
            "/api/v1/routing/rules",
            ADMIN,
            json!({"service": "ratings", "namespace": "bookinfo",
                   "destinations": [{"subset": "v1", "labels": {"version": "v1"}, "weight": 80}, {"subset": "v2", "labels": {"version": "v2"}, "weight": 30}]}),
        )
        .await;
    bad.expect(StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("destinations"),
        "{}",
        bad.text()
    );

    h.advance(60);
    let deployed = h
        .post_json(
            "/api/v1/routing/rules/bookinfo.reviews/deploy",
            OPERATOR,
            json!({}),
        )
        .await;
    deployed.expect(StatusCode::OK);
    let deployment = deployed.json();
    assert_eq!(deployment["rule"]["deployed_at"], "2026-11-23T09:07:40Z");
    let files = deployment["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let vs = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().contains("virtualservice"))
        .unwrap();
    assert!(vs["contents"].as_str().unwrap().contains("weight: 20"));
    assert!(
        deployment["applied"]
            .as_str()
            .unwrap()
            .starts_with("not applied")
    );

    let listed = h.get("/api/v1/routing/rules", VIEWER).await.json();
    assert_eq!(listed[0]["deployed_at"], "2026-11-23T09:07:40Z");

    // A change makes the rule undeployed again.
    let mut changed = rule.clone();
    changed["destinations"][0]["weight"] = json!(50);
    changed["destinations"][1]["weight"] = json!(50);
    let put = h
        .call(
            Method::PUT,
            "/api/v1/routing/rules/bookinfo.reviews",
            Some(ADMIN),
            Some(serde_json::to_vec(&changed).unwrap()),
        )
        .await;
    put.expect(StatusCode::OK);
    assert_eq!(put.json()["deployed_at"], serde_json::Value::Null);
    h.call(
        Method::DELETE,
        "/api/v1/routing/rules/bookinfo.reviews",
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    h.get("/api/v1/routing/rules/bookinfo.reviews", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
}
