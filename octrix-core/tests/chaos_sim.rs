//! Every built-in chaos scenario on the simulated cluster: its effect shows
//! in the snapshot and the metrics, and stopping it restores the cluster.

use std::sync::Arc;

use octrix_core::chaos::{
    ChaosConfig, ChaosController, RunId, RunStatus, ScenarioCatalog, ScenarioId, ScenarioType,
    SimChaosExecutor, StartOptions, Target,
};
use octrix_core::cluster::{ClusterSnapshot, ConditionStatus};
use octrix_core::healing::{BudgetConfig, SafetyBudget};
use octrix_core::metrics::{MetricSource, ServiceMetrics, ServiceSelector};
use octrix_core::sim::{SimCluster, SimConfig};
use octrix_core::time::SignedDuration;
use octrix_core::{Clock, ManualClock, Timestamp};

const MIB: f64 = 1024.0 * 1024.0;

struct Bed {
    clock: Arc<ManualClock>,
    sim: Arc<SimCluster>,
    chaos: ChaosController,
    budget: SafetyBudget,
}

impl Bed {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_700_000_000).unwrap(),
        ));
        // No noise and no daily pattern, so that "restored" can mean "equal";
        // no node-exporters, so that built-ins land on the shop's workloads.
        let config = SimConfig {
            noise: 0.0,
            daily_amplitude: 0.0,
            daemonset_per_node: false,
            ..SimConfig::default()
        };
        let sim = Arc::new(SimCluster::new(config, clock.clone()).unwrap());
        let chaos = ChaosController::new(
            ChaosConfig::default(),
            ScenarioCatalog::default(),
            Arc::new(SimChaosExecutor::new(sim.clone())),
        );
        let bed = Self {
            clock,
            sim,
            chaos,
            budget: SafetyBudget::new(BudgetConfig::default()),
        };
        bed.advance(60);
        bed
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }

    async fn start(&mut self, scenario: ScenarioType) -> RunId {
        let snapshot = self.sim.snapshot_now();
        let now = self.clock.now();
        let id = ScenarioId::builtin(scenario);
        self.chaos
            .start(
                &id,
                StartOptions::default(),
                &snapshot,
                &mut self.budget,
                now,
            )
            .await
            .unwrap_or_else(|e| panic!("{scenario}: {e}"))
    }

    async fn service(&self, name: &str) -> ServiceMetrics {
        let selector = ServiceSelector {
            namespace: "shop".into(),
            service: name.into(),
            version: None,
            window_seconds: 60,
        };
        self.sim.service_metrics(&selector).await.unwrap()
    }

    /// What "the cluster is healthy and as before" means here: every pod
    /// ready with its usage, every node ready, schedulable and without
    /// pressure, every service's error rate and latency. Restart counts are
    /// left out: a failed pod keeps its history.
    async fn fingerprint(&self) -> Vec<(String, f64)> {
        let snapshot = self.sim.snapshot_now();
        let mut figures = Vec::new();
        for pod in &snapshot.pods {
            let c = &pod.containers[0];
            figures.push((
                format!("{} ready", pod.name),
                f64::from(u8::from(pod.is_ready())),
            ));
            figures.push((format!("{} cpu", pod.name), c.cpu_used_cores));
            figures.push((format!("{} memory", pod.name), c.memory_used_bytes));
        }
        for node in &snapshot.nodes {
            let healthy = node.ready == ConditionStatus::True
                && node.disk_pressure == ConditionStatus::False
                && !node.unschedulable;
            figures.push((
                format!("{} healthy", node.name),
                f64::from(u8::from(healthy)),
            ));
        }
        for node in self.sim.node_metrics().await.unwrap() {
            figures.push((format!("{} disk", node.node), node.disk_utilisation));
        }
        for d in &snapshot.deployments {
            let m = self.service(&d.name).await;
            figures.push((format!("{} errors", d.name), m.error_rate.unwrap()));
            figures.push((format!("{} p99", d.name), m.latency_p99_seconds.unwrap()));
        }
        figures
    }
}

fn pod_of(target: &Target) -> (&str, &str) {
    match target {
        Target::Pod { namespace, name } => (namespace, name),
        other => panic!("expected a pod, got {other}"),
    }
}

fn container(snapshot: &ClusterSnapshot, target: &Target) -> (bool, f64, f64) {
    let (namespace, name) = pod_of(target);
    let pod = snapshot.pod(namespace, name).unwrap();
    let c = &pod.containers[0];
    (pod.is_ready(), c.cpu_used_cores, c.memory_used_bytes)
}

/// Observes the scenario's effect 30 s into the run (every built-in lasts
/// at least 60 s), given the state just
/// before it started.
async fn assert_effect(
    bed: &Bed,
    scenario: ScenarioType,
    targets: &[Target],
    before: &ClusterSnapshot,
    before_metrics: &[(String, ServiceMetrics)],
) {
    let now = bed.sim.snapshot_now();
    let metrics_before = |service: &str| {
        before_metrics
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, m)| m.clone())
            .unwrap()
    };
    let service_of = |target: &Target| match target {
        Target::Service { name, .. } => name.clone(),
        other => panic!("expected a service, got {other}"),
    };
    let node_of = |target: &Target| match target {
        Target::Node { name } => name.clone(),
        other => panic!("expected a node, got {other}"),
    };
    match scenario {
        ScenarioType::PodFailure => {
            let (namespace, name) = pod_of(&targets[0]);
            let pod = now.pod(namespace, name).unwrap();
            assert!(!pod.is_ready());
            assert_eq!(
                pod.containers[0].waiting_reason.as_deref(),
                Some("CrashLoopBackOff")
            );
        }
        ScenarioType::NodeFailure => {
            let name = node_of(&targets[0]);
            let node = now.node(&name).unwrap();
            assert_eq!(node.ready, ConditionStatus::Unknown);
            assert!(node.unschedulable, "cordoned");
            let on_node: Vec<_> = now
                .pods
                .iter()
                .filter(|p| p.node.as_deref() == Some(name.as_str()))
                .collect();
            assert!(!on_node.is_empty());
            assert!(on_node.iter().all(|p| !p.is_ready()));
        }
        ScenarioType::CpuStress => {
            let (_, cpu_before, _) = container(before, &targets[0]);
            let (_, cpu, _) = container(&now, &targets[0]);
            // +0.8 cores, capped at the 1-core limit.
            assert!(cpu_before < 0.3 && cpu >= 0.99, "{cpu_before} -> {cpu}");
        }
        ScenarioType::MemoryStress => {
            let (_, _, memory_before) = container(before, &targets[0]);
            let (ready, _, memory) = container(&now, &targets[0]);
            assert!(
                ((memory - memory_before) / MIB - 256.0).abs() < 1e-6,
                "{memory}"
            );
            assert!(ready, "456 MiB of 512 is no OOM");
        }
        ScenarioType::MemoryLeak => {
            let (_, _, memory_before) = container(before, &targets[0]);
            let (_, _, memory) = container(&now, &targets[0]);
            // 2 MiB/s over the 2 steps of 15 s so far.
            assert!(
                ((memory - memory_before) / MIB - 60.0).abs() < 1e-6,
                "{memory}"
            );
        }
        ScenarioType::LatencyInjection | ScenarioType::DatabaseOverload => {
            let service = service_of(&targets[0]);
            let p99_before = metrics_before(&service).latency_p99_seconds.unwrap();
            let p99 = bed.service(&service).await.latency_p99_seconds.unwrap();
            // +200 ms on the median, amplified at the tail.
            assert!(p99 > p99_before + 0.5, "{p99_before} -> {p99}");
            if scenario == ScenarioType::DatabaseOverload {
                let busy = now
                    .pods
                    .iter()
                    .filter(|p| p.deployment() == Some(service.as_str()))
                    .all(|p| p.containers[0].cpu_used_cores > 0.6);
                assert!(busy, "CPU at +50 % on every database pod");
            }
        }
        ScenarioType::PacketLoss => {
            let service = service_of(&targets[0]);
            let errors = bed.service(&service).await.error_rate.unwrap();
            assert!((errors - 0.101).abs() < 1e-9, "{errors}");
        }
        ScenarioType::ServiceFailure | ScenarioType::NetworkPartition => {
            let service = service_of(&targets[0]);
            assert_eq!(bed.service(&service).await.error_rate, Some(1.0));
        }
        ScenarioType::DiskStress => {
            let name = node_of(&targets[0]);
            assert_eq!(
                now.node(&name).unwrap().disk_pressure,
                ConditionStatus::True
            );
            let metrics = bed.sim.node_metrics().await.unwrap();
            let disk = metrics
                .iter()
                .find(|n| n.node == name)
                .unwrap()
                .disk_utilisation;
            assert_eq!(disk, 0.95);
        }
    }
}

#[tokio::test]
async fn every_builtin_scenario_has_its_effect_and_stopping_restores_the_cluster() {
    for scenario in ScenarioType::ALL {
        let mut bed = Bed::new();
        let healthy = bed.fingerprint().await;
        let before = bed.sim.snapshot_now();
        let mut before_metrics = Vec::new();
        for d in &before.deployments {
            before_metrics.push((d.name.clone(), bed.service(&d.name).await));
        }

        let run = bed.start(scenario).await;
        let targets = bed.chaos.get(run).unwrap().targets.clone();
        assert_eq!(targets.len(), 1, "{scenario}: built-ins take one target");
        assert_eq!(
            bed.chaos
                .runs_covering(&Default::default(), bed.clock.now()),
            [run]
        );
        bed.advance(30);
        assert_effect(&bed, scenario, &targets, &before, &before_metrics).await;

        let now = bed.clock.now();
        bed.chaos.stop(run, &mut bed.budget, now).await.unwrap();
        assert_eq!(bed.chaos.get(run).unwrap().status, RunStatus::Stopped);
        assert!(bed.sim.faults().is_empty(), "{scenario}: faults cleared");
        assert_eq!(bed.budget.in_flight(), 0, "{scenario}: permit returned");
        // One step for the cluster to settle: pods turn ready, load evens out.
        bed.advance(30);
        let restored = bed.fingerprint().await;
        assert_eq!(healthy.len(), restored.len());
        for ((name, was), (_, is)) in healthy.iter().zip(&restored) {
            assert!(
                (was - is).abs() <= 1e-9 * was.abs().max(1.0),
                "{scenario}: {name} was {was}, is {is}"
            );
        }
    }
}

#[tokio::test]
async fn a_run_past_its_duration_completes_on_the_next_tick_and_is_reverted() {
    let mut bed = Bed::new();
    let run = bed.start(ScenarioType::NodeFailure).await;
    let deadline = bed.chaos.get(run).unwrap().deadline.unwrap();
    bed.clock.set(deadline);
    let snapshot = bed.sim.snapshot_now();
    let now = bed.clock.now();
    bed.chaos.tick(&snapshot, &mut bed.budget, now).await;
    let r = bed.chaos.get(run).unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.duration_seconds(), Some(120.0));
    assert!(bed.sim.faults().is_empty());
    assert!(
        bed.sim
            .snapshot_now()
            .nodes
            .iter()
            .all(|n| !n.unschedulable)
    );
    assert_eq!(bed.budget.in_flight(), 0);
    let stats = bed.chaos.stats();
    assert_eq!(stats.overall.by_status[&RunStatus::Completed], 1);
    assert_eq!(
        stats.by_type[&ScenarioType::NodeFailure].success_rate,
        Some(1.0)
    );
}
