//! Controller tests on the simulated cluster and on a scripted executor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use crate::healing::{BudgetConfig, DisruptionRequest, Disruptor, SafetyBudget, WorkloadImpact};
use crate::metrics::ServiceMetrics;
use crate::sim::{SimCluster, SimConfig};
use crate::time::SignedDuration;
use crate::{ManualClock, Timestamp, labels};

struct Bed {
    clock: Arc<ManualClock>,
    sim: Arc<SimCluster>,
    chaos: ChaosController,
    budget: SafetyBudget,
}

impl Bed {
    fn new() -> Self {
        Self::with_budget(BudgetConfig::default())
    }

    fn with_budget(budget: BudgetConfig) -> Self {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_700_000_000).unwrap(),
        ));
        let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
        let executor = Arc::new(SimChaosExecutor::new(sim.clone()));
        let chaos =
            ChaosController::new(ChaosConfig::default(), ScenarioCatalog::default(), executor);
        Self {
            clock,
            sim,
            chaos,
            budget: SafetyBudget::new(budget),
        }
    }

    fn now(&self) -> Timestamp {
        use crate::Clock;
        self.clock.now()
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }

    async fn start(
        &mut self,
        scenario: ScenarioType,
        options: StartOptions,
    ) -> Result<RunId, Error> {
        let snapshot = self.sim.snapshot_now();
        let now = self.now();
        self.chaos
            .start(
                &ScenarioId::builtin(scenario),
                options,
                &snapshot,
                &mut self.budget,
                now,
            )
            .await
    }

    async fn stop(&mut self, run: RunId) -> Result<(), Error> {
        let now = self.now();
        self.chaos.stop(run, &mut self.budget, now).await
    }

    async fn tick(&mut self) {
        let snapshot = self.sim.snapshot_now();
        let now = self.now();
        self.chaos.tick(&snapshot, &mut self.budget, now).await;
    }
}

fn aimed_at(app: &str, mode: SelectionMode) -> StartOptions {
    StartOptions {
        target: Some(TargetSelector {
            namespace: Some("shop".into()),
            labels: labels::from_pairs([("app", app)]),
            mode,
        }),
        ..StartOptions::default()
    }
}

fn kinds(events: &[ChaosEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            ChaosEvent::RunScheduled { .. } => "scheduled",
            ChaosEvent::RunStarted { .. } => "started",
            ChaosEvent::RunCompleted { .. } => "completed",
            ChaosEvent::RunStopped { .. } => "stopped",
            ChaosEvent::RunCancelled { .. } => "cancelled",
            ChaosEvent::RunAborted { .. } => "aborted",
            ChaosEvent::RunFailed { .. } => "failed",
            ChaosEvent::RunReverted { .. } => "reverted",
            ChaosEvent::RevertFailed { .. } => "revert-failed",
        })
        .collect()
}

#[tokio::test]
async fn a_run_injects_holds_a_permit_and_stopping_reverts_it() {
    let mut bed = Bed::new();
    let run = bed
        .start(
            ScenarioType::ServiceFailure,
            aimed_at("payments", SelectionMode::One),
        )
        .await
        .unwrap();
    let r = bed.chaos.get(run).unwrap();
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!(
        r.targets,
        [Target::Service {
            namespace: "shop".into(),
            name: "payments".into()
        }]
    );
    assert_eq!(r.started_at, Some(bed.now()));
    assert_eq!(
        r.deadline,
        Some(
            bed.now()
                .checked_add(SignedDuration::from_secs(60))
                .unwrap()
        )
    );
    assert!(r.permit.is_some());
    assert_eq!(r.injection.as_ref().unwrap().changes.len(), 1);
    assert_eq!(bed.budget.in_flight(), 1);
    assert_eq!(bed.sim.faults().len(), 1);
    assert_eq!(bed.chaos.active().len(), 1);

    bed.advance(30);
    bed.stop(run).await.unwrap();
    let r = bed.chaos.get(run).unwrap();
    assert_eq!(r.status, RunStatus::Stopped);
    assert_eq!(r.ended_at, Some(bed.now()));
    assert_eq!(r.reverted_at, Some(bed.now()));
    assert_eq!(r.permit, None);
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.budget.in_flight(), 0);
    assert!(bed.chaos.active().is_empty());
    let events = bed.chaos.drain_events();
    assert_eq!(kinds(&events), ["started", "stopped", "reverted"]);
    assert!(events.iter().all(|e| e.run() == run));
    assert!(bed.chaos.drain_events().is_empty(), "drained");
}

#[tokio::test]
async fn tick_completes_expired_runs_and_restores_the_pods() {
    let mut bed = Bed::new();
    let run = bed
        .start(
            ScenarioType::PodFailure,
            aimed_at("frontend", SelectionMode::One),
        )
        .await
        .unwrap();
    let Target::Pod { name, .. } = bed.chaos.get(run).unwrap().targets[0].clone() else {
        panic!("pod-failure targets pods");
    };
    bed.advance(30);
    bed.tick().await;
    assert_eq!(bed.chaos.get(run).unwrap().status, RunStatus::Running);
    assert!(
        !bed.sim
            .snapshot_now()
            .pod("shop", &name)
            .unwrap()
            .is_ready()
    );

    bed.advance(30);
    bed.tick().await;
    let r = bed.chaos.get(run).unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.message.as_deref(), Some("ran its full duration"));
    assert_eq!(r.duration_seconds(), Some(60.0));
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.budget.in_flight(), 0);
    bed.advance(30);
    assert!(
        bed.sim
            .snapshot_now()
            .pod("shop", &name)
            .unwrap()
            .is_ready()
    );
    assert_eq!(
        kinds(&bed.chaos.drain_events()),
        ["started", "completed", "reverted"]
    );
}

#[tokio::test]
async fn scheduled_runs_wait_pending_and_can_be_cancelled_or_started_by_tick() {
    let mut bed = Bed::new();
    let later = |bed: &Bed| StartOptions {
        start_at: Some(
            bed.now()
                .checked_add(SignedDuration::from_secs(60))
                .unwrap(),
        ),
        ..aimed_at("checkout", SelectionMode::One)
    };
    let cancelled = bed
        .start(ScenarioType::LatencyInjection, later(&bed))
        .await
        .unwrap();
    let started = bed
        .start(ScenarioType::LatencyInjection, later(&bed))
        .await
        .unwrap();
    assert_eq!(bed.chaos.get(cancelled).unwrap().status, RunStatus::Pending);
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.budget.in_flight(), 0, "pending runs hold nothing");

    bed.chaos.cancel(cancelled, bed.now()).unwrap();
    bed.advance(59);
    bed.tick().await;
    assert_eq!(bed.chaos.get(started).unwrap().status, RunStatus::Pending);
    bed.advance(1);
    bed.tick().await;
    let r = bed.chaos.get(started).unwrap();
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!(
        r.created_at.as_second() + 60,
        r.started_at.unwrap().as_second()
    );
    assert_eq!(
        bed.chaos.get(cancelled).unwrap().status,
        RunStatus::Cancelled
    );
    assert_eq!(bed.sim.faults().len(), 1);
    assert_eq!(
        kinds(&bed.chaos.drain_events()),
        ["scheduled", "scheduled", "cancelled", "started"]
    );
}

#[tokio::test]
async fn illegal_transitions_are_refused_without_side_effects() {
    let mut bed = Bed::new();
    let run = bed
        .start(
            ScenarioType::CpuStress,
            aimed_at("frontend", SelectionMode::One),
        )
        .await
        .unwrap();
    assert_eq!(
        bed.chaos.cancel(run, bed.now()),
        Err(Error::IllegalTransition {
            run,
            from: RunStatus::Running,
            action: RunAction::Cancel
        })
    );
    assert_eq!(bed.sim.faults().len(), 1, "still running");
    bed.stop(run).await.unwrap();
    assert_eq!(
        bed.stop(run).await.unwrap_err().to_string(),
        format!("cannot stop {run}: it is stopped")
    );
    let now = bed.now();
    assert!(matches!(
        bed.chaos.abort(run, "late", &mut bed.budget, now).await,
        Err(Error::IllegalTransition {
            action: RunAction::Abort,
            ..
        })
    ));
    assert_eq!(bed.stop(RunId(99)).await, Err(Error::UnknownRun(RunId(99))));
    assert_eq!(bed.chaos.get(run).unwrap().status, RunStatus::Stopped);
}

#[tokio::test]
async fn dry_runs_plan_and_record_but_change_nothing() {
    let mut bed = Bed::new();
    let before = bed.sim.snapshot_now();
    let options = StartOptions {
        dry_run: true,
        ..aimed_at("checkout", SelectionMode::All)
    };
    let run = bed.start(ScenarioType::PacketLoss, options).await.unwrap();
    let r = bed.chaos.get(run).unwrap();
    assert!(r.dry_run);
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.targets.len(), 1);
    assert_eq!(
        r.message.as_deref(),
        Some(
            "dry run: would inject 10 % packet loss on service/shop/checkout; nothing was changed"
        )
    );
    assert!(r.injection.is_none());
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.sim.snapshot_now(), before);
    assert_eq!(bed.budget.in_flight(), 0);
    assert!(
        bed.chaos
            .runs_covering(&IncidentScope::default(), bed.now())
            .is_empty()
    );
    assert_eq!(bed.chaos.stats().dry_runs, 1);
    let events = bed.chaos.drain_events();
    assert!(matches!(
        events[0],
        ChaosEvent::RunStarted { dry_run: true, .. }
    ));
    assert_eq!(kinds(&events), ["started", "completed"]);

    // A dry run is held to the same rules: it reports what would be denied.
    let options = StartOptions {
        dry_run: true,
        ..aimed_at("checkout", SelectionMode::All)
    };
    let err = bed
        .start(ScenarioType::PodFailure, options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("safety budget"), "{err}");
}

#[tokio::test]
async fn protected_namespaces_are_never_targeted() {
    let mut bed = Bed::new();
    let options = StartOptions {
        target: Some(TargetSelector {
            namespace: Some("kube-system".into()),
            ..TargetSelector::default()
        }),
        ..StartOptions::default()
    };
    assert_eq!(
        bed.start(ScenarioType::PodFailure, options).await,
        Err(Error::ProtectedNamespace {
            namespace: "kube-system".into()
        })
    );
    assert!(bed.chaos.list().is_empty(), "nothing recorded");
    let scenario = Scenario::new(
        ScenarioId::new("kill-dns").unwrap(),
        "Kill DNS",
        Parameters::PodFailure {
            duration_seconds: 10,
        },
    )
    .with_target(TargetSelector {
        namespace: Some("octrix-system".into()),
        ..TargetSelector::default()
    });
    assert_eq!(
        bed.chaos.add_scenario(scenario).unwrap_err().to_string(),
        "namespace octrix-system is protected from chaos"
    );
}

#[tokio::test]
async fn never_the_last_ready_replica_nor_too_large_a_share() {
    let mut bed = Bed::new();
    let err = bed
        .start(
            ScenarioType::PodFailure,
            aimed_at("checkout", SelectionMode::All),
        )
        .await
        .unwrap_err();
    let Error::StartFailed { run, cause } = &err else {
        panic!("{err}");
    };
    assert!(matches!(**cause, Error::Budget(_)), "{cause}");
    let r = bed.chaos.get(*run).unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.targets.len(), 2, "what it would have hit is recorded");
    assert!(r.message.as_deref().unwrap().starts_with("safety budget: "));
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.budget.in_flight(), 0);
    assert_eq!(kinds(&bed.chaos.drain_events()), ["failed"]);

    // With a permissive fraction the last-ready-replica rule still holds.
    let mut bed = Bed::with_budget(BudgetConfig {
        max_disrupted_fraction: 1.0,
        ..BudgetConfig::default()
    });
    let err = bed
        .start(
            ScenarioType::PodFailure,
            aimed_at("checkout", SelectionMode::All),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("shop/checkout would lose its last ready replica"),
        "{err}"
    );
    // One of two is fine.
    bed.start(
        ScenarioType::PodFailure,
        aimed_at("checkout", SelectionMode::One),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_workload_a_node_failure_hits_is_checked_against_healing_holdings() {
    let mut bed = Bed::new();
    // Healing is restarting a payments pod.
    let healing = DisruptionRequest::new(Disruptor::Healing, "pod/shop/payments-1")
        .in_namespace("shop")
        .with_impact(WorkloadImpact {
            workload: "shop/payments".into(),
            pods: 2,
            ready_pods: 2,
            disrupted_pods: 1,
            disrupted_ready_pods: 1,
        });
    let permit = bed.budget.try_acquire(&healing, bed.now()).unwrap();
    // node-0 runs frontend-1, checkout-1, payments-2 and a node-exporter: the
    // permit would record checkout, but payments must fit too.
    let options = StartOptions {
        target: Some(TargetSelector {
            labels: labels::from_pairs([("kubernetes.io/hostname", "node-0")]),
            ..TargetSelector::default()
        }),
        ..StartOptions::default()
    };
    let err = bed
        .start(ScenarioType::NodeFailure, options.clone())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("shop/payments would have 2 of 2 pods disrupted"),
        "{err}"
    );
    assert_eq!(bed.budget.in_flight(), 1, "only healing's permit");

    bed.budget.release(permit);
    let run = bed.start(ScenarioType::NodeFailure, options).await.unwrap();
    let r = bed.chaos.get(run).unwrap();
    assert_eq!(r.blast_radius.primary().unwrap().workload, "shop/checkout");
    assert_eq!(bed.budget.in_flight(), 1, "one permit per run");
    bed.advance(15);
    let snapshot = bed.sim.snapshot_now();
    let node = snapshot.node("node-0").unwrap();
    assert_eq!(node.ready, crate::cluster::ConditionStatus::Unknown);
    assert!(node.unschedulable);
    bed.stop(run).await.unwrap();
    assert!(!bed.sim.snapshot_now().node("node-0").unwrap().unschedulable);
}

#[tokio::test]
async fn two_runs_cannot_together_take_what_neither_permit_records() {
    let mut bed = Bed::new();
    let node = |name: &str| StartOptions {
        target: Some(TargetSelector {
            labels: labels::from_pairs([("kubernetes.io/hostname", name)]),
            ..TargetSelector::default()
        }),
        ..StartOptions::default()
    };
    // node-0's permit records checkout; it also takes payments-2.
    let first = bed
        .start(ScenarioType::NodeFailure, node("node-0"))
        .await
        .unwrap();
    // node-2 runs payments-1: together they would take both payments pods.
    let err = bed
        .start(ScenarioType::NodeFailure, node("node-2"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("shop/payments would have 2 of 2 pods disrupted at once (max fraction 0.5)"),
        "{err}"
    );
    bed.stop(first).await.unwrap();
    bed.start(ScenarioType::NodeFailure, node("node-2"))
        .await
        .unwrap();
}

#[tokio::test]
async fn breached_guards_abort_the_run_and_revert_it() {
    let mut bed = Bed::new();
    let guard = AbortGuard::new(
        "frontend-slo",
        GuardSignal::ErrorRateAbove {
            namespace: "shop".into(),
            service: "frontend".into(),
            max_error_rate: 0.05,
        },
    );
    let options = StartOptions {
        guards: vec![guard],
        ..aimed_at("payments", SelectionMode::One)
    };
    let run = bed
        .start(ScenarioType::ServiceFailure, options)
        .await
        .unwrap();
    let frontend = |error_rate| GuardObservation::Service {
        namespace: "shop".into(),
        service: "frontend".into(),
        metrics: ServiceMetrics {
            request_rate: 150.0,
            error_rate: Some(error_rate),
            latency_p50_seconds: Some(0.02),
            latency_p99_seconds: Some(0.06),
        },
    };
    assert_eq!(bed.chaos.evaluate_guards(run, &[frontend(0.01)]), None);
    let breach = bed.chaos.evaluate_guards(run, &[frontend(0.3)]).unwrap();
    assert_eq!(breach.guard, "frontend-slo");
    assert_eq!(
        bed.chaos.get(run).unwrap().status,
        RunStatus::Running,
        "evaluation is pure"
    );

    let now = bed.now();
    let aborted = bed
        .chaos
        .enforce_guards(&[frontend(0.01)], &mut bed.budget, now)
        .await;
    assert!(aborted.is_empty());
    let aborted = bed
        .chaos
        .enforce_guards(&[frontend(0.3)], &mut bed.budget, now)
        .await;
    assert_eq!(aborted, [run]);
    let r = bed.chaos.get(run).unwrap();
    assert_eq!(r.status, RunStatus::Aborted);
    assert_eq!(
        r.message.as_deref(),
        Some("guard frontend-slo breached: shop/frontend error rate 0.300 above 0.050")
    );
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.budget.in_flight(), 0);
    assert_eq!(
        bed.chaos.evaluate_guards(run, &[frontend(0.3)]),
        None,
        "no longer running"
    );
    let events = bed.chaos.drain_events();
    assert!(
        matches!(&events[1], ChaosEvent::RunAborted { reason, .. } if reason.starts_with("guard frontend-slo"))
    );
}

#[tokio::test]
async fn abort_covers_pending_and_running_runs() {
    let mut bed = Bed::new();
    let running = bed
        .start(
            ScenarioType::MemoryStress,
            aimed_at("frontend", SelectionMode::One),
        )
        .await
        .unwrap();
    let pending = bed
        .start(
            ScenarioType::DiskStress,
            StartOptions {
                start_at: Some(bed.now().checked_add(SignedDuration::from_mins(5)).unwrap()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
    let now = bed.now();
    bed.chaos
        .abort_all("game day called off", &mut bed.budget, now)
        .await
        .unwrap();
    for run in [running, pending] {
        let r = bed.chaos.get(run).unwrap();
        assert_eq!(r.status, RunStatus::Aborted);
        assert_eq!(r.message.as_deref(), Some("game day called off"));
    }
    assert!(bed.sim.faults().is_empty());
    assert_eq!(bed.budget.in_flight(), 0);
    bed.advance(600);
    bed.tick().await;
    assert!(
        bed.sim.faults().is_empty(),
        "an aborted pending run never starts"
    );
}

#[tokio::test]
async fn incidents_during_a_run_are_covered_until_the_linger_ends() {
    let mut bed = Bed::new();
    let t0 = bed.now();
    let run = bed
        .start(
            ScenarioType::LatencyInjection,
            aimed_at("checkout", SelectionMode::One),
        )
        .await
        .unwrap();
    let checkout = IncidentScope {
        namespace: Some("shop".into()),
        service: Some("checkout".into()),
        ..IncidentScope::default()
    };
    let checkout_pod = IncidentScope {
        namespace: Some("shop".into()),
        pod: Some("checkout-2".into()),
        ..IncidentScope::default()
    };
    let frontend = IncidentScope {
        namespace: Some("shop".into()),
        service: Some("frontend".into()),
        ..IncidentScope::default()
    };
    let at = |s: i64| t0.checked_add(SignedDuration::from_secs(s)).unwrap();
    assert_eq!(bed.chaos.runs_covering(&checkout, at(10)), [run]);
    assert_eq!(bed.chaos.runs_covering(&checkout_pod, at(10)), [run]);
    assert!(bed.chaos.runs_covering(&frontend, at(10)).is_empty());
    assert!(
        bed.chaos.runs_covering(&checkout, at(-1)).is_empty(),
        "before the run"
    );

    bed.advance(30);
    bed.stop(run).await.unwrap();
    assert_eq!(bed.chaos.runs_covering(&checkout, at(30 + 300)), [run]);
    assert!(bed.chaos.runs_covering(&checkout, at(30 + 301)).is_empty());

    bed.chaos.link_incident(run, "inc-7").unwrap();
    bed.chaos.link_incident(run, "inc-7").unwrap();
    assert_eq!(bed.chaos.get(run).unwrap().incidents, ["inc-7"]);
    assert_eq!(
        bed.chaos.link_incident(RunId(42), "inc-8"),
        Err(Error::UnknownRun(RunId(42)))
    );
}

#[tokio::test]
async fn stats_follow_the_runs() {
    let mut bed = Bed::new();
    let a = bed
        .start(
            ScenarioType::CpuStress,
            aimed_at("frontend", SelectionMode::One),
        )
        .await
        .unwrap();
    bed.start(
        ScenarioType::PodFailure,
        aimed_at("checkout", SelectionMode::All),
    )
    .await
    .unwrap_err();
    bed.advance(40);
    bed.stop(a).await.unwrap();
    let stats = bed.chaos.stats();
    assert_eq!(stats.overall.total, 2);
    assert_eq!(stats.overall.by_status[&RunStatus::Stopped], 1);
    assert_eq!(stats.overall.by_status[&RunStatus::Failed], 1);
    assert_eq!(stats.overall.success_rate, Some(0.5));
    assert_eq!(stats.mean_duration_seconds, Some(40.0));
    assert_eq!(stats.by_type[&ScenarioType::CpuStress].total, 1);
}

#[tokio::test]
async fn tick_forgets_the_oldest_ended_runs_beyond_the_history_limit() {
    let mut bed = Bed::new();
    let config = ChaosConfig {
        max_history: 2,
        ..ChaosConfig::default()
    };
    bed.chaos = ChaosController::new(
        config,
        ScenarioCatalog::default(),
        Arc::new(SimChaosExecutor::new(bed.sim.clone())),
    );
    let dry = || StartOptions {
        dry_run: true,
        ..StartOptions::default()
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(bed.start(ScenarioType::CpuStress, dry()).await.unwrap());
    }
    let running = bed
        .start(ScenarioType::CpuStress, StartOptions::default())
        .await
        .unwrap();
    bed.tick().await;
    let kept: Vec<RunId> = bed.chaos.list().iter().map(|r| r.id).collect();
    assert_eq!(kept, [ids[1], ids[2], running]);
}

/// An executor whose injections and reverts fail on demand.
#[derive(Default)]
struct Scripted {
    fail_inject: AtomicBool,
    fail_revert: AtomicBool,
    reverts: AtomicUsize,
}

#[async_trait]
impl ChaosExecutor for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }

    async fn inject(&self, plan: &InjectionPlan) -> Result<Injection, ExecutorError> {
        if self.fail_inject.load(Ordering::SeqCst) {
            return Err(ExecutorError::Unavailable("api server down".into()));
        }
        Ok(Injection {
            run: plan.run,
            changes: vec![Change::Fault {
                id: "f-1".into(),
                target: plan.targets[0].clone(),
                effect: plan.parameters.describe(),
            }],
        })
    }

    async fn revert(&self, _: &Injection) -> Result<(), ExecutorError> {
        self.reverts.fetch_add(1, Ordering::SeqCst);
        if self.fail_revert.load(Ordering::SeqCst) {
            return Err(ExecutorError::Unavailable("api server down".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn executor_failures_fail_the_run_and_reverts_are_retried_until_they_succeed() {
    let bed = Bed::new();
    let snapshot = bed.sim.snapshot_now();
    let scripted = Arc::new(Scripted::default());
    let mut chaos = ChaosController::new(
        ChaosConfig::default(),
        ScenarioCatalog::default(),
        scripted.clone(),
    );
    let mut budget = SafetyBudget::new(BudgetConfig::default());
    let t = |s: i64| bed.now().checked_add(SignedDuration::from_secs(s)).unwrap();
    let latency = ScenarioId::builtin(ScenarioType::LatencyInjection);

    scripted.fail_inject.store(true, Ordering::SeqCst);
    let err = chaos
        .start(
            &latency,
            StartOptions::default(),
            &snapshot,
            &mut budget,
            t(0),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "run-1 failed to start: chaos executor: chaos backend unavailable: api server down"
    );
    assert_eq!(budget.in_flight(), 0, "the permit went back");

    scripted.fail_inject.store(false, Ordering::SeqCst);
    scripted.fail_revert.store(true, Ordering::SeqCst);
    let run = chaos
        .start(
            &latency,
            StartOptions::default(),
            &snapshot,
            &mut budget,
            t(0),
        )
        .await
        .unwrap();
    let err = chaos.stop(run, &mut budget, t(10)).await.unwrap_err();
    assert!(matches!(err, Error::RevertFailed { .. }), "{err}");
    let r = chaos.get(run).unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.holds_changes());
    assert_eq!(budget.in_flight(), 1, "its changes are still in force");
    assert_eq!(
        chaos.runs_covering(&IncidentScope::default(), t(1_000)),
        [run]
    );

    chaos.tick(&snapshot, &mut budget, t(20)).await;
    assert_eq!(budget.in_flight(), 1);
    scripted.fail_revert.store(false, Ordering::SeqCst);
    chaos.tick(&snapshot, &mut budget, t(30)).await;
    assert_eq!(budget.in_flight(), 0);
    let r = chaos.get(run).unwrap();
    assert_eq!(r.reverted_at, Some(t(30)));
    assert!(!r.holds_changes());
    assert_eq!(scripted.reverts.load(Ordering::SeqCst), 3);
    chaos.tick(&snapshot, &mut budget, t(40)).await;
    assert_eq!(
        scripted.reverts.load(Ordering::SeqCst),
        3,
        "nothing left to revert"
    );
    assert_eq!(
        kinds(&chaos.drain_events()),
        [
            "failed",
            "started",
            "revert-failed",
            "failed",
            "revert-failed",
            "reverted"
        ]
    );
}

#[tokio::test]
async fn restored_runs_keep_their_ids_and_active_ones_are_marked_failed() {
    let mut bed = Bed::new();
    let ended = bed
        .start(
            ScenarioType::ServiceFailure,
            aimed_at("payments", SelectionMode::One),
        )
        .await
        .unwrap();
    bed.stop(ended).await.unwrap();
    let running = bed
        .start(
            ScenarioType::LatencyInjection,
            aimed_at("checkout", SelectionMode::One),
        )
        .await
        .unwrap();
    let saved: Vec<ScenarioRun> = bed.chaos.list().into_iter().cloned().collect();

    // A new process: a fresh controller takes the stored runs back.
    let mut after = Bed::new();
    let interrupted = after.chaos.restore_runs(saved.clone(), after.now());
    assert_eq!(interrupted, [running]);
    assert_eq!(after.chaos.get(ended).unwrap(), &saved[0]);
    let r = after.chaos.get(running).unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.permit, None);
    assert!(
        r.message.as_deref().unwrap().contains("server restart"),
        "{:?}",
        r.message
    );
    let next = after
        .start(
            ScenarioType::PodFailure,
            aimed_at("payments", SelectionMode::One),
        )
        .await
        .unwrap();
    assert_eq!(next, RunId(3), "new ids continue after the restored ones");
    assert!(after.chaos.restore_runs(saved, after.now()).is_empty());
    assert_eq!(after.chaos.list().len(), 3);
}
