//! One engine tick on a simulated cluster of 1,000 nodes and 10,000 pods
//! with 5 metrics each (50,000 samples through the detector bank, 10,000
//! pod and 1,000 node observations through the classifier, incidents and
//! healing). Target: at most 20 ms per tick.
//!
//! The reference in the same group, `reference_bank_by_id`, observes the
//! same 50,000 series straight into a [`DetectorBank`] by pre-resolved
//! [`SeriesId`]: the detection floor of a tick, measured under the same load.
//!
//! ```text
//! cargo bench -p octrix-benches --bench engine
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use octrix_core::detect::{DetectorBank, DetectorBankConfig, SeriesId};
use octrix_core::engine::{Engine, EngineConfig, Ports};
use octrix_core::metrics::MetricSource;
use octrix_core::sim::{SimCluster, SimConfig};
use octrix_core::time::SignedDuration;
use octrix_core::{ManualClock, Timestamp};

fn engine_tick(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_second(1_767_225_600).expect("valid start"),
    ));
    let sim = Arc::new(
        SimCluster::new(SimConfig::large(1_000, 10_000), clock.clone()).expect("valid sim"),
    );
    let mut engine = Engine::new(
        EngineConfig::default(),
        Ports::simulated(sim.clone(), clock.clone()),
    )
    .expect("valid engine");
    // Fill the detector windows so the measured ticks judge every sample.
    for _ in 0..25 {
        clock.advance(SignedDuration::from_secs(15));
        runtime.block_on(engine.tick());
    }
    let report = runtime.block_on(engine.tick());
    let samples = report.samples;
    assert_eq!(samples, 50_000, "5 metrics on each of 10,000 pods");
    eprintln!(
        "one tick with full windows: {} samples, {} anomalies, {} observations, {} incidents opened, {} actions",
        report.samples, report.anomalies, report.observations, report.opened, report.actions
    );

    let mut group = c.benchmark_group("engine_tick_1000_nodes_10000_pods");
    group.throughput(Throughput::Elements(samples as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("tick", |b| {
        b.iter(|| {
            clock.advance(SignedDuration::from_secs(15));
            runtime.block_on(engine.tick())
        })
    });

    let scrape = runtime.block_on(sim.scrape()).expect("the sim answers");
    let mut bank = DetectorBank::new(DetectorBankConfig::default()).expect("valid bank");
    let ids: Vec<SeriesId> = scrape
        .iter()
        .map(|s| bank.resolve(&s.metric, &s.labels, s.timestamp))
        .collect::<Result<_, _>>()
        .expect("room for every series");
    let mut at = scrape[0].timestamp;
    let mut round = 0_u32;
    let mut observe_all = |bank: &mut DetectorBank| {
        at += SignedDuration::from_secs(15);
        round += 1;
        let wobble = 1.0 + 0.01 * f64::from(round % 7);
        for (id, sample) in ids.iter().zip(&scrape) {
            black_box(bank.observe(*id, at, sample.value * wobble).ok());
        }
    };
    for _ in 0..25 {
        observe_all(&mut bank);
    }
    group.bench_function("reference_bank_by_id", |b| {
        b.iter(|| observe_all(&mut bank))
    });
    group.finish();
}

criterion_group!(benches, engine_tick);
criterion_main!(benches);
