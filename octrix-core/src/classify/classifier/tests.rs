use super::*;
use crate::Severity;
use crate::classify::{
    AnomalyReading, ContainerStatus, Direction, TerminationReason, WaitingReason,
};

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn pod() -> ResourceRef {
    ResourceRef::pod("shop", "cart-1").on_node("worker-1")
}

fn cpu(second: i64, ratio: f64) -> Observation {
    Observation::new(at(second), pod(), Reading::CpuUtilisation { ratio }).with_service("cart")
}

fn pod_status(second: i64, phase: PodPhase, container: ContainerStatus) -> Observation {
    Observation::new(
        at(second),
        pod(),
        Reading::Pod(PodStatus {
            phase,
            containers: vec![container],
        }),
    )
}

fn node(second: i64, conditions: NodeConditions) -> Observation {
    Observation::new(
        at(second),
        ResourceRef::node("worker-1"),
        Reading::Node(conditions),
    )
}

fn signals(results: &[Classification]) -> Vec<(Category, Severity)> {
    results
        .iter()
        .filter_map(Classification::as_signal)
        .map(|signal| (signal.category, signal.severity))
        .collect()
}

fn cleared(results: &[Classification]) -> Vec<Category> {
    results
        .iter()
        .filter_map(|result| match result {
            Classification::Cleared(cleared) => Some(cleared.category),
            Classification::Raised(_) => None,
        })
        .collect()
}

#[test]
fn cpu_needs_three_samples_for_medium_and_three_above_095_for_high() {
    let mut classifier = Classifier::default();
    assert!(classifier.observe(&cpu(0, 0.96)).is_empty());
    assert!(classifier.observe(&cpu(15, 0.96)).is_empty());
    let third = classifier.observe(&cpu(30, 0.96));
    // Both steps need 3 samples, so the third reaches high directly.
    assert_eq!(signals(&third), [(Category::HighCpu, Severity::High)]);
    let signal = third[0].as_signal().unwrap();
    assert_eq!(signal.observed, Some(0.96));
    assert_eq!(signal.threshold, Some(0.95));
    assert_eq!(signal.since, at(0));
    assert_eq!(signal.at, at(30));
    assert_eq!(signal.service.as_deref(), Some("cart"));
    assert_eq!(signal.resource.node.as_deref(), Some("worker-1"));
    assert_eq!(
        signal.summary,
        "CPU utilisation of pod shop/cart-1 at 96.0%"
    );

    // One sample below 0.95 drops to medium; the streak (and `since`) goes on.
    let lower = classifier.observe(&cpu(45, 0.85));
    assert_eq!(signals(&lower), [(Category::HighCpu, Severity::Medium)]);
    assert_eq!(lower[0].as_signal().unwrap().since, at(0));
}

#[test]
fn a_dip_below_the_threshold_restarts_the_count() {
    let mut classifier = Classifier::default();
    classifier.observe(&cpu(0, 0.9));
    classifier.observe(&cpu(15, 0.9));
    // Never raised, so the healthy sample reports nothing and forgets the streak.
    assert!(classifier.observe(&cpu(30, 0.5)).is_empty());
    assert_eq!(classifier.tracked(), 0);
    assert!(classifier.observe(&cpu(45, 0.9)).is_empty());
    assert!(classifier.observe(&cpu(60, 0.9)).is_empty());
    let raised = classifier.observe(&cpu(75, 0.9));
    assert_eq!(signals(&raised), [(Category::HighCpu, Severity::Medium)]);
    assert_eq!(raised[0].as_signal().unwrap().since, at(45));
}

#[test]
fn healthy_after_raised_clears_once_and_starts_a_new_since() {
    let mut classifier = Classifier::default();
    for second in [0, 15, 30] {
        classifier.observe(&cpu(second, 0.9));
    }
    let result = classifier.observe(&cpu(45, 0.1));
    assert_eq!(cleared(&result), [Category::HighCpu]);
    let Classification::Cleared(clear) = &result[0] else {
        unreachable!()
    };
    assert_eq!(clear.at, at(45));
    assert_eq!(clear.service.as_deref(), Some("cart"));
    assert!(classifier.observe(&cpu(60, 0.1)).is_empty());
    assert_eq!(classifier.tracked(), 0);
}

#[test]
fn memory_uses_its_own_ladder() {
    let mut classifier = Classifier::default();
    let memory =
        |second, ratio| Observation::new(at(second), pod(), Reading::MemoryUtilisation { ratio });
    // 0.84 is below memory's 0.85 medium step (CPU's would be 0.80).
    for second in [0, 15, 30, 45] {
        assert!(classifier.observe(&memory(second, 0.84)).is_empty());
    }
    assert_eq!(classifier.tracked(), 0);
    for second in [60, 75] {
        assert!(classifier.observe(&memory(second, 0.86)).is_empty());
    }
    assert_eq!(
        signals(&classifier.observe(&memory(90, 0.86))),
        [(Category::HighMemory, Severity::Medium)]
    );
}

#[test]
fn rejected_readings_leave_counters_alone() {
    let mut classifier = Classifier::default();
    classifier.observe(&cpu(0, 0.9));
    classifier.observe(&cpu(15, 0.9));
    assert!(classifier.observe(&cpu(20, f64::NAN)).is_empty());
    assert!(classifier.observe(&cpu(25, -0.1)).is_empty());
    assert_eq!(classifier.rejected_readings(), 2);
    assert_eq!(
        signals(&classifier.observe(&cpu(30, 0.9))),
        [(Category::HighCpu, Severity::Medium)]
    );
}

#[test]
fn crash_loop_is_medium_then_high_after_ten_samples_and_clears_when_running() {
    let mut classifier = Classifier::default();
    let crashing = ContainerStatus {
        ready: false,
        restart_count: 4,
        waiting_reason: Some(WaitingReason::CrashLoopBackOff),
        last_termination_reason: Some(TerminationReason::Error),
        ..ContainerStatus::running("cart")
    };
    let first = classifier.observe(&pod_status(0, PodPhase::Running, crashing.clone()));
    assert_eq!(signals(&first), [(Category::PodCrash, Severity::Medium)]);
    let signal = first[0].as_signal().unwrap();
    assert_eq!(signal.labels["reason"], "CrashLoopBackOff");
    assert_eq!(signal.labels["container"], "cart");
    assert_eq!(signal.observed, None);
    assert_eq!(
        signal.summary,
        "pod shop/cart-1 is failing: container cart is in CrashLoopBackOff after 4 restarts"
    );
    for sample in 1..9 {
        let result = classifier.observe(&pod_status(
            sample * 15,
            PodPhase::Running,
            crashing.clone(),
        ));
        assert_eq!(signals(&result), [(Category::PodCrash, Severity::Medium)]);
    }
    let tenth = classifier.observe(&pod_status(135, PodPhase::Running, crashing));
    assert_eq!(signals(&tenth), [(Category::PodCrash, Severity::High)]);
    assert_eq!(tenth[0].as_signal().unwrap().since, at(0));

    let recovered = ContainerStatus {
        restart_count: 4,
        ..ContainerStatus::running("cart")
    };
    let result = classifier.observe(&pod_status(150, PodPhase::Running, recovered));
    assert_eq!(cleared(&result), [Category::PodCrash]);
}

#[test]
fn image_pull_failures_and_failed_phase_are_pod_crashes_but_start_up_is_not() {
    let mut classifier = Classifier::default();
    let pulling = ContainerStatus {
        ready: false,
        waiting_reason: Some(WaitingReason::ImagePullBackOff),
        ..ContainerStatus::running("cart")
    };
    let result = classifier.observe(&pod_status(0, PodPhase::Pending, pulling));
    assert_eq!(signals(&result), [(Category::PodCrash, Severity::Medium)]);

    let mut other = Classifier::default();
    let creating = ContainerStatus {
        ready: false,
        waiting_reason: Some(WaitingReason::ContainerCreating),
        ..ContainerStatus::running("cart")
    };
    assert!(
        other
            .observe(&pod_status(0, PodPhase::Pending, creating))
            .is_empty()
    );
    let failed = other.observe(&pod_status(
        15,
        PodPhase::Failed,
        ContainerStatus::running("cart"),
    ));
    assert_eq!(signals(&failed), [(Category::PodCrash, Severity::Medium)]);
    assert_eq!(failed[0].as_signal().unwrap().labels["reason"], "Failed");
    let done = other.observe(&pod_status(
        30,
        PodPhase::Succeeded,
        ContainerStatus::running("cart"),
    ));
    assert_eq!(cleared(&done), [Category::PodCrash]);
}

#[test]
fn oom_kill_counts_while_the_container_is_down_or_recently_restarted() {
    let mut classifier = Classifier::default();
    let oom_then_running = ContainerStatus {
        restart_count: 2,
        last_termination_reason: Some(TerminationReason::OomKilled),
        ..ContainerStatus::running("cart")
    };
    // First sight: restart count is a baseline, container ready: an old OOM.
    assert!(
        classifier
            .observe(&pod_status(0, PodPhase::Running, oom_then_running.clone()))
            .is_empty()
    );
    // It restarts again: the OOM is current.
    let restarted = ContainerStatus {
        restart_count: 3,
        ..oom_then_running.clone()
    };
    let result = classifier.observe(&pod_status(60, PodPhase::Running, restarted.clone()));
    assert_eq!(signals(&result), [(Category::OomKilled, Severity::Medium)]);
    assert_eq!(result[0].as_signal().unwrap().labels["container"], "cart");
    // An hour after the restart without another one, it no longer counts.
    let result = classifier.observe(&pod_status(60 + 3601, PodPhase::Running, restarted));
    assert_eq!(cleared(&result), [Category::OomKilled]);

    let mut other = Classifier::default();
    let oom_now = ContainerStatus {
        ready: false,
        terminated_reason: Some(TerminationReason::OomKilled),
        ..ContainerStatus::running("cart")
    };
    let result = other.observe(&pod_status(0, PodPhase::Running, oom_now));
    assert_eq!(signals(&result), [(Category::OomKilled, Severity::Medium)]);
}

#[test]
fn restart_rate_is_derived_from_counts_over_the_window() {
    let mut classifier = Classifier::default();
    let restarts = |count| ContainerStatus {
        restart_count: count,
        ..ContainerStatus::running("cart")
    };
    assert!(
        classifier
            .observe(&pod_status(0, PodPhase::Running, restarts(5)))
            .is_empty()
    );
    assert!(
        classifier
            .observe(&pod_status(600, PodPhase::Running, restarts(7)))
            .is_empty()
    );
    let result = classifier.observe(&pod_status(1200, PodPhase::Running, restarts(8)));
    assert_eq!(
        signals(&result),
        [(Category::PersistentRestarts, Severity::Medium)]
    );
    let signal = result[0].as_signal().unwrap();
    assert_eq!(signal.observed, Some(3.0));
    assert_eq!(signal.threshold, Some(3.0));
    assert_eq!(signal.since, at(1200));
    let result = classifier.observe(&pod_status(1800, PodPhase::Running, restarts(15)));
    assert_eq!(
        signals(&result),
        [(Category::PersistentRestarts, Severity::High)]
    );
    assert_eq!(result[0].as_signal().unwrap().observed, Some(10.0));
    // More than an hour after the last restart the rate is zero again.
    let result = classifier.observe(&pod_status(1800 + 3600, PodPhase::Running, restarts(15)));
    assert_eq!(cleared(&result), [Category::PersistentRestarts]);
}

#[test]
fn a_measured_restart_rate_is_graded_by_the_same_ladder() {
    let mut classifier = Classifier::default();
    let rate = |per_hour| Observation::new(at(0), pod(), Reading::RestartRate { per_hour });
    assert!(classifier.observe(&rate(2.9)).is_empty());
    assert_eq!(
        signals(&classifier.observe(&rate(12.0))),
        [(Category::PersistentRestarts, Severity::High)]
    );
    assert!(classifier.observe(&rate(f64::INFINITY)).is_empty());
    assert_eq!(classifier.rejected_readings(), 1);
}

#[test]
fn node_not_ready_is_critical_and_pressure_is_medium() {
    let mut classifier = Classifier::default();
    let sick = NodeConditions {
        ready: ConditionStatus::Unknown,
        disk_pressure: true,
        memory_pressure: true,
        ..NodeConditions::healthy()
    };
    let result = classifier.observe(&node(0, sick));
    assert_eq!(
        signals(&result),
        [
            (Category::NodeNotReady, Severity::Critical),
            (Category::NodePressure, Severity::Medium)
        ]
    );
    assert_eq!(result[0].as_signal().unwrap().labels["ready"], "Unknown");
    assert_eq!(
        result[1].as_signal().unwrap().labels["conditions"],
        "MemoryPressure,DiskPressure"
    );
    let pressure_only = NodeConditions {
        pid_pressure: true,
        ..NodeConditions::healthy()
    };
    let result = classifier.observe(&node(15, pressure_only));
    assert_eq!(cleared(&result), [Category::NodeNotReady]);
    assert_eq!(
        signals(&result),
        [(Category::NodePressure, Severity::Medium)]
    );
    assert_eq!(result[1].as_signal().unwrap().since, at(0));
    let result = classifier.observe(&node(30, NodeConditions::healthy()));
    assert_eq!(cleared(&result), [Category::NodePressure]);
}

#[test]
fn anomalies_are_graded_by_score_per_metric() {
    let mut classifier = Classifier::default();
    let anomaly = |metric: &str, score| {
        Observation::new(
            at(0),
            pod(),
            Reading::Anomaly(AnomalyReading {
                metric: metric.into(),
                labels: crate::labels::from_pairs([("route", "/checkout")]),
                value: 812.0,
                score,
                z: 4.2,
                direction: Direction::Above,
            }),
        )
    };
    let latency = classifier.observe(&anomaly("http_latency_seconds", 0.85));
    assert_eq!(signals(&latency), [(Category::Anomaly, Severity::Medium)]);
    let signal = latency[0].as_signal().unwrap();
    assert_eq!(signal.metric.as_deref(), Some("http_latency_seconds"));
    assert_eq!(signal.labels["route"], "/checkout");
    assert_eq!(signal.labels["direction"], "above");
    assert_eq!(signal.labels["z"], "4.20");

    let errors = classifier.observe(&anomaly("http_errors_total", 0.97));
    assert_eq!(signals(&errors), [(Category::Anomaly, Severity::High)]);
    assert_ne!(
        errors[0].as_signal().unwrap().fingerprint(),
        signal.fingerprint()
    );
    // Below the lowest step clears only that metric.
    let calm = classifier.observe(&anomaly("http_latency_seconds", 0.1));
    assert_eq!(cleared(&calm), [Category::Anomaly]);
    assert_eq!(classifier.tracked(), 1);
    assert!(classifier.observe(&anomaly("x", 1.5)).is_empty());
    assert_eq!(classifier.rejected_readings(), 1);
}

#[test]
fn idle_resources_are_evicted() {
    let mut classifier = Classifier::default();
    classifier.observe(&cpu(0, 0.9));
    classifier.observe(&node(
        100,
        NodeConditions {
            ready: ConditionStatus::False,
            ..NodeConditions::healthy()
        },
    ));
    assert_eq!(classifier.tracked(), 2);
    assert_eq!(classifier.evict_idle(at(50)), 1);
    assert_eq!(classifier.tracked(), 1);
}

#[test]
fn a_custom_policy_is_validated_and_applied() {
    let mut policy = SeverityPolicy::default();
    policy.high_cpu.critical = Some(crate::classify::Step::new(1.2, 1));
    assert_eq!(
        Classifier::new(policy).unwrap_err().to_string(),
        "high_cpu.critical.threshold must be within (0, 1]"
    );

    let mut policy = SeverityPolicy::default();
    policy.high_cpu.medium = Some(crate::classify::Step::new(0.5, 1));
    policy.node_not_ready.enabled = false;
    let mut classifier = Classifier::new(policy).unwrap();
    assert_eq!(
        signals(&classifier.observe(&cpu(0, 0.6))),
        [(Category::HighCpu, Severity::Medium)]
    );
    let down = NodeConditions {
        ready: ConditionStatus::False,
        ..NodeConditions::healthy()
    };
    assert!(classifier.observe(&node(0, down)).is_empty());
}

fn cpu_of(resource: ResourceRef, second: i64, ratio: f64) -> Observation {
    Observation::new(at(second), resource, Reading::CpuUtilisation { ratio })
}

fn oom_restarted(resource: ResourceRef, second: i64, restart_count: u32) -> Observation {
    let container = ContainerStatus {
        restart_count,
        last_termination_reason: Some(TerminationReason::OomKilled),
        ..ContainerStatus::running("cart")
    };
    Observation::new(
        at(second),
        resource,
        Reading::Pod(PodStatus {
            phase: PodPhase::Running,
            containers: vec![container],
        }),
    )
}

#[test]
fn another_pod_inherits_no_streak_and_no_restart_history() {
    let mut classifier = Classifier::default();
    let (replacement, namesake) = (
        ResourceRef::pod("shop", "cart-2"),
        ResourceRef::pod("web", "cart-1"),
    );
    assert!(classifier.observe(&oom_restarted(pod(), 0, 2)).is_empty());
    assert!(classifier.observe(&cpu(0, 0.9)).is_empty());
    assert!(classifier.observe(&cpu(15, 0.9)).is_empty());
    // Two samples into cart-1's streak, cart-2 and web's cart-1 start their own.
    for resource in [&replacement, &namesake] {
        assert!(
            classifier
                .observe(&cpu_of(resource.clone(), 30, 0.9))
                .is_empty()
        );
        // First sight of their restart counts: a baseline, not restarts
        // counted from cart-1's 2.
        assert!(
            classifier
                .observe(&oom_restarted(resource.clone(), 30, 3))
                .is_empty()
        );
    }
    let raised = classifier.observe(&cpu(30, 0.9));
    assert_eq!(signals(&raised), [(Category::HighCpu, Severity::Medium)]);
    assert_eq!(raised[0].as_signal().unwrap().since, at(0));
    assert!(
        classifier
            .observe(&cpu_of(replacement.clone(), 45, 0.9))
            .is_empty()
    );
    let raised = classifier.observe(&cpu_of(replacement.clone(), 60, 0.9));
    assert_eq!(signals(&raised), [(Category::HighCpu, Severity::Medium)]);
    assert_eq!(raised[0].as_signal().unwrap().since, at(30));
    assert_eq!(raised[0].as_signal().unwrap().resource, replacement);
    assert_eq!(classifier.tracked(), 3);
}

#[test]
fn a_restart_history_outlives_cleared_streaks_until_evicted() {
    let mut classifier = Classifier::default();
    assert!(classifier.observe(&oom_restarted(pod(), 0, 2)).is_empty());
    for second in [0, 15, 30] {
        classifier.observe(&cpu(second, 0.9));
    }
    assert_eq!(
        cleared(&classifier.observe(&cpu(45, 0.1))),
        [Category::HighCpu]
    );
    assert_eq!(classifier.tracked(), 0);
    // The count of 2 is still the baseline: one restart since.
    let result = classifier.observe(&oom_restarted(pod(), 60, 3));
    assert_eq!(signals(&result), [(Category::OomKilled, Severity::Medium)]);
    assert_eq!(classifier.tracked(), 1);
    // Idle past the cutoff: the streak and the history go.
    assert_eq!(classifier.evict_idle(at(61)), 1);
    assert_eq!(classifier.tracked(), 0);
    // A count seen afresh is a baseline again: no restart, no OOM kill.
    assert!(classifier.observe(&oom_restarted(pod(), 120, 4)).is_empty());
}
