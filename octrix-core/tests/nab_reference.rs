//! `WindowedGaussian` reproduces NAB's reference "windowed Gaussian" detector
//! on bundled NAB series (`tests/data/nab/`, MIT licence).
//!
//! The expected scores come from a direct transcription of the algorithm in
//! `shared/nab/README.md`: a plain `Vec` window and step buffer, mean and
//! population standard deviation recomputed in two passes after every
//! change. The detector under test keeps O(1) rolling statistics instead, so
//! the two agree to rounding, not bit for bit.

use std::path::Path;

use octrix_core::detect::{Detector, Direction, WindowedGaussian, WindowedGaussianConfig};
use statrs::function::erf::erfc;

const SERIES: [&str; 4] = [
    "ec2_request_latency_system_failure.csv",
    "speed_7578.csv",
    "art_daily_jumpsup.csv",
    "art_flatline.csv",
];

/// Largest difference allowed between the two computations of a score.
const TOLERANCE: f64 = 1e-9;

/// The README's detector, as literally as possible.
struct NaiveWindowedGaussian {
    window_size: usize,
    step: usize,
    window: Vec<f64>,
    buffer: Vec<f64>,
    mean: f64,
    std: f64,
}

impl NaiveWindowedGaussian {
    fn new(window_size: usize, step: usize) -> Self {
        Self {
            window_size,
            step,
            window: Vec::new(),
            buffer: Vec::new(),
            mean: 0.0,
            std: 1.0,
        }
    }

    fn handle(&mut self, x: f64) -> f64 {
        let score = if self.window.is_empty() {
            0.0
        } else {
            let reflected = if x < self.mean {
                2.0 * self.mean - x
            } else {
                x
            };
            let z = (reflected - self.mean) / self.std;
            1.0 - 0.5 * erfc(z / 2.0_f64.sqrt())
        };
        if self.window.len() < self.window_size {
            self.window.push(x);
            self.recompute();
        } else {
            self.buffer.push(x);
            if self.buffer.len() == self.step {
                self.window.drain(..self.step);
                self.window.append(&mut self.buffer);
                self.recompute();
            }
        }
        score
    }

    fn recompute(&mut self) {
        let n = self.window.len() as f64;
        self.mean = self.window.iter().sum::<f64>() / n;
        let variance = self
            .window
            .iter()
            .map(|x| (x - self.mean).powi(2))
            .sum::<f64>()
            / n;
        self.std = variance.sqrt();
        if self.std == 0.0 {
            self.std = 1e-6;
        }
    }
}

/// The `value` column of a NAB `timestamp,value` file.
fn read_values(name: &str) -> Vec<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/nab")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,value"), "{name}: header");
    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (_, value) = line
                .split_once(',')
                .unwrap_or_else(|| panic!("{name}: no comma in {line:?}"));
            value
                .trim()
                .parse()
                .unwrap_or_else(|error| panic!("{name}: {value:?}: {error}"))
        })
        .collect()
}

/// Runs both implementations over `values`, asserting that every score
/// agrees within [`TOLERANCE`] and that scores saturate at exactly 1.0 on
/// the same rows (NAB's best threshold for this detector is 1.0, so those
/// rows are its detections). Returns the largest difference and the
/// saturated rows.
fn compare(name: &str, values: &[f64], config: &WindowedGaussianConfig) -> (f64, Vec<usize>) {
    let mut detector = WindowedGaussian::new(config).unwrap();
    let mut naive = NaiveWindowedGaussian::new(config.window, config.step);
    let mut worst = 0.0_f64;
    let (mut ones, mut naive_ones) = (Vec::new(), Vec::new());
    for (row, &value) in values.iter().enumerate() {
        let expected = naive.handle(value);
        let detection = detector.observe(value).unwrap();
        let difference = (detection.score - expected).abs();
        assert!(
            difference <= TOLERANCE,
            "{name} row {row}: score {} vs reference {expected}",
            detection.score
        );
        assert_eq!(detection.is_anomaly, detection.score >= config.threshold);
        if row > 0 && detection.z != 0.0 {
            let expected_direction = if detection.z > 0.0 {
                Direction::Above
            } else {
                Direction::Below
            };
            assert_eq!(detection.direction, expected_direction, "{name} row {row}");
        }
        worst = worst.max(difference);
        if detection.score == 1.0 {
            ones.push(row);
        }
        if expected == 1.0 {
            naive_ones.push(row);
        }
    }
    assert_eq!(ones, naive_ones, "{name}: rows scoring 1.0");
    (worst, ones)
}

#[test]
fn reproduces_the_reference_configuration_on_bundled_series() {
    let config = WindowedGaussianConfig::default();
    assert_eq!((config.window, config.step), (6400, 100));
    for name in SERIES {
        let values = read_values(name);
        assert!(values.len() > 1000, "{name}: {} rows", values.len());
        let (worst, ones) = compare(name, &values, &config);
        println!("{name}: max |difference| {worst:e}, rows scoring 1.0: {ones:?}");
        // The second row is judged against a one-value window (std 1e-6).
        if name != "art_flatline.csv" {
            assert_eq!(ones.first(), Some(&1), "{name}");
        }
    }
}

#[test]
fn reproduces_the_stepping_phase_with_a_small_window() {
    // The bundled series are shorter than 6400 rows, so the full-window phase
    // (refresh every `step` values) is checked with smaller windows.
    for (window, step) in [(400, 10), (1000, 100), (50, 50), (7, 3)] {
        let config = WindowedGaussianConfig {
            window,
            step,
            threshold: 1.0,
        };
        for name in SERIES {
            let values = read_values(name);
            let (worst, ones) = compare(name, &values, &config);
            println!(
                "{name} ({window}/{step}): max |difference| {worst:e}, {} rows score 1.0",
                ones.len()
            );
        }
    }
}

#[test]
fn known_values_on_the_flatline_series() {
    // art_flatline is 45.0 throughout: score 0 first, then exactly 0.5.
    let values = read_values("art_flatline.csv");
    assert!(values.iter().all(|&x| x == 45.0));
    let mut detector = WindowedGaussian::new(&WindowedGaussianConfig::default()).unwrap();
    let scores: Vec<f64> = values
        .iter()
        .map(|&x| detector.observe(x).unwrap().score)
        .collect();
    assert_eq!(scores[0], 0.0);
    assert!(scores[1..].iter().all(|&score| score == 0.5));
}
