//! Routing and resilience benchmarks: each Octrix figure sits next to its
//! reference in the same group, so that a result is a ratio from one run.
//!
//! * `weighted_pick/*`: Octrix's alias-method and smooth round-robin pickers
//!   next to `rand`'s `WeightedIndex` (u32 and f64 weights), same `SmallRng`.
//! * `breaker_call/*`: a successful call through a closed `CircuitBreaker`
//!   next to the bare call. The futures are ready at once and polled a
//!   single time with a no-op waker, so the figures hold no executor cost.
//!
//! Run with `cargo bench -p octrix-benches --bench routing`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use octrix_core::resilience::{BreakerConfig, CircuitBreaker, SlidingWindow, SlowCallConfig};
use octrix_core::routing::picker::{SmoothWeightedRoundRobin, WeightedRandomPicker};
use octrix_core::time::SignedDuration;
use octrix_core::{Clock, Timestamp};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{SeedableRng, rngs::SmallRng};

fn weighted_pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("weighted_pick");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, Vec<u32>); 2] = [
        ("3_weights", vec![70, 20, 10]),
        ("16_weights", (1..=16).collect()),
    ];
    for (name, weights) in cases {
        let index_u32 = WeightedIndex::new(&weights).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        group.bench_function(BenchmarkId::new("rand_weighted_index_u32", name), |b| {
            b.iter(|| index_u32.sample(&mut rng))
        });

        let float_weights: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
        let index_f64 = WeightedIndex::new(&float_weights).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        group.bench_function(BenchmarkId::new("rand_weighted_index_f64", name), |b| {
            b.iter(|| index_f64.sample(&mut rng))
        });

        let alias = WeightedRandomPicker::new(weights.iter().copied().enumerate()).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        group.bench_function(BenchmarkId::new("octrix_alias", name), |b| {
            b.iter(|| alias.pick_index(&mut rng))
        });

        let mut smooth =
            SmoothWeightedRoundRobin::new(weights.iter().copied().enumerate()).unwrap();
        group.bench_function(BenchmarkId::new("octrix_smooth_round_robin", name), |b| {
            b.iter(|| smooth.pick_index())
        });
    }
    group.finish();
}

/// Polls a future that is ready at once.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("benchmarked futures complete on their first poll"),
    }
}

/// The work being protected: as small as possible, so the figures show the
/// breaker's own cost.
async fn operation(input: u64) -> Result<u64, ()> {
    Ok(black_box(input))
}

fn breaker(config: BreakerConfig, clock: Arc<dyn Clock>) -> CircuitBreaker {
    CircuitBreaker::new("bench", config, clock).unwrap()
}

fn breaker_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_call");
    group.throughput(Throughput::Elements(1));
    let fixed = Timestamp::from_second(1_700_000_000).unwrap();
    let fixed_clock: Arc<dyn Clock> = Arc::new(move || fixed);
    let system_clock: Arc<dyn Clock> = Arc::new(Timestamp::now);

    group.bench_function("bare_call", |b| b.iter(|| ready(operation(black_box(7)))));

    // The default: 5 consecutive failures or 50 % of the last 100 calls.
    let count_window = breaker(BreakerConfig::default(), fixed_clock.clone());
    group.bench_function("breaker_count_window", |b| {
        b.iter(|| ready(count_window.call(|| operation(black_box(7)))))
    });

    // The same through the synchronous permit API.
    group.bench_function("breaker_permit_api", |b| {
        b.iter(|| {
            if let Ok(permit) = count_window.try_acquire() {
                permit.success();
            }
        })
    });

    // The floor of an exact count window: one atomic increment per call.
    let counter = AtomicU64::new(0);
    group.bench_function("atomic_increment_reference", |b| {
        b.iter(|| counter.fetch_add(1, Ordering::Relaxed))
    });

    let consecutive_only = breaker(
        BreakerConfig {
            failure_rate_threshold: None,
            ..BreakerConfig::default()
        },
        fixed_clock.clone(),
    );
    group.bench_function("breaker_consecutive_only", |b| {
        b.iter(|| ready(consecutive_only.call(|| operation(black_box(7)))))
    });

    // For comparison: modes that must read the (real) clock on every call.
    let time_window = breaker(
        BreakerConfig {
            window: SlidingWindow::Time { seconds: 60 },
            ..BreakerConfig::default()
        },
        system_clock.clone(),
    );
    group.bench_function("breaker_time_window_system_clock", |b| {
        b.iter(|| ready(time_window.call(|| operation(black_box(7)))))
    });

    let slow_calls = breaker(
        BreakerConfig {
            slow_call: Some(SlowCallConfig {
                duration_threshold: SignedDuration::from_secs(1),
                rate_threshold: 0.5,
            }),
            ..BreakerConfig::default()
        },
        system_clock.clone(),
    );
    group.bench_function("breaker_slow_calls_system_clock", |b| {
        b.iter(|| ready(slow_calls.call(|| operation(black_box(7)))))
    });

    // Failing fast: an open breaker rejects without running the operation.
    let open = breaker(BreakerConfig::default(), system_clock);
    open.force_open();
    group.bench_function("breaker_open_rejection_system_clock", |b| {
        b.iter(|| ready(open.call(|| operation(black_box(7)))).is_err())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = weighted_pick, breaker_call
}
criterion_main!(benches);
