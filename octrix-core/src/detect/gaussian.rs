//! NAB's reference "windowed Gaussian" detector.

use serde::{Deserialize, Serialize};
use statrs::function::erf::erfc;

use super::rolling::{MAX_WINDOW, RollingStats};
use super::{Detection, Detector, Error, check_value, confidence_for, direction_of};

/// What NAB substitutes for a zero standard deviation.
const ZERO_STD_DEV_REPLACEMENT: f64 = 1e-6;

/// Settings of a [`WindowedGaussian`]. The defaults are NAB's reference
/// detector.
///
/// ```
/// use octrix_core::detect::WindowedGaussianConfig;
///
/// let config: WindowedGaussianConfig = toml::from_str("").unwrap();
/// assert_eq!((config.window, config.step, config.threshold), (6400, 100, 1.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowedGaussianConfig {
    /// How many past values the statistics cover once the window has filled
    /// (default 6400, at least 2).
    pub window: usize,
    /// How many values are collected before a full window is refreshed
    /// (default 100, between 1 and `window`).
    pub step: usize,
    /// Score at or above which a sample is an anomaly (default 1.0, NAB's
    /// best threshold for this detector under every profile; between 0.5
    /// and 1).
    pub threshold: f64,
}

impl Default for WindowedGaussianConfig {
    fn default() -> Self {
        Self {
            window: 6400,
            step: 100,
            threshold: 1.0,
        }
    }
}

impl WindowedGaussianConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<(), Error> {
        if !(2..=MAX_WINDOW).contains(&self.window) {
            return Err(Error::invalid(
                "window",
                format!("must be between 2 and {MAX_WINDOW}, got {}", self.window),
            ));
        }
        if !(1..=self.window).contains(&self.step) {
            return Err(Error::invalid(
                "step",
                format!(
                    "must be between 1 and window ({}), got {}",
                    self.window, self.step
                ),
            ));
        }
        if !(0.5..=1.0).contains(&self.threshold) {
            return Err(Error::invalid(
                "threshold",
                format!("must be between 0.5 and 1, got {}", self.threshold),
            ));
        }
        Ok(())
    }
}

/// The Numenta Anomaly Benchmark's reference "windowed Gaussian" detector,
/// exactly as `shared/nab/README.md` describes it, so that its scores can be
/// checked against NAB's published table (39.6 standard profile).
///
/// For each value `x`, in order:
///
/// 1. Score: 0 while the window is empty. Otherwise values below the mean are
///    reflected (`x' = 2·mean - x`), `z = (x' - mean) / std` and
///    `score = 1 - ½·erfc(z / √2)` (the Gaussian tail probability, in
///    `[0.5, 1]`), computed with `statrs`.
/// 2. Update: until the window holds `window` values, `x` joins it directly.
///    Afterwards `x` waits in a step buffer; when `step` values have waited,
///    the oldest `step` leave the window and the waiting ones join it. The
///    statistics never include the current value.
/// 3. A standard deviation of 0 is replaced by `1e-6`; the standard deviation
///    is the population one.
///
/// The reported `z` is signed (negative below the mean);
/// `is_anomaly = score >= threshold`. Where NAB recomputes the statistics from
/// scratch at every update, this keeps [`RollingStats`], which gives the same
/// values to within `1e-9` relative error at O(1) per value (see the test
/// `tests/nab_reference.rs`).
///
/// ```
/// use octrix_core::detect::{Detector, WindowedGaussian, WindowedGaussianConfig};
///
/// let mut detector = WindowedGaussian::new(&WindowedGaussianConfig::default()).unwrap();
/// assert_eq!(detector.observe(10.0).unwrap().score, 0.0);
/// assert_eq!(detector.observe(10.0).unwrap().score, 0.5);
/// // Against a constant window the standard deviation is taken as 1e-6.
/// let jump = detector.observe(10.1).unwrap();
/// assert_eq!(jump.score, 1.0);
/// assert!(jump.is_anomaly);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WindowedGaussian {
    window: RollingStats,
    /// Values waiting to join a full window.
    pending: Vec<f64>,
    step: usize,
    threshold: f64,
    rejected: u64,
}

impl WindowedGaussian {
    /// A detector with an empty window.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `config` does not validate.
    pub fn new(config: &WindowedGaussianConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            window: RollingStats::new(config.window)?,
            pending: Vec::with_capacity(config.step),
            step: config.step,
            threshold: config.threshold,
            rejected: 0,
        })
    }

    /// The configuration this detector runs.
    pub fn config(&self) -> WindowedGaussianConfig {
        WindowedGaussianConfig {
            window: self.window.capacity(),
            step: self.step,
            threshold: self.threshold,
        }
    }

    /// The statistics the next value is scored against.
    pub fn stats(&self) -> &RollingStats {
        &self.window
    }

    fn judge(&self, value: f64) -> Detection {
        let (Some(mean), Some(variance)) = (self.window.mean(), self.window.population_variance())
        else {
            return Detection::NOT_JUDGED;
        };
        let mut std_dev = variance.sqrt();
        if std_dev == 0.0 {
            std_dev = ZERO_STD_DEV_REPLACEMENT;
        }
        // Written as NAB writes it: reflect, then measure from the mean.
        let below = value < mean;
        let reflected = if below { 2.0 * mean - value } else { value };
        let tail_z = (reflected - mean) / std_dev;
        let score = 1.0 - 0.5 * erfc(tail_z / std::f64::consts::SQRT_2);
        let z = if below { -tail_z } else { tail_z };
        Detection {
            score,
            z,
            direction: direction_of(value, mean),
            is_anomaly: score >= self.threshold,
            confidence: confidence_for(z),
        }
    }

    fn learn(&mut self, value: f64) {
        if !self.window.is_full() {
            self.window.push_valid(value);
            return;
        }
        self.pending.push(value);
        if self.pending.len() == self.step {
            // Pushing into the full ring evicts the oldest value each time.
            for &waiting in &self.pending {
                self.window.push_valid(waiting);
            }
            self.pending.clear();
        }
    }
}

impl Detector for WindowedGaussian {
    fn observe(&mut self, value: f64) -> Result<Detection, Error> {
        if let Err(error) = check_value(value) {
            self.rejected += 1;
            return Err(error);
        }
        let detection = self.judge(value);
        self.learn(value);
        Ok(detection)
    }

    fn rejected(&self) -> u64 {
        self.rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Direction;

    fn detector(window: usize, step: usize) -> WindowedGaussian {
        WindowedGaussian::new(&WindowedGaussianConfig {
            window,
            step,
            threshold: 0.99,
        })
        .unwrap()
    }

    #[test]
    fn validation_names_the_offending_field() {
        let field_of = |config: WindowedGaussianConfig| match config.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let base = WindowedGaussianConfig::default();
        assert_eq!(
            field_of(WindowedGaussianConfig {
                window: 1,
                ..base.clone()
            }),
            "window"
        );
        assert_eq!(
            field_of(WindowedGaussianConfig {
                step: 0,
                ..base.clone()
            }),
            "step"
        );
        assert_eq!(
            field_of(WindowedGaussianConfig {
                step: 6401,
                ..base.clone()
            }),
            "step"
        );
        assert_eq!(
            field_of(WindowedGaussianConfig {
                threshold: 0.4,
                ..base.clone()
            }),
            "threshold"
        );
        assert_eq!(
            field_of(WindowedGaussianConfig {
                threshold: f64::NAN,
                ..base
            }),
            "threshold"
        );
    }

    #[test]
    fn score_is_the_gaussian_tail_probability() {
        let mut detector = detector(10, 2);
        for x in [1.0, 3.0] {
            detector.observe(x).unwrap();
        }
        // Window [1, 3]: mean 2, population std 1. One std above: Φ(1), to
        // the accuracy of statrs' erfc (about 3e-11 here).
        let above = detector.observe(3.0).unwrap();
        assert!(
            (above.score - 0.841_344_746_068_542_9).abs() < 1e-10,
            "{above:?}"
        );
        assert_eq!(above.z, 1.0);
        assert_eq!(above.direction, Direction::Above);
        assert!(!above.is_anomaly);
        // Window [1, 3, 3]: mean 7/3; 0 lies 2.86 std below, reflected up.
        let below = detector.observe(0.0).unwrap();
        let std_dev = (8.0_f64 / 9.0).sqrt();
        let z = (7.0 / 3.0) / std_dev;
        assert!((below.z + z).abs() < 1e-12, "{below:?}");
        assert!((below.score - (1.0 - 0.5 * erfc(z / 2.0_f64.sqrt()))).abs() < 1e-15);
        assert_eq!(below.direction, Direction::Below);
        assert!(below.is_anomaly);
    }

    #[test]
    fn a_full_window_moves_in_steps() {
        let mut detector = detector(4, 2);
        for x in [1.0, 2.0, 3.0, 4.0] {
            detector.observe(x).unwrap();
        }
        assert_eq!(
            detector.stats().iter().collect::<Vec<_>>(),
            [1.0, 2.0, 3.0, 4.0]
        );
        detector.observe(5.0).unwrap();
        // 5 waits: the statistics have not moved.
        assert_eq!(
            detector.stats().iter().collect::<Vec<_>>(),
            [1.0, 2.0, 3.0, 4.0]
        );
        detector.observe(6.0).unwrap();
        assert_eq!(
            detector.stats().iter().collect::<Vec<_>>(),
            [3.0, 4.0, 5.0, 6.0]
        );
    }

    #[test]
    fn a_constant_window_uses_nab_std_replacement() {
        let mut detector = detector(8, 2);
        assert_eq!(detector.observe(45.0).unwrap(), Detection::NOT_JUDGED);
        let level = detector.observe(45.0).unwrap();
        assert_eq!((level.score, level.z), (0.5, 0.0));
        let nudge = detector.observe(45.0 + 1e-6).unwrap();
        // z is 1 up to the rounding of 45 + 1e-6.
        assert!((nudge.z - 1.0).abs() < 1e-8, "{nudge:?}");
    }

    #[test]
    fn bad_values_are_rejected_and_counted() {
        let mut detector = detector(4, 2);
        detector.observe(1.0).unwrap();
        assert!(matches!(
            detector.observe(f64::NAN),
            Err(Error::NonFiniteValue { .. })
        ));
        assert_eq!(detector.rejected(), 1);
        assert_eq!(detector.stats().len(), 1);
        assert_eq!(detector.config().step, 2);
    }
}
