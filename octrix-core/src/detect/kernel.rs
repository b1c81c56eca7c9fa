//! Windowed z-scores of a whole batch of one series at once.
//!
//! When every value is known up front, the sums of each window need no
//! running subtraction (the source of drift that [`super::RollingStats`]
//! guards against with exact recomputes). The values are cut into blocks of
//! `window` values; a window starting at offset `o` of block `b` is the
//! suffix of block `b` from `o` plus the prefix of block `b + 1` up to `o`
//! (van Herk / Gil-Werman). Both are plain running sums, and the windows of a
//! block pair do not depend on the other block pairs.
//!
//! [`LANES`] block pairs are judged side by side, one per element of a small
//! array, so that the compiler turns each step into SIMD instructions over the
//! pairs: a backward pass stores the suffix sums, and a forward pass carries
//! the prefix sums in registers while it judges. The forward pass also notes
//! which windows need more than the common case (an anomaly, cancellation,
//! zero variance) and whether a value is out of range, so that the input is
//! read once; a second pass handles only the windows it noted.
//!
//! Deviations are summed around a centre taken from block `b` (the median of
//! its first, middle and last values), which keeps them on the scale of the
//! spread at any offset. A window whose sums show cancellation (the sum of
//! squared deviations reaches [`CANCELLATION_LIMIT`] times the centred sum of
//! squares: the level moved away from the centre, a spike, or a constant
//! window) is recomputed exactly from its values, as the streaming detector
//! does, so that zero variance is exact and the relative error of a variance
//! stays below `2 · window · CANCELLATION_LIMIT · ε` (about `6e-13` at window
//! 20).

use super::rolling::{CANCELLATION_LIMIT, ShiftedSums};
use super::zscore::{VerdictInputs, judge};
use super::{Detection, MAX_ABS_VALUE};
use wide::f64x4;

/// Block pairs judged side by side: four `f64`s are two SSE2 registers, so
/// two independent chains of additions per step hide their latency.
const LANES: usize = 4;

/// One value per block pair of a group.
type Lanes = f64x4;

/// The data held a value the detector rejects (NaN, infinite or beyond
/// [`MAX_ABS_VALUE`]): what the kernel wrote is meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RejectedValue;

/// How many windows [`window_zscores`] judges per group: the z-scores of a
/// batch cut at multiples of it are those of the whole batch, bit for bit.
pub(crate) fn group_len(window: usize) -> usize {
    LANES * window
}

/// Writes into `z[i]` the z-score of `data[i + window]` against
/// `data[i..i + window]`, for every `i` in `0..z.len()`, and appends the
/// verdict of every anomalous one as `(i + index_offset, detection)`.
///
/// `data` must hold `z.len() + window` values, `window` at least 2.
///
/// # Errors
/// [`RejectedValue`] when a judged value (`data[window..]`) would be rejected
/// by the detector; `z` and the appended anomalies are then meaningless.
pub(crate) fn window_zscores(
    data: &[f64],
    window: usize,
    sensitivity: f64,
    z: &mut [f64],
    anomalies: &mut Vec<(usize, Detection)>,
    index_offset: usize,
) -> Result<(), RejectedValue> {
    debug_assert_eq!(data.len(), z.len() + window);
    let kernel = Kernel {
        window,
        sensitivity,
        inverse_window: 1.0 / window as f64,
    };
    let mut scratch = Scratch::new(window);
    let group_len = group_len(window);
    let whole_groups = z.len() / group_len * group_len;
    let (z_groups, z_rest) = z.split_at_mut(whole_groups);
    for (group, z_group) in z_groups.chunks_exact_mut(group_len).enumerate() {
        let start = group * group_len;
        let group_data = &data[start..start + group_len + window];
        let lanes_to_look_at = kernel.judge_group(group_data, z_group, &mut scratch)?;
        kernel.settle(
            group_data,
            z_group,
            &mut scratch,
            lanes_to_look_at,
            anomalies,
            index_offset + start,
        )?;
    }
    if z_rest.is_empty() {
        return Ok(());
    }
    // The last, partial group: padded with copies of the last value, whose
    // windows are judged and thrown away.
    let mut padded = data[whole_groups..].to_vec();
    let last = padded[padded.len() - 1];
    padded.resize(group_len + window, last);
    let mut z_padded = vec![0.0; group_len];
    let lanes_to_look_at = kernel.judge_group(&padded, &mut z_padded, &mut scratch)?;
    let outputs = z_rest.len();
    let z_padded = &mut z_padded[..outputs];
    kernel.settle(
        &padded[..outputs + window],
        z_padded,
        &mut scratch,
        lanes_to_look_at,
        anomalies,
        index_offset + whole_groups,
    )?;
    z_rest.copy_from_slice(z_padded);
    Ok(())
}

/// What every group shares.
struct Kernel {
    window: usize,
    sensitivity: f64,
    inverse_window: f64,
}

impl Kernel {
    /// First pass over one group: `data` holds `LANES + 1` blocks, `z` the
    /// `LANES` blocks of outputs. Writes every z-score (deviation over
    /// standard deviation), and leaves in `scratch` the mean,
    /// variance and triage key of each window (see [`Scratch::key`]).
    /// Returns a bit mask of the lanes with a window to look at again.
    ///
    /// # Errors
    /// [`RejectedValue`] when a judged value is finite but out of range (the
    /// key marks NaN and infinite ones for [`settle`](Self::settle)).
    #[inline(always)]
    fn judge_group(
        &self,
        data: &[f64],
        z: &mut [f64],
        scratch: &mut Scratch,
    ) -> Result<u32, RejectedValue> {
        let window = self.window;
        let blocks: [&[f64]; LANES + 1] = std::array::from_fn(|b| &data[b * window..][..window]);
        let mut z_blocks = z.chunks_exact_mut(window);
        let z_lanes: [&mut [f64]; LANES] =
            std::array::from_fn(|_| z_blocks.next().unwrap_or_default());
        let centres = Lanes::new(std::array::from_fn(|lane| {
            let block = blocks[lane];
            median_of_three(block[0], block[window / 2], block[window - 1])
        }));
        let at = |block: usize, offset: usize| {
            Lanes::new(std::array::from_fn(|lane| blocks[block + lane][offset]))
        };

        let suffix_sum = &mut scratch.suffix_sum[..window];
        let suffix_sum_sq = &mut scratch.suffix_sum_sq[..window];
        let (mut sum, mut sum_sq) = (Lanes::ZERO, Lanes::ZERO);
        for offset in (0..window).rev() {
            let deviation = at(0, offset) - centres;
            sum += deviation;
            sum_sq += deviation * deviation;
            suffix_sum[offset] = sum;
            suffix_sum_sq[offset] = sum_sq;
        }

        let inverse_window = Lanes::splat(self.inverse_window);
        let sensitivity = Lanes::splat(self.sensitivity);
        let cancellation_limit = Lanes::splat(CANCELLATION_LIMIT);
        let means = &mut scratch.mean[..window];
        let variances = &mut scratch.variance[..window];
        let keys = &mut scratch.key[..window];
        let (mut prefix, mut prefix_sq) = (Lanes::ZERO, Lanes::ZERO);
        let (mut largest, mut second_look) = (Lanes::ZERO, Lanes::ZERO);
        for offset in 0..window {
            let value = at(1, offset);
            let sum = suffix_sum[offset] + prefix;
            let sum_sq = suffix_sum_sq[offset] + prefix_sq;
            let centred = (sum_sq - sum * sum * inverse_window).fast_max(Lanes::ZERO);
            let mean = centres + sum * inverse_window;
            let variance = centred * inverse_window;
            // Within an ulp or two of `judge`'s z (which also derives the
            // score from its division); anomalies get `judge`'s own.
            let z = (value - mean) / variance.sqrt();
            for (lane, z) in z.to_array().into_iter().enumerate() {
                z_lanes[lane][offset] = z;
            }
            // False for a zero `centred` too: cancellation and zero variance
            // both go to an exact recompute.
            let sums_hold = sum_sq.simd_lt(cancellation_limit * centred);
            let key = sums_hold.select(z.abs(), Lanes::splat(f64::INFINITY));
            // NaN (a NaN or infinite value) is not `<=` either.
            second_look |= !key.simd_le(sensitivity);
            // `maxpd` keeps `largest` when the value is NaN (its key is NaN).
            largest = value.abs().fast_max(largest);
            means[offset] = mean;
            variances[offset] = variance;
            keys[offset] = key;
            let deviation = value - centres;
            prefix += deviation;
            prefix_sq += deviation * deviation;
        }
        if largest.simd_gt(Lanes::splat(MAX_ABS_VALUE)).any() {
            return Err(RejectedValue);
        }
        Ok(second_look.to_bitmask())
    }

    /// Second pass over one group, after [`judge_group`](Self::judge_group):
    /// the windows whose key exceeds the sensitivity (or is NaN) get their
    /// full verdict, from exactly recomputed moments when the sums were not
    /// trusted. `data` and `z` may stop short of a whole group (the last
    /// one); `index_offset` is the position of `z[0]` in the batch.
    ///
    /// # Errors
    /// [`RejectedValue`] when a judged value is NaN or infinite.
    fn settle(
        &self,
        data: &[f64],
        z: &mut [f64],
        scratch: &mut Scratch,
        lanes_to_look_at: u32,
        anomalies: &mut Vec<(usize, Detection)>,
        index_offset: usize,
    ) -> Result<(), RejectedValue> {
        let window = self.window;
        let Scratch {
            mean,
            variance,
            key,
            second_looks,
            ..
        } = scratch;
        for (lane, z_block) in z.chunks_mut(window).enumerate() {
            if lanes_to_look_at & (1 << lane) == 0 {
                continue;
            }
            // The offsets to look at, gathered without a branch per window:
            // anomalies are too irregular for the branch predictor, and
            // their verdicts below then overlap instead of waiting on each
            // mispredicted branch.
            let mut count = 0;
            for (offset, key) in key[..z_block.len()].iter().enumerate() {
                let key = key.as_array()[lane];
                second_looks[count] = offset;
                count += usize::from(key > self.sensitivity || key.is_nan());
            }
            for &offset in &second_looks[..count] {
                let key = key[offset].as_array()[lane];
                let position = lane * window + offset;
                let value = data[position + window];
                if value.is_nan() || value.abs() > MAX_ABS_VALUE {
                    return Err(RejectedValue);
                }
                let (mean, variance) = if key.is_finite() {
                    (
                        mean[offset].as_array()[lane],
                        variance[offset].as_array()[lane],
                    )
                } else {
                    exact_mean_and_variance(&data[position..position + window], self.inverse_window)
                };
                let detection = judge(&VerdictInputs {
                    value,
                    mean,
                    variance,
                    sensitivity: self.sensitivity,
                });
                z_block[offset] = detection.z;
                if detection.is_anomaly {
                    anomalies.push((position + index_offset, detection));
                }
            }
        }
        Ok(())
    }
}

/// Per-offset values of the `LANES` block pairs of a group, reused across
/// groups.
struct Scratch {
    /// `suffix_sum[o][lane] = Σ(block[o..] - centre)`.
    suffix_sum: Vec<Lanes>,
    suffix_sum_sq: Vec<Lanes>,
    /// Mean and population variance of the window at each offset.
    mean: Vec<Lanes>,
    variance: Vec<Lanes>,
    /// Triage of each window: `|z|` when its sums hold, infinite when they
    /// show cancellation or zero variance, NaN when the judged value is NaN
    /// or infinite. Only windows with a key above the sensitivity (or NaN)
    /// need a second look.
    key: Vec<Lanes>,
    /// The offsets of one lane that [`Kernel::settle`] looks at.
    second_looks: Vec<usize>,
}

impl Scratch {
    fn new(window: usize) -> Self {
        let lanes = || vec![Lanes::ZERO; window];
        Self {
            suffix_sum: lanes(),
            suffix_sum_sq: lanes(),
            mean: lanes(),
            variance: lanes(),
            key: lanes(),
            second_looks: vec![0; window],
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
            window_zscores(&data, window, 2.5, &mut z, &mut anomalies, 7).unwrap();
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
        window_zscores(&data, window, 2.5, &mut z, &mut anomalies, 0).unwrap();
        // Windows of only 0.1s: the next 0.1 is at the mean, 0.2 is off it.
        assert_eq!(&z[4..8], &[0.0; 4]);
        assert_eq!(z[8], f64::INFINITY);
        assert_eq!(anomalies.last().map(|(i, _)| *i), Some(8));
    }

    #[test]
    fn a_rejected_value_anywhere_fails_the_batch() {
        let window = 20;
        let mut seed = 0x2545_F491_4F6C_DD1D;
        let data: Vec<f64> = (0..2000).map(|_| 100.0 + noise(&mut seed)).collect();
        let mut z = vec![0.0; data.len() - window];
        let mut anomalies = Vec::new();
        assert_eq!(
            window_zscores(&data, window, 2.5, &mut z, &mut anomalies, 0),
            Ok(())
        );
        // In a whole group and in the last, partial one; NaN, infinite,
        // and out of range in a window of values as large (a small z).
        for position in [window + 3, 1000, data.len() - 2, data.len() - 1] {
            for bad in [f64::NAN, f64::NEG_INFINITY, 2e150] {
                let mut data = data.clone();
                if bad == 2e150 {
                    for (offset, value) in data[position - window..position].iter_mut().enumerate()
                    {
                        *value = if offset % 2 == 0 { 1e150 } else { -1e150 };
                    }
                }
                data[position] = bad;
                assert_eq!(
                    window_zscores(&data, window, 2.5, &mut z, &mut anomalies, 0),
                    Err(RejectedValue),
                    "{bad} at {position}"
                );
            }
        }
    }
}
