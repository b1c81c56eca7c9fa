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

/// Block pairs whose running sums are computed together: their chains of
/// additions are independent, so they overlap instead of waiting on each
/// other's latency.
const LANES: usize = 4;

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
    let kernel = Kernel {
        data,
        window,
        sensitivity,
        inverse_window: 1.0 / window as f64,
    };
    let mut scratch = Scratch::new(window);
    let mut centres = [0.0; LANES];
    let group_len = LANES * window;
    let (z_groups, z_rest) = z.split_at_mut(z.len() / group_len * group_len);
    for (group, z_group) in z_groups.chunks_exact_mut(group_len).enumerate() {
        let start = group * group_len;
        for (lane, centre) in centres.iter_mut().enumerate() {
            let block = &data[start + lane * window..][..window];
            *centre = median_of_three(block[0], block[window / 2], block[window - 1]);
        }
        scratch.fill(&data[start..start + group_len + window], window, &centres);
        for (lane, z_block) in z_group.chunks_exact_mut(window).enumerate() {
            let block_start = start + lane * window;
            let sums = scratch.lane(lane);
            kernel.judge_block(
                block_start,
                centres[lane],
                sums,
                z_block,
                anomalies,
                index_offset,
            );
        }
    }
    // The last block pairs, fewer than `LANES`, one at a time.
    let done = z_groups.len();
    for (pair, z_block) in z_rest.chunks_mut(window).enumerate() {
        let start = done + pair * window;
        let block = &data[start..start + window];
        let next = &data[start + window..start + window + z_block.len()];
        let centre = median_of_three(block[0], block[window / 2], block[window - 1]);
        scratch.fill_one(block, next, centre);
        kernel.judge_block(
            start,
            centre,
            scratch.lane(0),
            z_block,
            anomalies,
            index_offset,
        );
    }
}

/// What every block pair shares.
struct Kernel<'a> {
    data: &'a [f64],
    window: usize,
    sensitivity: f64,
    inverse_window: f64,
}

/// The running sums of one block pair, by offset in the block.
struct LaneSums<'a> {
    suffix_sum: &'a [f64],
    suffix_sum_sq: &'a [f64],
    prefix_sum: &'a [f64],
    prefix_sum_sq: &'a [f64],
}

impl Kernel<'_> {
    /// Mean and population variance of the window at `offset` of a block
    /// pair, and whether its sums show cancellation.
    #[inline(always)]
    fn moments(&self, centre: f64, sums: &LaneSums<'_>, offset: usize) -> (f64, f64, bool) {
        let sum = sums.suffix_sum[offset] + sums.prefix_sum[offset];
        let sum_sq = sums.suffix_sum_sq[offset] + sums.prefix_sum_sq[offset];
        let centred = (sum_sq - sum * sum * self.inverse_window).max(0.0);
        // Never NaN: accepted values keep every square finite.
        let cancelled = sum_sq > CANCELLATION_LIMIT * centred;
        (
            centre + sum * self.inverse_window,
            centred * self.inverse_window,
            cancelled,
        )
    }

    /// The z-scores of the windows starting at `data[block_start..]`, one
    /// per element of `z`. A branch-free pass computes every z-score as
    /// `judge` does; a second pass, only when the first saw one, handles
    /// the rare windows that need more: cancellation (exact recompute),
    /// zero variance, or an anomaly (its full verdict).
    #[inline(always)]
    fn judge_block(
        &self,
        block_start: usize,
        centre: f64,
        sums: LaneSums<'_>,
        z: &mut [f64],
        anomalies: &mut Vec<(usize, Detection)>,
        index_offset: usize,
    ) {
        let values = &self.data[block_start + self.window..][..z.len()];
        let mut special = false;
        for (offset, (z, &value)) in z.iter_mut().zip(values).enumerate() {
            let (mean, variance, cancelled) = self.moments(centre, &sums, offset);
            // The steps of `judge` for a positive variance.
            let deviation = value - mean;
            let distance = deviation.abs();
            let std_dev = variance.sqrt();
            let denominator = distance + self.sensitivity * std_dev;
            let reciprocal = 1.0 / (std_dev * denominator);
            *z = deviation * (denominator * reciprocal);
            // `variance` is never negative (nor NaN): zero is the only
            // non-positive case.
            special |= cancelled | (variance <= 0.0) | (z.abs() > self.sensitivity);
        }
        if !special {
            return;
        }
        for (offset, (z, &value)) in z.iter_mut().zip(values).enumerate() {
            let (mut mean, mut variance, cancelled) = self.moments(centre, &sums, offset);
            if !(cancelled || variance <= 0.0 || z.abs() > self.sensitivity) {
                continue;
            }
            let position = block_start + offset;
            if cancelled {
                (mean, variance) = exact_mean_and_variance(
                    &self.data[position..position + self.window],
                    self.inverse_window,
                );
            }
            let detection = judge(&VerdictInputs {
                value,
                mean,
                variance,
                sensitivity: self.sensitivity,
            });
            *z = detection.z;
            if detection.is_anomaly {
                anomalies.push((position + index_offset, detection));
            }
        }
    }
}

/// The running sums of `LANES` block pairs, lane-major, reused across
/// groups.
struct Scratch {
    window: usize,
    /// `suffix_sum[lane * window + o] = Σ(block[o..] - centre)`.
    suffix_sum: Vec<f64>,
    suffix_sum_sq: Vec<f64>,
    /// `prefix_sum[lane * window + o] = Σ(next[..o] - centre)`.
    prefix_sum: Vec<f64>,
    prefix_sum_sq: Vec<f64>,
}

impl Scratch {
    fn new(window: usize) -> Self {
        Self {
            window,
            suffix_sum: vec![0.0; LANES * window],
            suffix_sum_sq: vec![0.0; LANES * window],
            prefix_sum: vec![0.0; LANES * window],
            prefix_sum_sq: vec![0.0; LANES * window],
        }
    }

    fn lane(&self, lane: usize) -> LaneSums<'_> {
        let range = lane * self.window..(lane + 1) * self.window;
        LaneSums {
            suffix_sum: &self.suffix_sum[range.clone()],
            suffix_sum_sq: &self.suffix_sum_sq[range.clone()],
            prefix_sum: &self.prefix_sum[range.clone()],
            prefix_sum_sq: &self.prefix_sum_sq[range],
        }
    }

    /// Sums of `LANES` consecutive block pairs: `data` holds their
    /// `LANES + 1` blocks; lane `l` sums around `centres[l]`.
    #[inline]
    fn fill(&mut self, data: &[f64], window: usize, centres: &[f64; LANES]) {
        let (mut sum, mut sum_sq) = ([0.0; LANES], [0.0; LANES]);
        for offset in (0..window).rev() {
            for lane in 0..LANES {
                let deviation = data[lane * window + offset] - centres[lane];
                sum[lane] += deviation;
                sum_sq[lane] += deviation * deviation;
                self.suffix_sum[lane * window + offset] = sum[lane];
                self.suffix_sum_sq[lane * window + offset] = sum_sq[lane];
            }
        }
        let (mut sum, mut sum_sq) = ([0.0; LANES], [0.0; LANES]);
        for offset in 0..window {
            for lane in 0..LANES {
                self.prefix_sum[lane * window + offset] = sum[lane];
                self.prefix_sum_sq[lane * window + offset] = sum_sq[lane];
                let deviation = data[(lane + 1) * window + offset] - centres[lane];
                sum[lane] += deviation;
                sum_sq[lane] += deviation * deviation;
            }
        }
    }

    /// Sums of one block pair (lane 0): `block`, then the `next` values.
    fn fill_one(&mut self, block: &[f64], next: &[f64], centre: f64) {
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
