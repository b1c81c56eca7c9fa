//! Detection benchmarks, each next to a plain reference loop in the same
//! group so that the figure that matters is a ratio measured in one run.
//!
//! * `zscore_single_series`: [`WindowedZScore`] updates on one series versus
//!   a bare loop keeping a running sum and sum of squares over a `Vec` ring
//!   buffer (window 20, three divisions and a square root per sample).
//! * `bank_tick_100k`: one new point for each of 100,000 series through a
//!   [`DetectorBank`] (by [`SeriesId`], and by metric name and labels) versus
//!   a bare structure-of-arrays loop with slot-major ring buffers, and versus
//!   a plain scalar loop doing the bank's per-series work without its
//!   abstractions (to tell the cost of the work from the cost of the code).
//!
//! Every loop folds the outputs it produces into what it returns (anomaly
//! count, plus a checksum of score and confidence for the detectors, of `|z|`
//! for the references), so that no part of a verdict is optimised away.
//!
//! Run with `cargo bench -p octrix-benches --bench detect`; results are
//! recorded in `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use octrix_core::detect::{
    BatchDetections, Detection, Detector, DetectorBank, DetectorBankConfig, Direction, SeriesId,
    WindowedZScore, WindowedZScoreConfig,
};
use octrix_core::labels::from_pairs;
use octrix_core::time::SignedDuration;
use octrix_core::{Labels, Timestamp};

const WINDOW: usize = 20;
const SENSITIVITY: f64 = 2.5;
/// Samples per iteration of the single-series benchmarks.
const SINGLE_SERIES_SAMPLES: usize = 100_000;
const SERIES: usize = 100_000;
/// Distinct ticks of input cycled through by the bank benchmarks.
const TICKS_OF_INPUT: usize = 8;

/// Deterministic noise in [-1, 1) (xorshift), so both sides of a comparison
/// see the same data.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
    }
}

/// A latency-like series: a level with noise and a spike every 500 samples.
fn latency_series(len: usize) -> Vec<f64> {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|i| 100.0 + 5.0 * noise.next() + if i % 500 == 499 { 60.0 } else { 0.0 })
        .collect()
}

/// The reference: a bare window-20 ring with running sums, no abstraction.
struct ReferenceRing {
    ring: Vec<f64>,
    head: usize,
    len: usize,
    sum: f64,
    sum_sq: f64,
}

impl ReferenceRing {
    fn new() -> Self {
        Self {
            ring: vec![0.0; WINDOW],
            head: 0,
            len: 0,
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    /// Counts the anomalies in `samples`, with a checksum of `|z|`.
    fn run(&mut self, samples: &[f64]) -> (usize, f64) {
        let mut anomalies = 0;
        let mut checksum = 0.0;
        for &x in samples {
            if self.len == WINDOW {
                let mean = self.sum / WINDOW as f64;
                let variance = self.sum_sq / WINDOW as f64 - mean * mean;
                let z = (x - mean) / variance.sqrt();
                anomalies += usize::from(z.abs() > SENSITIVITY);
                checksum += z.abs();
            } else {
                self.len += 1;
            }
            let old = self.ring[self.head];
            self.ring[self.head] = x;
            self.sum += x - old;
            self.sum_sq += x * x - old * old;
            self.head = if self.head + 1 == WINDOW {
                0
            } else {
                self.head + 1
            };
        }
        (anomalies, checksum)
    }
}

/// Folds a verdict into an anomaly count and a checksum, the way a caller
/// reads its fields.
fn consume(detection: &Detection, anomalies: &mut usize, checksum: &mut f64) {
    *anomalies +=
        usize::from(detection.is_anomaly) + usize::from(detection.direction == Direction::Above);
    *checksum += detection.score + detection.confidence;
}

fn zscore_single_series(c: &mut Criterion) {
    let samples = latency_series(SINGLE_SERIES_SAMPLES);
    let mut group = c.benchmark_group("zscore_single_series");
    group.throughput(Throughput::Elements(SINGLE_SERIES_SAMPLES as u64));

    let mut detector = WindowedZScore::new(&WindowedZScoreConfig::default()).unwrap();
    group.bench_function("windowed_zscore", |b| {
        b.iter(|| {
            let (mut anomalies, mut checksum) = (0, 0.0);
            for &x in black_box(&samples) {
                let detection = detector.observe(x).expect("finite sample");
                consume(&detection, &mut anomalies, &mut checksum);
            }
            (anomalies, checksum)
        })
    });

    let mut reference = ReferenceRing::new();
    group.bench_function("reference_loop", |b| {
        b.iter(|| reference.run(black_box(&samples)))
    });
    group.finish();
}

/// Input for [`TICKS_OF_INPUT`] ticks, tick-major: every series around its
/// own level, with noise.
fn tick_inputs() -> Vec<Vec<f64>> {
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    (0..TICKS_OF_INPUT)
        .map(|_| {
            (0..SERIES)
                .map(|series| (series % 1000) as f64 + noise.next())
                .collect()
        })
        .collect()
}

/// The reference: structure of arrays, ring buffers slot-major
/// (`ring[slot * SERIES + series]`), one head shared by all series.
struct ReferenceBank {
    ring: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    head: usize,
    len: usize,
}

impl ReferenceBank {
    fn new() -> Self {
        Self {
            ring: vec![0.0; WINDOW * SERIES],
            sum: vec![0.0; SERIES],
            sum_sq: vec![0.0; SERIES],
            head: 0,
            len: 0,
        }
    }

    /// One tick: `values[series]` for every series; counts anomalies, with a
    /// checksum of `|z|`.
    fn tick(&mut self, values: &[f64]) -> (usize, f64) {
        let mut anomalies = 0;
        let mut checksum = 0.0;
        let judge = self.len == WINDOW;
        let row = &mut self.ring[self.head * SERIES..(self.head + 1) * SERIES];
        for (series, &x) in values.iter().enumerate() {
            let (sum, sum_sq) = (&mut self.sum[series], &mut self.sum_sq[series]);
            if judge {
                let mean = *sum / WINDOW as f64;
                let variance = *sum_sq / WINDOW as f64 - mean * mean;
                let z = (x - mean) / variance.sqrt();
                anomalies += usize::from(z.abs() > SENSITIVITY);
                checksum += z.abs();
            }
            let old = row[series];
            row[series] = x;
            *sum += x - old;
            *sum_sq += x * x - old * old;
        }
        self.len = (self.len + 1).min(WINDOW);
        self.head = if self.head + 1 == WINDOW {
            0
        } else {
            self.head + 1
        };
        (anomalies, checksum)
    }
}

/// One series of [`PlainBank`]: the bank's per-series state, spelled out.
#[derive(Clone, Copy, Default)]
struct PlainSeries {
    reference: f64,
    sum: f64,
    sum_sq: f64,
    high_water: f64,
    last_seen_ms: i64,
    generation: u32,
    head: u32,
    updates_since_recompute: u32,
}

/// The bank's per-series work (id check, last-seen time, sums shifted by a
/// reference value with the exact-recompute checks, the full verdict) as one
/// plain loop over an array of structs and slot-major rings.
struct PlainBank {
    series: Vec<PlainSeries>,
    ring: Vec<f64>,
}

/// What a plain verdict produces, as `Detection` does.
struct PlainVerdict {
    score: f64,
    z: f64,
    above: bool,
    is_anomaly: bool,
    confidence: f64,
}

impl PlainBank {
    fn new() -> Self {
        Self {
            series: vec![
                PlainSeries {
                    generation: 1,
                    ..PlainSeries::default()
                };
                SERIES
            ],
            ring: vec![0.0; WINDOW * SERIES],
        }
    }

    /// One tick: `values[i]` for series `ids[i]` (slot, generation).
    fn tick(&mut self, ids: &[(u32, u32)], values: &[f64], at_ms: i64) -> (usize, f64) {
        let inverse_len = 1.0 / WINDOW as f64;
        let (mut anomalies, mut checksum) = (0, 0.0);
        for (&(slot, generation), &x) in ids.iter().zip(values) {
            let slot = slot as usize;
            if !x.is_finite() || x.abs() > 1e150 {
                continue;
            }
            let Some(series) = self.series.get_mut(slot) else {
                continue;
            };
            if series.generation != generation {
                continue;
            }
            series.last_seen_ms = series.last_seen_ms.max(at_ms);
            let mut centred = (series.sum_sq - series.sum * series.sum * inverse_len).max(0.0);
            if series.updates_since_recompute >= 1024 || series.high_water > 64.0 * centred {
                let reference = self.ring[series.head as usize * SERIES + slot];
                let (mut sum, mut sum_sq) = (0.0, 0.0);
                for position in 0..WINDOW {
                    let deviation = self.ring[position * SERIES + slot] - reference;
                    sum += deviation;
                    sum_sq += deviation * deviation;
                }
                *series = PlainSeries {
                    reference,
                    sum,
                    sum_sq,
                    high_water: sum_sq,
                    updates_since_recompute: 0,
                    ..*series
                };
                centred = (sum_sq - sum * sum * inverse_len).max(0.0);
            }
            let mean = series.reference + series.sum * inverse_len;
            let deviation = x - mean;
            let std_dev = (centred * inverse_len).sqrt();
            let denominator = deviation.abs() + SENSITIVITY * std_dev;
            let reciprocal = 1.0 / (std_dev * denominator);
            let z = deviation * (denominator * reciprocal);
            let verdict = PlainVerdict {
                score: (deviation.abs() * (std_dev * reciprocal)).min(1.0),
                z,
                above: x > mean,
                is_anomaly: z.abs() > SENSITIVITY,
                confidence: (0.5 + z.abs() * 0.1).min(1.0),
            };
            anomalies += usize::from(verdict.is_anomaly) + usize::from(verdict.above);
            checksum += verdict.score + verdict.confidence + 0.0 * verdict.z;

            let position = series.head as usize * SERIES + slot;
            let old = std::mem::replace(&mut self.ring[position], x);
            let (new_deviation, old_deviation) = (x - series.reference, old - series.reference);
            series.sum += new_deviation - old_deviation;
            series.sum_sq += new_deviation * new_deviation - old_deviation * old_deviation;
            if series.sum_sq > series.high_water {
                series.high_water = series.sum_sq;
            }
            series.head = if series.head as usize + 1 == WINDOW {
                0
            } else {
                series.head + 1
            };
            series.updates_since_recompute += 1;
        }
        (anomalies, checksum)
    }
}

fn series_labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|series| {
            from_pairs([
                ("pod", format!("api-{}", series / 10)),
                ("container", format!("c{}", series % 10)),
            ])
        })
        .collect()
}

fn bank_tick_100k(c: &mut Criterion) {
    let inputs = tick_inputs();
    let labels = series_labels();
    let start = Timestamp::from_second(1_700_000_000).unwrap();
    let mut group = c.benchmark_group("bank_tick_100k");
    group.throughput(Throughput::Elements(SERIES as u64));

    let mut bank = DetectorBank::new(DetectorBankConfig {
        max_series: SERIES,
        ..DetectorBankConfig::default()
    })
    .unwrap();
    let ids: Vec<SeriesId> = labels
        .iter()
        .map(|labels| bank.resolve("latency_ms", labels, start).unwrap())
        .collect();
    let mut tick = 0_usize;
    let mut next_tick = move || {
        tick += 1;
        (tick, start + SignedDuration::from_secs(15 * tick as i64))
    };
    // Fill every window first: the steady state is what is measured.
    for _ in 0..WINDOW {
        let (tick, at) = next_tick();
        for (id, &x) in ids.iter().zip(&inputs[tick % TICKS_OF_INPUT]) {
            bank.observe(*id, at, x).unwrap();
        }
    }
    group.bench_function("detector_bank_by_id", |b| {
        b.iter(|| {
            let (tick, at) = next_tick();
            let mut anomalies = 0;
            let mut checksum = 0.0;
            for (id, &x) in ids.iter().zip(&inputs[tick % TICKS_OF_INPUT]) {
                let detection = bank.observe(*id, at, x).expect("live series");
                consume(&detection, &mut anomalies, &mut checksum);
            }
            (anomalies, checksum)
        })
    });
    group.bench_function("detector_bank_tick", |b| {
        b.iter(|| {
            let (tick, at) = next_tick();
            let summary = bank
                .observe_tick(&ids, at, &inputs[tick % TICKS_OF_INPUT])
                .expect("as many values as ids");
            let checksum: f64 = summary
                .anomalies
                .iter()
                .map(|(_, detection)| detection.score + detection.confidence)
                .sum();
            (summary.judged, summary.anomalies.len(), checksum)
        })
    });
    let mut series_group = bank.group(&ids).unwrap();
    group.bench_function("detector_bank_group", |b| {
        b.iter(|| {
            let (tick, at) = next_tick();
            let summary = bank
                .observe_group(&mut series_group, at, &inputs[tick % TICKS_OF_INPUT])
                .expect("as many values as series");
            let checksum: f64 = summary
                .anomalies
                .iter()
                .map(|(_, detection)| detection.score + detection.confidence)
                .sum();
            (summary.judged, summary.anomalies.len(), checksum)
        })
    });
    group.bench_function("detector_bank_by_labels", |b| {
        b.iter(|| {
            let (tick, at) = next_tick();
            let (mut anomalies, mut checksum) = (0, 0.0);
            for (labels, &x) in labels.iter().zip(&inputs[tick % TICKS_OF_INPUT]) {
                let detection = bank
                    .observe_series("latency_ms", labels, at, x)
                    .expect("live series");
                consume(&detection, &mut anomalies, &mut checksum);
            }
            (anomalies, checksum)
        })
    });
    assert_eq!(bank.len(), SERIES);

    let mut reference = ReferenceBank::new();
    let mut reference_tick = 0_usize;
    group.bench_function("reference_soa_loop", |b| {
        b.iter(|| {
            reference_tick += 1;
            reference.tick(black_box(&inputs[reference_tick % TICKS_OF_INPUT]))
        })
    });

    let mut plain = PlainBank::new();
    let plain_ids: Vec<(u32, u32)> = (0..SERIES as u32).map(|slot| (slot, 1)).collect();
    let mut plain_tick = 0_usize;
    group.bench_function("plain_loop_bank_semantics", |b| {
        b.iter(|| {
            plain_tick += 1;
            plain.tick(
                black_box(&plain_ids),
                black_box(&inputs[plain_tick % TICKS_OF_INPUT]),
                plain_tick as i64 * 15_000,
            )
        })
    });
    group.finish();
}

/// One series of a million samples at once: the bank's batch path (block
/// kernel, one and two threads) next to the one-by-one detector and the
/// reference loop.
fn batch_one_series_1m(c: &mut Criterion) {
    const SAMPLES: usize = 1_000_000;
    let samples = latency_series(SAMPLES);
    let start = Timestamp::from_second(1_700_000_000).unwrap();
    let mut group = c.benchmark_group("batch_one_series_1m");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    group.sample_size(20);
    let mut z = vec![0.0; SAMPLES];
    for threads in [1, 2] {
        group.bench_function(format!("bank_observe_many_into_{threads}_threads"), |b| {
            let mut run = 0_usize;
            b.iter(|| {
                // A fresh series each time, as a first batch is.
                let mut bank = DetectorBank::new(DetectorBankConfig::default()).unwrap();
                run += 1;
                let id = bank
                    .resolve("latency_ms", &from_pairs([("run", run.to_string())]), start)
                    .unwrap();
                let summary = bank
                    .observe_many_into(id, start, black_box(&samples), &mut z, threads)
                    .unwrap();
                (summary.anomalies.len(), z[SAMPLES - 1])
            })
        });
    }
    group.bench_function("windowed_zscore_one_by_one", |b| {
        b.iter(|| {
            let mut detector = WindowedZScore::new(&WindowedZScoreConfig::default()).unwrap();
            let batch = BatchDetections::observe_all(&mut detector, black_box(&samples));
            (batch.anomalies.len(), batch.z[SAMPLES - 1])
        })
    });
    group.bench_function("reference_loop", |b| {
        b.iter(|| ReferenceRing::new().run(black_box(&samples)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = zscore_single_series, bank_tick_100k, batch_one_series_1m
}
criterion_main!(benches);
