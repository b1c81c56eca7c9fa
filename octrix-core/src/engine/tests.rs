//! Port interactions of the engine, with mockall for the actuator and
//! hand-driven observers.

use std::sync::Arc;

use async_trait::async_trait;
use mockall::predicate::{always, eq};

use super::*;
use crate::cluster::{
    ActionReport, ClusterAction, ClusterError, ClusterInfo, ClusterKind, ContainerState,
    DeploymentState, PodOwner, PodPhase, PodState,
};
use crate::incident::{IncidentStatus, TimelineEvent};
use crate::metrics::{
    ClusterMetrics, NodeMetrics, PodMetrics, SeriesSample, ServiceMetrics, ServiceSelector,
    SourceError, SourceInfo, SourceKind,
};
use crate::time::SignedDuration;
use crate::{Labels, ManualClock};

mockall::mock! {
    Actuator {}
    #[async_trait]
    impl ClusterActuator for Actuator {
        fn info(&self) -> ClusterInfo;
        async fn execute(&self, action: &ClusterAction, dry_run: bool) -> Result<ActionReport, ClusterError>;
    }
}

/// An observer the test drives by replacing the snapshot.
#[derive(Default)]
struct ScriptedObserver {
    snapshot: Mutex<ClusterSnapshot>,
}

impl ScriptedObserver {
    fn set(&self, snapshot: ClusterSnapshot) {
        *self.snapshot.lock().unwrap() = snapshot;
    }
}

#[async_trait]
impl ClusterObserver for ScriptedObserver {
    fn info(&self) -> ClusterInfo {
        ClusterInfo {
            name: "scripted".into(),
            kind: ClusterKind::Simulated,
        }
    }

    async fn snapshot(&self) -> Result<ClusterSnapshot, ClusterError> {
        Ok(self.snapshot.lock().unwrap().clone())
    }
}

/// A metric source with nothing to say, or down.
struct QuietSource {
    down: bool,
}

#[async_trait]
impl MetricSource for QuietSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: "quiet".into(),
            kind: SourceKind::Simulated,
        }
    }
    async fn scrape(&self) -> Result<Vec<SeriesSample>, SourceError> {
        if self.down {
            return Err(SourceError::Unavailable {
                source_name: "quiet".into(),
                reason: "connection refused".into(),
            });
        }
        Ok(Vec::new())
    }
    async fn node_metrics(&self) -> Result<Vec<NodeMetrics>, SourceError> {
        Ok(Vec::new())
    }
    async fn pod_metrics(&self, _: Option<&str>) -> Result<Vec<PodMetrics>, SourceError> {
        Ok(Vec::new())
    }
    async fn cluster_metrics(&self) -> Result<ClusterMetrics, SourceError> {
        Err(SourceError::NotFound {
            source_name: "quiet".into(),
            what: "cluster".into(),
        })
    }
    async fn service_metrics(&self, _: &ServiceSelector) -> Result<ServiceMetrics, SourceError> {
        Err(SourceError::NotFound {
            source_name: "quiet".into(),
            what: "service".into(),
        })
    }
}

fn pod(deployment: &str, index: u32, crashing: bool) -> PodState {
    PodState {
        namespace: "shop".into(),
        name: format!("{deployment}-{index}"),
        node: Some("node-0".into()),
        owner: PodOwner::Deployment(deployment.into()),
        phase: PodPhase::Running,
        labels: Labels::new(),
        containers: vec![ContainerState {
            name: deployment.into(),
            ready: !crashing,
            // The count survives recovery, as a kubelet keeps it for the pod.
            restart_count: 5,
            waiting_reason: crashing.then(|| "CrashLoopBackOff".to_owned()),
            last_termination_reason: crashing.then(|| "Error".to_owned()),
            cpu_used_cores: 0.1,
            cpu_limit_cores: Some(1.0),
            memory_used_bytes: 1e8,
            memory_limit_bytes: Some(1e9),
        }],
    }
}

/// Deployments of two pods; the first pod of each listed one crash-loops.
fn cluster(deployments: &[&str], crashing: &[&str]) -> ClusterSnapshot {
    let mut snapshot = ClusterSnapshot {
        taken_at: Some(Timestamp::UNIX_EPOCH),
        ..ClusterSnapshot::default()
    };
    for d in deployments {
        snapshot.deployments.push(DeploymentState {
            namespace: "shop".into(),
            name: (*d).into(),
            replicas: 2,
            ready_replicas: 2 - u32::from(crashing.contains(d)),
            labels: Labels::new(),
        });
        snapshot.pods.push(pod(d, 1, crashing.contains(d)));
        snapshot.pods.push(pod(d, 2, false));
    }
    snapshot
}

const RULES: &str = r#"
settle_seconds: 60
budget: { max_concurrent: 2 }
rules:
  - name: crashloops
    match: { categories: [pod-crash] }
    cooldown_seconds: 300
    actions:
      - type: restart-pod
      - type: notify
        channel: sre
"#;

struct Harness {
    clock: Arc<ManualClock>,
    observer: Arc<ScriptedObserver>,
    notifier: Arc<RecordingNotifier>,
    events: Arc<Mutex<Vec<String>>>,
    engine: Engine,
}

fn harness(actuator: MockActuator, rules: &str) -> Harness {
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_second(1_700_000_000).unwrap(),
    ));
    let observer = Arc::new(ScriptedObserver::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let ports = Ports {
        metrics: Arc::new(QuietSource { down: false }),
        observer: observer.clone(),
        actuator: Arc::new(actuator),
        store: Arc::new(crate::incident::InMemoryIncidentStore::default()),
        events: Arc::new(move |event: EngineEvent| {
            sink.lock().unwrap().push(event.name().to_owned())
        }),
        notifier: notifier.clone(),
        scripts: None,
        traffic: None,
        chaos: None,
        silencer: None,
        clock: clock.clone(),
    };
    let config = EngineConfig {
        healing: HealingConfig::from_yaml(rules).unwrap(),
        ..EngineConfig::default()
    };
    Harness {
        clock,
        observer,
        notifier,
        events,
        engine: Engine::new(config, ports).unwrap(),
    }
}

fn ok_report(action: &ClusterAction, _: bool) -> Result<ActionReport, ClusterError> {
    Ok(ActionReport {
        dry_run: false,
        summary: format!("done: {}", action.target()),
        not_evicted: Vec::new(),
    })
}

fn restart(pod: &str) -> ClusterAction {
    ClusterAction::RestartPod {
        namespace: "shop".into(),
        pod: pod.into(),
    }
}

fn outcomes(incident: &Incident) -> Vec<String> {
    incident
        .timeline
        .iter()
        .filter_map(|e| match &e.event {
            TimelineEvent::Healing {
                action, outcome, ..
            } => Some(format!(
                "{action}:{}",
                serde_json::to_value(outcome).unwrap()["result"]
                    .as_str()
                    .unwrap()
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_actuator_error_escalates_and_the_next_action_runs() {
    let mut actuator = MockActuator::new();
    actuator
        .expect_execute()
        .with(eq(restart("web-1")), eq(false))
        .times(1)
        .returning(|_, _| {
            Err(ClusterError::Forbidden {
                verb: "delete".into(),
                resource: "pods".into(),
                message: "no RBAC".into(),
            })
        });
    let mut h = harness(actuator, RULES);
    h.observer.set(cluster(&["web"], &["web"]));

    let report = h.engine.tick().await;
    assert_eq!((report.opened, report.actions), (1, 1));
    let incident = h.engine.book().incidents().next().unwrap().clone();
    assert_eq!(
        incident.severity,
        crate::Severity::High,
        "medium raised one level"
    );
    assert_eq!(outcomes(&incident), ["restart-pod:failed"]);
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].channel, "oncall");
    assert!(
        sent[0]
            .body
            .contains("restart-pod failed: forbidden: cannot delete pods"),
        "{}",
        sent[0].body
    );

    // The next pass tries the rule's next action despite the higher severity.
    h.clock.advance(SignedDuration::from_secs(15));
    h.engine.tick().await;
    let incident = h.engine.book().incidents().next().unwrap();
    assert_eq!(
        outcomes(incident),
        ["restart-pod:failed", "notify:executed"]
    );
    assert_eq!(h.notifier.sent()[1].channel, "sre");
}

#[tokio::test]
async fn the_budget_denies_a_third_concurrent_restart() {
    let mut actuator = MockActuator::new();
    actuator
        .expect_execute()
        .with(always(), eq(false))
        .times(2)
        .returning(ok_report);
    let mut h = harness(actuator, RULES);
    h.observer.set(cluster(&["a", "b", "c"], &["a", "b", "c"]));

    let report = h.engine.tick().await;
    assert_eq!((report.opened, report.actions, report.denied), (3, 2, 1));
    let denied: Vec<Incident> = h
        .engine
        .book()
        .incidents()
        .filter(|i| outcomes(i) == ["restart-pod:denied"])
        .cloned()
        .collect();
    assert_eq!(denied.len(), 1);
    let TimelineEvent::Healing { outcome, .. } = &denied[0].timeline.last().unwrap().event else {
        panic!("the denial is the last entry");
    };
    assert_eq!(
        outcome,
        &HealingOutcome::Denied {
            reason: "safety budget: 2 disruptions already in flight (limit 2)".into()
        }
    );
    assert_eq!(h.engine.budget().in_flight(), 2);

    // The denial repeats every tick, but the timeline records it once.
    h.clock.advance(SignedDuration::from_secs(15));
    let report = h.engine.tick().await;
    assert_eq!((report.actions, report.denied), (0, 0));
    let again = h.engine.book().get(&denied[0].id).unwrap();
    assert_eq!(outcomes(again).len(), 1);

    // A new configuration's budget takes effect; what is in flight stays.
    let mut config = h.engine.planner().config().clone();
    config.budget.max_concurrent = 5;
    h.engine.set_healing_config(config).unwrap();
    assert_eq!(h.engine.budget().config().max_concurrent, 5);
    assert_eq!(h.engine.budget().in_flight(), 2);
}

#[tokio::test]
async fn cooldown_holds_across_ticks() {
    let mut actuator = MockActuator::new();
    actuator
        .expect_execute()
        .with(eq(restart("web-1")), eq(false))
        .times(2)
        .returning(ok_report);
    let mut h = harness(actuator, RULES);
    let step = SignedDuration::from_secs(15);

    // t=0: crash loop, restart. t=60: healthy again: verified healed.
    h.observer.set(cluster(&["web"], &["web"]));
    h.engine.tick().await;
    h.observer.set(cluster(&["web"], &[]));
    for _ in 0..4 {
        h.clock.advance(step);
        h.engine.tick().await;
    }
    let first = h.engine.book().incidents().next().unwrap().clone();
    assert_eq!(first.status, IncidentStatus::Resolved);
    assert!(first.resolved_by_healing);
    assert_eq!(
        outcomes(&first),
        ["restart-pod:executed", "restart-pod:healed"]
    );

    // t=75: it crashes again; the restart is cooling down until t=300.
    h.observer.set(cluster(&["web"], &["web"]));
    let mut executed_at = None;
    for _ in 0..20 {
        h.clock.advance(step);
        let report = h.engine.tick().await;
        if report.actions == 1 {
            executed_at = Some(h.clock.now());
            break;
        }
    }
    let start = Timestamp::from_second(1_700_000_000).unwrap();
    assert_eq!(
        executed_at.unwrap().duration_since(start),
        SignedDuration::from_secs(300)
    );
    assert_eq!(
        h.engine.book().incidents().len(),
        1,
        "the same incident reopened"
    );
    let incident = h.engine.book().incidents().next().unwrap();
    assert_eq!(
        outcomes(incident),
        [
            "restart-pod:executed",
            "restart-pod:healed",
            "restart-pod:denied",
            "restart-pod:executed"
        ]
    );
}

#[tokio::test]
async fn a_source_that_is_down_is_reported_not_invented() {
    let mut actuator = MockActuator::new();
    actuator.expect_execute().never();
    let mut h = harness(actuator, RULES);
    h.engine.ports.metrics = Arc::new(QuietSource { down: true });
    let report = h.engine.tick().await;
    assert_eq!(report.samples, 0);
    assert_eq!(
        report.errors,
        ["metric source quiet is unavailable: connection refused"]
    );
    let events = h.events.lock().unwrap().clone();
    assert!(events.contains(&"source:status".to_owned()));
    assert!(events.contains(&"cluster:update".to_owned()));
}

#[tokio::test]
async fn dry_run_plans_and_records_without_acting() {
    let mut actuator = MockActuator::new();
    actuator
        .expect_execute()
        .with(eq(restart("web-1")), eq(true))
        .times(1)
        .returning(|action, _| {
            Ok(ActionReport {
                dry_run: true,
                summary: format!("would delete {}", action.target()),
                not_evicted: Vec::new(),
            })
        });
    let mut h = harness(actuator, RULES);
    h.engine.set_dry_run(true);
    h.observer.set(cluster(&["web"], &["web"]));
    h.engine.tick().await;
    let incident = h.engine.book().incidents().next().unwrap();
    assert_eq!(outcomes(incident), ["restart-pod:dry_run"]);
    assert_eq!(h.engine.budget().in_flight(), 0);
    let history: Vec<_> = h.engine.action_history().collect();
    assert_eq!(history.len(), 1);
    assert!(history[0].dry_run);
}

#[tokio::test]
async fn chaos_runs_share_the_budget_and_their_incidents_are_expected() {
    use crate::chaos::{
        RunStatus, ScenarioId, ScenarioType, SelectionMode, StartOptions, TargetSelector,
    };
    use crate::sim::{SimCluster, SimConfig};

    let clock = Arc::new(ManualClock::new(
        Timestamp::from_second(1_700_000_000).unwrap(),
    ));
    let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let ports = Ports {
        events: Arc::new(move |event: EngineEvent| {
            sink.lock().unwrap().push(event.name().to_owned())
        }),
        ..Ports::simulated(sim.clone(), clock.clone())
    };
    let config = EngineConfig {
        healing: HealingConfig::from_yaml(RULES).unwrap(),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, ports).unwrap();
    engine.tick().await;

    let options = StartOptions {
        target: Some(TargetSelector {
            namespace: Some("shop".into()),
            labels: crate::labels::from_pairs([("app", "checkout")]),
            mode: SelectionMode::One,
        }),
        ..StartOptions::default()
    };
    let run = engine
        .start_chaos(&ScenarioId::builtin(ScenarioType::PodFailure), options)
        .await
        .unwrap();
    assert_eq!(engine.budget().in_flight(), 1, "the run holds a permit");
    assert!(events.lock().unwrap().contains(&"chaos:run".to_owned()));

    // The crash loop the run causes opens an incident linked to the run.
    // Healing would restart the pod, but the run already disrupts one of
    // checkout's two pods, and the shared budget allows half of them at once.
    clock.advance(SignedDuration::from_secs(15));
    let report = engine.tick().await;
    let incident = engine
        .book()
        .incidents()
        .find(|i| i.category == crate::Category::PodCrash)
        .expect("the run's crash loop opens an incident");
    assert_eq!(incident.chaos_runs, [run.to_string()]);
    assert!(incident.is_expected());
    assert_eq!((report.actions, report.denied), (0, 1));
    let TimelineEvent::Healing { outcome, .. } = &incident.timeline.last().unwrap().event else {
        panic!("the denial is the last entry");
    };
    assert_eq!(
        outcome,
        &HealingOutcome::Denied {
            reason: "safety budget: shop/checkout would have 2 of 2 pods disrupted at once (max fraction 0.5)".into()
        }
    );

    // Stopping the run restores the cluster and frees its permit.
    engine.stop_chaos(run).await.unwrap();
    let chaos = engine.chaos().unwrap();
    assert_eq!(chaos.get(run).unwrap().status, RunStatus::Stopped);
    assert!(sim.faults().is_empty());
    assert_eq!(engine.budget().in_flight(), 0);
}

#[tokio::test]
async fn without_an_executor_chaos_says_so() {
    let mut h = harness(MockActuator::new(), RULES);
    let err = h
        .engine
        .start_chaos(
            &crate::chaos::ScenarioId::builtin(crate::chaos::ScenarioType::PodFailure),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, Error::ChaosUnavailable);
    assert_eq!(
        err.to_string(),
        "chaos is not available: no chaos executor is configured"
    );
}

#[tokio::test]
async fn breaker_changes_go_on_the_service_incident_timeline() {
    use crate::alert::{Alert, AlertStatus};
    use crate::resilience::{BreakerState, BreakerTransition, TransitionReason};

    let mut h = harness(MockActuator::new(), RULES);
    let alert = Alert {
        fingerprint: "f1".into(),
        status: AlertStatus::Firing,
        labels: crate::labels::from_pairs([("alertname", "Errors"), ("service", "checkout")]),
        annotations: Labels::new(),
        starts_at: h.clock.now(),
        ends_at: None,
        generator_url: None,
    };
    h.engine.ingest_alerts(&[alert]).await.unwrap();
    let opened = BreakerTransition {
        service: "checkout".into(),
        from: BreakerState::Closed,
        to: BreakerState::Open,
        at: h.clock.now(),
        reason: TransitionReason::ConsecutiveFailures { count: 5 },
    };
    let elsewhere = BreakerTransition {
        service: "payments".into(),
        ..opened.clone()
    };
    h.engine
        .record_breaker_transitions(&[opened, elsewhere])
        .await
        .unwrap();
    let incident = h.engine.book().incidents().next().unwrap();
    let breaker_entries: Vec<_> = incident
        .timeline
        .iter()
        .filter(|e| matches!(e.event, TimelineEvent::CircuitBreaker { .. }))
        .collect();
    assert_eq!(
        breaker_entries.len(),
        1,
        "only checkout's breaker is on checkout's incident"
    );
    let json = serde_json::to_value(breaker_entries[0]).unwrap();
    assert_eq!(json["kind"], "circuit_breaker");
    assert_eq!(
        (json["from"].as_str(), json["to"].as_str()),
        (Some("closed"), Some("open"))
    );
    let changes = h
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| *e == "circuit:changed")
        .count();
    assert_eq!(changes, 2);
    let stored = h
        .engine
        .ports()
        .store
        .get(&incident.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.timeline.len(), incident.timeline.len(), "persisted");
}

/// A silencer that records what it was asked.
#[derive(Default)]
struct RecordingSilencer {
    created: Mutex<Vec<SilenceRequest>>,
    expired: Mutex<Vec<String>>,
}

#[async_trait]
impl Silencer for RecordingSilencer {
    async fn silence(&self, request: &SilenceRequest) -> Result<String, PortError> {
        let mut created = self.created.lock().unwrap();
        created.push(request.clone());
        Ok(format!("silence-{}", created.len()))
    }
    async fn expire(&self, id: &str) -> Result<(), PortError> {
        self.expired.lock().unwrap().push(id.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn chaos_runs_and_remediations_silence_their_expected_alerts() {
    use crate::chaos::{ScenarioId, ScenarioType, SelectionMode, StartOptions, TargetSelector};
    use crate::sim::{SimCluster, SimConfig};

    let clock = Arc::new(ManualClock::new(
        Timestamp::from_second(1_700_000_000).unwrap(),
    ));
    let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
    let silencer = Arc::new(RecordingSilencer::default());
    let ports = Ports {
        silencer: Some(silencer.clone()),
        ..Ports::simulated(sim, clock.clone())
    };
    let config = EngineConfig {
        healing: HealingConfig::from_yaml(RULES).unwrap(),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, ports).unwrap();
    engine.tick().await;
    let options = StartOptions {
        target: Some(TargetSelector {
            namespace: Some("shop".into()),
            labels: crate::labels::from_pairs([("app", "frontend")]),
            mode: SelectionMode::One,
        }),
        ..StartOptions::default()
    };
    let run = engine
        .start_chaos(&ScenarioId::builtin(ScenarioType::PodFailure), options)
        .await
        .unwrap();
    {
        let created = silencer.created.lock().unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].matchers["namespace"], "shop");
        assert!(created[0].matchers["pod"].starts_with("frontend-"));
        assert_eq!(
            created[0].ends_at.duration_since(created[0].starts_at),
            SignedDuration::from_secs(60),
            "until the run's deadline"
        );
        assert!(created[0].comment.contains(&run.to_string()));
    }
    engine.stop_chaos(run).await.unwrap();
    assert_eq!(*silencer.expired.lock().unwrap(), ["silence-1"]);
}

#[tokio::test]
async fn a_remediation_silences_its_expected_alerts_while_it_settles() {
    let mut actuator = MockActuator::new();
    actuator.expect_execute().times(1).returning(ok_report);
    let mut h = harness(actuator, RULES);
    let silencer = Arc::new(RecordingSilencer::default());
    h.engine.ports.silencer = Some(silencer.clone());
    h.observer.set(cluster(&["web"], &["web"]));
    h.engine.tick().await;
    let created = silencer.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].matchers,
        crate::labels::from_pairs([("namespace", "shop"), ("pod", "web-1")])
    );
    assert_eq!(
        created[0].ends_at.duration_since(created[0].starts_at),
        SignedDuration::from_secs(60),
        "the settle time"
    );
    assert!(
        created[0]
            .comment
            .starts_with("octrix healing INC-000001: restart-pod")
    );
}

#[tokio::test]
async fn the_event_notifier_delivers_on_the_event_stream() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let notifier = EventNotifier::new(Arc::new(move |event: EngineEvent| {
        sink.lock()
            .unwrap()
            .push(serde_json::to_value(&event).unwrap());
    }));
    let notification = Notification {
        channel: "sre".into(),
        subject: "[high] web down".into(),
        body: "INC-000001".into(),
    };
    notifier.notify(&notification).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["event"], "notification:sent");
    assert_eq!(seen[0]["data"]["channel"], "sre");
}

#[tokio::test]
async fn scaling_on_request_goes_through_the_actuator_and_the_budget() {
    let mut actuator = MockActuator::new();
    actuator
        .expect_execute()
        .with(
            eq(ClusterAction::ScaleDeployment {
                namespace: "shop".into(),
                deployment: "cart".into(),
                replicas: 4,
            }),
            eq(false),
        )
        .times(1)
        .returning(|_, _| {
            Ok(ActionReport {
                dry_run: false,
                summary: "scaled shop/cart to 4".into(),
                not_evicted: Vec::new(),
            })
        });
    let mut h = harness(actuator, RULES);
    h.observer.set(cluster(&["cart"], &[]));
    let up = h.engine.scale_deployment("shop", "cart", 2).await.unwrap();
    assert_eq!(
        (up.previous_replicas, up.replicas, up.summary.as_str()),
        (2, 4, "scaled shop/cart to 4")
    );
    assert_eq!(h.engine.budget().in_flight(), 0, "the permit is returned");

    // Taking both replicas away breaks the budget's fraction: refused
    // before the actuator is called (it expects one call only).
    let down = h.engine.scale_deployment("shop", "cart", -2).await;
    assert!(
        matches!(&down, Err(Error::Refused(reason)) if reason.starts_with("safety budget")),
        "{down:?}"
    );
    let protected = h.engine.scale_deployment("kube-system", "dns", 1).await;
    assert_eq!(
        protected,
        Err(Error::Refused("namespace kube-system is protected".into()))
    );
    let missing = h.engine.scale_deployment("shop", "nope", 1).await;
    assert_eq!(
        missing,
        Err(Error::UnknownWorkload("deployment shop/nope".into()))
    );
}

fn firing(fingerprint: &str, severity: &str, at: Timestamp) -> crate::alert::Alert {
    crate::alert::Alert {
        fingerprint: fingerprint.into(),
        status: crate::alert::AlertStatus::Firing,
        labels: crate::labels::from_pairs([
            ("alertname", "QueueBacklog"),
            ("service", "billing"),
            ("severity", severity),
        ]),
        annotations: Labels::new(),
        starts_at: at,
        ends_at: None,
        generator_url: None,
    }
}

const NOTIFY_BACKLOGS: &str = r#"
rules:
  - name: backlogs
    match: { labels: { alertname: QueueBacklog }, min_severity: medium }
    actions:
      - type: notify
        channel: billing-oncall
"#;

#[tokio::test]
async fn an_alert_no_rule_matched_is_healed_once_a_rule_for_it_arrives() {
    let mut h = harness(MockActuator::new(), "rules: []");
    let now = h.clock.now();
    h.engine
        .ingest_alerts(&[firing("f1", "warning", now)])
        .await
        .unwrap();
    h.engine.tick().await;
    h.engine.tick().await;
    assert!(h.notifier.sent().is_empty(), "no rule, no action");

    h.engine
        .set_healing_config(HealingConfig::from_yaml(NOTIFY_BACKLOGS).unwrap())
        .unwrap();
    h.engine.tick().await;
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].channel, "billing-oncall");
}

#[tokio::test]
async fn a_settled_alert_is_planned_again_when_a_redelivery_changes_it() {
    let mut h = harness(MockActuator::new(), NOTIFY_BACKLOGS);
    let now = h.clock.now();
    h.engine
        .ingest_alerts(&[firing("f1", "low", now)])
        .await
        .unwrap();
    h.engine.tick().await;
    assert!(h.notifier.sent().is_empty(), "low is below the rule");

    // The same alert, now at warning (medium): the incident's severity rises.
    h.engine
        .ingest_alerts(&[firing("f1", "warning", now)])
        .await
        .unwrap();
    assert_eq!(h.engine.book().incidents().len(), 1);
    h.engine.tick().await;
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].channel, "billing-oncall");
}

#[tokio::test]
async fn restored_incidents_are_planned() {
    let mut source = harness(MockActuator::new(), NOTIFY_BACKLOGS);
    let now = source.clock.now();
    source
        .engine
        .ingest_alerts(&[firing("f1", "warning", now)])
        .await
        .unwrap();
    let stored: Vec<Incident> = source.engine.book().incidents().cloned().collect();

    let mut h = harness(MockActuator::new(), NOTIFY_BACKLOGS);
    h.engine
        .restore(RestoredState {
            incidents: stored,
            highest_incident_id: None,
            healing: None,
            action_history: Vec::new(),
        })
        .unwrap();
    h.engine.tick().await;
    assert_eq!(h.notifier.sent().len(), 1);
}

#[tokio::test]
async fn alerts_no_rule_matches_are_settled_at_ingestion_not_planned_by_the_tick() {
    let mut h = harness(MockActuator::new(), NOTIFY_BACKLOGS);
    let now = h.clock.now();
    let mut other = firing("f2", "warning", now);
    other.labels.insert("alertname".into(), "DiskFull".into());
    h.engine
        .ingest_alerts(&[firing("f1", "low", now), other])
        .await
        .unwrap();
    assert_eq!(h.engine.plan_queue.settled(), 2, "no rule matches either");

    let matching = firing("f3", "warning", now);
    h.engine.ingest_alerts(&[matching]).await.unwrap();
    assert_eq!(
        h.engine.plan_queue.settled(),
        2,
        "a rule matches: the tick plans it"
    );
    h.engine.tick().await;
    let sent = h.notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].channel, "billing-oncall");
    let healed: Vec<String> = h
        .engine
        .book()
        .incidents()
        .filter(|i| !outcomes(i).is_empty())
        .map(|i| i.fingerprint.as_str().to_owned())
        .collect();
    assert_eq!(healed, vec!["f3".to_owned()]);
}

#[tokio::test]
async fn workload_matching_without_names_agrees_with_workload_of() {
    let mut h = harness(MockActuator::new(), "rules: []");
    let now = h.clock.now();
    let with = |fingerprint: &str, pairs: &[(&str, &str)]| {
        let mut alert = firing(fingerprint, "warning", now);
        for (key, value) in pairs {
            alert.labels.insert((*key).into(), (*value).into());
        }
        alert
    };
    h.engine
        .ingest_alerts(&[
            with("f1", &[("instance", "db-1:9100")]),
            with("f2", &[("instance", "db-2:9100")]),
            with("f3", &[("deployment", "api"), ("namespace", "shop")]),
            with("f4", &[("pod", "api-1"), ("namespace", "shop")]),
            with("f5", &[]),
        ])
        .await
        .unwrap();
    let incidents: Vec<Incident> = h.engine.book().incidents().cloned().collect();
    assert_eq!(incidents.len(), 5);
    for (i, x) in incidents.iter().enumerate() {
        for (j, y) in incidents.iter().enumerate() {
            let workload = h.engine.workload_of(y);
            assert_eq!(
                h.engine.is_on_workload(x, &workload),
                i == j,
                "{} on {workload}",
                x.fingerprint.as_str()
            );
        }
    }
}
