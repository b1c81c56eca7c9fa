//! Properties of the weighted pickers, the load balancer and the canary.

use octrix_core::Timestamp;
use octrix_core::metrics::ServiceMetrics;
use octrix_core::routing::balancer::{
    BalancerError, BalancingStrategy, Endpoint, Health, LoadBalancer,
};
use octrix_core::routing::canary::{
    AnalysisConfig, Canary, CanaryConfig, CanaryEventKind, CanaryState, CanaryStep,
    NoTrafficPolicy, Observation,
};
use octrix_core::routing::picker::{SmoothWeightedRoundRobin, WeightedRandomPicker};
use octrix_core::routing::{Destination, TrafficRule};
use octrix_core::time::SignedDuration;
use proptest::prelude::*;
use rand::{SeedableRng, rngs::SmallRng};

fn weights() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0_u32..=50, 1..=8)
        .prop_filter("some weight is positive", |w| w.iter().any(|&x| x > 0))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Over any `total` consecutive picks, wherever they start, each item is
    /// picked exactly `weight` times.
    #[test]
    fn smooth_round_robin_is_exact_over_every_full_cycle(weights in weights(), warm_up in 0_usize..200) {
        let mut picker = SmoothWeightedRoundRobin::new(weights.iter().copied().enumerate()).unwrap();
        for _ in 0..warm_up {
            picker.pick_index();
        }
        let total = picker.total_weight() as usize;
        let mut counts = vec![0_u32; weights.len()];
        for _ in 0..total {
            counts[picker.pick_index()] += 1;
        }
        prop_assert_eq!(counts, weights);
    }

    /// Random picks land within five standard deviations of the weights, and
    /// never on a zero weight.
    #[test]
    fn weighted_random_matches_weights_statistically(weights in weights(), seed: u64) {
        const PICKS: usize = 40_000;
        let picker = WeightedRandomPicker::new(weights.iter().copied().enumerate()).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut counts = vec![0_usize; weights.len()];
        for _ in 0..PICKS {
            counts[*picker.pick(&mut rng)] += 1;
        }
        let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
        for (count, weight) in counts.iter().zip(&weights) {
            let p = f64::from(*weight) / total;
            let expected = PICKS as f64 * p;
            let sigma = (PICKS as f64 * p * (1.0 - p)).sqrt();
            if *weight == 0 {
                prop_assert_eq!(*count, 0);
            } else {
                prop_assert!(
                    (*count as f64 - expected).abs() <= 5.0 * sigma + 1.0,
                    "weights {:?}: got {:?}", weights, counts
                );
            }
        }
    }

    /// Whatever the health changes, the balancer only picks healthy endpoints
    /// and fails exactly when none is healthy.
    #[test]
    fn balancer_picks_only_healthy_endpoints(
        strategy in prop::sample::select(vec![
            BalancingStrategy::RoundRobin,
            BalancingStrategy::LeastOutstanding,
            BalancingStrategy::Weighted,
            BalancingStrategy::PowerOfTwoChoices,
        ]),
        endpoint_weights in prop::collection::vec(1_u32..=5, 1..=6),
        operations in prop::collection::vec((0_usize..6, any::<bool>(), any::<bool>()), 1..100),
        seed: u64,
    ) {
        let endpoints: Vec<Endpoint> = endpoint_weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint::new(format!("10.0.0.{i}:80"), w))
            .collect();
        let n = endpoints.len();
        let mut balancer = LoadBalancer::new(strategy, endpoints, SmallRng::seed_from_u64(seed)).unwrap();
        let mut healthy = vec![true; n];
        let mut in_flight = Vec::new();
        for (target, make_healthy, complete_one) in operations {
            let target = target % n;
            let health = if make_healthy { Health::Healthy } else { Health::Unhealthy };
            balancer.set_health(&format!("10.0.0.{target}:80"), health).unwrap();
            healthy[target] = make_healthy;
            match balancer.pick() {
                Ok(id) => {
                    prop_assert!(healthy[id.index()]);
                    in_flight.push(id);
                }
                Err(error) => {
                    prop_assert!(healthy.iter().all(|h| !h));
                    prop_assert_eq!(error, BalancerError::NoHealthyEndpoint { total: n });
                }
            }
            if complete_one && let Some(id) = in_flight.pop() {
                balancer.complete(id);
            }
            let outstanding: u32 = balancer.status().iter().map(|s| s.outstanding).sum();
            prop_assert_eq!(outstanding as usize, in_flight.len());
        }
    }
}

#[derive(Debug, Clone)]
enum CanaryOp {
    Step {
        after_seconds: i64,
        observed: Observed,
    },
    Resume,
    Promote,
    Abort,
}

#[derive(Debug, Clone, Copy)]
enum Observed {
    Nothing,
    Healthy,
    Failing,
    Silent,
    Unavailable,
}

fn observation(observed: Observed) -> Observation {
    let metrics = |rate: f64, errors: Option<f64>, p99: Option<f64>| {
        Observation::Measured(ServiceMetrics {
            request_rate: rate,
            error_rate: errors,
            latency_p50_seconds: p99.map(|p| p / 3.0),
            latency_p99_seconds: p99,
        })
    };
    match observed {
        Observed::Nothing => Observation::NotMeasured,
        Observed::Healthy => metrics(30.0, Some(0.001), Some(0.1)),
        Observed::Failing => metrics(30.0, Some(0.2), Some(2.0)),
        Observed::Silent => metrics(0.0, None, None),
        Observed::Unavailable => Observation::Unavailable {
            reason: "down".into(),
        },
    }
}

fn canary_step() -> impl Strategy<Value = CanaryStep> {
    prop_oneof![
        (0_u32..=100).prop_map(CanaryStep::SetWeight),
        prop::option::of(1_i64..600)
            .prop_map(|s| CanaryStep::Pause(s.map(SignedDuration::from_secs))),
        (1_u32..4).prop_map(|checks| CanaryStep::Analysis { checks }),
    ]
}

fn canary_op() -> impl Strategy<Value = CanaryOp> {
    let observed = prop_oneof![
        Just(Observed::Nothing),
        Just(Observed::Healthy),
        Just(Observed::Healthy),
        Just(Observed::Failing),
        Just(Observed::Silent),
        Just(Observed::Unavailable),
    ];
    prop_oneof![
        8 => (0_i64..200, observed).prop_map(|(after_seconds, observed)| CanaryOp::Step { after_seconds, observed }),
        1 => Just(CanaryOp::Resume),
        1 => Just(CanaryOp::Promote),
        1 => Just(CanaryOp::Abort),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the plan, the metrics and the operator do, the canary's
    /// weights sum to 100, its rule stays valid, and terminal states carry
    /// the right split.
    #[test]
    fn canary_weights_always_sum_to_100(
        steps in prop::collection::vec(canary_step(), 1..8),
        failure_limit in 0_u32..3,
        skip_silence: bool,
        deadline in prop::option::of(60_i64..3_000),
        ops in prop::collection::vec(canary_op(), 1..80),
    ) {
        let rule = TrafficRule::weighted(
            "reviews",
            "bookinfo",
            vec![Destination::for_version("v1", 100), Destination::for_version("v2", 0)],
        );
        let config = CanaryConfig {
            stable_subset: "v1".into(),
            canary_subset: "v2".into(),
            steps,
            analysis: AnalysisConfig {
                interval: SignedDuration::from_secs(30),
                window_seconds: 60,
                failure_limit,
                min_success_rate: Some(0.99),
                max_latency_p99_seconds: Some(0.5),
                min_request_rate: 1.0,
                no_traffic: if skip_silence { NoTrafficPolicy::Skip } else { NoTrafficPolicy::Fail },
            },
            progress_deadline: deadline.map(SignedDuration::from_secs),
        };
        let mut canary = Canary::new(config, rule).unwrap();
        let mut now = Timestamp::from_second(1_700_000_000).unwrap();
        for op in ops {
            let events = match op {
                CanaryOp::Step { after_seconds, observed } => {
                    now += SignedDuration::from_secs(after_seconds);
                    canary.step(now, &observation(observed))
                }
                CanaryOp::Resume => canary.resume(now),
                CanaryOp::Promote => canary.promote(now),
                CanaryOp::Abort => canary.abort(now, "operator"),
            };
            for event in &events {
                prop_assert_eq!(event.at, now);
                if let CanaryEventKind::WeightChanged { stable, canary: weight } = event.kind {
                    prop_assert_eq!(stable + weight, 100);
                }
            }
            let weights = canary.weights();
            prop_assert_eq!(weights.stable + weights.canary, 100);
            let rule = canary.traffic_rule();
            prop_assert!(rule.validate().is_ok(), "{:?}", rule.validate());
            let split: Vec<u32> = rule.destinations.iter().map(|d| d.weight).collect();
            prop_assert_eq!(split, vec![weights.stable, weights.canary]);
            match canary.state() {
                CanaryState::Succeeded | CanaryState::Promoting => prop_assert_eq!(weights.canary, 100),
                CanaryState::RolledBack | CanaryState::Failed => prop_assert_eq!(weights.canary, 0),
                _ => {}
            }
            if canary.state() == CanaryState::RolledBack {
                prop_assert!(canary.failed_checks() > failure_limit);
            }
        }
    }
}
