//! Detector series ids cached by the identity of a sample's shared labels.
//!
//! Resolving a sample's series in the [`DetectorBank`] renders and hashes its
//! whole key (metric and labels): that was a fifth of an engine tick on
//! 50,000 samples. A source that keeps each object's labels in one
//! `Arc<Labels>` across scrapes (the simulator does; see
//! [`SeriesSample::labels`]) lets the engine resolve each series once: the
//! cache is keyed by the `Arc`'s address, and holds a clone of the `Arc` so
//! that the address cannot be reused by other labels while it is cached.
//! A source that allocates fresh labels on every scrape simply misses, and
//! its entries go as soon as it drops them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::Labels;
use crate::detect::{Detection, DetectorBank, Error, SeriesId};
use crate::metrics::SeriesSample;

/// The series ids of one label set, one per metric reported with it.
#[derive(Debug)]
struct Entry {
    /// Held so that the key (this `Arc`'s address) stays unique to it.
    labels: Arc<Labels>,
    /// Metric names as the source gave them: a source's constant names are
    /// borrowed, and compared without touching a copy of each.
    ids: Vec<(Cow<'static, str>, SeriesId)>,
    /// Where the next sample's metric is expected in `ids`: a source reports
    /// an object's metrics in the same order every time, so this saves
    /// comparing names.
    next: usize,
}

/// Whether two metric names are equal; a source's borrowed constant names
/// are the same string each time, recognised without comparing bytes.
fn same_metric(cached: &str, sampled: &str) -> bool {
    std::ptr::eq(cached, sampled) || cached == sampled
}

/// A sample of the previous scrape whose metric name is a constant.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The address of its labels, kept unique by the cache's entry holding
    /// them.
    labels: usize,
    metric: &'static str,
    id: SeriesId,
}

/// [`SeriesId`]s by label-set identity and metric.
#[derive(Debug, Default)]
pub(super) struct SeriesIds {
    /// Label-set address → position in `entries`.
    index: HashMap<usize, usize, RandomState>,
    /// In the order the label sets were first seen, which for a source that
    /// keeps its objects in order is the order of its samples: the next
    /// sample's entry is then the current one or the one after it, found
    /// without hashing.
    entries: Vec<Entry>,
    /// The position of the last sample's entry.
    last: Option<usize>,
    /// The previous scrape's samples with constant metric names, in order:
    /// a source that reports the same series in the same order every time
    /// (the simulator) has each sample's id read from consecutive memory.
    /// Finding it through the entries read one small allocation per label
    /// set, scattered over the heap: half of the cache's time.
    sequence: Vec<Step>,
    /// The position in `sequence` of this scrape's next sample.
    cursor: usize,
}

impl SeriesIds {
    /// Judges `sample` in `bank`, through its cached series id when there is
    /// one. An id gone stale (its series was evicted as idle) is resolved
    /// again. Returns the series id and the detection.
    pub(super) fn observe(
        &mut self,
        bank: &mut DetectorBank,
        sample: &SeriesSample,
    ) -> Result<(SeriesId, Detection), Error> {
        let Cow::Borrowed(metric) = sample.metric else {
            let (_, _, id) = self.resolve(bank, sample)?;
            return self.observe_id(bank, sample, id, None);
        };
        let labels = Arc::as_ptr(&sample.labels) as usize;
        let step = self.cursor;
        let known = self
            .sequence
            .get(step)
            .filter(|s| s.labels == labels && std::ptr::eq(s.metric, metric));
        let id = match known {
            Some(known) => known.id,
            None => {
                // The scrape differs from the previous one from here on.
                self.sequence.truncate(step);
                let (_, _, id) = self.resolve(bank, sample)?;
                self.sequence.push(Step { labels, metric, id });
                id
            }
        };
        self.cursor += 1;
        self.observe_id(bank, sample, id, Some(step))
    }

    /// Observes `sample` by its cached `id`, resolving it again if it went
    /// stale, and then also in `sequence` at `step`.
    fn observe_id(
        &mut self,
        bank: &mut DetectorBank,
        sample: &SeriesSample,
        id: SeriesId,
        step: Option<usize>,
    ) -> Result<(SeriesId, Detection), Error> {
        match bank.observe(id, sample.timestamp, sample.value) {
            Err(Error::UnknownSeries { .. }) => {
                let (position, slot, _) = self.resolve(bank, sample)?;
                let fresh = bank.resolve(&sample.metric, &sample.labels, sample.timestamp)?;
                self.entries[position].ids[slot].1 = fresh;
                if let Some(step) = step {
                    self.sequence[step].id = fresh;
                }
                Ok((fresh, bank.observe(fresh, sample.timestamp, sample.value)?))
            }
            result => Ok((id, result?)),
        }
    }

    /// The cached id of `sample`'s series (resolved in `bank` the first
    /// time), with the position of its entry and its slot there.
    fn resolve(
        &mut self,
        bank: &mut DetectorBank,
        sample: &SeriesSample,
    ) -> Result<(usize, usize, SeriesId), Error> {
        let position = self.position_of(&sample.labels);
        self.last = Some(position);
        let entry = &mut self.entries[position];
        let expected = entry
            .ids
            .get(entry.next)
            .is_some_and(|(metric, _)| same_metric(metric, &sample.metric));
        let found = if expected {
            Some(entry.next)
        } else {
            entry
                .ids
                .iter()
                .position(|(metric, _)| same_metric(metric, &sample.metric))
        };
        let slot = match found {
            Some(slot) => slot,
            None => {
                let id = bank.resolve(&sample.metric, &sample.labels, sample.timestamp)?;
                entry.ids.push((sample.metric.clone(), id));
                entry.ids.len() - 1
            }
        };
        entry.next = (slot + 1) % entry.ids.len();
        Ok((position, slot, entry.ids[slot].1))
    }

    /// The position of the entry of `labels`, made if there is none.
    fn position_of(&mut self, labels: &Arc<Labels>) -> usize {
        let is = |entry: &Entry| Arc::ptr_eq(&entry.labels, labels);
        if let Some(last) = self.last {
            for position in [last, last + 1] {
                if self.entries.get(position).is_some_and(is) {
                    return position;
                }
            }
        }
        let entries = &mut self.entries;
        *self
            .index
            .entry(Arc::as_ptr(labels) as usize)
            .or_insert_with(|| {
                entries.push(Entry {
                    labels: labels.clone(),
                    ids: Vec::new(),
                    next: 0,
                });
                entries.len() - 1
            })
    }

    /// Forgets label sets that no one but the cache holds any more: no
    /// sample can carry them again. Call once the scrape is dropped.
    pub(super) fn forget_dropped(&mut self) {
        self.last = None;
        self.cursor = 0;
        let dropped = |entry: &Entry| Arc::strong_count(&entry.labels) == 1;
        if !self.entries.iter().any(dropped) {
            return;
        }
        // A dropped label set's address may be reused by other labels.
        self.sequence.clear();
        self.entries.retain(|entry| !dropped(entry));
        self.index.clear();
        for (position, entry) in self.entries.iter().enumerate() {
            self.index
                .insert(Arc::as_ptr(&entry.labels) as usize, position);
        }
    }

    /// How many label sets are cached.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::detect::DetectorBankConfig;
    use crate::labels::from_pairs;
    use crate::time::SignedDuration;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn sample(metric: &str, labels: &Arc<Labels>, seconds: i64, value: f64) -> SeriesSample {
        SeriesSample {
            metric: metric.to_owned().into(),
            labels: labels.clone(),
            timestamp: at(seconds),
            value,
        }
    }

    fn bank() -> DetectorBank {
        DetectorBank::new(DetectorBankConfig::default()).unwrap()
    }

    /// A calm series with a spike at the end.
    fn values() -> Vec<f64> {
        let mut values: Vec<f64> = (0..30).map(|i| 100.0 + f64::from(i % 3)).collect();
        values.push(250.0);
        values
    }

    #[test]
    fn shared_labels_resolve_once_and_judge_as_the_bank_does() {
        let labels = Arc::new(from_pairs([("namespace", "shop"), ("pod", "cart-1")]));
        let (mut cached, mut reference) = (bank(), bank());
        let mut ids = SeriesIds::default();
        let mut anomalies = 0;
        for (i, value) in values().into_iter().enumerate() {
            let seconds = 15 * i as i64;
            for metric in ["cpu", "memory"] {
                let (id, detection) = ids
                    .observe(&mut cached, &sample(metric, &labels, seconds, value))
                    .unwrap();
                let expected = reference
                    .observe_series(metric, &labels, at(seconds), value)
                    .unwrap();
                assert_eq!(detection, expected);
                assert_eq!(cached.find(metric, &labels), Some(id));
                anomalies += usize::from(detection.is_anomaly);
            }
        }
        assert_eq!(cached.counters().series_created, 2);
        assert_eq!(ids.len(), 1);
        assert_eq!(anomalies, 2, "the spike, on both metrics");
    }

    #[test]
    fn scrapes_repeated_changed_or_with_new_labels_judge_as_the_bank_does() {
        // Constant metric names take the in-order path; scrapes that repeat
        // the previous one, reorder it, drop or add series, or bring fresh
        // labels must all reach the series the bank holds for their keys.
        const METRICS: [&str; 3] = ["cpu", "memory", "latency"];
        let (mut cached, mut reference) = (bank(), bank());
        let mut ids = SeriesIds::default();
        let mut pods: Vec<Arc<Labels>> = (0..6)
            .map(|i| Arc::new(from_pairs([("pod", format!("cart-{i}"))])))
            .collect();
        let mut state = 11_u64;
        let mut random = move |below: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % below
        };
        let mut order: Vec<(usize, &'static str)> = (0..6)
            .flat_map(|pod| METRICS.map(|metric| (pod, metric)))
            .collect();
        let mut anomalies = 0;
        for round in 0..60_i64 {
            match random(6) {
                // Swap two samples.
                0 => {
                    let (a, b) = (random(18) as usize, random(18) as usize);
                    let last = order.len() - 1;
                    order.swap(a.min(last), b.min(last));
                }
                // A pod's labels allocated afresh.
                1 => {
                    let pod = random(6) as usize;
                    pods[pod] = Arc::new((*pods[pod]).clone());
                }
                // A series no longer scraped.
                2 if order.len() > 10 => {
                    order.remove(random(order.len() as u64) as usize);
                }
                3 => order.push((random(6) as usize, METRICS[random(3) as usize])),
                _ => {}
            }
            let seconds = 15 * round;
            for &(pod, metric) in &order {
                let value = if round % 17 == 16 {
                    500.0
                } else {
                    100.0 + (round % 3) as f64
                };
                let sample = SeriesSample {
                    metric: Cow::Borrowed(metric),
                    labels: pods[pod].clone(),
                    timestamp: at(seconds),
                    value,
                };
                let (id, detection) = ids.observe(&mut cached, &sample).unwrap();
                assert_eq!(cached.find(metric, &pods[pod]), Some(id), "round {round}");
                let expected = reference
                    .observe_series(metric, &pods[pod], at(seconds), value)
                    .unwrap();
                assert_eq!(detection, expected, "round {round}, {metric} of pod {pod}");
                anomalies += usize::from(detection.is_anomaly);
            }
            ids.forget_dropped();
        }
        assert!(anomalies > 10, "{anomalies} anomalies");
        assert_eq!(
            cached.counters().series_created,
            reference.counters().series_created
        );
    }

    #[test]
    fn a_stale_id_in_a_repeated_scrape_is_resolved_again() {
        let mut bank = bank();
        let mut ids = SeriesIds::default();
        let labels = Arc::new(from_pairs([("pod", "cart-1")]));
        let scrape = |ids: &mut SeriesIds, bank: &mut DetectorBank, seconds| {
            let sample = SeriesSample {
                metric: Cow::Borrowed("cpu"),
                labels: labels.clone(),
                timestamp: at(seconds),
                value: 1.0,
            };
            let result = ids.observe(bank, &sample).unwrap();
            ids.forget_dropped();
            result.0
        };
        let old = scrape(&mut ids, &mut bank, 0);
        assert_eq!(scrape(&mut ids, &mut bank, 15), old);
        let idle = SignedDuration::from_mins(16).as_secs();
        assert_eq!(bank.evict_idle(at(idle)), 1);
        let new = scrape(&mut ids, &mut bank, idle);
        assert_ne!(old, new);
        assert_eq!(scrape(&mut ids, &mut bank, idle + 15), new);
        assert_eq!(bank.counters().series_created, 2);
    }

    #[test]
    fn any_order_of_samples_finds_the_same_ids() {
        let mut bank = bank();
        let mut ids = SeriesIds::default();
        let pods: Vec<Arc<Labels>> = (0..4)
            .map(|i| Arc::new(from_pairs([("pod", format!("cart-{i}"))])))
            .collect();
        let mut scrape = |order: &[(usize, &'static str)], seconds| {
            order
                .iter()
                .map(|&(pod, metric)| {
                    let sample = sample(metric, &pods[pod], seconds, 1.0);
                    let (id, _) = ids.observe(&mut bank, &sample).unwrap();
                    ((pod, metric), id)
                })
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let forward = [
            (0, "cpu"),
            (0, "memory"),
            (1, "cpu"),
            (1, "memory"),
            (2, "cpu"),
            (3, "cpu"),
        ];
        let first = scrape(&forward, 0);
        let shuffled = [
            (3, "cpu"),
            (1, "memory"),
            (0, "memory"),
            (2, "cpu"),
            (1, "cpu"),
            (0, "cpu"),
        ];
        assert_eq!(scrape(&shuffled, 15), first);
        assert_eq!(scrape(&forward, 30), first);
        assert_eq!(bank.counters().series_created, 6);
    }

    #[test]
    fn fresh_labels_with_equal_content_reach_the_same_series() {
        let mut bank = bank();
        let mut ids = SeriesIds::default();
        let labels = || Arc::new(from_pairs([("pod", "cart-1")]));
        let (first, _) = ids
            .observe(&mut bank, &sample("cpu", &labels(), 0, 1.0))
            .unwrap();
        // The first scrape's labels are dropped with it.
        ids.forget_dropped();
        assert_eq!(ids.len(), 0);
        let (second, _) = ids
            .observe(&mut bank, &sample("cpu", &labels(), 15, 1.0))
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(bank.counters().series_created, 1);
    }

    #[test]
    fn labels_still_held_by_the_source_stay_cached() {
        let mut bank = bank();
        let mut ids = SeriesIds::default();
        let kept = Arc::new(from_pairs([("pod", "kept")]));
        let dropped = Arc::new(from_pairs([("pod", "dropped")]));
        ids.observe(&mut bank, &sample("cpu", &kept, 0, 1.0))
            .unwrap();
        ids.observe(&mut bank, &sample("cpu", &dropped, 0, 1.0))
            .unwrap();
        drop(dropped);
        ids.forget_dropped();
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn an_id_gone_stale_is_resolved_again() {
        let mut bank = bank();
        let mut ids = SeriesIds::default();
        let labels = Arc::new(from_pairs([("pod", "cart-1")]));
        let (old, _) = ids
            .observe(&mut bank, &sample("cpu", &labels, 0, 1.0))
            .unwrap();
        let idle = SignedDuration::from_mins(16).as_secs();
        assert_eq!(bank.evict_idle(at(idle)), 1);
        let (new, detection) = ids
            .observe(&mut bank, &sample("cpu", &labels, idle, 2.0))
            .unwrap();
        assert_ne!(old, new);
        assert_eq!(bank.find("cpu", &labels), Some(new));
        assert!(!detection.is_anomaly);
        assert_eq!(bank.counters().series_created, 2);
    }

    #[test]
    fn rejected_values_are_reported_and_counted_once() {
        let mut bank = bank();
        let mut ids = SeriesIds::default();
        let labels = Arc::new(from_pairs([("pod", "cart-1")]));
        let rejected = ids.observe(&mut bank, &sample("cpu", &labels, 0, f64::NAN));
        assert!(matches!(rejected, Err(Error::NonFiniteValue { .. })));
        assert_eq!(bank.counters().rejected_values, 1);
    }
}
