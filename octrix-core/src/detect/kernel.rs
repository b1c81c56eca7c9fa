//! Windowed z-scores of a whole batch of one series at once.
//!
//! When every value is known up front, the sums of each window need no
//! running subtraction (the source of drift that [`super::RollingStats`]
//! guards against with exact recomputes). The values are cut into blocks of
//! `window` values; a window starting at offset `o` of block `b` is the
//! suffix of block `b` from `o` plus the prefix of block `b + 1` up to `o`
//! (van Herk / Gil-Werman). Both are plain running sums, computed once per
//! block pair, and the windows of a block pair are independent of each other,
//! so the per-window loop has no carried dependency and vectorises.
//!
//! Deviations are summed around a centre taken from block `b` (the median of
//! its first, middle and last values), which keeps them on the scale of the
//! spread at any offset. A window whose sums show cancellation (the sum of
//! squared deviations exceeds [`CANCELLATION_LIMIT`] times the centred sum of
//! squares: the level moved away from the centre, a spike, or a constant
//! window) is recomputed exactly from its values, as the streaming detector
//! does, so that zero variance is exact and the relative error of a variance
//! stays below `2 · window · CANCELLATION_LIMIT · ε` (about `6e-13` at window
//! 20).

use super::Detection;
use super::rolling::{CANCELLATION_LIMIT, ShiftedSums};
use super::zscore::{VerdictInputs, judge};

/// Writes into `z[i]` the z-score of `data[i + window]` against
/// `data[i..i + window]`, for every `i` in `0..z.len()`, and appends the
/// verdict of every anomalous one as `(i + index_offset, detection)`.
///
/// `data` must hold `z.len() + window` accepted values.
pub(crate) fn window_zscores(
    data: &[f64],
    window: usize,
    sensitivity: f64,
    z: &mut [f64],
    anomalies: &mut Vec<(usize, Detection)>,
    index_offset: usize,
) {
    debug_assert_eq!(data.len(), z.len() + window);
    let inverse_window = 1.0 / window as f64;
    let mut scratch = Scratch::new(window);
    for (pair, z_block) in z.chunks_mut(window).enumerate() {
        let start = pair * window;
        // Block b = data[start..start + window] (complete), block b + 1 is
        // data[start + window..][..z_block.len()] (complete but for the
        // last pair).
        let block = &data[start..start + window];
        let next = &data[start + window..start + window + z_block.len()];
        let centre = median_of_three(block[0], block[window / 2], block[window - 1]);
        scratch.fill(block, next, centre);
        for (offset, z_out) in z_block.iter_mut().enumerate() {
            let sum = scratch.suffix_sum[offset] + scratch.prefix_sum[offset];
            let sum_sq = scratch.suffix_sum_sq[offset] + scratch.prefix_sum_sq[offset];
            let centred = (sum_sq - sum * sum * inverse_window).max(0.0);
            let mut mean = centre + sum * inverse_window;
            let mut variance = centred * inverse_window;
            // Written so that NaN would also take the exact path.
            if !(sum_sq <= CANCELLATION_LIMIT * centred) {
                (mean, variance) = exact_mean_and_variance(
                    &data[start + offset..start + offset + window],
                    inverse_window,
                );
            }
            let position = start + offset;
            let detection = judge(&VerdictInputs {
                value: data[position + window],
                mean,
                variance,
                sensitivity,
            });
            *z_out = detection.z;
            if detection.is_anomaly {
                anomalies.push((position + index_offset, detection));
            }
        }
    }
}

/// The running sums of one block pair, reused across pairs.
struct Scratch {
    /// `suffix_sum[o] = Σ(block[o..] - centre)`.
    suffix_sum: Vec<f64>,
    suffix_sum_sq: Vec<f64>,
    /// `prefix_sum[o] = Σ(next[..o] - centre)`.
    prefix_sum: Vec<f64>,
    prefix_sum_sq: Vec<f64>,
}

impl Scratch {
    fn new(window: usize) -> Self {
        Self {
            suffix_sum: vec![0.0; window],
            suffix_sum_sq: vec![0.0; window],
            prefix_sum: vec![0.0; window],
            prefix_sum_sq: vec![0.0; window],
        }
    }

    /// Sums for the windows starting in `block`, `next` being the values
    /// that follow it (as many as there are such windows).
    #[inline]
    fn fill(&mut self, block: &[f64], next: &[f64], centre: f64) {
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for (offset, &value) in block.iter().enumerate().rev() {
            let deviation = value - centre;
            sum += deviation;
            sum_sq += deviation * deviation;
            self.suffix_sum[offset] = sum;
            self.suffix_sum_sq[offset] = sum_sq;
        }
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for (offset, &value) in next.iter().enumerate() {
            self.prefix_sum[offset] = sum;
            self.prefix_sum_sq[offset] = sum_sq;
            let deviation = value - centre;
            sum += deviation;
            sum_sq += deviation * deviation;
        }
    }
}

/// The middle one of three values.
#[inline]
fn median_of_three(a: f64, b: f64, c: f64) -> f64 {
    a.min(b).max(a.max(b).min(c))
}

/// Mean and population variance of `values` (one window), by the exact
/// recompute of the streaming detector.
#[cold]
#[inline(never)]
fn exact_mean_and_variance(values: &[f64], inverse_window: f64) -> (f64, f64) {
    let sums = ShiftedSums::recompute(values.iter().copied());
    (
        sums.mean(inverse_window),
        sums.centred_sum_sq(inverse_window) * inverse_window,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean and population variance by the two-pass definition.
    fn two_pass(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, variance)
    }

    fn noise(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
    }

    #[test]
    fn median_of_three_picks_the_middle() {
        assert_eq!(median_of_three(1.0, 2.0, 3.0), 2.0);
        assert_eq!(median_of_three(3.0, 1.0, 2.0), 2.0);
        assert_eq!(median_of_three(2.0, 3.0, 1.0), 2.0);
        assert_eq!(median_of_three(5.0, 5.0, 1.0), 5.0);
    }

    #[test]
    fn z_scores_match_a_two_pass_recompute_at_an_offset_of_1e9() {
        for window in [2, 3, 20, 64] {
            let mut seed = 0x9E37_79B9_7F4A_7C15;
            let data: Vec<f64> = (0..1000)
                .map(|i| {
                    let spike = if i % 97 == 0 { 40.0 } else { 0.0 };
                    1e9 + noise(&mut seed) + spike
                })
                .collect();
            let mut z = vec![0.0; data.len() - window];
            let mut anomalies = Vec::new();
            window_zscores(&data, window, 2.5, &mut z, &mut anomalies, 7);
            for (i, &got) in z.iter().enumerate() {
                let (mean, variance) = two_pass(&data[i..i + window]);
                let expected = (data[i + window] - mean) / variance.sqrt();
                assert!(
                    (got - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                    "window {window}, position {i}: {got} vs {expected}"
                );
            }
            assert!(!anomalies.is_empty());
            for (index, detection) in &anomalies {
                assert_eq!(detection.z, z[index - 7]);
                assert!(detection.is_anomaly);
            }
        }
    }

    #[test]
    fn constant_windows_have_exactly_zero_variance() {
        // 0.1 is not exact in binary, and the centre of the first block is 3.
        let mut data = vec![3.0, 9.5, -4.25, 3.0];
        data.extend(std::iter::repeat_n(0.1, 8));
        data.push(0.2);
        let window = 4;
        let mut z = vec![f64::NAN; data.len() - window];
        let mut anomalies = Vec::new();
        window_zscores(&data, window, 2.5, &mut z, &mut anomalies, 0);
        // Windows of only 0.1s: the next 0.1 is at the mean, 0.2 is off it.
        assert_eq!(&z[4..8], &[0.0; 4]);
        assert_eq!(z[8], f64::INFINITY);
        assert_eq!(anomalies.last().map(|(i, _)| *i), Some(8));
    }
}
