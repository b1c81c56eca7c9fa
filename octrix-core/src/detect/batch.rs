//! [`BatchDetections`] and [`BatchSummary`]: the verdicts on a batch of
//! samples of one series.

use super::{Detection, Detector};

/// What a detector found in a batch of samples of one series, judged in
/// order: every sample's z-score, and the full [`Detection`] of each
/// anomalous one (a batch of a million samples holds a million `f64`s, not a
/// million detections).
///
/// ```
/// use octrix_core::detect::{BatchDetections, WindowedZScore, WindowedZScoreConfig};
///
/// let config = WindowedZScoreConfig { window: 3, ..WindowedZScoreConfig::default() };
/// let mut detector = WindowedZScore::new(&config).unwrap();
/// let batch = BatchDetections::observe_all(&mut detector, &[1.0, 2.0, 1.0, f64::NAN, 9.0]);
/// assert!(batch.z[..3].iter().all(|z| z.is_nan())); // warming up
/// assert_eq!(batch.rejected, [3]);
/// assert_eq!(batch.anomalies.len(), 1);
/// assert_eq!(batch.anomalies[0].0, 4);
/// assert_eq!(batch.z[4], batch.anomalies[0].1.z);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchDetections {
    /// One per sample: its z-score; NaN for a sample that was not judged
    /// (the detector was warming up) or was rejected.
    pub z: Vec<f64>,
    /// Position and verdict of every anomalous sample, ascending.
    pub anomalies: Vec<(usize, Detection)>,
    /// Positions of the samples rejected as NaN, infinite or out of range
    /// (counted by the detector and skipped), ascending.
    pub rejected: Vec<usize>,
}

impl BatchDetections {
    /// Feeds `samples` to `detector` one by one.
    pub fn observe_all<D: Detector + ?Sized>(detector: &mut D, samples: &[f64]) -> Self {
        let mut batch = Self {
            z: Vec::with_capacity(samples.len()),
            ..Self::default()
        };
        for (index, &value) in samples.iter().enumerate() {
            match detector.observe(value) {
                Ok(detection) if detection == Detection::NOT_JUDGED => batch.z.push(f64::NAN),
                Ok(detection) => {
                    batch.z.push(detection.z);
                    if detection.is_anomaly {
                        batch.anomalies.push((index, detection));
                    }
                }
                // `Detector::observe` fails only for samples it rejects.
                Err(_) => {
                    batch.z.push(f64::NAN);
                    batch.rejected.push(index);
                }
            }
        }
        batch
    }

    /// How many samples the batch judged, warm-up and rejected ones aside.
    pub fn judged(&self) -> usize {
        self.z.iter().filter(|z| !z.is_nan()).count()
    }
}

/// What a batch found besides its z-scores, which
/// [`DetectorBank::observe_many_into`](super::DetectorBank::observe_many_into)
/// writes into a buffer of the caller's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSummary {
    /// Position and verdict of every anomalous sample, ascending.
    pub anomalies: Vec<(usize, Detection)>,
    /// Positions of the samples rejected as NaN, infinite or out of range,
    /// ascending.
    pub rejected: Vec<usize>,
}

/// What a tick of many series (one sample each, through
/// [`DetectorBank::observe_tick`](super::DetectorBank::observe_tick))
/// found. Positions are indices into the tick's ids and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickSummary {
    /// How many samples were judged (warm-up, rejected and unknown ones
    /// aside).
    pub judged: usize,
    /// Position and verdict of every anomalous sample, ascending.
    pub anomalies: Vec<(usize, Detection)>,
    /// Positions of the samples rejected as NaN, infinite or out of range,
    /// ascending (counted; their series still count as heard from).
    pub rejected: Vec<usize>,
    /// Positions whose series id was evicted or is foreign, ascending.
    pub unknown: Vec<usize>,
}
