//! The chaos simulator API on the simulated cluster: scenarios, runs through
//! the engine's chaos controller and safety budget, persistence, statistics,
//! and the README's walkthrough (a chaos run opens an incident that heals,
//! seen on the live event stream).

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::*;
use octrix_http::AppState;
use octrix_http::storage::{DocumentKind, Storage};
use serde_json::{Value, json};

fn lossy_checkout() -> Value {
    json!({"id": "lossy-checkout", "name": "Lossy checkout",
           "target": {"namespace": "shop", "labels": {"app": "checkout"}, "mode": "all"},
           "type": "packet-loss", "parameters": {"loss_percent": 30, "duration_seconds": 60}})
}

fn on(app: &str) -> Value {
    json!({"target": {"namespace": "shop", "labels": {"app": app}}})
}

/// A server whose engine has observed the cluster once (runs choose their
/// targets from the last observation).
async fn observed() -> Harness {
    let h = Harness::new();
    h.state.tick().await;
    h
}

async fn stored(h: &Harness, kind: DocumentKind, id: &str) -> Option<Value> {
    h.storage
        .get_document(kind, id)
        .await
        .unwrap()
        .map(|d| d.body)
}

#[tokio::test]
async fn builtin_scenarios_are_listed_and_read_only() {
    let h = Harness::new();
    let list = h.get("/api/v1/simulator/scenarios", VIEWER).await;
    list.expect(StatusCode::OK);
    let list = list.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 11, "one built-in per type");
    assert!(list.iter().all(|s| s["builtin"] == true));
    let one = h
        .get("/api/v1/simulator/scenarios/builtin-pod-failure", VIEWER)
        .await;
    one.expect(StatusCode::OK);
    assert_eq!(one.json()["type"], "pod-failure");
    assert_eq!(one.json()["parameters"]["duration_seconds"], 60);

    let delete = h
        .call(
            Method::DELETE,
            "/api/v1/simulator/scenarios/builtin-pod-failure",
            Some(ADMIN),
            None,
        )
        .await;
    delete.expect(StatusCode::CONFLICT);
    assert!(delete.text().contains("read-only"), "{}", delete.text());
    let mut copy = lossy_checkout();
    copy["id"] = json!("builtin-pod-failure");
    h.post_json("/api/v1/simulator/scenarios", ADMIN, copy)
        .await
        .expect(StatusCode::CONFLICT);
    h.get("/api/v1/simulator/scenarios/nope", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
    let bad = h.get("/api/v1/simulator/scenarios/Not_An_Id", VIEWER).await;
    bad.expect(StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["field"], "id");
    // Before the engine's first look at the cluster there is nothing to aim at.
    let early = h
        .post_json(
            "/api/v1/simulator/scenarios/builtin-pod-failure/start",
            OPERATOR,
            json!({}),
        )
        .await;
    early.expect(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        early.text().contains("not been observed"),
        "{}",
        early.text()
    );
}

#[tokio::test]
async fn custom_scenarios_are_validated_persisted_and_deleted() {
    let h = Harness::new();
    let created = h
        .post_json("/api/v1/simulator/scenarios", ADMIN, lossy_checkout())
        .await;
    created.expect(StatusCode::CREATED);
    assert_eq!(created.json()["builtin"], false);
    assert_eq!(created.json()["parameters"]["loss_percent"], 30.0);
    let doc = stored(&h, DocumentKind::ChaosScenario, "lossy-checkout")
        .await
        .expect("persisted");
    assert_eq!(doc["type"], "packet-loss");
    h.post_json("/api/v1/simulator/scenarios", ADMIN, lossy_checkout())
        .await
        .expect(StatusCode::CONFLICT);

    let mut too_lossy = lossy_checkout();
    too_lossy["id"] = json!("too-lossy");
    too_lossy["parameters"]["loss_percent"] = json!(120);
    let reply = h
        .post_json("/api/v1/simulator/scenarios", ADMIN, too_lossy)
        .await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "parameters.loss_percent");

    let mut protected = lossy_checkout();
    protected["id"] = json!("system-loss");
    protected["target"]["namespace"] = json!("kube-system");
    let reply = h
        .post_json("/api/v1/simulator/scenarios", ADMIN, protected)
        .await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "target.namespace");

    let reply = h
        .post_json(
            "/api/v1/simulator/scenarios",
            ADMIN,
            json!({"id": "x", "name": "x", "type": "packet-loss"}),
        )
        .await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert!(reply.json()["error"]["field"].is_string());

    h.call(
        Method::DELETE,
        "/api/v1/simulator/scenarios/lossy-checkout",
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert!(
        stored(&h, DocumentKind::ChaosScenario, "lossy-checkout")
            .await
            .is_none()
    );
    h.get("/api/v1/simulator/scenarios/lossy-checkout", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
    h.call(
        Method::DELETE,
        "/api/v1/simulator/scenarios/lossy-checkout",
        Some(ADMIN),
        None,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_starts_on_the_sim_is_persisted_and_stops() {
    let h = observed().await;
    let mut events = h.state.events().subscribe();
    let started = h
        .post_json(
            "/api/v1/simulator/scenarios/builtin-latency-injection/start",
            OPERATOR,
            on("checkout"),
        )
        .await;
    started.expect(StatusCode::CREATED);
    let run = started.json();
    assert_eq!(run["id"], 1);
    assert_eq!(run["status"], "running");
    assert_eq!(
        run["targets"],
        json!([{"kind": "service", "namespace": "shop", "name": "checkout"}])
    );
    let event = events.try_recv().expect("a chaos:run event");
    assert_eq!(event.name, "chaos:run");
    assert!(
        event.json.contains("\"event\":\"run_started\""),
        "{}",
        event.json
    );
    assert_eq!(
        stored(&h, DocumentKind::ChaosRun, "run-1").await.unwrap()["status"],
        "running"
    );

    let active = h.get("/api/v1/simulator/runs/active", VIEWER).await.json();
    assert_eq!(active.as_array().unwrap().len(), 1);
    let running = h
        .get("/api/v1/simulator/runs?status=running,pending", VIEWER)
        .await
        .json();
    assert_eq!(running.as_array().unwrap().len(), 1);
    let none = h
        .get("/api/v1/simulator/runs?type=pod-failure", VIEWER)
        .await
        .json();
    assert!(none.as_array().unwrap().is_empty());
    let bad = h
        .get("/api/v1/simulator/runs?status=sleeping", VIEWER)
        .await;
    bad.expect(StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["field"], "status");
    h.get("/api/v1/simulator/runs/run-1", VIEWER)
        .await
        .expect(StatusCode::OK);
    h.get("/api/v1/simulator/runs/9", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);

    let stopped = h
        .post_json("/api/v1/simulator/runs/run-1/stop", OPERATOR, json!({}))
        .await;
    stopped.expect(StatusCode::OK);
    assert_eq!(stopped.json()["status"], "stopped");
    assert!(stopped.json()["reverted_at"].is_string());
    assert!(h.state.sim().unwrap().faults().is_empty(), "reverted");
    assert_eq!(
        stored(&h, DocumentKind::ChaosRun, "run-1").await.unwrap()["status"],
        "stopped"
    );
    let again = h
        .post_json("/api/v1/simulator/runs/run-1/stop", OPERATOR, json!({}))
        .await;
    again.expect(StatusCode::CONFLICT);
    assert!(again.text().contains("stopped"), "{}", again.text());

    let stats = h.get("/api/v1/simulator/stats", VIEWER).await.json();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_status"]["stopped"], 1);
    assert_eq!(stats["success_rate"], 1.0);
}

#[tokio::test]
async fn a_scheduled_run_can_be_cancelled_and_a_finished_run_is_saved_by_the_tick() {
    let h = observed().await;
    let later = "2026-11-23T10:00:00Z";
    let mut options = on("payments");
    options["start_at"] = json!(later);
    let pending = h
        .post_json(
            "/api/v1/simulator/scenarios/builtin-service-failure/start",
            OPERATOR,
            options,
        )
        .await;
    pending.expect(StatusCode::CREATED);
    assert_eq!(pending.json()["status"], "pending");
    let cancelled = h
        .post_json("/api/v1/simulator/runs/1/cancel", OPERATOR, json!({}))
        .await;
    cancelled.expect(StatusCode::OK);
    assert_eq!(cancelled.json()["status"], "cancelled");

    h.post_json(
        "/api/v1/simulator/scenarios/builtin-service-failure/start",
        OPERATOR,
        on("payments"),
    )
    .await
    .expect(StatusCode::CREATED);
    h.post_json("/api/v1/simulator/runs/2/cancel", OPERATOR, json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    // The built-in lasts 60 s: the tick after that completes and reverts it.
    h.advance(61);
    h.state.tick().await;
    let doc = stored(&h, DocumentKind::ChaosRun, "run-2").await.unwrap();
    assert_eq!(doc["status"], "completed");
    assert!(doc["reverted_at"].is_string());
}

#[tokio::test]
async fn the_safety_budget_refuses_a_run_with_its_reason() {
    let h = observed().await;
    // Failing every payments pod would take its last ready replica.
    let denied = h
        .post_json(
            "/api/v1/simulator/scenarios/builtin-pod-failure/start",
            OPERATOR,
            json!({"target": {"namespace": "shop", "labels": {"app": "payments"}, "mode": "all"}}),
        )
        .await;
    denied.expect(StatusCode::CONFLICT);
    let message = denied.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("safety budget"), "{message}");
    assert!(
        message.contains("shop/payments would have 2 of 2 pods disrupted"),
        "{message}"
    );
    let doc = stored(&h, DocumentKind::ChaosRun, "run-1").await.unwrap();
    assert_eq!(doc["status"], "failed");

    let protected = h
        .post_json(
            "/api/v1/simulator/scenarios/builtin-pod-failure/start",
            OPERATOR,
            json!({"target": {"namespace": "kube-system"}}),
        )
        .await;
    protected.expect(StatusCode::BAD_REQUEST);
    assert_eq!(protected.json()["error"]["field"], "target.namespace");
    let unknown_option = h
        .post_json(
            "/api/v1/simulator/scenarios/builtin-pod-failure/start",
            OPERATOR,
            json!({"targets": {}}),
        )
        .await;
    unknown_option.expect(StatusCode::BAD_REQUEST);
    h.post_json(
        "/api/v1/simulator/scenarios/missing/start",
        OPERATOR,
        json!({}),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scenarios_and_runs_survive_a_restart() {
    let h = observed().await;
    h.post_json("/api/v1/simulator/scenarios", ADMIN, lossy_checkout())
        .await
        .expect(StatusCode::CREATED);
    h.post_json(
        "/api/v1/simulator/scenarios/builtin-latency-injection/start",
        OPERATOR,
        on("checkout"),
    )
    .await
    .expect(StatusCode::CREATED);
    h.post_json("/api/v1/simulator/runs/1/stop", OPERATOR, json!({}))
        .await
        .expect(StatusCode::OK);
    h.post_json(
        "/api/v1/simulator/scenarios/lossy-checkout/start",
        OPERATOR,
        json!({}),
    )
    .await
    .expect(StatusCode::CREATED);

    // A new server on the same storage.
    let state = AppState::simulated(h.storage.clone(), h.clock.clone(), auth()).unwrap();
    state.restore().await.unwrap();
    state.tick().await;
    let app = octrix_http::app(state.clone());
    let get = |path: &'static str| call(app.clone(), Method::GET, path, Some(VIEWER), None);
    get("/api/v1/simulator/scenarios/lossy-checkout")
        .await
        .expect(StatusCode::OK);
    let runs = get("/api/v1/simulator/runs").await.json();
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "stopped"], "newest first");
    assert!(
        runs[0]["message"]
            .as_str()
            .unwrap()
            .contains("server restart")
    );
    let doc = stored(&h, DocumentKind::ChaosRun, "run-2").await.unwrap();
    assert_eq!(doc["status"], "failed", "the interruption is saved");
    let next = call(
        app.clone(),
        Method::POST,
        "/api/v1/simulator/scenarios/builtin-service-failure/start",
        Some(OPERATOR),
        Some(serde_json::to_vec(&on("payments")).unwrap()),
    )
    .await;
    next.expect(StatusCode::CREATED);
    assert_eq!(next.json()["id"], 3, "ids continue after the stored runs");
    let _ = Arc::strong_count(&h.storage);
}

/// The README walkthrough: a chaos run on the sim opens an incident, and
/// healing resolves it; both are seen on the event stream.
#[tokio::test]
async fn readme_walkthrough_a_chaos_run_opens_an_incident_that_heals() {
    let h = observed().await;
    let incidents = h.get("/api/v1/incidents", ADMIN).await;
    incidents.expect(StatusCode::OK);
    assert_eq!(incidents.json()["total"], 0);
    let mut events = h.state.events().subscribe();
    h.post_json(
        "/api/v1/simulator/scenarios/builtin-pod-failure/start",
        ADMIN,
        json!({"target": {"namespace": "shop", "labels": {"app": "checkout"}}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..80 {
        h.advance(15);
        h.state.tick().await;
        while let Ok(event) = events.try_recv() {
            seen.push(event.name.clone());
        }
        if seen.iter().any(|n| n == "incident:resolved") {
            break;
        }
    }
    let position = |name: &str| seen.iter().position(|n| n == name);
    let started = position("chaos:run").expect("chaos:run");
    let opened = position("incident:opened").expect("incident:opened");
    let resolved = position("incident:resolved").expect("incident:resolved");
    assert!(started < opened && opened < resolved, "{seen:?}");
    let page = h
        .get("/api/v1/incidents?status=resolved", ADMIN)
        .await
        .json();
    let first = &page["items"][0];
    assert_eq!(first["category"], "pod-crash");
    assert_eq!(first["chaos_runs"], json!(["run-1"]), "{first}");
}
