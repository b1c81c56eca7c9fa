//! Canaries on traffic rules: started through the API, advanced by the
//! engine's ticks on the simulator's metrics, and reported by the canary
//! status endpoint (stage, weights, gate results).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use octrix_core::ManualClock;
use octrix_core::sim::{SimConfig, SimDeploymentConfig};
use octrix_http::{AppState, Limits};
use serde_json::{Value, json};

/// A server on the default sim plus the two versions of `shop/reviews`
/// (the sim serves a version as the deployment `<service>-<version>`).
fn with_reviews() -> Harness {
    let mut config = SimConfig::default();
    config
        .deployments
        .push(SimDeploymentConfig::named("shop", "reviews-v1", 2));
    config
        .deployments
        .push(SimDeploymentConfig::named("shop", "reviews-v2", 1));
    let clock = Arc::new(ManualClock::new("2026-11-23T09:06:40Z".parse().unwrap()));
    let storage = Arc::new(TestStorage::default());
    let state = AppState::simulated_with(
        config,
        storage.clone(),
        clock.clone(),
        auth(),
        Limits::default(),
    )
    .unwrap();
    Harness {
        state,
        clock,
        storage,
    }
}

fn rule(service: &str) -> Value {
    json!({"service": service, "namespace": "shop",
           "destinations": [{"subset": "v1", "labels": {"version": "v1"}, "weight": 100},
                            {"subset": "v2", "labels": {"version": "v2"}, "weight": 0}]})
}

fn canary_config(failure_limit: u32) -> Value {
    json!({"stable_subset": "v1", "canary_subset": "v2",
           "steps": [{"set_weight": 20}, {"analysis": {"checks": 2}}],
           "analysis": {"interval": "1m", "window_seconds": 60, "failure_limit": failure_limit,
                        "min_success_rate": 0.9}})
}

async fn run_until_finished(h: &Harness, id: &str) -> Value {
    for _ in 0..40 {
        h.advance(30);
        h.state.tick().await;
        let status = h
            .get(&format!("/api/v1/routing/rules/{id}/canary"), VIEWER)
            .await;
        status.expect(StatusCode::OK);
        let status = status.json();
        if status["finished"] == true {
            return status;
        }
    }
    panic!("the canary on {id} never finished");
}

#[tokio::test]
async fn a_healthy_canary_is_promoted_step_by_step() {
    let h = with_reviews();
    h.post_json("/api/v1/routing/rules", ADMIN, rule("reviews"))
        .await
        .expect(StatusCode::CREATED);
    h.get("/api/v1/routing/rules/shop.reviews/canary", VIEWER)
        .await
        .expect(StatusCode::NOT_FOUND);
    let mut events = h.state.events().subscribe();
    let started = h
        .post_json(
            "/api/v1/routing/rules/shop.reviews/canary",
            OPERATOR,
            canary_config(0),
        )
        .await;
    started.expect(StatusCode::CREATED);
    let started = started.json();
    assert_eq!(started["state"], "progressing");
    assert_eq!(started["weights"], json!({"stable": 80, "canary": 20}));
    assert_eq!(started["step_index"], 0);
    assert_eq!(started["steps_total"], 2);
    let event = events.try_recv().unwrap();
    assert_eq!(event.name, "routing:canary");
    let rule = h
        .get("/api/v1/routing/rules/shop.reviews", VIEWER)
        .await
        .json();
    let weights: Vec<u64> = rule["rule"]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [80, 20], "the rule carries the canary's weights");
    h.post_json(
        "/api/v1/routing/rules/shop.reviews/canary",
        OPERATOR,
        canary_config(0),
    )
    .await
    .expect(StatusCode::CONFLICT);

    let done = run_until_finished(&h, "shop.reviews").await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["weights"], json!({"stable": 0, "canary": 100}));
    let gates = done["gate_results"].as_array().unwrap();
    assert_eq!(gates.len(), 2, "{done}");
    assert!(gates.iter().all(|g| g["outcome"]["result"] == "passed"));
    assert!(gates[0]["outcome"]["success_rate"].as_f64().unwrap() >= 0.9);
}

#[tokio::test]
async fn a_canary_without_metrics_rolls_back_and_says_why() {
    let h = with_reviews();
    // No `ghost-v2` in the sim: every check finds no metrics.
    h.post_json("/api/v1/routing/rules", ADMIN, rule("ghost"))
        .await
        .expect(StatusCode::CREATED);
    h.post_json(
        "/api/v1/routing/rules/shop.ghost/canary",
        OPERATOR,
        canary_config(1),
    )
    .await
    .expect(StatusCode::CREATED);
    let done = run_until_finished(&h, "shop.ghost").await;
    assert_eq!(done["state"], "rolled_back", "{done}");
    assert_eq!(done["weights"], json!({"stable": 100, "canary": 0}));
    assert_eq!(done["failed_checks"], 2);
    let gates = done["gate_results"].as_array().unwrap();
    assert_eq!(gates.len(), 2);
    assert!(
        gates
            .iter()
            .all(|g| g["outcome"]["type"] == "metrics_unavailable"),
        "{done}"
    );
}

#[tokio::test]
async fn canary_configurations_are_checked_field_by_field() {
    let h = with_reviews();
    h.post_json("/api/v1/routing/rules", ADMIN, rule("reviews"))
        .await
        .expect(StatusCode::CREATED);
    let mut bad = canary_config(0);
    bad["steps"][0]["set_weight"] = json!(120);
    let reply = h
        .post_json("/api/v1/routing/rules/shop.reviews/canary", OPERATOR, bad)
        .await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "steps[0].set_weight");
    let mut wrong_subset = canary_config(0);
    wrong_subset["canary_subset"] = json!("v3");
    let reply = h
        .post_json(
            "/api/v1/routing/rules/shop.reviews/canary",
            OPERATOR,
            wrong_subset,
        )
        .await;
    reply.expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["field"], "canary_subset");
    h.post_json(
        "/api/v1/routing/rules/shop.nothing/canary",
        OPERATOR,
        canary_config(0),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}
