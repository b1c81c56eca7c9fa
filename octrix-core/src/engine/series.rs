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
    ids: Vec<(Box<str>, SeriesId)>,
}

/// [`SeriesId`]s by label-set identity and metric.
#[derive(Debug, Default)]
pub(super) struct SeriesIds {
    by_labels: HashMap<usize, Entry, RandomState>,
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
        let address = Arc::as_ptr(&sample.labels) as usize;
        let entry = self.by_labels.entry(address).or_insert_with(|| Entry {
            labels: sample.labels.clone(),
            ids: Vec::new(),
        });
        let slot = match entry
            .ids
            .iter()
            .position(|(metric, _)| **metric == *sample.metric)
        {
            Some(slot) => slot,
            None => {
                let id = bank.resolve(&sample.metric, &sample.labels, sample.timestamp)?;
                entry.ids.push((sample.metric.as_str().into(), id));
                entry.ids.len() - 1
            }
        };
        let id = entry.ids[slot].1;
        match bank.observe(id, sample.timestamp, sample.value) {
            Err(Error::UnknownSeries { .. }) => {
                let fresh = bank.resolve(&sample.metric, &sample.labels, sample.timestamp)?;
                entry.ids[slot].1 = fresh;
                Ok((fresh, bank.observe(fresh, sample.timestamp, sample.value)?))
            }
            result => Ok((id, result?)),
        }
    }

    /// Forgets label sets that no one but the cache holds any more: no
    /// sample can carry them again. Call once the scrape is dropped.
    pub(super) fn forget_dropped(&mut self) {
        self.by_labels
            .retain(|_, entry| Arc::strong_count(&entry.labels) > 1);
    }

    /// How many label sets are cached.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_labels.len()
    }
}
