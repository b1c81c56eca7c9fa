//! [`SeriesGroup`]: series observed together, tick after tick.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{DetectorBank, SeriesId};
use crate::detect::{Error, TickSummary};
use crate::time::Timestamp;

/// Source of bank identities, so that a group is never used on a bank it
/// was not checked against.
static NEXT_BANK: AtomicU64 = AtomicU64::new(1);

/// A new bank identity.
pub(super) fn next_bank_identity() -> u64 {
    NEXT_BANK.fetch_add(1, Ordering::Relaxed)
}

/// A fixed list of series of one [`DetectorBank`], observed together with
/// one sample each per tick through [`DetectorBank::observe_group`]: the
/// ids are checked once, when the group is made and again only after the
/// bank evicted series, and runs of consecutive series are walked without
/// per-series lookups.
///
/// ```
/// use octrix_core::detect::{DetectorBank, DetectorBankConfig};
/// use octrix_core::labels::from_pairs;
/// use octrix_core::Timestamp;
///
/// let mut bank = DetectorBank::new(DetectorBankConfig::default()).unwrap();
/// let start = Timestamp::from_second(1_700_000_000).unwrap();
/// let ids: Vec<_> = (0..3)
///     .map(|pod| bank.resolve("cpu", &from_pairs([("pod", pod.to_string())]), start).unwrap())
///     .collect();
/// let mut group = bank.group(&ids).unwrap();
/// for tick in 0..20 {
///     let at = start + octrix_core::time::SignedDuration::from_secs(15 * tick);
///     let values = [0.5 + (tick % 2) as f64 * 0.01, 0.4, 0.3 + (tick % 3) as f64 * 0.01];
///     bank.observe_group(&mut group, at, &values).unwrap();
/// }
/// let at = start + octrix_core::time::SignedDuration::from_mins(5);
/// let summary = bank.observe_group(&mut group, at, &[0.95, 0.4, f64::NAN]).unwrap();
/// assert_eq!(summary.anomalies.len(), 1);
/// assert_eq!(summary.anomalies[0].0, 0); // position in the group
/// assert_eq!(summary.rejected, [2]);
/// ```
#[derive(Debug, Clone)]
pub struct SeriesGroup {
    ids: Vec<SeriesId>,
    /// Runs of consecutive slots of one pool, in `ids` order.
    runs: Vec<Run>,
    /// The bank the ids were checked against.
    bank: u64,
    /// The bank's eviction count when every id was last known live.
    evictions_checked: u64,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    pool: u32,
    first_slot: u32,
    len: u32,
}

impl SeriesGroup {
    /// The group's series, in the order of a tick's values.
    pub fn ids(&self) -> &[SeriesId] {
        &self.ids
    }

    /// How many series the group holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the group holds no series.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl DetectorBank {
    /// A group of the series `ids`, in this order, for
    /// [`observe_group`](Self::observe_group).
    ///
    /// # Errors
    /// [`Error::UnknownSeries`] for the first id that is stale or foreign.
    pub fn group(&self, ids: &[SeriesId]) -> Result<SeriesGroup, Error> {
        if let Some(&id) = ids.iter().find(|&&id| !self.is_live(id)) {
            return Err(Error::UnknownSeries { id });
        }
        let mut runs: Vec<Run> = Vec::new();
        for id in ids {
            match runs.last_mut() {
                Some(run) if run.pool == id.pool && run.first_slot + run.len == id.slot => {
                    run.len += 1;
                }
                _ => runs.push(Run {
                    pool: id.pool,
                    first_slot: id.slot,
                    len: 1,
                }),
            }
        }
        Ok(SeriesGroup {
            ids: ids.to_vec(),
            runs,
            bank: self.identity,
            evictions_checked: self.counters.series_evicted,
        })
    }

    /// One tick of `group`: `values[i]`, sampled at `at`, for its `i`-th
    /// series; the verdicts of [`observe_tick`](Self::observe_tick), bit
    /// for bit, without its per-series lookups. After an eviction the ids
    /// are checked again; if some went stale, this tick takes the
    /// per-series path, which lists them in [`TickSummary::unknown`].
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] naming `values` when it is not as long as
    /// the group; nothing is observed.
    pub fn observe_group(
        &mut self,
        group: &mut SeriesGroup,
        at: Timestamp,
        values: &[f64],
    ) -> Result<TickSummary, Error> {
        if values.len() != group.ids.len() {
            return Err(Error::LengthMismatch {
                field: "values".into(),
                expected: group.ids.len(),
                got: values.len(),
            });
        }
        if group.bank != self.identity || group.evictions_checked != self.counters.series_evicted {
            if group.bank != self.identity || !group.ids.iter().all(|&id| self.is_live(id)) {
                return self.observe_tick(&group.ids, at, values);
            }
            group.evictions_checked = self.counters.series_evicted;
        }
        let at_ms = at.as_millisecond();
        let mut summary = TickSummary::default();
        let mut position = 0;
        for run in &group.runs {
            let len = run.len as usize;
            self.pools[run.pool as usize].observe_run(
                run.first_slot,
                &values[position..position + len],
                at_ms,
                position,
                &mut summary,
            );
            position += len;
        }
        self.counters.rejected_values += summary.rejected.len() as u64;
        Ok(summary)
    }

    /// Whether `id` names a live series of this bank's pools.
    fn is_live(&self, id: SeriesId) -> bool {
        self.pools
            .get(id.pool as usize)
            .is_some_and(|pool| pool.is_live(id.slot, id.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectorBankConfig, WindowedZScoreConfig};
    use crate::labels::from_pairs;
    use crate::time::SignedDuration;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    fn bank() -> DetectorBank {
        let mut config = DetectorBankConfig {
            idle_ttl: SignedDuration::from_secs(60),
            ..DetectorBankConfig::default()
        };
        config.metrics.insert(
            "short".into(),
            WindowedZScoreConfig {
                window: 3,
                ..WindowedZScoreConfig::default()
            },
        );
        DetectorBank::new(config).unwrap()
    }

    /// Ids of `count` series per metric, interleaved across two pools and
    /// spanning two chunks of the default pool.
    fn ids(bank: &mut DetectorBank, count: usize) -> Vec<SeriesId> {
        let mut ids = Vec::new();
        for i in 0..count {
            let labels = from_pairs([("i", i.to_string())]);
            ids.push(bank.resolve("m", &labels, at(0)).unwrap());
            if i % 500 == 0 {
                ids.push(bank.resolve("short", &labels, at(0)).unwrap());
            }
        }
        ids
    }

    fn tick_values(tick: i64, count: usize) -> Vec<f64> {
        (0..count)
            .map(|i| match (i as i64 * 7 + tick) % 97 {
                0 => 500.0,
                1 if tick == 30 => f64::NAN,
                r => 100.0 + (r % 5) as f64,
            })
            .collect()
    }

    #[test]
    fn groups_observe_as_ticks_and_one_by_one_do() {
        let (mut by_group, mut by_tick, mut one_by_one) = (bank(), bank(), bank());
        let ids = ids(&mut by_group, 1100);
        assert_eq!(ids, self::ids(&mut by_tick, 1100));
        assert_eq!(ids, self::ids(&mut one_by_one, 1100));
        let mut group = by_group.group(&ids).unwrap();
        assert_eq!(group.len(), ids.len());
        assert!(group.runs.len() > 2, "{:?}", group.runs.len());
        let mut anomalies = 0;
        for tick in 0..60 {
            let values = tick_values(tick, ids.len());
            let got = by_group
                .observe_group(&mut group, at(tick), &values)
                .unwrap();
            assert_eq!(got, by_tick.observe_tick(&ids, at(tick), &values).unwrap());
            let mut expected = TickSummary::default();
            for (position, (&id, &value)) in ids.iter().zip(&values).enumerate() {
                match one_by_one.observe(id, at(tick), value) {
                    Ok(detection) if detection == crate::detect::Detection::NOT_JUDGED => {}
                    Ok(detection) => {
                        expected.judged += 1;
                        if detection.is_anomaly {
                            expected.anomalies.push((position, detection));
                        }
                    }
                    Err(_) => expected.rejected.push(position),
                }
            }
            assert_eq!(got, expected, "tick {tick}");
            anomalies += got.anomalies.len();
        }
        assert!(anomalies > 100, "{anomalies}");
        assert_eq!(by_group.counters(), one_by_one.counters());
        assert!(by_group.counters().rejected_values > 0);
    }

    #[test]
    fn stale_ids_are_listed_after_an_eviction_and_foreign_groups_are_not_trusted() {
        let mut bank = bank();
        let ids = ids(&mut bank, 3);
        let mut group = bank.group(&ids).unwrap();
        // Only the first series keeps talking; the others are evicted.
        bank.observe(ids[0], at(100), 1.0).unwrap();
        assert_eq!(bank.evict_idle(at(100)), ids.len() - 1);
        let summary = bank
            .observe_group(&mut group, at(101), &vec![1.0; ids.len()])
            .unwrap();
        assert_eq!(summary.unknown, (1..ids.len()).collect::<Vec<_>>());
        assert!(matches!(
            bank.group(&ids),
            Err(Error::UnknownSeries { id }) if id == ids[1]
        ));
        assert_eq!(
            bank.observe_group(&mut group, at(102), &[1.0]),
            Err(Error::LengthMismatch {
                field: "values".into(),
                expected: ids.len(),
                got: 1
            })
        );
        // Another bank with the same ids still checks them.
        let mut other = self::bank();
        let other_ids = self::ids(&mut other, 3);
        let mut foreign = other.group(&other_ids).unwrap();
        let summary = bank
            .observe_group(&mut foreign, at(103), &vec![1.0; other_ids.len()])
            .unwrap();
        assert_eq!(summary.unknown.len(), ids.len() - 1);
    }
}
