//! Long batches through `DetectorBank::observe_many_into` (the block kernel)
//! against the same samples observed one by one: same decisions, z-scores
//! within 1e-9, and afterwards the same series state, bit for bit.

use octrix_core::Timestamp;
use octrix_core::detect::{
    BatchSummary, Detection, DetectorBank, DetectorBankConfig, Error, SeriesId,
    WindowedZScoreConfig,
};
use octrix_core::labels::from_pairs;
use proptest::prelude::*;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).unwrap()
}

fn bank_with(config: &WindowedZScoreConfig) -> (DetectorBank, SeriesId) {
    let mut bank = DetectorBank::new(DetectorBankConfig {
        default: config.clone(),
        ..DetectorBankConfig::default()
    })
    .unwrap();
    let id = bank
        .resolve("latency_ms", &from_pairs([("pod", "a")]), at(0))
        .unwrap();
    (bank, id)
}

/// What observing `samples` one by one gives, in the batch's shape.
fn one_by_one(bank: &mut DetectorBank, id: SeriesId, samples: &[f64]) -> (Vec<f64>, BatchSummary) {
    let mut z = Vec::with_capacity(samples.len());
    let mut summary = BatchSummary::default();
    for (index, &value) in samples.iter().enumerate() {
        match bank.observe(id, at(1), value) {
            Ok(detection) if detection == Detection::NOT_JUDGED => z.push(f64::NAN),
            Ok(detection) => {
                z.push(detection.z);
                if detection.is_anomaly {
                    summary.anomalies.push((index, detection));
                }
            }
            Err(Error::NonFiniteValue { .. } | Error::ValueOutOfRange { .. }) => {
                z.push(f64::NAN);
                summary.rejected.push(index);
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    (z, summary)
}

fn close(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * b.abs()
}

/// Runs `samples` both ways on fresh banks after `prefix` one by one, then
/// checks the outputs and that `suffix` (one by one) is judged identically.
fn check_batch(
    config: &WindowedZScoreConfig,
    prefix: &[f64],
    samples: &[f64],
    suffix: &[f64],
    threads: usize,
) -> Result<(), TestCaseError> {
    let (mut expected_bank, expected_id) = bank_with(config);
    let (mut batch_bank, batch_id) = bank_with(config);
    one_by_one(&mut expected_bank, expected_id, prefix);
    one_by_one(&mut batch_bank, batch_id, prefix);

    let (expected_z, expected) = one_by_one(&mut expected_bank, expected_id, samples);
    let mut z = vec![0.0; samples.len()];
    let got = batch_bank
        .observe_many_into(batch_id, at(1), samples, &mut z, threads)
        .unwrap();

    for (index, (&got_z, &want_z)) in z.iter().zip(&expected_z).enumerate() {
        prop_assert!(close(got_z, want_z), "z[{index}]: {got_z} vs {want_z}");
    }
    prop_assert_eq!(&got.rejected, &expected.rejected);
    let positions = |summary: &BatchSummary| -> Vec<_> {
        summary
            .anomalies
            .iter()
            .map(|(index, detection)| (*index, detection.direction))
            .collect()
    };
    prop_assert_eq!(positions(&got), positions(&expected));
    for ((_, got), (index, want)) in got.anomalies.iter().zip(&expected.anomalies) {
        prop_assert!(close(got.z, want.z), "anomaly {index}: {got:?} vs {want:?}");
        prop_assert!((got.score - want.score).abs() <= 1e-9, "anomaly {index}");
    }
    prop_assert_eq!(
        batch_bank.counters().rejected_values,
        expected_bank.counters().rejected_values
    );
    // The state after the batch is the one-by-one state: what follows is
    // judged bit for bit alike.
    let after_expected = one_by_one(&mut expected_bank, expected_id, suffix);
    let after_batch = one_by_one(&mut batch_bank, batch_id, suffix);
    for (index, (a, b)) in after_batch.0.iter().zip(&after_expected.0).enumerate() {
        prop_assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "after the batch, z[{index}]: {a} vs {b}"
        );
    }
    prop_assert_eq!(after_batch.1, after_expected.1);
    Ok(())
}

/// Deterministic noise in [-1, 1) (xorshift).
fn noise(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
}

/// A series of `len` samples at `level` with unit noise, and a few spikes,
/// level shifts, constant stretches and bad values, chosen by `seed`.
fn eventful_series(len: usize, level: f64, seed: u64, bad_values: bool) -> Vec<f64> {
    let mut state = seed | 1;
    let mut shift = 0.0;
    let mut constant_left = 0;
    let mut values = Vec::with_capacity(len);
    let mut last = level;
    for _ in 0..len {
        let roll = noise(&mut state);
        let value = if constant_left > 0 {
            constant_left -= 1;
            last
        } else if roll > 0.995 {
            level + shift + 1e4
        } else if roll < -0.997 {
            shift += 1e3 * noise(&mut state);
            level + shift
        } else if roll.abs() < 0.002 {
            constant_left = 30 + (noise(&mut state).abs() * 50.0) as usize;
            last
        } else if bad_values && (0.5..0.503).contains(&roll) {
            [f64::NAN, f64::INFINITY, -1e200][(noise(&mut state).abs() * 2.9) as usize]
        } else {
            level + shift + noise(&mut state)
        };
        if value.is_finite() && value.abs() < 1e150 {
            last = value;
        }
        values.push(value);
    }
    values
}

#[test]
fn a_long_batch_at_an_offset_of_1e9_equals_one_by_one_observation() {
    let config = WindowedZScoreConfig::default();
    let samples = eventful_series(20_000, 1e9, 7, true);
    let suffix = eventful_series(3_000, 1e9, 8, false);
    check_batch(&config, &[], &samples, &suffix, 1).unwrap();
    check_batch(&config, &samples[..7], &samples, &suffix, 2).unwrap();
}

#[test]
fn a_batch_on_two_threads_equals_one_on_one() {
    let config = WindowedZScoreConfig::default();
    let samples = eventful_series(300_000, 100.0, 11, false);
    let (mut single, single_id) = bank_with(&config);
    let (mut double, double_id) = bank_with(&config);
    let mut single_z = vec![0.0; samples.len()];
    let mut double_z = vec![0.0; samples.len()];
    let one = single
        .observe_many_into(single_id, at(1), &samples, &mut single_z, 1)
        .unwrap();
    let two = double
        .observe_many_into(double_id, at(1), &samples, &mut double_z, 2)
        .unwrap();
    assert_eq!(one, two);
    assert!(
        single_z
            .iter()
            .zip(&double_z)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert!(one.anomalies.len() > 100, "{}", one.anomalies.len());
}

#[test]
fn the_output_buffer_must_match_the_samples() {
    let (mut bank, id) = bank_with(&WindowedZScoreConfig::default());
    let mut z = vec![0.0; 3];
    assert_eq!(
        bank.observe_many_into(id, at(1), &[1.0, 2.0], &mut z, 1),
        Err(Error::LengthMismatch {
            field: "z".into(),
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        bank.observe_many_into(id, at(1), &[], &mut [], 1),
        Ok(BatchSummary::default())
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn long_batches_equal_one_by_one_observation(
        window in 2_usize..48,
        min_samples in any::<prop::sample::Index>(),
        sensitivity in 0.5_f64..5.0,
        level in prop_oneof![Just(0.0), Just(100.0), Just(1e9), Just(-3e12)],
        extra in 0_usize..3000,
        prefix in 0_usize..60,
        seed in any::<u64>(),
        bad_values in any::<bool>(),
    ) {
        let config = WindowedZScoreConfig {
            window,
            sensitivity,
            min_samples: Some(2 + min_samples.index(window - 1)),
        };
        let len = 2 * (1024 + window) + extra;
        let all = eventful_series(prefix + len + 500, level, seed, bad_values);
        let (prefix, rest) = all.split_at(prefix);
        let (samples, suffix) = rest.split_at(len);
        check_batch(&config, prefix, samples, suffix, 1 + (seed % 2) as usize)?;
    }
}
