//! In-process weighted pickers, for services that route their own calls.
//!
//! * [`SmoothWeightedRoundRobin`]: nginx's smooth weighted round robin.
//!   Deterministic; over any `total weight` consecutive picks each item is
//!   picked exactly `weight` times, and picks of one item are spread out
//!   (weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`).
//! * [`WeightedRandomPicker`]: Walker's alias method on integers. One 64-bit
//!   draw and one table look-up per pick, whatever the number of items.

use rand::Rng;

/// Why a picker could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickerError {
    /// No items were given.
    #[error("a weighted picker needs at least one item")]
    Empty,
    /// Every weight is zero, so nothing could ever be picked.
    #[error("the weights of a weighted picker sum to zero")]
    ZeroTotalWeight,
    /// More items than a 32-bit alias table can address.
    #[error("a weighted picker takes at most {max} items, got {count}")]
    TooManyItems {
        /// Items given.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// One step of smooth weighted round robin over `(index, weight, current)`
/// entries: every current grows by its weight, the largest wins (the first on
/// a tie) and gives back the total. `None` when the weights sum to zero.
pub(crate) fn smooth_weighted_step<'a>(
    entries: impl Iterator<Item = (usize, u32, &'a mut i64)>,
) -> Option<usize> {
    let mut total = 0_i64;
    let mut best: Option<(usize, &'a mut i64)> = None;
    for (index, weight, current) in entries {
        let weight = i64::from(weight);
        *current += weight;
        total += weight;
        match &best {
            Some((_, best_current)) if **best_current >= *current => {}
            _ => best = Some((index, current)),
        }
    }
    if total == 0 {
        return None;
    }
    let (index, current) = best?;
    *current -= total;
    Some(index)
}

/// nginx's smooth weighted round robin over a fixed set of items.
///
/// ```
/// use octrix_core::routing::picker::SmoothWeightedRoundRobin;
///
/// let mut picker = SmoothWeightedRoundRobin::new([("a", 5), ("b", 1), ("c", 1)]).unwrap();
/// let picks: String = (0..7).map(|_| *picker.pick()).collect();
/// assert_eq!(picks, "aabacaa");
/// ```
#[derive(Debug, Clone)]
pub struct SmoothWeightedRoundRobin<T> {
    items: Vec<T>,
    weights: Vec<u32>,
    currents: Vec<i64>,
}

impl<T> SmoothWeightedRoundRobin<T> {
    /// A picker over `(item, weight)` pairs; zero weights are allowed (the
    /// item is never picked) as long as one weight is positive.
    pub fn new(entries: impl IntoIterator<Item = (T, u32)>) -> Result<Self, PickerError> {
        let (items, weights): (Vec<T>, Vec<u32>) = entries.into_iter().unzip();
        check_weights(&weights)?;
        let currents = vec![0; items.len()];
        Ok(Self {
            items,
            weights,
            currents,
        })
    }

    /// The index of the next item.
    pub fn pick_index(&mut self) -> usize {
        let entries = self
            .weights
            .iter()
            .zip(self.currents.iter_mut())
            .enumerate()
            .map(|(index, (&weight, current))| (index, weight, current));
        // The constructor guarantees a positive total, so a winner exists.
        smooth_weighted_step(entries).unwrap_or(0)
    }

    /// The next item.
    pub fn pick(&mut self) -> &T {
        let index = self.pick_index();
        &self.items[index]
    }

    /// The items, in the order given.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The weights, in the order given.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The sum of the weights: the length of one full cycle.
    pub fn total_weight(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum()
    }
}

/// One column of the alias table: keep the column's own item when the low 32
/// random bits are below `keep_below`, else take `alias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AliasColumn {
    keep_below: u32,
    alias: u32,
}

/// Weighted random choice by Walker's alias method (Vose's construction),
/// on integers so that the table is exact up to 2^-32.
///
/// ```
/// use octrix_core::routing::picker::WeightedRandomPicker;
/// use rand::{SeedableRng, rngs::SmallRng};
///
/// let picker = WeightedRandomPicker::new([("stable", 90), ("canary", 10)]).unwrap();
/// let mut rng = SmallRng::seed_from_u64(7);
/// let canary = (0..10_000).filter(|_| *picker.pick(&mut rng) == "canary").count();
/// assert!((800..1200).contains(&canary));
/// ```
#[derive(Debug, Clone)]
pub struct WeightedRandomPicker<T> {
    items: Vec<T>,
    weights: Vec<u32>,
    columns: Vec<AliasColumn>,
}

impl<T> WeightedRandomPicker<T> {
    /// A picker over `(item, weight)` pairs; zero weights are allowed as long
    /// as one weight is positive.
    pub fn new(entries: impl IntoIterator<Item = (T, u32)>) -> Result<Self, PickerError> {
        let (items, weights): (Vec<T>, Vec<u32>) = entries.into_iter().unzip();
        check_weights(&weights)?;
        let columns = alias_table(&weights);
        Ok(Self {
            items,
            weights,
            columns,
        })
    }

    /// The index of a randomly chosen item.
    #[inline]
    pub fn pick_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let bits = rng.next_u64();
        // The high half picks a column by multiply-shift (bias below 2^-32
        // per column, far under any sampling error), the low half decides
        // between the column's item and its alias.
        let column = (((bits >> 32) * self.columns.len() as u64) >> 32) as usize;
        let AliasColumn { keep_below, alias } = self.columns[column];
        // The comparison is a coin flip by design: a branch would be
        // mispredicted half the time (measured: about 10 ns a pick instead of 1.5).
        std::hint::select_unpredictable((bits as u32) < keep_below, column, alias as usize)
    }

    /// A randomly chosen item.
    #[inline]
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &T {
        &self.items[self.pick_index(rng)]
    }

    /// The items, in the order given.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The weights, in the order given.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }
}

fn check_weights(weights: &[u32]) -> Result<(), PickerError> {
    // Alias entries are u32 indices.
    let max = u32::MAX as usize;
    if weights.is_empty() {
        Err(PickerError::Empty)
    } else if weights.len() > max {
        Err(PickerError::TooManyItems {
            count: weights.len(),
            max,
        })
    } else if weights.iter().all(|&w| w == 0) {
        Err(PickerError::ZeroTotalWeight)
    } else {
        Ok(())
    }
}

/// Vose's alias table. Each of the `n` columns holds `total` units of
/// probability mass; item `i` brings `weight_i * n` units. Under-full columns
/// are topped up from over-full ones, so each column holds at most two items.
fn alias_table(weights: &[u32]) -> Vec<AliasColumn> {
    let n = weights.len();
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let mut mass: Vec<u128> = weights.iter().map(|&w| u128::from(w) * n as u128).collect();
    // A full column keeps its own item whatever the random bits.
    let mut columns: Vec<AliasColumn> = (0..n)
        .map(|i| AliasColumn {
            keep_below: u32::MAX,
            alias: i as u32,
        })
        .collect();
    let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| mass[i] < total);
    while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
        columns[s] = AliasColumn {
            // mass[s] < total, so this is below 2^32.
            keep_below: ((mass[s] << 32) / total) as u32,
            alias: l as u32,
        };
        mass[l] -= total - mass[s];
        if mass[l] < total {
            large.pop();
            small.push(l);
        }
    }
    // Whatever is left is full up to rounding: it keeps its own item.
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    #[test]
    fn smooth_round_robin_is_nginx_order() {
        let mut picker = SmoothWeightedRoundRobin::new([("a", 5), ("b", 1), ("c", 1)]).unwrap();
        let picks: Vec<_> = (0..14).map(|_| *picker.pick()).collect();
        assert_eq!(
            picks,
            [
                "a", "a", "b", "a", "c", "a", "a", "a", "a", "b", "a", "c", "a", "a"
            ]
        );
    }

    #[test]
    fn smooth_round_robin_skips_zero_weights() {
        let mut picker = SmoothWeightedRoundRobin::new([("a", 0), ("b", 2), ("c", 1)]).unwrap();
        let picks: Vec<_> = (0..6).map(|_| *picker.pick()).collect();
        assert_eq!(picks, ["b", "c", "b", "b", "c", "b"]);
        assert_eq!(picker.total_weight(), 3);
    }

    #[test]
    fn pickers_refuse_empty_or_zero_weights() {
        assert_eq!(
            SmoothWeightedRoundRobin::<&str>::new([]).unwrap_err(),
            PickerError::Empty
        );
        assert_eq!(
            WeightedRandomPicker::new([("a", 0), ("b", 0)]).unwrap_err(),
            PickerError::ZeroTotalWeight
        );
    }

    #[test]
    fn alias_table_for_uniform_weights_keeps_every_column() {
        let table = alias_table(&[3, 3, 3]);
        assert!(table.iter().enumerate().all(|(i, c)| c.alias as usize == i));
    }

    #[test]
    fn alias_table_mass_matches_weights_exactly() {
        // Column probabilities, reassembled from the table, equal the weights
        // up to the 2^-32 quantisation of `keep_below`.
        let weights = [1, 0, 7, 2, 10];
        let table = alias_table(&weights);
        let n = weights.len() as f64;
        let mut probability = [0.0_f64; 5];
        for (column, entry) in table.iter().enumerate() {
            let keep = if entry.alias as usize == column {
                1.0
            } else {
                f64::from(entry.keep_below) / 2f64.powi(32)
            };
            probability[column] += keep / n;
            probability[entry.alias as usize] += (1.0 - keep) / n;
        }
        for (p, w) in probability.iter().zip(weights) {
            assert!((p - f64::from(w) / 20.0).abs() < 1e-9, "{probability:?}");
        }
    }

    #[test]
    fn random_picks_never_choose_zero_weights() {
        let picker = WeightedRandomPicker::new([("a", 0), ("b", 1), ("c", 0)]).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        assert!((0..1000).all(|_| *picker.pick(&mut rng) == "b"));
    }
}
