//! Streaming anomaly detection.
//!
//! A [`Detector`] takes one sample at a time and answers with a [`Detection`]:
//! how anomalous the sample is (a score in `[0, 1]`), its z-score against the
//! recent past, on which side of the mean it lies, whether it crosses the
//! detector's threshold, and a confidence. Two detectors are provided:
//!
//! * [`WindowedZScore`]: the z-score of each sample against the mean and
//!   standard deviation of the `window` samples before it (seed 004: window
//!   20, sensitivity 2.5 standard deviations, confidence `0.5 + |z| / 10`
//!   capped at 1). O(1) per sample.
//! * [`WindowedGaussian`]: the Numenta Anomaly Benchmark's reference
//!   "windowed Gaussian" detector (window 6400 refreshed in steps of 100,
//!   Gaussian tail-probability score), so that Octrix's detection quality can
//!   be checked against NAB's public scoreboard.
//!
//! A [`DetectorBank`] runs one [`WindowedZScore`] per series (metric name plus
//! labels) for many series at once, creating them on first sample from
//! per-metric configuration and evicting idle ones. Its fast paths: a
//! [`SeriesGroup`] observes many series one sample each per tick without
//! per-series lookups ([`DetectorBank::observe_group`]), and a long batch of
//! one series is judged by a block kernel that sees all its values at once
//! ([`DetectorBank::observe_many_into`]).
//!
//! ```
//! use octrix_core::detect::{Detector, Direction, WindowedZScore, WindowedZScoreConfig};
//!
//! let mut detector = WindowedZScore::new(&WindowedZScoreConfig::default()).unwrap();
//! // Twenty ordinary latencies around 100 ms...
//! for i in 0..20 {
//!     let calm = detector.observe(100.0 + f64::from(i % 5)).unwrap();
//!     assert!(!calm.is_anomaly);
//! }
//! // ...then a spike.
//! let spike = detector.observe(180.0).unwrap();
//! assert!(spike.is_anomaly);
//! assert_eq!(spike.direction, Direction::Above);
//! assert!(spike.z > 2.5 && spike.score > 0.5);
//! assert_eq!(spike.confidence, 1.0);
//! ```
//!
//! ## Decisions documented here
//!
//! * **Bad input.** A NaN or infinite value, or one whose magnitude exceeds
//!   [`MAX_ABS_VALUE`], is rejected with [`Error::NonFiniteValue`] or
//!   [`Error::ValueOutOfRange`] and counted ([`Detector::rejected`]); it never
//!   reaches the window, so the outputs that follow are exactly those of the
//!   same stream without it. The magnitude bound keeps every sum of squared
//!   deviations finite, far beyond any real metric.
//! * **Zero variance.** When every value in the window is the same, the
//!   window's standard deviation is exactly zero (the rolling statistics are
//!   exact for constant windows). [`WindowedZScore`] then reports `z = 0` for
//!   a sample equal to that value and `z = ±∞` (an anomaly with score 1) for
//!   any other: a perfectly flat signal that moves has changed behaviour.
//!   [`WindowedGaussian`] follows NAB and divides by `1e-6` instead.
//! * **Warm-up.** Until a detector has seen its minimum number of samples it
//!   does not judge and returns [`Detection::NOT_JUDGED`].
//! * **Numerics.** Rolling statistics are sums of deviations from a reference
//!   value taken from the window itself, recomputed exactly when rounding
//!   could have built up (see [`RollingStats`]); they stay within `1e-9`
//!   relative error of a two-pass recompute even for values near `1e9` with
//!   unit noise, where a plain sum of squares keeps no correct digit.

mod bank;
mod batch;
mod error;
mod gaussian;
mod kernel;
mod pool;
mod rolling;
mod series_key;
mod zscore;

use serde::{Deserialize, Serialize};

pub use bank::{BankCounters, DetectorBank, DetectorBankConfig, SeriesGroup, SeriesId};
pub use batch::{BatchDetections, BatchSummary, TickSummary};
pub use error::Error;
pub use gaussian::{WindowedGaussian, WindowedGaussianConfig};
pub use rolling::RollingStats;
pub use series_key::SeriesKey;
pub use zscore::{WindowedZScore, WindowedZScoreConfig};

/// Largest accepted magnitude of a sample. Larger values are rejected with
/// [`Error::ValueOutOfRange`] so that squared deviations summed over any
/// window stay finite.
pub const MAX_ABS_VALUE: f64 = 1e150;

/// Something that judges a stream of samples one at a time.
///
/// Implementations score each sample against what they have already seen and
/// only then learn from it, so a sample never dampens its own score.
pub trait Detector {
    /// Judges `value`, then adds it to the detector's history.
    ///
    /// # Errors
    /// [`Error::NonFiniteValue`] or [`Error::ValueOutOfRange`] for a value
    /// that cannot be judged; the detector's state is left untouched apart
    /// from its [`rejected`](Detector::rejected) counter.
    fn observe(&mut self, value: f64) -> Result<Detection, Error>;

    /// How many samples were rejected so far.
    fn rejected(&self) -> u64;
}

impl<D: Detector + ?Sized> Detector for &mut D {
    fn observe(&mut self, value: f64) -> Result<Detection, Error> {
        (**self).observe(value)
    }

    fn rejected(&self) -> u64 {
        (**self).rejected()
    }
}

impl<D: Detector + ?Sized> Detector for Box<D> {
    fn observe(&mut self, value: f64) -> Result<Detection, Error> {
        (**self).observe(value)
    }

    fn rejected(&self) -> u64 {
        (**self).rejected()
    }
}

/// On which side of the window's mean a sample lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Greater than the mean.
    Above,
    /// Less than the mean.
    Below,
    /// Equal to the mean, or not judged.
    AtMean,
}

impl Direction {
    /// The serde name: `above`, `below` or `at_mean`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
            Direction::AtMean => "at_mean",
        }
    }
}

/// A detector's verdict on one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// How anomalous the sample is, in `[0, 1]`; higher is more anomalous.
    /// Its meaning depends on the detector: see [`WindowedZScore`] and
    /// [`WindowedGaussian`].
    pub score: f64,
    /// Signed distance from the window's mean in standard deviations;
    /// `±∞` for a sample that differs from a constant window (serialized as
    /// `null` by JSON).
    pub z: f64,
    /// Side of the mean the sample lies on.
    pub direction: Direction,
    /// Whether the sample crosses the detector's threshold.
    pub is_anomaly: bool,
    /// `0.5 + |z| / 10`, capped at 1 (seed 004); 0 when not judged.
    pub confidence: f64,
}

impl Detection {
    /// What a detector answers before it has enough history to judge.
    pub const NOT_JUDGED: Detection = Detection {
        score: 0.0,
        z: 0.0,
        direction: Direction::AtMean,
        is_anomaly: false,
        confidence: 0.0,
    };
}

/// Seed 004's confidence: `0.5 + |z| / 10`, capped at 1.
fn confidence_for(z: f64) -> f64 {
    // A multiplication rather than a division by 10: this runs per sample.
    (0.5 + z.abs() * 0.1).min(1.0)
}

/// The side of `mean` that `value` lies on.
fn direction_of(value: f64, mean: f64) -> Direction {
    if value > mean {
        Direction::Above
    } else if value < mean {
        Direction::Below
    } else {
        Direction::AtMean
    }
}

/// Checks that a sample can be judged.
#[inline]
fn check_value(value: f64) -> Result<(), Error> {
    // One comparison on the hot path: NaN and ±∞ fail it too.
    if value.abs() <= MAX_ABS_VALUE {
        Ok(())
    } else {
        Err(rejection(value))
    }
}

/// Why `value` failed [`check_value`].
#[cold]
fn rejection(value: f64) -> Error {
    if value.is_finite() {
        Error::ValueOutOfRange {
            value,
            limit: MAX_ABS_VALUE,
        }
    } else {
        Error::NonFiniteValue { value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_follows_seed_004_and_caps_at_one() {
        assert_eq!(confidence_for(0.0), 0.5);
        assert!((confidence_for(-3.0) - 0.8).abs() < 1e-15);
        assert_eq!(confidence_for(5.0), 1.0);
        assert_eq!(confidence_for(f64::INFINITY), 1.0);
    }

    #[test]
    fn direction_compares_with_the_mean() {
        assert_eq!(direction_of(2.0, 1.0), Direction::Above);
        assert_eq!(direction_of(0.0, 1.0), Direction::Below);
        assert_eq!(direction_of(1.0, 1.0), Direction::AtMean);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        assert!(matches!(
            check_value(f64::NAN),
            Err(Error::NonFiniteValue { value }) if value.is_nan()
        ));
        assert_eq!(
            check_value(f64::NEG_INFINITY),
            Err(Error::NonFiniteValue {
                value: f64::NEG_INFINITY
            })
        );
        assert_eq!(
            check_value(-2e150),
            Err(Error::ValueOutOfRange {
                value: -2e150,
                limit: MAX_ABS_VALUE
            })
        );
        assert_eq!(check_value(1e150), Ok(()));
        assert_eq!(check_value(0.0), Ok(()));
    }

    #[test]
    fn detection_serializes_with_snake_case_direction() {
        let detection = Detection {
            score: 0.75,
            z: -3.0,
            direction: Direction::Below,
            is_anomaly: true,
            confidence: 0.8,
        };
        let json = serde_json::to_string(&detection).unwrap();
        assert_eq!(
            json,
            r#"{"score":0.75,"z":-3.0,"direction":"below","is_anomaly":true,"confidence":0.8}"#
        );
        let back: Detection = serde_json::from_str(&json).unwrap();
        assert_eq!(back, detection);
    }
}
