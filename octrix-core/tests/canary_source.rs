//! A canary driven end to end through `Canary::step_with_source`, with a fake
//! `MetricSource` that answers from a script and records what it was asked.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use octrix_core::Timestamp;
use octrix_core::metrics::{
    ClusterMetrics, MetricSource, NodeMetrics, PodMetrics, SeriesSample, ServiceMetrics,
    ServiceSelector, SourceError, SourceInfo, SourceKind,
};
use octrix_core::routing::canary::{
    AnalysisConfig, Canary, CanaryConfig, CanaryEventKind, CanaryState, CanaryStep, CheckFailure,
    CheckOutcome, NoTrafficPolicy,
};
use octrix_core::routing::{Destination, IstioApiVersion, TrafficRule};
use octrix_core::time::SignedDuration;

/// Answers `service_metrics` from a queue; everything else is "not found".
struct ScriptedSource {
    answers: Mutex<VecDeque<Result<ServiceMetrics, SourceError>>>,
    asked: Mutex<Vec<ServiceSelector>>,
}

impl ScriptedSource {
    fn new(answers: Vec<Result<ServiceMetrics, SourceError>>) -> Self {
        Self {
            answers: Mutex::new(answers.into()),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn not_found(&self, what: &str) -> SourceError {
        SourceError::NotFound {
            source_name: "script".into(),
            what: what.into(),
        }
    }
}

#[async_trait]
impl MetricSource for ScriptedSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: "script".into(),
            kind: SourceKind::Simulated,
        }
    }

    async fn scrape(&self) -> Result<Vec<SeriesSample>, SourceError> {
        Err(self.not_found("series"))
    }

    async fn node_metrics(&self) -> Result<Vec<NodeMetrics>, SourceError> {
        Err(self.not_found("nodes"))
    }

    async fn pod_metrics(&self, _namespace: Option<&str>) -> Result<Vec<PodMetrics>, SourceError> {
        Err(self.not_found("pods"))
    }

    async fn cluster_metrics(&self) -> Result<ClusterMetrics, SourceError> {
        Err(self.not_found("cluster"))
    }

    async fn service_metrics(
        &self,
        selector: &ServiceSelector,
    ) -> Result<ServiceMetrics, SourceError> {
        self.asked.lock().unwrap().push(selector.clone());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err(self.not_found("scripted answer")))
    }
}

fn healthy() -> Result<ServiceMetrics, SourceError> {
    Ok(ServiceMetrics {
        request_rate: 40.0,
        error_rate: Some(0.002),
        latency_p50_seconds: Some(0.03),
        latency_p99_seconds: Some(0.21),
    })
}

fn slow() -> Result<ServiceMetrics, SourceError> {
    Ok(ServiceMetrics {
        request_rate: 40.0,
        error_rate: Some(0.0),
        latency_p50_seconds: Some(0.3),
        latency_p99_seconds: Some(1.7),
    })
}

fn down() -> Result<ServiceMetrics, SourceError> {
    Err(SourceError::Unavailable {
        source_name: "prometheus".into(),
        reason: "connection refused".into(),
    })
}

fn canary() -> Canary {
    let rule = TrafficRule::weighted(
        "reviews",
        "bookinfo",
        vec![
            Destination::for_version("v1", 100),
            Destination::for_version("v2", 0),
        ],
    );
    let config = CanaryConfig {
        stable_subset: "v1".into(),
        canary_subset: "v2".into(),
        steps: vec![
            CanaryStep::SetWeight(10),
            CanaryStep::Analysis { checks: 2 },
            CanaryStep::SetWeight(50),
            CanaryStep::Analysis { checks: 2 },
        ],
        analysis: AnalysisConfig {
            interval: SignedDuration::from_secs(30),
            window_seconds: 120,
            failure_limit: 1,
            min_success_rate: Some(0.99),
            max_latency_p99_seconds: Some(0.5),
            min_request_rate: 1.0,
            no_traffic: NoTrafficPolicy::Fail,
        },
        progress_deadline: Some(SignedDuration::from_hours(1)),
    };
    Canary::new(config, rule).unwrap()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_750_000_000 + seconds).unwrap()
}

/// Steps every 10 s until the canary is over or `limit` seconds have passed,
/// checking at each weight change that the rule to apply is valid; returns
/// every event.
async fn run(canary: &mut Canary, source: &ScriptedSource, limit: i64) -> Vec<CanaryEventKind> {
    let mut events = Vec::new();
    let mut now = 0;
    while !canary.state().is_terminal() && now <= limit {
        for event in canary.step_with_source(at(now), source).await {
            if let CanaryEventKind::WeightChanged {
                stable,
                canary: weight,
            } = event.kind
            {
                // What an adapter would apply: the rule renders and sums to 100.
                let rule = canary.traffic_rule();
                assert_eq!(stable + weight, 100);
                assert!(rule.to_istio(IstioApiVersion::V1).is_ok());
            }
            events.push(event.kind);
        }
        now += 10;
    }
    events
}

#[tokio::test]
async fn healthy_canary_is_promoted_and_only_queried_when_due() {
    let source = ScriptedSource::new(vec![healthy(), healthy(), healthy(), healthy()]);
    let mut canary = canary();
    let events = run(&mut canary, &source, 3_600).await;
    assert_eq!(canary.state(), CanaryState::Succeeded);
    assert_eq!(canary.weights().canary, 100);
    let asked = source.asked.lock().unwrap();
    assert_eq!(asked.len(), 4, "one query per due check");
    assert_eq!(
        asked[0],
        ServiceSelector {
            namespace: "bookinfo".into(),
            service: "reviews".into(),
            version: Some("v2".into()),
            window_seconds: 120,
        }
    );
    let weights: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            CanaryEventKind::WeightChanged { canary, .. } => Some(*canary),
            _ => None,
        })
        .collect();
    assert_eq!(weights, [10, 50, 100]);
}

#[tokio::test]
async fn slow_canary_and_unavailable_source_roll_back() {
    let source = ScriptedSource::new(vec![healthy(), slow(), down()]);
    let mut canary = canary();
    let events = run(&mut canary, &source, 3_600).await;
    assert_eq!(canary.state(), CanaryState::RolledBack);
    assert_eq!(canary.weights().canary, 0);
    let failures: Vec<&CheckFailure> = events
        .iter()
        .filter_map(|e| match e {
            CanaryEventKind::Checked {
                outcome: CheckOutcome::Failed(failure),
                ..
            } => Some(failure),
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        [
            &CheckFailure::LatencyTooHigh {
                observed_seconds: 1.7,
                maximum_seconds: 0.5
            },
            &CheckFailure::MetricsUnavailable {
                reason: "metric source prometheus is unavailable: connection refused".into()
            },
        ]
    );
    assert_eq!(source.asked.lock().unwrap().len(), 3);
}
