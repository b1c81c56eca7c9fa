use std::sync::Arc;

use super::*;
use crate::ManualClock;
use crate::cluster::PodPhase;
use crate::time::SignedDuration;

fn sim(config: SimConfig) -> (Arc<ManualClock>, SimCluster) {
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_second(1_700_000_000).unwrap(),
    ));
    let sim = SimCluster::new(config, clock.clone()).unwrap();
    (clock, sim)
}

fn minutes(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn pod_target(name: &str) -> FaultTarget {
    FaultTarget::Pod {
        namespace: "shop".into(),
        name: name.into(),
    }
}

fn deployment_target(name: &str) -> FaultTarget {
    FaultTarget::Deployment {
        namespace: "shop".into(),
        name: name.into(),
    }
}

fn restart(pod: &str) -> ClusterAction {
    ClusterAction::RestartPod {
        namespace: "shop".into(),
        pod: pod.into(),
    }
}

fn pods_of<'a>(s: &'a ClusterSnapshot, deployment: &str) -> Vec<&'a crate::cluster::PodState> {
    s.pods
        .iter()
        .filter(|p| p.deployment() == Some(deployment))
        .collect()
}

#[test]
fn same_seed_and_clock_give_the_same_cluster() {
    let (c1, a) = sim(SimConfig::default());
    let (c2, b) = sim(SimConfig::default());
    c1.advance(minutes(30));
    c2.advance(minutes(30));
    assert_eq!(a.snapshot_now(), b.snapshot_now());

    let (c3, other) = sim(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    c3.advance(minutes(30));
    assert_ne!(a.snapshot_now(), other.snapshot_now());
}

#[tokio::test]
async fn reports_itself_as_simulated_everywhere() {
    let (_, s) = sim(SimConfig::default());
    assert_eq!(MetricSource::info(&s).kind, SourceKind::Simulated);
    assert_eq!(ClusterObserver::info(&s).kind, ClusterKind::Simulated);
    assert_eq!(ClusterActuator::info(&s).kind, ClusterKind::Simulated);
    assert_eq!(MetricSource::info(&s).name, "sim(seed=42)");
}

#[tokio::test]
async fn transient_crash_loop_is_cured_by_a_restart() {
    let (clock, s) = sim(SimConfig::default());
    s.inject(
        FaultKind::CrashLoop { persistent: false },
        pod_target("checkout-1"),
        None,
    )
    .unwrap();
    clock.advance(minutes(2));
    let before = s.snapshot().await.unwrap();
    let crashing = before.pod("shop", "checkout-1").unwrap();
    assert_eq!(
        crashing.containers[0].waiting_reason.as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(
        crashing.restarts(),
        8,
        "one restart per 15 s step over 2 minutes"
    );
    assert!(!crashing.is_ready());

    let report = s.execute(&restart("checkout-1"), false).await.unwrap();
    assert_eq!(
        report.summary,
        "deleted pod shop/checkout-1; replaced by checkout-3"
    );
    clock.advance(minutes(1));
    let after = s.snapshot().await.unwrap();
    assert!(after.pod("shop", "checkout-1").is_none());
    let replacement = after.pod("shop", "checkout-3").unwrap();
    assert!(replacement.is_ready());
    assert_eq!(replacement.restarts(), 0);
}

#[tokio::test]
async fn persistent_crash_loop_follows_the_pod_to_its_replacement() {
    let (clock, s) = sim(SimConfig::default());
    s.inject(
        FaultKind::CrashLoop { persistent: true },
        pod_target("checkout-1"),
        None,
    )
    .unwrap();
    clock.advance(minutes(1));
    s.execute(&restart("checkout-1"), false).await.unwrap();
    clock.advance(minutes(1));
    let after = s.snapshot().await.unwrap();
    let replacement = after.pod("shop", "checkout-3").unwrap();
    assert_eq!(
        replacement.containers[0].waiting_reason.as_deref(),
        Some("CrashLoopBackOff")
    );
    assert!(replacement.restarts() > 0);
}

#[tokio::test]
async fn scaling_spreads_load_over_more_pods() {
    let config = SimConfig {
        noise: 0.0,
        daily_amplitude: 0.0,
        ..SimConfig::default()
    };
    let (clock, s) = sim(config);
    clock.advance(minutes(1));
    let cpu_of = |snapshot: &ClusterSnapshot| {
        let pods = pods_of(snapshot, "frontend");
        pods.iter()
            .map(|p| p.containers[0].cpu_used_cores)
            .sum::<f64>()
            / pods.len() as f64
    };
    let before = cpu_of(&s.snapshot().await.unwrap());
    let scale = ClusterAction::ScaleDeployment {
        namespace: "shop".into(),
        deployment: "frontend".into(),
        replicas: 6,
    };
    s.execute(&scale, false).await.unwrap();
    clock.advance(minutes(1));
    let snapshot = s.snapshot().await.unwrap();
    assert_eq!(pods_of(&snapshot, "frontend").len(), 6);
    assert_eq!(
        snapshot
            .deployment("shop", "frontend")
            .unwrap()
            .ready_replicas,
        6
    );
    let after = cpu_of(&snapshot);
    // 150 rps * 4 ms = 0.6 cores over 3 pods (0.2 + idle), then over 6 (0.1 + idle).
    assert!((before - 0.22).abs() < 1e-9, "before {before}");
    assert!((after - 0.12).abs() < 1e-9, "after {after}");

    let down = ClusterAction::ScaleDeployment {
        namespace: "shop".into(),
        deployment: "frontend".into(),
        replicas: 1,
    };
    s.execute(&down, false).await.unwrap();
    assert_eq!(pods_of(&s.snapshot().await.unwrap(), "frontend").len(), 1);
}

#[tokio::test]
async fn cordon_stops_scheduling_on_the_node() {
    let (clock, s) = sim(SimConfig::default());
    for node in ["node-0", "node-1"] {
        s.execute(&ClusterAction::CordonNode { node: node.into() }, false)
            .await
            .unwrap();
    }
    for pod in ["frontend-1", "frontend-2", "frontend-3"] {
        s.execute(&restart(pod), false).await.unwrap();
    }
    clock.advance(minutes(1));
    let snapshot = s.snapshot().await.unwrap();
    assert!(snapshot.node("node-0").unwrap().unschedulable);
    for pod in pods_of(&snapshot, "frontend") {
        assert_eq!(pod.node.as_deref(), Some("node-2"), "{}", pod.name);
    }
    s.execute(
        &ClusterAction::UncordonNode {
            node: "node-0".into(),
        },
        false,
    )
    .await
    .unwrap();
    assert!(
        !s.snapshot()
            .await
            .unwrap()
            .node("node-0")
            .unwrap()
            .unschedulable
    );
}

#[tokio::test]
async fn drain_moves_pods_respects_budgets_and_skips_daemonsets() {
    let config = SimConfig {
        nodes: 2,
        deployments: vec![
            SimDeploymentConfig::named("shop", "web", 4),
            SimDeploymentConfig {
                min_available: 1,
                ..SimDeploymentConfig::named("shop", "solo", 1)
            },
        ],
        ..SimConfig::default()
    };
    let (clock, s) = sim(config);
    clock.advance(minutes(1));
    let before = s.snapshot().await.unwrap();
    let solo_node = before.pod("shop", "solo-1").unwrap().node.clone().unwrap();
    let drain = ClusterAction::DrainNode {
        node: solo_node.clone(),
        timeout_seconds: 60,
    };
    let report = s.execute(&drain, false).await.unwrap();
    assert_eq!(report.not_evicted.len(), 1, "{report:?}");
    assert!(report.not_evicted[0].starts_with("shop/solo-1: disruption budget"));
    clock.advance(minutes(1));
    let after = s.snapshot().await.unwrap();
    assert!(after.node(&solo_node).unwrap().unschedulable);
    let on_node: Vec<_> = after
        .pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(solo_node.as_str()))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        on_node,
        [format!("node-exporter-{solo_node}").as_str(), "solo-1"]
    );
    assert_eq!(after.deployment("shop", "web").unwrap().ready_replicas, 4);
}

#[tokio::test]
async fn actions_on_missing_objects_fail_and_dry_runs_change_nothing() {
    let (_, s) = sim(SimConfig::default());
    let err = s.execute(&restart("nope"), false).await.unwrap_err();
    assert_eq!(
        err,
        ClusterError::NotFound {
            target: "pod/shop/nope".into()
        }
    );
    let err = s
        .execute(
            &ClusterAction::CordonNode {
                node: "node-9".into(),
            },
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "node/node-9 not found");

    let before = s.snapshot_now();
    let report = s.execute(&restart("checkout-1"), true).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(s.snapshot_now(), before);
}

#[tokio::test]
async fn memory_leak_grows_until_oom_and_restarts_only_reset_it() {
    let (clock, s) = sim(SimConfig {
        noise: 0.0,
        ..SimConfig::default()
    });
    s.inject(
        FaultKind::MemoryLeak {
            bytes_per_second: 1024.0 * 1024.0,
        },
        deployment_target("payments"),
        None,
    )
    .unwrap();
    clock.advance(minutes(2));
    let memory = |s: &SimCluster, pod: &str| {
        s.snapshot_now().pod("shop", pod).unwrap().containers[0].memory_used_bytes
    };
    let grown = memory(&s, "payments-1");
    assert!(
        (grown - (200.0 + 120.0) * 1024.0 * 1024.0).abs() < 1.0,
        "{grown}"
    );

    s.execute(&restart("payments-1"), false).await.unwrap();
    clock.advance(minutes(2));
    assert!(
        memory(&s, "payments-3") > 300.0 * 1024.0 * 1024.0,
        "the leak continues"
    );

    clock.advance(minutes(4));
    let pod = s.snapshot_now();
    let pod = pod.pod("shop", "payments-2").unwrap();
    assert_eq!(
        pod.containers[0].last_termination_reason.as_deref(),
        Some("OOMKilled")
    );
    assert_eq!(pod.restarts(), 1);
}

#[tokio::test]
async fn not_ready_node_turns_its_pods_unready_until_cleared() {
    let (clock, s) = sim(SimConfig::default());
    let id = s
        .inject(
            FaultKind::NodeNotReady,
            FaultTarget::Node {
                name: "node-1".into(),
            },
            None,
        )
        .unwrap();
    clock.advance(minutes(1));
    let snapshot = s.snapshot().await.unwrap();
    assert_eq!(
        snapshot.node("node-1").unwrap().ready,
        ConditionStatus::Unknown
    );
    let on_node: Vec<_> = snapshot
        .pods
        .iter()
        .filter(|p| p.node.as_deref() == Some("node-1"))
        .collect();
    assert!(!on_node.is_empty());
    assert!(on_node.iter().all(|p| !p.is_ready()));
    let cluster = s.cluster_metrics().await.unwrap();
    assert_eq!((cluster.nodes, cluster.ready_nodes), (3, 2));

    s.clear(id).unwrap();
    clock.advance(minutes(1));
    assert_eq!(
        s.snapshot_now().node("node-1").unwrap().ready,
        ConditionStatus::True
    );
    assert_eq!(s.clear(id), Err(SimError::UnknownFault(id)));
}

#[tokio::test]
async fn faults_expire_on_their_own() {
    let (clock, s) = sim(SimConfig::default());
    let until = clock.now().checked_add(minutes(1)).unwrap();
    s.inject(
        FaultKind::NodeNotReady,
        FaultTarget::Node {
            name: "node-0".into(),
        },
        Some(until),
    )
    .unwrap();
    clock.advance(minutes(2));
    assert!(s.faults().is_empty());
    assert_eq!(
        s.snapshot_now().node("node-0").unwrap().ready,
        ConditionStatus::True
    );
}

#[tokio::test]
async fn latency_and_error_faults_show_in_service_metrics() {
    let (clock, s) = sim(SimConfig::default());
    let selector = ServiceSelector {
        namespace: "shop".into(),
        service: "checkout".into(),
        version: None,
        window_seconds: 60,
    };
    clock.advance(minutes(1));
    let healthy = s.service_metrics(&selector).await.unwrap();
    assert!(healthy.error_rate.unwrap() < 0.01);
    s.inject(
        FaultKind::Latency { added_seconds: 0.5 },
        deployment_target("checkout"),
        None,
    )
    .unwrap();
    s.inject(
        FaultKind::ErrorBurst { error_rate: 0.2 },
        deployment_target("checkout"),
        None,
    )
    .unwrap();
    clock.advance(minutes(1));
    let degraded = s.service_metrics(&selector).await.unwrap();
    assert!(degraded.latency_p99_seconds.unwrap() > healthy.latency_p99_seconds.unwrap() + 1.0);
    assert!((degraded.error_rate.unwrap() - 0.201).abs() < 1e-12);

    let missing = ServiceSelector {
        version: Some("canary".into()),
        ..selector
    };
    assert!(matches!(
        s.service_metrics(&missing).await,
        Err(SourceError::NotFound { .. })
    ));
}

#[tokio::test]
async fn scrape_reports_five_metrics_per_running_pod() {
    let (_, s) = sim(SimConfig::default());
    let samples = s.scrape().await.unwrap();
    assert_eq!(samples.len(), 7 * 5);
    let cpu = samples
        .iter()
        .find(|x| x.metric == metric_names::POD_CPU_CORES && x.labels["pod"] == "frontend-1")
        .unwrap();
    assert_eq!(cpu.labels["service"], "frontend");
    assert!(cpu.value > 0.0);
    let pods = s.pod_metrics(Some("monitoring")).await.unwrap();
    assert_eq!(pods.len(), 3);
    assert!(
        s.node_metrics()
            .await
            .unwrap()
            .iter()
            .all(|n| n.cpu_utilisation > 0.0)
    );
}

#[test]
fn invalid_configuration_names_the_field() {
    let mut config = SimConfig::default();
    config.deployments[1].memory_limit_bytes = -1.0;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
    let err = SimCluster::new(config, clock.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid simulator configuration: deployments[1].memory_limit_bytes must be a positive number"
    );
    let err = SimCluster::new(
        SimConfig {
            nodes: 0,
            ..SimConfig::default()
        },
        clock,
    )
    .unwrap_err();
    assert!(matches!(err, SimError::InvalidConfig { field, .. } if field == "nodes"));
}

#[test]
fn a_fault_on_a_missing_target_is_refused() {
    let (_, s) = sim(SimConfig::default());
    let err = s
        .inject(FaultKind::OomKill, pod_target("ghost"), None)
        .unwrap_err();
    assert!(matches!(err, SimError::UnknownTarget(_)));
}

#[test]
fn pending_pods_wait_for_a_schedulable_node() {
    let (clock, s) = sim(SimConfig {
        nodes: 1,
        ..SimConfig::default()
    });
    let mut state = s.current();
    state
        .execute(
            &ClusterAction::CordonNode {
                node: "node-0".into(),
            },
            false,
        )
        .unwrap();
    state.execute(&restart("checkout-1"), false).unwrap();
    drop(state);
    clock.advance(minutes(1));
    let snapshot = s.snapshot_now();
    let pending = snapshot.pod("shop", "checkout-3").unwrap();
    assert_eq!(pending.phase, PodPhase::Pending);
    assert_eq!(pending.node, None);
}

#[tokio::test]
async fn memory_stress_holds_memory_until_cleared_and_can_oom() {
    let (clock, s) = sim(SimConfig {
        noise: 0.0,
        ..SimConfig::default()
    });
    let mib = 1024.0 * 1024.0;
    let memory = |s: &SimCluster, pod: &str| {
        s.snapshot_now().pod("shop", pod).unwrap().containers[0].memory_used_bytes
    };
    let fixed = s
        .inject(
            FaultKind::MemoryStress {
                bytes: 100.0 * mib,
                bytes_per_second: mib,
            },
            pod_target("payments-1"),
            None,
        )
        .unwrap();
    clock.advance(minutes(1));
    let held = memory(&s, "payments-1");
    assert!((held - (200.0 + 100.0 + 60.0) * mib).abs() < 1.0, "{held}");
    assert!((memory(&s, "payments-2") - 200.0 * mib).abs() < 1.0);

    s.clear(fixed).unwrap();
    clock.advance(minutes(1));
    let freed = memory(&s, "payments-1");
    assert!((freed - 200.0 * mib).abs() < 1.0, "freed on clear: {freed}");
    assert_eq!(
        s.snapshot_now()
            .pod("shop", "payments-1")
            .unwrap()
            .restarts(),
        0
    );

    // Holding more than the 512 MiB limit kills the container every step.
    s.inject(
        FaultKind::MemoryStress {
            bytes: 400.0 * mib,
            bytes_per_second: 0.0,
        },
        pod_target("payments-2"),
        None,
    )
    .unwrap();
    clock.advance(minutes(1));
    let snapshot = s.snapshot_now();
    let pod = snapshot.pod("shop", "payments-2").unwrap();
    assert_eq!(
        pod.containers[0].last_termination_reason.as_deref(),
        Some("OOMKilled")
    );
    assert_eq!(pod.restarts(), 4);
}

#[tokio::test]
async fn disk_fill_raises_utilisation_and_disk_pressure_until_cleared() {
    let (clock, s) = sim(SimConfig::default());
    let node = FaultTarget::Node {
        name: "node-2".into(),
    };
    let disk = |m: &[crate::metrics::NodeMetrics]| {
        m.iter()
            .find(|n| n.node == "node-2")
            .unwrap()
            .disk_utilisation
    };
    let steady = disk(&s.node_metrics().await.unwrap());
    assert!((0.3..0.5).contains(&steady));
    assert_eq!(
        s.snapshot_now().node("node-2").unwrap().disk_pressure,
        ConditionStatus::False
    );

    let half = s
        .inject(FaultKind::DiskFill { fraction: 0.6 }, node.clone(), None)
        .unwrap();
    assert_eq!(disk(&s.node_metrics().await.unwrap()), 0.6);
    assert_eq!(
        s.snapshot_now().node("node-2").unwrap().disk_pressure,
        ConditionStatus::False,
        "60 % used is no pressure"
    );
    let full = s
        .inject(FaultKind::DiskFill { fraction: 0.95 }, node, None)
        .unwrap();
    clock.advance(minutes(1));
    assert_eq!(disk(&s.node_metrics().await.unwrap()), 0.95);
    assert_eq!(
        s.snapshot_now().node("node-2").unwrap().disk_pressure,
        ConditionStatus::True
    );
    assert_eq!(
        s.snapshot_now().node("node-1").unwrap().disk_pressure,
        ConditionStatus::False
    );

    s.clear(full).unwrap();
    s.clear(half).unwrap();
    assert_eq!(disk(&s.node_metrics().await.unwrap()), steady);
    assert_eq!(
        s.snapshot_now().node("node-2").unwrap().disk_pressure,
        ConditionStatus::False
    );
}

#[tokio::test]
async fn scrapes_share_each_pods_labels_until_the_pod_is_replaced() {
    let (clock, s) = sim(SimConfig::default());
    let labels_of = |samples: &[SeriesSample], pod: &str| {
        samples
            .iter()
            .find(|x| x.labels["pod"] == pod)
            .map(|x| x.labels.clone())
            .unwrap()
    };
    let first = s.scrape().await.unwrap();
    let cart = labels_of(&first, "checkout-1");
    assert!(
        first
            .iter()
            .filter(|x| x.labels["pod"] == "checkout-1")
            .all(|x| Arc::ptr_eq(&x.labels, &cart)),
        "one label set for the pod's five metrics"
    );
    clock.advance(minutes(1));
    let second = s.scrape().await.unwrap();
    assert!(Arc::ptr_eq(&labels_of(&second, "checkout-1"), &cart));

    s.execute(&restart("checkout-1"), false).await.unwrap();
    clock.advance(minutes(1));
    let third = s.scrape().await.unwrap();
    assert!(third.iter().all(|x| x.labels["pod"] != "checkout-1"));
}

#[tokio::test]
async fn a_refreshed_snapshot_equals_a_fresh_one() {
    let (clock, s) = sim(SimConfig::default());
    let mut reused = s.snapshot().await.unwrap();
    let check = |reused: &ClusterSnapshot, when: &str| {
        assert_eq!(*reused, s.snapshot_now(), "{when}");
    };
    s.inject(
        FaultKind::CrashLoop { persistent: false },
        pod_target("checkout-1"),
        None,
    )
    .unwrap();
    clock.advance(minutes(2));
    s.refresh(&mut reused).await.unwrap();
    check(&reused, "with a crashing pod");

    let scale = |replicas| ClusterAction::ScaleDeployment {
        namespace: "shop".into(),
        deployment: "checkout".into(),
        replicas,
    };
    s.execute(&scale(5), false).await.unwrap();
    clock.advance(minutes(1));
    s.refresh(&mut reused).await.unwrap();
    check(&reused, "scaled up");
    s.execute(&restart("checkout-1"), false).await.unwrap();
    s.execute(&scale(1), false).await.unwrap();
    clock.advance(minutes(1));
    s.refresh(&mut reused).await.unwrap();
    check(&reused, "scaled down, a pod replaced");

    // Whatever the snapshot held before, refreshing it makes it current.
    let mut foreign = s.snapshot_now();
    foreign.pods.reverse();
    foreign.pods.push(foreign.pods[0].clone());
    foreign.nodes.truncate(1);
    s.refresh(&mut foreign).await.unwrap();
    check(&foreign, "from another snapshot");
}

#[tokio::test]
async fn scraping_into_a_used_vector_replaces_its_samples() {
    let (clock, s) = sim(SimConfig::default());
    let mut samples = s.scrape().await.unwrap();
    samples.push(samples[0].clone());
    clock.advance(minutes(1));
    s.scrape_into(&mut samples).await.unwrap();
    assert_eq!(samples, s.scrape().await.unwrap());
    assert_eq!(samples.len(), 7 * 5);
}
