//! Numerically stable rolling mean and variance over a fixed-size window.
//!
//! The textbook running sums `Σx` and `Σx²` lose every digit of the variance
//! when values sit far from zero compared with their spread: at `1e9` with
//! unit noise, `Σx²/n - mean²` subtracts two numbers near `1e18` whose `f64`
//! rounding error (about 200) dwarfs the variance (about 1). Here the sums are
//! of deviations from a *reference* value `r` taken from the window itself,
//! `S1 = Σ(x - r)` and `S2 = Σ(x - r)²`, so they stay on the scale of the
//! spread, and the centred sum of squares is `S2 - S1²/n`.
//!
//! Sliding the window adds and subtracts terms, and each subtraction leaves
//! behind rounding error proportional to the largest `S2` seen. Two triggers
//! recompute the sums exactly from the window (O(window), rarely):
//!
//! * cancellation: the largest `S2` since the last recompute exceeds
//!   [`CANCELLATION_LIMIT`] times the current centred sum of squares (a spike
//!   left the window, the level moved away from `r`, or the window went flat);
//! * age: every [`recompute_period`] updates (counted from the start, not
//!   from the last cancellation recompute, so that these recomputes fall at
//!   positions that do not depend on the data).
//!
//! Between recomputes the relative error of the variance is therefore bounded
//! by roughly `2 · period · CANCELLATION_LIMIT · ε` (`≈ 2e-10` at window 6400,
//! `≈ 3e-11` at window 20), well inside `1e-9`. The recompute picks as the
//! new reference the window value closest to the mean, which makes the sums of
//! a constant window exactly zero: zero variance is detected exactly.

use super::{Error, check_value};

/// Recompute exactly when the largest `S2` since the last recompute exceeds
/// this multiple of the current centred sum of squares.
pub(crate) const CANCELLATION_LIMIT: f64 = 64.0;

/// Recompute at least this often, whatever the window size.
const MIN_RECOMPUTE_PERIOD: u32 = 1024;

/// Largest window (in samples) a rolling window may hold; positions are kept
/// in `u16` to keep per-series state small.
pub(crate) const MAX_WINDOW: usize = u16::MAX as usize;

/// How many updates may pass between two exact recomputes of a window of
/// `capacity` samples: often enough to bound rounding drift, rarely enough
/// that the O(window) recompute costs about one extra addition per update.
#[inline]
pub(crate) fn recompute_period(capacity: u32) -> u32 {
    capacity.max(MIN_RECOMPUTE_PERIOD)
}

/// Sums of deviations from a reference value, the state behind
/// [`RollingStats`] and each series of a [`super::DetectorBank`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ShiftedSums {
    /// The value deviations are measured from; one of the window's values.
    reference: f64,
    /// `Σ(x - reference)`.
    sum: f64,
    /// `Σ(x - reference)²`.
    sum_sq: f64,
    /// The largest `sum_sq` since the last exact recompute: rounding error
    /// is proportional to it, so it decides when to recompute.
    high_water: f64,
}

impl ShiftedSums {
    /// Sums for a window holding only `first`.
    pub(crate) fn starting_at(first: f64) -> Self {
        Self {
            reference: first,
            ..Self::default()
        }
    }

    /// Adds `value` to the window.
    #[inline]
    pub(crate) fn add(&mut self, value: f64) {
        let deviation = value - self.reference;
        self.sum += deviation;
        self.sum_sq += deviation * deviation;
        self.raise_high_water();
    }

    /// Replaces `old` by `new` in the window.
    #[inline]
    pub(crate) fn replace(&mut self, old: f64, new: f64) {
        let new_deviation = new - self.reference;
        let old_deviation = old - self.reference;
        self.sum += new_deviation - old_deviation;
        self.sum_sq += new_deviation * new_deviation - old_deviation * old_deviation;
        self.raise_high_water();
    }

    #[inline]
    fn raise_high_water(&mut self) {
        // Not f64::max: the sums are never NaN, and skipping NaN handling
        // keeps this to one instruction.
        if self.sum_sq > self.high_water {
            self.high_water = self.sum_sq;
        }
    }

    /// The window's mean, given `1 / n`.
    #[inline]
    pub(crate) fn mean(&self, inverse_len: f64) -> f64 {
        self.reference + self.sum * inverse_len
    }

    /// `Σ(x - mean)²`, given `1 / n`; never negative.
    #[inline]
    pub(crate) fn centred_sum_sq(&self, inverse_len: f64) -> f64 {
        (self.sum_sq - self.sum * self.sum * inverse_len).max(0.0)
    }

    /// Whether rounding may have eaten into `centred_sum_sq`.
    #[inline]
    pub(crate) fn needs_recompute(&self, centred_sum_sq: f64) -> bool {
        self.high_water > CANCELLATION_LIMIT * centred_sum_sq
    }

    /// Exact sums of `values` (the whole window, in any order), measured from
    /// the value closest to their mean.
    pub(crate) fn recompute<I>(values: I) -> Self
    where
        I: Iterator<Item = f64> + Clone,
    {
        let (count, total) = values
            .clone()
            .fold((0_usize, 0.0_f64), |(count, total), x| {
                (count + 1, total + x)
            });
        if count == 0 {
            return Self::default();
        }
        let rough_mean = total / count as f64;
        // The value nearest the mean is within one standard deviation of it,
        // so S1²/n is at most the centred sum of squares: no cancellation.
        let reference = values
            .clone()
            .min_by(|a, b| (a - rough_mean).abs().total_cmp(&(b - rough_mean).abs()))
            .unwrap_or(rough_mean);
        let mut sums = Self::starting_at(reference);
        for value in values {
            let deviation = value - reference;
            sums.sum += deviation;
            sums.sum_sq += deviation * deviation;
        }
        sums.high_water = sums.sum_sq;
        sums
    }
}

/// Mean and variance of the last `capacity` values, updated in O(1) per value
/// and accurate to `1e-9` relative error against a two-pass recompute (see
/// the module documentation of `detect::rolling` for how). Windows hold up to
/// 65,535 values.
///
/// ```
/// use octrix_core::detect::RollingStats;
///
/// let mut stats = RollingStats::new(3).unwrap();
/// for x in [1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0, 1e9 + 4.0] {
///     stats.push(x).unwrap();
/// }
/// // The window holds 1e9 + {2, 3, 4}.
/// assert_eq!(stats.mean(), Some(1e9 + 3.0));
/// assert_eq!(stats.sample_variance(), Some(1.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RollingStats {
    /// Ring buffer; `head` is the next slot to write, the oldest value once
    /// the window is full. While filling, values occupy `0..len`.
    values: Box<[f64]>,
    sums: ShiftedSums,
    /// `1 / len` (0 when empty), kept so that no update divides by `len`.
    inverse_len: f64,
    // u16 positions keep the struct at 64 bytes (MAX_WINDOW is 65,535).
    head: u16,
    len: u16,
    /// Updates since the last periodic recompute (cancellation recomputes
    /// leave it alone).
    updates_since_recompute: u16,
}

impl RollingStats {
    /// An empty window of `capacity` values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `capacity` unless it is between 1 and
    /// 65,535.
    pub fn new(capacity: usize) -> Result<Self, Error> {
        if !(1..=MAX_WINDOW).contains(&capacity) {
            return Err(Error::invalid(
                "capacity",
                format!("must be between 1 and {MAX_WINDOW}, got {capacity}"),
            ));
        }
        Ok(Self {
            values: vec![0.0; capacity].into_boxed_slice(),
            sums: ShiftedSums::default(),
            inverse_len: 0.0,
            head: 0,
            len: 0,
            updates_since_recompute: 0,
        })
    }

    /// How many values the window holds when full.
    pub fn capacity(&self) -> usize {
        self.values.len()
    }

    /// How many values the window holds now.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the window holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the window holds `capacity` values.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Adds `value`, evicting and returning the oldest value if the window
    /// was full.
    ///
    /// # Errors
    /// [`Error::NonFiniteValue`] or [`Error::ValueOutOfRange`]; the window is
    /// left unchanged.
    pub fn push(&mut self, value: f64) -> Result<Option<f64>, Error> {
        check_value(value)?;
        Ok(self.push_valid(value))
    }

    /// [`push`](Self::push) for a value already accepted by `check_value`.
    #[inline]
    pub(crate) fn push_valid(&mut self, value: f64) -> Option<f64> {
        let evicted = self.push_unchecked(value);
        self.recompute_if_due();
        evicted
    }

    /// Adds `value` without deciding whether the sums need an exact
    /// recompute: a detector that reads the statistics before every push
    /// makes that decision once, on read, with
    /// [`checked_mean_and_variance`](Self::checked_mean_and_variance).
    #[inline]
    pub(crate) fn push_unchecked(&mut self, value: f64) -> Option<f64> {
        // Cannot overflow: every push is followed by a due-check before the
        // next one, and that check resets the count at the period (< 2^16).
        self.updates_since_recompute += 1;
        if !self.is_full() {
            self.push_while_filling(value);
            return None;
        }
        let head = usize::from(self.head);
        let old = std::mem::replace(&mut self.values[head], value);
        self.sums.replace(old, value);
        self.head = if head + 1 == self.values.len() {
            0
        } else {
            self.head + 1
        };
        Some(old)
    }

    // Out of line: it runs `capacity` times per window, and keeping it out
    // lets the steady-state push inline into the detectors' hot loops.
    #[cold]
    #[inline(never)]
    fn push_while_filling(&mut self, value: f64) {
        if self.len == 0 {
            self.sums = ShiftedSums::starting_at(value);
        } else {
            self.sums.add(value);
        }
        self.values[self.len()] = value;
        self.len += 1;
        self.inverse_len = 1.0 / f64::from(self.len);
        self.head = if self.is_full() { 0 } else { self.len };
    }

    /// Whether the sums, with centred sum of squares `centred`, are due for
    /// an exact recompute.
    #[inline]
    fn is_due(&self, centred: f64) -> bool {
        u32::from(self.updates_since_recompute) >= recompute_period(self.values.len() as u32)
            || self.sums.needs_recompute(centred)
    }

    /// Recomputes the sums exactly when due; returns the centred sum of
    /// squares.
    #[inline]
    fn recompute_if_due(&mut self) -> f64 {
        let centred = self.sums.centred_sum_sq(self.inverse_len);
        if self.is_due(centred) {
            self.recompute();
            self.sums.centred_sum_sq(self.inverse_len)
        } else {
            centred
        }
    }

    /// Recomputes the sums exactly from the window.
    #[cold]
    #[inline(never)]
    fn recompute(&mut self) {
        self.sums = self.exact_sums();
        // Only the periodic recompute restarts the count, so periodic
        // recomputes fall every `period` updates whatever the data: the
        // state is then a function of the last `period + window` values,
        // which lets a batch rebuild it exactly (see `Pool::observe_many_into`).
        if u32::from(self.updates_since_recompute) >= recompute_period(self.values.len() as u32) {
            self.updates_since_recompute = 0;
        }
    }

    /// The sums recomputed from the window.
    #[cold]
    fn exact_sums(&self) -> ShiftedSums {
        ShiftedSums::recompute(self.values[..self.len()].iter().copied())
    }

    /// The mean and population variance of a non-empty window, recomputing
    /// the sums first when due.
    #[inline]
    pub(crate) fn checked_mean_and_variance(&mut self) -> (f64, f64) {
        let centred = self.recompute_if_due();
        (self.sums.mean(self.inverse_len), centred * self.inverse_len)
    }

    /// The mean and centred sum of squares of a non-empty window; exact
    /// even when the sums are due for a recompute (then computed aside).
    fn mean_and_centred_sum_sq(&self) -> (f64, f64) {
        let centred = self.sums.centred_sum_sq(self.inverse_len);
        if self.is_due(centred) {
            let exact = self.exact_sums();
            (
                exact.mean(self.inverse_len),
                exact.centred_sum_sq(self.inverse_len),
            )
        } else {
            (self.sums.mean(self.inverse_len), centred)
        }
    }

    /// The window's mean, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.mean_and_centred_sum_sq().0)
    }

    /// The population variance `Σ(x - mean)² / n`, `None` when empty.
    pub fn population_variance(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.mean_and_centred_sum_sq().1 * self.inverse_len)
    }

    /// The population standard deviation, `None` when empty.
    pub fn population_std_dev(&self) -> Option<f64> {
        self.population_variance().map(f64::sqrt)
    }

    /// The sample variance `Σ(x - mean)² / (n - 1)`, `None` below two values.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.len >= 2).then(|| self.mean_and_centred_sum_sq().1 / f64::from(self.len - 1))
    }

    /// The window's values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = if self.is_full() {
            self.values.split_at(usize::from(self.head))
        } else {
            (&self.values[..self.len()], &self.values[..0])
        };
        older.iter().chain(newer).copied()
    }

    /// Empties the window.
    pub fn clear(&mut self) {
        self.sums = ShiftedSums::default();
        self.inverse_len = 0.0;
        self.head = 0;
        self.len = 0;
        self.updates_since_recompute = 0;
    }
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

    /// Deterministic noise in [-1, 1) (xorshift), so tests need no RNG crate.
    fn noise(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
    }

    #[test]
    fn evicts_the_oldest_value_and_iterates_oldest_first() {
        let mut stats = RollingStats::new(3).unwrap();
        assert_eq!(stats.push(1.0), Ok(None));
        assert_eq!(stats.push(2.0), Ok(None));
        assert_eq!(stats.iter().collect::<Vec<_>>(), [1.0, 2.0]);
        assert_eq!(stats.push(3.0), Ok(None));
        assert_eq!(stats.push(4.0), Ok(Some(1.0)));
        assert_eq!(stats.iter().collect::<Vec<_>>(), [2.0, 3.0, 4.0]);
        assert_eq!(stats.mean(), Some(3.0));
        assert_eq!(stats.population_variance(), Some(2.0 / 3.0));
        assert_eq!(stats.sample_variance(), Some(1.0));
    }

    #[test]
    fn empty_window_has_no_statistics() {
        let mut stats = RollingStats::new(4).unwrap();
        assert_eq!(stats.mean(), None);
        assert_eq!(stats.population_variance(), None);
        stats.push(5.0).unwrap();
        assert_eq!(stats.mean(), Some(5.0));
        assert_eq!(stats.population_variance(), Some(0.0));
        assert_eq!(stats.sample_variance(), None);
        stats.clear();
        assert!(stats.is_empty());
        assert_eq!(stats.iter().count(), 0);
    }

    #[test]
    fn capacity_must_be_positive() {
        assert_eq!(
            RollingStats::new(0),
            Err(Error::invalid(
                "capacity",
                "must be between 1 and 65535, got 0"
            ))
        );
    }

    #[test]
    fn rejected_values_leave_the_window_untouched() {
        let mut stats = RollingStats::new(3).unwrap();
        stats.push(1.0).unwrap();
        stats.push(2.0).unwrap();
        let before = stats.clone();
        assert!(stats.push(f64::NAN).is_err());
        assert!(stats.push(f64::INFINITY).is_err());
        assert!(stats.push(1e200).is_err());
        assert_eq!(stats, before);
    }

    #[test]
    fn stays_exact_at_an_offset_of_1e9_where_naive_sums_fail() {
        let window = 20;
        let mut stats = RollingStats::new(window).unwrap();
        let mut history = Vec::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        // The textbook running sums, to show the test can tell good from bad.
        let (mut naive_sum, mut naive_sum_sq) = (0.0_f64, 0.0_f64);
        let mut worst_naive_error = 0.0_f64;
        for step in 0..5_000 {
            let x = 1e9 + noise(&mut seed);
            if let Some(old) = stats.push(x).unwrap() {
                naive_sum -= old;
                naive_sum_sq -= old * old;
            }
            naive_sum += x;
            naive_sum_sq += x * x;
            history.push(x);
            let last = &history[history.len().saturating_sub(window)..];
            let (mean, variance) = two_pass(last);
            let got = stats.population_variance().unwrap();
            if step > 0 {
                let relative = (got - variance).abs() / variance;
                assert!(relative < 1e-9, "step {step}: {got} vs {variance}");
                let n = last.len() as f64;
                let naive = naive_sum_sq / n - (naive_sum / n).powi(2);
                worst_naive_error = worst_naive_error.max((naive - variance).abs() / variance);
            }
            assert!((stats.mean().unwrap() - mean).abs() <= 1e-15 * mean);
        }
        assert!(worst_naive_error > 1.0, "naive error {worst_naive_error}");
    }

    #[test]
    fn recovers_from_a_spike_leaving_the_window() {
        let mut stats = RollingStats::new(10).unwrap();
        let mut history = Vec::new();
        let mut seed = 42;
        for step in 0..200 {
            let x = if step == 50 {
                1e12
            } else {
                noise(&mut seed) * 1e-3
            };
            stats.push(x).unwrap();
            history.push(x);
            let (_, variance) = two_pass(&history[history.len().saturating_sub(10)..]);
            let got = stats.population_variance().unwrap();
            assert!(
                (got - variance).abs() <= 1e-9 * variance,
                "step {step}: {got} vs {variance}"
            );
        }
    }

    #[test]
    fn a_constant_window_has_exactly_zero_variance() {
        let mut stats = RollingStats::new(5).unwrap();
        for x in [3.0, 9.5, -4.25, 0.1, 0.1, 0.1, 0.1, 0.1] {
            stats.push(x).unwrap();
        }
        // Only 0.1s remain; 0.1 is not exact in binary, yet the variance is.
        assert_eq!(stats.population_variance(), Some(0.0));
        assert_eq!(stats.mean(), Some(0.1));
    }

    #[test]
    fn the_largest_window_wraps_and_recomputes() {
        let mut stats = RollingStats::new(MAX_WINDOW).unwrap();
        for i in 0..(MAX_WINDOW as u32 + 5_000) {
            stats.push(f64::from(i % 1000)).unwrap();
        }
        assert!(stats.is_full());
        // The window holds i % 1000 for i in 5000..70535.
        let expected = (5_000..(MAX_WINDOW as u32 + 5_000))
            .map(|i| f64::from(i % 1000))
            .sum::<f64>()
            / MAX_WINDOW as f64;
        assert!((stats.mean().unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn sums_are_recomputed_periodically() {
        let mut stats = RollingStats::new(4).unwrap();
        // Windows of consecutive i % 7 never cancel badly: only age triggers.
        for i in 0..(MIN_RECOMPUTE_PERIOD - 1) {
            stats.push(f64::from(i % 7)).unwrap();
        }
        assert_eq!(
            u32::from(stats.updates_since_recompute),
            MIN_RECOMPUTE_PERIOD - 1
        );
        stats.push(1.0).unwrap();
        assert_eq!(stats.updates_since_recompute, 0);
    }
}
