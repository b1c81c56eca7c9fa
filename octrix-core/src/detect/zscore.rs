//! The windowed z-score detector of seed 004.

use serde::{Deserialize, Serialize};

use super::rolling::{MAX_WINDOW, RollingStats};
use super::{Detection, Detector, Error, check_value, confidence_for, direction_of};

/// Settings of a [`WindowedZScore`], as a user writes them.
///
/// Every field has a default, so `{}` is a valid configuration:
///
/// ```
/// use octrix_core::detect::WindowedZScoreConfig;
///
/// let config: WindowedZScoreConfig = serde_json::from_str(r#"{"sensitivity": 3.0}"#).unwrap();
/// assert_eq!(config.window, 20);
/// assert_eq!(config.sensitivity, 3.0);
/// assert_eq!(config.min_samples(), 20);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowedZScoreConfig {
    /// How many past samples each sample is judged against (default 20, at
    /// least 2).
    pub window: usize,
    /// How many standard deviations from the mean make a sample anomalous
    /// (default 2.5; positive and finite).
    pub sensitivity: f64,
    /// How many samples the window must hold before the detector judges
    /// (between 2 and `window`); unset means a full window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<usize>,
}

impl Default for WindowedZScoreConfig {
    fn default() -> Self {
        Self {
            window: 20,
            sensitivity: 2.5,
            min_samples: None,
        }
    }
}

impl WindowedZScoreConfig {
    /// The number of samples needed before judging, `window` when unset.
    pub fn min_samples(&self) -> usize {
        self.min_samples.unwrap_or(self.window)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_at("")
    }

    /// [`validate`](Self::validate), with field names prefixed by `prefix`
    /// (e.g. `metrics.cpu.`) when the configuration is nested.
    pub(crate) fn validate_at(&self, prefix: &str) -> Result<(), Error> {
        if !(2..=MAX_WINDOW).contains(&self.window) {
            return Err(Error::invalid(
                format!("{prefix}window"),
                format!("must be between 2 and {MAX_WINDOW}, got {}", self.window),
            ));
        }
        if !(self.sensitivity.is_finite() && self.sensitivity > 0.0) {
            return Err(Error::invalid(
                format!("{prefix}sensitivity"),
                format!("must be positive and finite, got {}", self.sensitivity),
            ));
        }
        if let Some(min_samples) = self.min_samples
            && !(2..=self.window).contains(&min_samples)
        {
            return Err(Error::invalid(
                format!("{prefix}min_samples"),
                format!(
                    "must be between 2 and window ({}), got {min_samples}",
                    self.window
                ),
            ));
        }
        Ok(())
    }
}

/// Judges each sample by its z-score against the `window` samples before it.
///
/// * The window's mean and **population** standard deviation are taken
///   before the sample joins the window.
/// * `is_anomaly` when `|z| > sensitivity`.
/// * `score = |z| / (|z| + sensitivity)`: 0 at the mean, exactly 0.5 at the
///   threshold, approaching 1 as `|z|` grows (1 for `z = ±∞`). It is cheap,
///   monotone in `|z|` and, like every output here, unchanged when the input
///   is shifted or scaled by a positive factor.
/// * `confidence = min(0.5 + |z| / 10, 1)` (seed 004).
/// * Before `min_samples` samples it returns [`Detection::NOT_JUDGED`].
/// * A constant window has zero variance: a sample equal to it gets `z = 0`,
///   any other `z = ±∞` and is anomalous.
/// * NaN, infinite and out-of-range samples are rejected and counted.
///
/// Each update is O(1). The state is `size_of::<WindowedZScore>()` (88
/// bytes) plus the heap window of `8 × window` bytes: 248 bytes at window 20.
/// (A [`super::DetectorBank`] stores series more compactly: 216 bytes.)
///
/// ```
/// use octrix_core::detect::{Detection, Detector, Error, WindowedZScore, WindowedZScoreConfig};
///
/// let config = WindowedZScoreConfig { window: 4, sensitivity: 2.0, min_samples: Some(3) };
/// let mut detector = WindowedZScore::new(&config).unwrap();
/// assert_eq!(detector.observe(10.0).unwrap(), Detection::NOT_JUDGED);
/// assert_eq!(detector.observe(12.0).unwrap(), Detection::NOT_JUDGED);
/// assert_eq!(detector.observe(11.0).unwrap(), Detection::NOT_JUDGED);
/// // Judged against [10, 12, 11]: mean 11, population std 0.816.
/// let detection = detector.observe(13.0).unwrap();
/// assert!((detection.z - 2.449_489_742_783_178).abs() < 1e-12);
/// assert!(detection.is_anomaly);
///
/// // A NaN is rejected, counted, and forgotten.
/// assert!(matches!(detector.observe(f64::NAN), Err(Error::NonFiniteValue { .. })));
/// assert_eq!(detector.rejected(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WindowedZScore {
    stats: RollingStats,
    sensitivity: f64,
    min_samples: u16,
    rejected: u64,
}

impl WindowedZScore {
    /// A detector with an empty window.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `config` does not validate.
    pub fn new(config: &WindowedZScoreConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            stats: RollingStats::new(config.window)?,
            sensitivity: config.sensitivity,
            // validate() bounds min_samples by window, itself below 2^16.
            min_samples: config.min_samples() as u16,
            rejected: 0,
        })
    }

    /// The configuration this detector runs.
    pub fn config(&self) -> WindowedZScoreConfig {
        WindowedZScoreConfig {
            window: self.stats.capacity(),
            sensitivity: self.sensitivity,
            min_samples: Some(usize::from(self.min_samples)),
        }
    }

    /// The window's statistics.
    pub fn stats(&self) -> &RollingStats {
        &self.stats
    }
}

impl WindowedZScore {
    /// Learns `value` without judging it, while the window is shorter than
    /// `min_samples`; out of line to keep the steady-state path short.
    #[cold]
    #[inline(never)]
    fn warm_up(&mut self, value: f64) -> Detection {
        self.stats.push_valid(value);
        Detection::NOT_JUDGED
    }
}

impl Detector for WindowedZScore {
    // Always inlined: a caller's loop over samples then keeps the detector's
    // state in registers and the verdict out of memory; the rare paths are
    // out of line, so the inlined body stays short.
    #[inline(always)]
    fn observe(&mut self, value: f64) -> Result<Detection, Error> {
        if let Err(error) = check_value(value) {
            self.rejected += 1;
            return Err(error);
        }
        if self.stats.len() < usize::from(self.min_samples) {
            return Ok(self.warm_up(value));
        }
        let (mean, variance) = self.stats.checked_mean_and_variance();
        let detection = judge(&VerdictInputs {
            value,
            mean,
            variance,
            sensitivity: self.sensitivity,
        });
        // The next observation checks the sums before reading them.
        self.stats.push_unchecked(value);
        Ok(detection)
    }

    fn rejected(&self) -> u64 {
        self.rejected
    }
}

/// What a z-score verdict is computed from: a sample, the mean and
/// population variance of the window before it, and the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct VerdictInputs {
    pub(crate) value: f64,
    pub(crate) mean: f64,
    pub(crate) variance: f64,
    pub(crate) sensitivity: f64,
}

/// The z-score verdict on a sample; shared with [`super::DetectorBank`].
#[inline]
pub(crate) fn judge(inputs: &VerdictInputs) -> Detection {
    let deviation = inputs.value - inputs.mean;
    let distance = deviation.abs();
    let (z, score) = if inputs.variance > 0.0 {
        let std_dev = inputs.variance.sqrt();
        // z = deviation / std_dev and score = |z| / (|z| + sensitivity)
        //   = distance / (distance + sensitivity · std_dev)
        // need two reciprocals; both come from one division, the costly
        // operation of this hot path.
        let denominator = distance + inputs.sensitivity * std_dev;
        let reciprocal = 1.0 / (std_dev * denominator);
        (
            deviation * (denominator * reciprocal),
            // The rounding of three operations may overshoot 1 by an ulp.
            (distance * (std_dev * reciprocal)).min(1.0),
        )
    } else if deviation == 0.0 {
        (0.0, 0.0)
    } else {
        // Any move away from a perfectly constant window.
        (deviation.signum() * f64::INFINITY, 1.0)
    };
    Detection {
        score,
        z,
        direction: direction_of(inputs.value, inputs.mean),
        is_anomaly: z.abs() > inputs.sensitivity,
        confidence: confidence_for(z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Direction;

    fn detector(window: usize, sensitivity: f64, min_samples: Option<usize>) -> WindowedZScore {
        WindowedZScore::new(&WindowedZScoreConfig {
            window,
            sensitivity,
            min_samples,
        })
        .unwrap()
    }

    #[test]
    fn defaults_follow_seed_004() {
        let config = WindowedZScoreConfig::default();
        assert_eq!(config.window, 20);
        assert_eq!(config.sensitivity, 2.5);
        assert_eq!(config.min_samples(), 20);
        let parsed: WindowedZScoreConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn config_round_trips_and_rejects_unknown_fields() {
        let config = WindowedZScoreConfig {
            window: 30,
            sensitivity: 3.0,
            min_samples: Some(10),
        };
        let yaml = serde_norway::to_string(&config).unwrap();
        assert_eq!(
            serde_norway::from_str::<WindowedZScoreConfig>(&yaml).unwrap(),
            config
        );
        let error = serde_json::from_str::<WindowedZScoreConfig>(r#"{"windwo": 3}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `windwo`"),
            "{error}"
        );
    }

    #[test]
    fn validation_names_the_offending_field() {
        let invalid = |config: WindowedZScoreConfig| match WindowedZScore::new(&config) {
            Err(Error::InvalidConfig { field, reason }) => (field, reason),
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let base = WindowedZScoreConfig::default();
        assert_eq!(
            invalid(WindowedZScoreConfig {
                window: 1,
                ..base.clone()
            }),
            ("window".into(), "must be between 2 and 65535, got 1".into())
        );
        for sensitivity in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let (field, _) = invalid(WindowedZScoreConfig {
                sensitivity,
                ..base.clone()
            });
            assert_eq!(field, "sensitivity");
        }
        assert_eq!(
            invalid(WindowedZScoreConfig {
                min_samples: Some(21),
                ..base.clone()
            }),
            (
                "min_samples".into(),
                "must be between 2 and window (20), got 21".into()
            )
        );
        assert_eq!(
            base.validate_at("metrics.cpu.").and(
                WindowedZScoreConfig {
                    window: 0,
                    ..base.clone()
                }
                .validate_at("metrics.cpu.")
            ),
            Err(Error::invalid(
                "metrics.cpu.window",
                "must be between 2 and 65535, got 0"
            ))
        );
    }

    #[test]
    fn does_not_judge_before_min_samples() {
        let mut early = detector(5, 2.5, Some(3));
        for x in [1.0, 2.0, 3.0] {
            assert_eq!(early.observe(x).unwrap(), Detection::NOT_JUDGED);
        }
        assert_ne!(early.observe(2.0).unwrap(), Detection::NOT_JUDGED);
        // Unset min_samples waits for a full window.
        let mut full = detector(3, 2.5, None);
        for x in [1.0, 2.0, 3.0] {
            assert_eq!(full.observe(x).unwrap(), Detection::NOT_JUDGED);
        }
        assert_eq!(full.config().min_samples, Some(3));
        assert_ne!(full.observe(2.0).unwrap(), Detection::NOT_JUDGED);
    }

    #[test]
    fn scores_a_sample_before_it_joins_the_window() {
        let mut detector = detector(3, 1.0, None);
        for x in [1.0, 2.0, 3.0] {
            detector.observe(x).unwrap();
        }
        // Window [1, 2, 3]: mean 2, population std sqrt(2/3).
        let detection = detector.observe(4.0).unwrap();
        let z = 2.0 / (2.0_f64 / 3.0).sqrt();
        assert!((detection.z - z).abs() < 1e-12, "{detection:?}");
        assert!((detection.score - z / (z + 1.0)).abs() < 1e-12);
        assert!((detection.confidence - (0.5 + z / 10.0)).abs() < 1e-12);
        assert_eq!(detection.direction, Direction::Above);
        assert!(detection.is_anomaly);
        // Now the window is [2, 3, 4]: 1 is far below it.
        let detection = detector.observe(1.0).unwrap();
        assert!((detection.z + 2.0 / (2.0_f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(detection.direction, Direction::Below);
    }

    #[test]
    fn threshold_is_strict_and_score_is_one_half_there() {
        let mut detector = detector(2, 1.0, None);
        detector.observe(-1.0).unwrap();
        detector.observe(1.0).unwrap();
        // Window [-1, 1]: mean 0, std 1; z = 1 exactly is not beyond 1.
        let detection = detector.observe(1.0).unwrap();
        assert_eq!(detection.z, 1.0);
        assert!((detection.score - 0.5).abs() < 1e-15);
        assert!(!detection.is_anomaly);
        assert_eq!(detection.confidence, 0.6);
    }

    #[test]
    fn zero_variance_is_no_anomaly_at_the_level_and_infinite_z_off_it() {
        let mut detector = detector(4, 2.5, None);
        for _ in 0..4 {
            detector.observe(45.0).unwrap();
        }
        let same = detector.observe(45.0).unwrap();
        assert_eq!(
            same,
            Detection {
                score: 0.0,
                z: 0.0,
                direction: Direction::AtMean,
                is_anomaly: false,
                confidence: 0.5
            }
        );
        let off = detector.observe(44.9).unwrap();
        assert_eq!(
            off,
            Detection {
                score: 1.0,
                z: f64::NEG_INFINITY,
                direction: Direction::Below,
                is_anomaly: true,
                confidence: 1.0
            }
        );
    }

    #[test]
    fn bad_values_are_rejected_counted_and_forgotten() {
        let mut with_bad = detector(3, 2.0, None);
        let mut clean = detector(3, 2.0, None);
        let stream = [1.0, f64::NAN, 2.0, f64::INFINITY, 4.0, -1e151, 3.0, 9.0];
        let mut outputs = Vec::new();
        for x in stream {
            match with_bad.observe(x) {
                Ok(detection) => outputs.push(detection),
                Err(Error::NonFiniteValue { .. } | Error::ValueOutOfRange { .. }) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        let expected: Vec<_> = [1.0, 2.0, 4.0, 3.0, 9.0]
            .into_iter()
            .map(|x| clean.observe(x).unwrap())
            .collect();
        assert_eq!(outputs, expected);
        assert_eq!(with_bad.rejected(), 3);
        assert_eq!(clean.rejected(), 0);
        assert!(outputs[4].is_anomaly);
    }

    #[test]
    fn exposed_statistics_stay_exact_when_a_spike_leaves_the_window() {
        let mut detector = detector(4, 2.5, None);
        let stream = [
            1e9 + 0.5,
            1e9 - 0.25,
            1e15,
            1e9,
            1e9 + 1.0,
            1e9 - 1.0,
            1e9 + 0.5,
        ];
        for (step, &x) in stream.iter().enumerate() {
            detector.observe(x).unwrap();
            let window = &stream[(step + 1).saturating_sub(4)..=step];
            let n = window.len() as f64;
            let mean = window.iter().sum::<f64>() / n;
            let variance = window.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            let got = detector.stats().population_variance().unwrap();
            assert!(
                (got - variance).abs() <= 1e-9 * variance,
                "step {step}: {got} vs {variance}"
            );
        }
    }

    #[test]
    fn works_through_the_trait_object() {
        let mut boxed: Box<dyn Detector> = Box::new(detector(2, 1.0, None));
        boxed.observe(1.0).unwrap();
        boxed.observe(3.0).unwrap();
        assert!(boxed.observe(10.0).unwrap().is_anomaly);
        assert!(boxed.observe(f64::NAN).is_err());
        assert_eq!(boxed.rejected(), 1);
    }

    #[test]
    fn fits_in_256_bytes_per_series_at_window_20() {
        let detector = detector(20, 2.5, None);
        let heap = detector.stats().capacity() * size_of::<f64>();
        let total = size_of::<WindowedZScore>() + heap;
        assert_eq!(size_of::<WindowedZScore>(), 88);
        assert_eq!(total, 248);
        assert!(total <= 256);
    }
}
