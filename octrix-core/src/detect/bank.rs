//! Many series, one [`WindowedZScore`] each.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

mod group;

pub use group::SeriesGroup;

use super::pool::Pool;
use super::series_key::{SeriesKey, render_into};
use super::{
    BatchDetections, BatchSummary, Detection, Error, TickSummary, WindowedZScoreConfig, check_value,
};
use crate::Labels;
use crate::time::{SignedDuration, Timestamp};

/// Settings of a [`DetectorBank`], as a user writes them.
///
/// ```
/// use octrix_core::detect::DetectorBankConfig;
///
/// let config: DetectorBankConfig = toml::from_str(r#"
///     idle_ttl = "30m"
///     max_series = 50000
///
///     [default]
///     sensitivity = 3.0
///
///     [metrics.http_request_duration_seconds]
///     window = 60
///     min_samples = 30
/// "#).unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.idle_ttl.as_secs(), 1800);
/// // Each entry is complete on its own: unset fields take the detector's
/// // defaults, not those of `default`.
/// assert_eq!(config.metrics["http_request_duration_seconds"].sensitivity, 2.5);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorBankConfig {
    /// Detector configuration of metrics not listed in `metrics`.
    pub default: WindowedZScoreConfig,
    /// Detector configuration per metric name. Each entry is complete: its
    /// unset fields take [`WindowedZScoreConfig::default`], not `default`.
    pub metrics: BTreeMap<String, WindowedZScoreConfig>,
    /// A series that receives no sample for longer than this is evicted by
    /// [`DetectorBank::evict_idle`] (default 15 minutes; positive). Written
    /// as `"15m"` or `"PT15M"`.
    pub idle_ttl: SignedDuration,
    /// Most series the bank holds at once (default 100,000; between 1 and
    /// 2^32 - 1). Beyond it new series are refused with
    /// [`Error::SeriesLimitReached`].
    pub max_series: usize,
}

impl Default for DetectorBankConfig {
    fn default() -> Self {
        Self {
            default: WindowedZScoreConfig::default(),
            metrics: BTreeMap::new(),
            idle_ttl: SignedDuration::from_mins(15),
            max_series: 100_000,
        }
    }
}

impl DetectorBankConfig {
    /// Checks every field, nested ones included.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field, for example
    /// `metrics.http_latency.window`.
    pub fn validate(&self) -> Result<(), Error> {
        self.default.validate_at("default.")?;
        for (metric, config) in &self.metrics {
            config.validate_at(&format!("metrics.{metric}."))?;
        }
        if !self.idle_ttl.is_positive() {
            return Err(Error::invalid(
                "idle_ttl",
                format!("must be positive, got {:#}", self.idle_ttl),
            ));
        }
        if !(1..=u32::MAX as usize).contains(&self.max_series) {
            return Err(Error::invalid(
                "max_series",
                format!(
                    "must be between 1 and {}, got {}",
                    u32::MAX,
                    self.max_series
                ),
            ));
        }
        Ok(())
    }
}

/// A handle to one series of a [`DetectorBank`], valid until the series is
/// evicted. Resolving a series once and observing through its id skips the
/// key lookup on every sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesId {
    pool: u32,
    slot: u32,
    generation: u32,
}

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.pool, self.slot, self.generation)
    }
}

/// What a [`DetectorBank`] has counted since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankCounters {
    /// Series created on their first sample.
    pub series_created: u64,
    /// Series evicted after being idle for longer than the TTL.
    pub series_evicted: u64,
    /// New series refused because the bank held `max_series` series.
    pub series_limit_hits: u64,
    /// Samples rejected as NaN, infinite or out of range.
    pub rejected_values: u64,
}

/// One [`WindowedZScore`](super::WindowedZScore) per series, for many series.
///
/// * A series is a metric name plus labels, identified by its [`SeriesKey`]
///   (labels sorted by name). It is created on its first sample with the
///   configuration of its metric (`metrics`, else `default`).
/// * Time is passed in: each sample carries its [`Timestamp`], and
///   [`evict_idle`](Self::evict_idle) drops series that received no sample
///   for longer than `idle_ttl` before `now`. The bank never reads a clock.
/// * At most `max_series` series: a new one beyond that is refused with
///   [`Error::SeriesLimitReached`] and counted.
/// * A rejected value (NaN, infinite, out of range) is counted and does not
///   touch the window, but counts as a sign of life for the TTL.
///
/// Each series takes 56 bytes of state plus `8 × window` bytes of ring
/// buffer, 216 bytes at window 20, in chunks of up to 1024 series per
/// configuration, plus its key (the rendered [`SeriesKey`] and a hash map
/// entry). Per-sample work is O(1), and with [`SeriesId`]s no hashing.
///
/// ```
/// use octrix_core::detect::{DetectorBank, DetectorBankConfig, Direction};
/// use octrix_core::labels::from_pairs;
/// use octrix_core::Timestamp;
/// use octrix_core::time::SignedDuration;
///
/// let mut bank = DetectorBank::new(DetectorBankConfig::default()).unwrap();
/// let pod = from_pairs([("pod", "api-0")]);
/// let start = Timestamp::from_second(1_700_000_000).unwrap();
/// for i in 0..20 {
///     let at = start + SignedDuration::from_secs(15 * i);
///     let calm = bank.observe_series("latency_ms", &pod, at, 100.0 + (i % 3) as f64).unwrap();
///     assert!(!calm.is_anomaly);
/// }
/// // A hot path resolves the series once and then skips the key lookup.
/// let id = bank.resolve("latency_ms", &pod, start).unwrap();
/// let spike = bank.observe(id, start + SignedDuration::from_mins(5), 250.0).unwrap();
/// assert!(spike.is_anomaly && spike.direction == Direction::Above);
///
/// // Fifteen minutes without samples later, the series is gone.
/// let later = start + SignedDuration::from_mins(21);
/// assert_eq!(bank.evict_idle(later), 1);
/// assert!(bank.is_empty());
/// assert!(bank.observe(id, later, 1.0).is_err());
/// ```
#[derive(Debug)]
pub struct DetectorBank {
    config: DetectorBankConfig,
    idle_ttl_ms: i64,
    /// No series was last seen before this (a lower bound; `i64::MAX` while
    /// the bank is empty). Samples only move a series' last sight forward,
    /// so until `now` is `idle_ttl` past this bound no series can be idle,
    /// and [`evict_idle`](Self::evict_idle) skips its scan of every series:
    /// that scan was a sixteenth of an engine tick on 50,000 series.
    oldest_seen_ms: i64,
    /// Rendered series key → id.
    // foldhash: series keys are hashed once per sample, and SipHash was a
    // tenth of an engine tick; foldhash is seeded per map, so still DoS-resistant.
    index: HashMap<Box<str>, SeriesId, foldhash::fast::RandomState>,
    /// One pool per distinct detector configuration; pool 0 runs `default`.
    pools: Vec<Pool>,
    /// Metric name → index in `pools`, for metrics listed in `metrics`.
    pool_of_metric: HashMap<String, u32>,
    /// Reused to render keys for lookups without allocating.
    key_buffer: String,
    counters: BankCounters,
    /// Unique among the process's banks, so that a [`SeriesGroup`] is only
    /// trusted by the bank that checked it.
    identity: u64,
}

impl DetectorBank {
    /// An empty bank.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `config` does not validate.
    pub fn new(config: DetectorBankConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut pools = vec![Pool::new(&config.default)];
        let mut pool_of_metric = HashMap::new();
        for (metric, metric_config) in &config.metrics {
            // Metrics with equal configurations share storage.
            let index = match pools.iter().position(|pool| pool.config() == metric_config) {
                Some(index) => index,
                None => {
                    pools.push(Pool::new(metric_config));
                    pools.len() - 1
                }
            };
            pool_of_metric.insert(metric.clone(), index as u32);
        }
        let idle_ttl_ms = i64::try_from(config.idle_ttl.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            config,
            idle_ttl_ms,
            oldest_seen_ms: i64::MAX,
            index: HashMap::default(),
            pools,
            pool_of_metric,
            key_buffer: String::new(),
            counters: BankCounters::default(),
            identity: group::next_bank_identity(),
        })
    }

    /// The bank's configuration.
    pub fn config(&self) -> &DetectorBankConfig {
        &self.config
    }

    /// How many series the bank holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the bank holds no series.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// What the bank has counted so far.
    pub fn counters(&self) -> BankCounters {
        self.counters
    }

    /// The id of series `metric` with `labels`, if the bank holds it.
    pub fn find(&self, metric: &str, labels: &Labels) -> Option<SeriesId> {
        self.index
            .get(SeriesKey::new(metric, labels).as_str())
            .copied()
    }

    /// The id of series `metric` with `labels`, created (as first seen at
    /// `now`) if the bank does not hold it yet.
    ///
    /// # Errors
    /// [`Error::SeriesLimitReached`] when the series is new and the bank
    /// already holds `max_series` series; the refusal is counted.
    pub fn resolve(
        &mut self,
        metric: &str,
        labels: &Labels,
        now: Timestamp,
    ) -> Result<SeriesId, Error> {
        render_into(&mut self.key_buffer, metric, labels);
        if let Some(&id) = self.index.get(self.key_buffer.as_str()) {
            return Ok(id);
        }
        if self.index.len() >= self.config.max_series {
            self.counters.series_limit_hits += 1;
            return Err(Error::SeriesLimitReached {
                max_series: self.config.max_series,
                series: self.key_buffer.clone(),
            });
        }
        let pool = self.pool_of_metric.get(metric).copied().unwrap_or(0);
        let now_ms = now.as_millisecond();
        let (slot, generation) = self.pools[pool as usize].allocate(now_ms);
        self.oldest_seen_ms = self.oldest_seen_ms.min(now_ms);
        let id = SeriesId {
            pool,
            slot,
            generation,
        };
        self.index.insert(self.key_buffer.as_str().into(), id);
        self.counters.series_created += 1;
        Ok(id)
    }

    /// Judges `value`, sampled at `at`, against series `id`'s window, then
    /// adds it to the window.
    ///
    /// # Errors
    /// * [`Error::UnknownSeries`] when `id` was evicted or is foreign.
    /// * [`Error::NonFiniteValue`] or [`Error::ValueOutOfRange`]: the value is
    ///   counted and skipped.
    #[inline]
    pub fn observe(&mut self, id: SeriesId, at: Timestamp, value: f64) -> Result<Detection, Error> {
        let at_ms = at.as_millisecond();
        if check_value(value).is_err() {
            return Err(self.reject(id, at_ms, value));
        }
        self.pools
            .get_mut(id.pool as usize)
            .and_then(|pool| pool.observe(id.slot, id.generation, at_ms, value))
            .ok_or(Error::UnknownSeries { id })
    }

    /// Judges every sample of `samples` against series `id`'s window, in
    /// order, learning each: the verdicts [`observe`](Self::observe) gives
    /// one by one (for long batches within `1e-9`, see
    /// [`observe_many_into`](Self::observe_many_into)), with the series
    /// looked up once. `at` is when the batch was sampled (the series' last
    /// sign of life). Rejected samples are counted, listed in the result
    /// and skipped.
    ///
    /// # Errors
    /// [`Error::UnknownSeries`] when `id` was evicted or is foreign; nothing
    /// is observed then.
    pub fn observe_many(
        &mut self,
        id: SeriesId,
        at: Timestamp,
        samples: &[f64],
    ) -> Result<BatchDetections, Error> {
        let mut z = vec![f64::NAN; samples.len()];
        let summary = self.observe_many_into(id, at, samples, &mut z, 1)?;
        Ok(BatchDetections {
            z,
            anomalies: summary.anomalies,
            rejected: summary.rejected,
        })
    }

    /// [`observe_many`](Self::observe_many) writing each sample's z-score
    /// into `z` (NaN for samples not judged or rejected), for callers that
    /// own the output buffer, on up to `threads` threads.
    ///
    /// Batches longer than two periodic recomputes of the series' window
    /// (`2 × (max(window, 1024) + window)` samples) are judged by a block
    /// kernel that sees the whole batch at once: the same anomalies and
    /// rejections as one by one, z-scores within `1e-9` relative (both are
    /// that close to an exact recompute), and afterwards the series' state
    /// is exactly the one-by-one state. Shorter batches are observed one by
    /// one. Threads run only for batches of more than 65,536 samples a
    /// thread.
    ///
    /// # Errors
    /// * [`Error::LengthMismatch`] naming `z` when it is not as long as
    ///   `samples`; nothing is observed.
    /// * [`Error::UnknownSeries`] when `id` was evicted or is foreign.
    pub fn observe_many_into(
        &mut self,
        id: SeriesId,
        at: Timestamp,
        samples: &[f64],
        z: &mut [f64],
        threads: usize,
    ) -> Result<BatchSummary, Error> {
        if z.len() != samples.len() {
            return Err(Error::LengthMismatch {
                field: "z".into(),
                expected: samples.len(),
                got: z.len(),
            });
        }
        let mut summary = BatchSummary::default();
        let rejected = self
            .pools
            .get_mut(id.pool as usize)
            .and_then(|pool| {
                pool.observe_many_into(
                    (id.slot, id.generation),
                    at.as_millisecond(),
                    samples,
                    z,
                    threads,
                    &mut summary,
                )
            })
            .ok_or(Error::UnknownSeries { id })?;
        self.counters.rejected_values += rejected;
        Ok(summary)
    }

    /// One tick of many series: `values[i]`, sampled at `at`, for series
    /// `ids[i]`, each judged and learnt as [`observe`](Self::observe) does
    /// (the same verdicts, bit for bit), with only the anomalies' full
    /// verdicts kept. Ids resolved once and reused tick after tick skip all
    /// key work; a stale id does not stop the tick: its position is listed
    /// in [`TickSummary::unknown`].
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] naming `values` when it is not as long as
    /// `ids`; nothing is observed.
    pub fn observe_tick(
        &mut self,
        ids: &[SeriesId],
        at: Timestamp,
        values: &[f64],
    ) -> Result<TickSummary, Error> {
        if ids.len() != values.len() {
            return Err(Error::LengthMismatch {
                field: "values".into(),
                expected: ids.len(),
                got: values.len(),
            });
        }
        let at_ms = at.as_millisecond();
        let mut summary = TickSummary::default();
        for (position, (&id, &value)) in ids.iter().zip(values).enumerate() {
            if check_value(value).is_err() {
                match self.reject(id, at_ms, value) {
                    Error::UnknownSeries { .. } => summary.unknown.push(position),
                    _ => summary.rejected.push(position),
                }
                continue;
            }
            let live = self.pools.get_mut(id.pool as usize).is_some_and(|pool| {
                pool.observe_into(id.slot, id.generation, at_ms, value, position, &mut summary)
            });
            if !live {
                summary.unknown.push(position);
            }
        }
        Ok(summary)
    }

    /// Counts a value that cannot be judged; the series still counts as
    /// heard from at `at_ms`.
    #[cold]
    #[inline(never)]
    fn reject(&mut self, id: SeriesId, at_ms: i64, value: f64) -> Error {
        let live = self
            .pools
            .get_mut(id.pool as usize)
            .is_some_and(|pool| pool.touch(id.slot, id.generation, at_ms));
        if !live {
            return Error::UnknownSeries { id };
        }
        self.counters.rejected_values += 1;
        check_value(value).expect_err("reject is called for rejected values")
    }

    /// [`resolve`](Self::resolve) then [`observe`](Self::observe): the
    /// convenient path, which renders and hashes the key on every call.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve) and [`observe`](Self::observe).
    pub fn observe_series(
        &mut self,
        metric: &str,
        labels: &Labels,
        at: Timestamp,
        value: f64,
    ) -> Result<Detection, Error> {
        let id = self.resolve(metric, labels, at)?;
        self.observe(id, at, value)
    }

    /// Evicts every series that received no sample for longer than
    /// `idle_ttl` before `now`; returns how many. Their ids go stale.
    pub fn evict_idle(&mut self, now: Timestamp) -> usize {
        let now_ms = now.as_millisecond();
        let idle_ttl_ms = self.idle_ttl_ms;
        if now_ms.saturating_sub(self.oldest_seen_ms) <= idle_ttl_ms {
            return 0;
        }
        let pools = &mut self.pools;
        let before = self.index.len();
        let mut oldest_kept_ms = i64::MAX;
        self.index.retain(|_, id| {
            let pool = &mut pools[id.pool as usize];
            let last_seen_ms = pool
                .last_seen_ms(id.slot, id.generation)
                .unwrap_or(i64::MIN);
            let idle = now_ms.saturating_sub(last_seen_ms) > idle_ttl_ms;
            if idle {
                pool.release(id.slot);
            } else {
                oldest_kept_ms = oldest_kept_ms.min(last_seen_ms);
            }
            !idle
        });
        self.oldest_seen_ms = oldest_kept_ms;
        let evicted = before - self.index.len();
        self.counters.series_evicted += evicted as u64;
        evicted
    }

    /// Bytes one series of `metric` occupies, key aside: its ring buffer
    /// plus its state (216 at window 20).
    pub fn bytes_per_series(&self, metric: &str) -> usize {
        let pool = self.pool_of_metric.get(metric).copied().unwrap_or(0);
        Pool::bytes_per_slot(self.pools[pool as usize].config().window)
    }

    /// Bytes of series storage allocated, keys and index aside: whole chunks,
    /// including slots not in use.
    pub fn allocated_bytes(&self) -> usize {
        self.pools.iter().map(Pool::allocated_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Detector, WindowedZScore};
    use crate::labels::from_pairs;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    fn bank(max_series: usize) -> DetectorBank {
        DetectorBank::new(DetectorBankConfig {
            max_series,
            idle_ttl: SignedDuration::from_secs(60),
            ..DetectorBankConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn defaults_and_validation_name_nested_fields() {
        let config = DetectorBankConfig::default();
        assert_eq!(config.idle_ttl, SignedDuration::from_mins(15));
        assert_eq!(config.max_series, 100_000);
        assert_eq!(
            serde_json::from_str::<DetectorBankConfig>("{}").unwrap(),
            config
        );

        let mut bad = config.clone();
        bad.metrics.insert(
            "cpu".into(),
            WindowedZScoreConfig {
                window: 1,
                ..WindowedZScoreConfig::default()
            },
        );
        assert!(matches!(
            DetectorBank::new(bad),
            Err(Error::InvalidConfig { field, .. }) if field == "metrics.cpu.window"
        ));
        let bad = DetectorBankConfig {
            default: WindowedZScoreConfig {
                sensitivity: -1.0,
                ..WindowedZScoreConfig::default()
            },
            ..config.clone()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig { field, .. }) if field == "default.sensitivity"
        ));
        let bad = DetectorBankConfig {
            idle_ttl: SignedDuration::ZERO,
            ..config.clone()
        };
        assert_eq!(
            bad.validate(),
            Err(Error::invalid("idle_ttl", "must be positive, got 0s"))
        );
        let bad = DetectorBankConfig {
            max_series: 0,
            ..config
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig { field, .. }) if field == "max_series"
        ));
    }

    #[test]
    fn batches_match_one_by_one_observation() {
        let mut samples: Vec<f64> = (0..500).map(|i| 100.0 + f64::from(i % 7)).collect();
        samples[5] = f64::NAN;
        samples[300] = 400.0;
        samples[301] = f64::INFINITY;
        samples[400] = 1e200;
        let labels = from_pairs([("pod", "a")]);
        let mut one_by_one = bank(10);
        let mut batched = bank(10);
        let id = batched.resolve("m", &labels, at(0)).unwrap();
        let batch = batched.observe_many(id, at(1), &samples).unwrap();
        let mut z = Vec::new();
        let mut anomalies = Vec::new();
        let mut rejected = Vec::new();
        for (index, &value) in samples.iter().enumerate() {
            match one_by_one.observe_series("m", &labels, at(1), value) {
                Ok(detection) if detection == Detection::NOT_JUDGED => z.push(f64::NAN),
                Ok(detection) => {
                    z.push(detection.z);
                    if detection.is_anomaly {
                        anomalies.push((index, detection));
                    }
                }
                Err(_) => {
                    z.push(f64::NAN);
                    rejected.push(index);
                }
            }
        }
        assert_eq!(batch.z.len(), samples.len());
        for (a, b) in batch.z.iter().zip(&z) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        }
        assert_eq!(batch.anomalies, anomalies);
        assert!(batch.anomalies.iter().any(|(index, _)| *index == 300));
        assert_eq!(batch.rejected, [5, 301, 400]);
        assert_eq!(batch.rejected, rejected);
        assert_eq!(batched.counters().rejected_values, 3);
        assert_eq!(batch.judged(), samples.len() - 20 - 3);
        // The next sample is judged alike: the windows are the same.
        assert_eq!(
            batched.observe(id, at(2), 104.0),
            one_by_one.observe_series("m", &labels, at(2), 104.0)
        );
        // A stale id observes nothing.
        assert_eq!(batched.evict_idle(at(1000)), 1);
        assert!(matches!(
            batched.observe_many(id, at(1000), &[1.0]),
            Err(Error::UnknownSeries { .. })
        ));
    }

    #[test]
    fn series_are_keyed_by_metric_and_sorted_labels() {
        let mut bank = bank(10);
        let a = bank
            .resolve("m", &from_pairs([("b", "2"), ("a", "1")]), at(0))
            .unwrap();
        let same = bank
            .resolve("m", &from_pairs([("a", "1"), ("b", "2")]), at(1))
            .unwrap();
        let other_metric = bank
            .resolve("n", &from_pairs([("a", "1"), ("b", "2")]), at(1))
            .unwrap();
        let other_labels = bank.resolve("m", &from_pairs([("a", "1")]), at(1)).unwrap();
        assert_eq!(a, same);
        assert_ne!(a, other_metric);
        assert_ne!(a, other_labels);
        assert_eq!(bank.len(), 3);
        assert_eq!(bank.counters().series_created, 3);
        assert_eq!(
            bank.find("m", &from_pairs([("b", "2"), ("a", "1")])),
            Some(a)
        );
        assert_eq!(bank.find("m", &Labels::new()), None);
    }

    #[test]
    fn each_series_matches_a_standalone_detector() {
        let mut bank = bank(10);
        let config = WindowedZScoreConfig::default();
        let mut standalone = [
            WindowedZScore::new(&config).unwrap(),
            WindowedZScore::new(&config).unwrap(),
        ];
        let labels = [from_pairs([("pod", "a")]), from_pairs([("pod", "b")])];
        for step in 0..500_i32 {
            for (which, detector) in standalone.iter_mut().enumerate() {
                let sign = if which == 0 { 1.0 } else { -1.0 };
                let value = sign * f64::from(step % 11) + if step == 300 { 50.0 } else { 0.0 };
                let got = bank
                    .observe_series("m", &labels[which], at(step.into()), value)
                    .unwrap();
                assert_eq!(
                    got,
                    detector.observe(value).unwrap(),
                    "series {which} step {step}"
                );
            }
        }
    }

    #[test]
    fn per_metric_configuration_applies_on_creation() {
        let mut config = DetectorBankConfig::default();
        let short = WindowedZScoreConfig {
            window: 3,
            sensitivity: 1.0,
            min_samples: Some(2),
        };
        config.metrics.insert("short".into(), short.clone());
        config.metrics.insert("also_short".into(), short);
        let mut bank = DetectorBank::new(config).unwrap();
        // Equal configurations share one pool.
        assert_eq!(bank.pools.len(), 2);
        let labels = Labels::new();
        bank.observe_series("short", &labels, at(0), 1.0).unwrap();
        bank.observe_series("short", &labels, at(1), 2.0).unwrap();
        // Judged after two samples, window 3.
        assert_ne!(
            bank.observe_series("short", &labels, at(2), 9.0).unwrap(),
            Detection::NOT_JUDGED
        );
        // Other metrics wait for the default full window of 20.
        for i in 0..20 {
            assert_eq!(
                bank.observe_series("other", &labels, at(i), 1.0).unwrap(),
                Detection::NOT_JUDGED
            );
        }
        assert_eq!(bank.bytes_per_series("short"), 3 * 8 + 56);
        assert_eq!(bank.bytes_per_series("other"), 216);
    }

    #[test]
    fn the_series_cap_is_a_typed_error_and_counted() {
        let mut bank = bank(2);
        bank.observe_series("m", &from_pairs([("i", "0")]), at(0), 1.0)
            .unwrap();
        bank.observe_series("m", &from_pairs([("i", "1")]), at(0), 1.0)
            .unwrap();
        let refused = bank.observe_series("m", &from_pairs([("i", "2")]), at(0), 1.0);
        assert_eq!(
            refused,
            Err(Error::SeriesLimitReached {
                max_series: 2,
                series: r#"m{i="2"}"#.into()
            })
        );
        assert!(bank.resolve("m", &from_pairs([("i", "3")]), at(0)).is_err());
        assert_eq!(bank.counters().series_limit_hits, 2);
        // Existing series still work.
        bank.observe_series("m", &from_pairs([("i", "1")]), at(1), 2.0)
            .unwrap();
        assert_eq!(bank.len(), 2);
    }

    #[test]
    fn idle_series_are_evicted_after_the_ttl_and_their_ids_go_stale() {
        let mut bank = bank(2);
        let quiet = bank
            .resolve("m", &from_pairs([("i", "quiet")]), at(0))
            .unwrap();
        let busy = bank
            .resolve("m", &from_pairs([("i", "busy")]), at(0))
            .unwrap();
        bank.observe(quiet, at(10), 1.0).unwrap();
        bank.observe(busy, at(10), 1.0).unwrap();
        bank.observe(busy, at(50), 1.0).unwrap();
        // Exactly the TTL idle is not yet too long.
        assert_eq!(bank.evict_idle(at(70)), 0);
        assert_eq!(bank.evict_idle(at(71)), 1);
        assert_eq!(bank.len(), 1);
        assert_eq!(
            bank.observe(quiet, at(72), 1.0),
            Err(Error::UnknownSeries { id: quiet })
        );
        assert!(bank.observe(busy, at(72), 1.0).is_ok());
        // Eviction freed room under the cap; the slot is reused safely.
        let fresh = bank
            .resolve("m", &from_pairs([("i", "fresh")]), at(72))
            .unwrap();
        assert_ne!(fresh, quiet);
        assert_eq!(bank.counters().series_evicted, 1);
        assert!(bank.observe(quiet, at(73), 1.0).is_err());
    }

    #[test]
    fn eviction_run_every_tick_evicts_each_series_on_the_first_tick_past_its_ttl() {
        // A model of last sights next to the bank, evicting every second as
        // the engine does every tick: scans skipped while no series can be
        // idle must not delay any eviction, including of series created
        // with a sample older than every other series.
        let mut bank = bank(64);
        let mut model: Vec<(Labels, Option<(SeriesId, i64)>)> = (0..8)
            .map(|i| (from_pairs([("i", i.to_string())]), None))
            .collect();
        let mut state = 7_u64;
        let mut random = move |below: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % below
        };
        let mut evicted_total = 0;
        for second in 0..2_000_i64 {
            let series = random(8) as usize;
            // Bursts of activity with long silences: most series idle out
            // and come back several times.
            if random(100) < 15 {
                let seen = second - random(40) as i64;
                let (labels, live) = &mut model[series];
                let id = match live {
                    Some((id, _)) => *id,
                    None => bank.resolve("m", labels, at(seen)).unwrap(),
                };
                let last = match bank.observe(id, at(seen), 1.0) {
                    Ok(_) => live.map_or(seen, |(_, last)| last.max(seen)),
                    Err(error) => panic!("series {series} should be live: {error}"),
                };
                *live = Some((id, last));
            }
            let mut expected = 0;
            for (_, live) in &mut model {
                if live.is_some_and(|(_, last)| second - last > 60) {
                    *live = None;
                    expected += 1;
                }
            }
            assert_eq!(bank.evict_idle(at(second)), expected, "at second {second}");
            evicted_total += expected;
            assert_eq!(
                bank.len(),
                model.iter().filter(|(_, l)| l.is_some()).count()
            );
        }
        assert!(evicted_total > 20, "the run evicted {evicted_total} series");
        assert_eq!(bank.counters().series_evicted, evicted_total as u64);
    }

    #[test]
    fn rejected_values_are_counted_and_keep_the_series_alive() {
        let mut bank = bank(2);
        let id = bank.resolve("m", &Labels::new(), at(0)).unwrap();
        assert_eq!(
            bank.observe(id, at(50), f64::NAN)
                .map_err(|e| e.to_string()),
            Err("rejected sample: value NaN is not finite".into())
        );
        assert!(bank.observe(id, at(55), 1e300).is_err());
        assert_eq!(bank.counters().rejected_values, 2);
        assert_eq!(bank.evict_idle(at(100)), 0);
        assert_eq!(bank.evict_idle(at(116)), 1);
    }

    #[test]
    fn foreign_ids_are_unknown() {
        let mut bank = bank(2);
        let id = SeriesId {
            pool: 9,
            slot: 0,
            generation: 1,
        };
        assert_eq!(
            bank.observe(id, at(0), 1.0),
            Err(Error::UnknownSeries { id })
        );
        assert_eq!(
            bank.observe(id, at(0), f64::NAN),
            Err(Error::UnknownSeries { id })
        );
        assert_eq!(
            Error::UnknownSeries { id }.to_string(),
            "unknown series: id 9/0#1 was evicted or belongs to another bank"
        );
    }

    #[test]
    fn storage_grows_in_chunks_of_1024_series() {
        let mut bank = bank(5000);
        for i in 0..1025 {
            bank.resolve("m", &from_pairs([("i", i.to_string())]), at(0))
                .unwrap();
        }
        assert_eq!(bank.allocated_bytes(), 2 * 1024 * 216);
    }
}
