//! Runs Octrix's NAB "windowed Gaussian" configuration over the bundled NAB
//! subset (`benches/data/nab/`, 25 of the 58 series) and scores it with the
//! rules of `shared/nab/README.md`, printing the normalized score for each
//! profile.
//!
//! ```text
//! cargo run --release -p octrix-benches --example nab_runner
//! ```
//!
//! NAB's published 39.6 (standard profile) is for all 58 series; on this
//! subset the figure differs and is reported as a subset figure.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use octrix_core::detect::{Detector, WindowedGaussian, WindowedGaussianConfig};
use serde_json::Value;

/// The weights of one scoring profile.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Profile {
    true_positive: f64,
    false_negative: f64,
    false_positive: f64,
}

/// What a detection on one row is worth, before knowing the other
/// detections of its file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RowValue {
    /// Inside the corpus-wide window number `window`: `weight` times
    /// `tp` if it is that window's earliest detection.
    InWindow { window: usize, weight: f64 },
    /// Outside every window: `weight` times `fp` (negative).
    Outside { weight: f64 },
}

/// One data file, scored and labelled.
struct ScoredFile {
    scores: Vec<f64>,
    /// `None` for probationary rows, which are never scored.
    values: Vec<Option<RowValue>>,
    windows: usize,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// README rule 3: the fraction of `tpWeight` a detection at `row` earns in
/// window `[left, right]`, exactly 1 at the left edge.
fn window_weight(row: usize, left: usize, right: usize) -> f64 {
    let width = (right - left + 1) as f64;
    let position = -((right - row + 1) as f64) / width;
    (2.0 * sigmoid(-5.0 * position) - 1.0) / (2.0 * sigmoid(5.0) - 1.0)
}

/// README rule 4: the (negative) fraction of `fpWeight` a detection at `row`
/// earns after window `[left, right]`.
fn after_window_weight(row: usize, left: usize, right: usize) -> f64 {
    let width = (right - left + 1) as f64;
    let position = (row - right) as f64 / (width - 1.0);
    if position > 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * position) - 1.0
    }
}

/// Rounds to 12 significant digits, as NAB's result files print scores.
fn round_to_12_digits(x: f64) -> f64 {
    format!("{x:.11e}").parse().expect("a formatted f64 parses")
}

/// Row values of a file of `rows` rows with `windows` (row ranges), the
/// first `probation` rows excluded, numbering windows from `first_window`.
fn row_values(
    rows: usize,
    windows: &[(usize, usize)],
    first_window: usize,
) -> Vec<Option<RowValue>> {
    // README rule 1.
    let probation = ((0.15 * rows as f64).floor() as usize).min(750);
    (0..rows)
        .map(|row| {
            if row < probation {
                return None;
            }
            if let Some(k) = windows.iter().position(|&(l, r)| (l..=r).contains(&row)) {
                let (left, right) = windows[k];
                return Some(RowValue::InWindow {
                    window: first_window + k,
                    weight: window_weight(row, left, right),
                });
            }
            let weight = match windows.iter().rev().find(|&&(_, right)| right < row) {
                Some(&(left, right)) => after_window_weight(row, left, right),
                None => -1.0,
            };
            Some(RowValue::Outside { weight })
        })
        .collect()
}

/// README rules 2, 5, 7 and 8: the best corpus score over every threshold,
/// as `(threshold, raw score, normalized score)`.
fn best_threshold(files: &[ScoredFile], profile: Profile) -> (f64, f64, f64) {
    let windows: usize = files.iter().map(|file| file.windows).sum();
    let null_score = -(windows as f64) * profile.false_negative;
    let perfect_score = windows as f64 * profile.true_positive;

    // Every scored row, most anomalous first: lowering the threshold past a
    // score adds that score's rows as detections.
    let mut rows: Vec<(f64, RowValue, usize)> = files
        .iter()
        .flat_map(|file| {
            file.scores
                .iter()
                .zip(&file.values)
                .enumerate()
                .filter_map(|(row, (&score, value))| value.map(|value| (score, value, row)))
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut earliest: Vec<Option<(usize, f64)>> = vec![None; windows];
    let mut window_total = null_score;
    let mut outside_total = 0.0;
    // Threshold 1.1 detects nothing.
    let (mut best_threshold, mut best_score) = (1.1, null_score);
    let mut start = 0;
    while start < rows.len() {
        let threshold = rows[start].0;
        let mut end = start;
        while end < rows.len() && rows[end].0 == threshold {
            match rows[end].1 {
                RowValue::InWindow { window, weight } => {
                    let row = rows[end].2;
                    let replaces = match earliest[window] {
                        None => Some(-profile.false_negative),
                        Some((first, value)) if row < first => Some(value),
                        Some(_) => None,
                    };
                    if let Some(old) = replaces {
                        let value = weight * profile.true_positive;
                        window_total += value - old;
                        earliest[window] = Some((row, value));
                    }
                }
                RowValue::Outside { weight } => outside_total += weight * profile.false_positive,
            }
            end += 1;
        }
        let total = window_total + outside_total;
        // Strictly better only: on ties the higher threshold, seen first, wins.
        if total > best_score {
            (best_threshold, best_score) = (threshold, total);
        }
        start = end;
    }
    let normalized = 100.0 * (best_score - null_score) / (perfect_score - null_score);
    (best_threshold, best_score, normalized)
}

/// The `timestamp` and `value` columns of a NAB data file.
fn read_series(path: &Path) -> Result<(Vec<String>, Vec<f64>), Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for line in text.lines().skip(1).filter(|line| !line.is_empty()) {
        let (timestamp, value) = line
            .split_once(',')
            .ok_or_else(|| format!("{}: no comma in {line:?}", path.display()))?;
        timestamps.push(timestamp.to_owned());
        values.push(value.trim().parse()?);
    }
    Ok((timestamps, values))
}

/// Row ranges of labelled windows given as inclusive timestamps.
fn window_rows(
    timestamps: &[String],
    windows: &Value,
) -> Result<Vec<(usize, usize)>, Box<dyn Error>> {
    let mut rows = Vec::new();
    for window in windows
        .as_array()
        .ok_or("a file's windows are not an array")?
    {
        // "YYYY-MM-DD HH:MM:SS.ffffff": the first 19 characters compare with
        // the data's timestamps as strings.
        let bound = |index: usize| -> Result<&str, Box<dyn Error>> {
            let text = window[index]
                .as_str()
                .ok_or("a window bound is not a string")?;
            Ok(&text[..19.min(text.len())])
        };
        let (start, end) = (bound(0)?, bound(1)?);
        let left = timestamps.iter().position(|t| t.as_str() >= start);
        let right = timestamps.iter().rposition(|t| t.as_str() <= end);
        match (left, right) {
            (Some(left), Some(right)) if left <= right => rows.push((left, right)),
            _ => return Err(format!("window {start}..{end} matches no row").into()),
        }
    }
    Ok(rows)
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nab");
    let windows: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("windows.json"))?)?;
    let profiles: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("profiles.json"))?)?;

    let config = WindowedGaussianConfig::default();
    let (mut rounded, mut exact) = (Vec::new(), Vec::new());
    let mut first_window = 0;
    let mut rows = 0;
    for (name, file_windows) in &windows {
        let (timestamps, values) = read_series(&root.join("data").join(name))?;
        let file_windows = window_rows(&timestamps, file_windows)?;
        let mut detector = WindowedGaussian::new(&config)?;
        let scores = values
            .iter()
            .map(|&value| detector.observe(value).map(|detection| detection.score))
            .collect::<Result<Vec<_>, _>>()?;
        let row_values = row_values(values.len(), &file_windows, first_window);
        first_window += file_windows.len();
        rows += values.len();
        rounded.push(ScoredFile {
            scores: scores
                .iter()
                .map(|&score| round_to_12_digits(score))
                .collect(),
            values: row_values.clone(),
            windows: file_windows.len(),
        });
        exact.push(ScoredFile {
            scores,
            values: row_values,
            windows: file_windows.len(),
        });
    }

    println!(
        "NAB subset: {} series, {rows} rows, {first_window} windows; detector: windowed Gaussian \
         (window {}, step {})",
        windows.len(),
        config.window,
        config.step
    );
    println!("| profile | scores | best threshold | raw score | normalized |");
    println!("|---|---|---|---|---|");
    for (name, profile) in &profiles {
        let weights = &profile["CostMatrix"];
        let weight = |key: &str| weights[key].as_f64().ok_or(format!("{name}: no {key}"));
        let profile = Profile {
            true_positive: weight("tpWeight")?,
            false_negative: weight("fnWeight")?,
            false_positive: weight("fpWeight")?,
        };
        for (precision, files) in [("12 digits", &rounded), ("full", &exact)] {
            let (threshold, raw, normalized) = best_threshold(files, profile);
            println!("| {name} | {precision} | {threshold} | {raw:.3} | {normalized:.1} |");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: Profile = Profile {
        true_positive: 1.0,
        false_negative: 1.0,
        false_positive: 0.11,
    };

    #[test]
    fn a_detection_at_the_left_edge_earns_the_full_weight() {
        assert!((window_weight(10, 10, 19) - 1.0).abs() < 1e-12);
        // Later in the window earns less, but still something.
        assert!(window_weight(19, 10, 19) < window_weight(15, 10, 19));
        assert!(window_weight(19, 10, 19) > 0.0);
    }

    #[test]
    fn false_positives_cost_more_the_further_from_a_window() {
        assert!(after_window_weight(20, 10, 19) < 0.0);
        assert!(after_window_weight(25, 10, 19) < after_window_weight(20, 10, 19));
        assert_eq!(after_window_weight(50, 10, 19), -1.0);
    }

    #[test]
    fn the_sweep_finds_the_perfect_and_the_null_detector() {
        // 100 rows (probation 15), one window at rows 40..=49.
        let values = row_values(100, &[(40, 49)], 0);
        assert!(values[..15].iter().all(Option::is_none));
        let mut scores = vec![0.5; 100];
        scores[40] = 0.9;
        let file = ScoredFile {
            scores,
            values,
            windows: 1,
        };
        let (threshold, raw, normalized) = best_threshold(std::slice::from_ref(&file), STANDARD);
        assert_eq!(threshold, 0.9);
        assert!((raw - 1.0).abs() < 1e-12);
        assert!((normalized - 100.0).abs() < 1e-9);

        // Only false positives: the best is to detect nothing.
        let mut scores = vec![0.5; 100];
        scores[20] = 0.9;
        let file = ScoredFile { scores, ..file };
        let (threshold, raw, normalized) = best_threshold(&[file], STANDARD);
        assert_eq!((threshold, raw, normalized), (1.1, -1.0, 0.0));
    }

    #[test]
    fn scores_print_with_12_significant_digits() {
        assert_eq!(round_to_12_digits(0.999_999_999_999_9), 1.0);
        assert_eq!(round_to_12_digits(0.123_456_789_012_34), 0.123_456_789_012);
    }
}
