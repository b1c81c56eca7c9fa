//! Statistics over incidents: counts, MTTA and MTTR.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{Incident, IncidentStatus, TimeRange};
use crate::classify::{Category, Severity};
use crate::time::SignedDuration;

/// Mean and median of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DurationSummary {
    /// How many durations.
    pub count: usize,
    /// Their mean (truncated to the nanosecond), if there are any.
    pub mean: Option<SignedDuration>,
    /// Their median (the mean of the middle two for an even count).
    pub median: Option<SignedDuration>,
}

impl DurationSummary {
    /// Summarises `durations`.
    pub fn of(durations: impl IntoIterator<Item = SignedDuration>) -> Self {
        let mut nanos: Vec<i128> = durations.into_iter().map(|d| d.as_nanos()).collect();
        if nanos.is_empty() {
            return Self::default();
        }
        nanos.sort_unstable();
        let count = nanos.len();
        let total: i128 = nanos.iter().sum();
        let middle = count / 2;
        let median = if count % 2 == 1 {
            nanos[middle]
        } else {
            (nanos[middle - 1] + nanos[middle]) / 2
        };
        Self {
            count,
            mean: Some(SignedDuration::from_nanos_i128(total / count as i128)),
            median: Some(SignedDuration::from_nanos_i128(median)),
        }
    }
}

/// Counts and response times of the incidents opened within a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentStats {
    /// The range the incidents were opened in.
    pub range: TimeRange,
    /// How many incidents.
    pub total: usize,
    /// By current status; every status is present, zeros included.
    pub by_status: BTreeMap<IncidentStatus, usize>,
    /// By current severity; every severity is present, zeros included.
    pub by_severity: BTreeMap<Severity, usize>,
    /// By category; every category is present, zeros included.
    pub by_category: BTreeMap<Category, usize>,
    /// By service; incidents without one are not counted here.
    pub by_service: BTreeMap<String, usize>,
    /// How many were reopened at least once.
    pub reopened: usize,
    /// Time to acknowledge, over the acknowledged ones.
    pub mtta: DurationSummary,
    /// Time to (first) resolve, over the resolved ones.
    pub mttr: DurationSummary,
}

/// Statistics of the `incidents` whose `first_seen` falls in `range`.
///
/// MTTA is measured from opening to the first acknowledgement and MTTR from
/// opening to the first resolution, both read from the timelines (see
/// [`Incident::time_to_acknowledge`] and [`Incident::time_to_resolve`]).
pub fn incident_stats<'a>(
    incidents: impl IntoIterator<Item = &'a Incident>,
    range: &TimeRange,
) -> IncidentStats {
    let mut stats = IncidentStats {
        range: *range,
        total: 0,
        by_status: IncidentStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
        by_severity: Severity::ALL.into_iter().map(|s| (s, 0)).collect(),
        by_category: Category::ALL.into_iter().map(|c| (c, 0)).collect(),
        by_service: BTreeMap::new(),
        reopened: 0,
        mtta: DurationSummary::default(),
        mttr: DurationSummary::default(),
    };
    let mut to_acknowledge = Vec::new();
    let mut to_resolve = Vec::new();
    for incident in incidents {
        if !range.contains(incident.first_seen) {
            continue;
        }
        stats.total += 1;
        *stats.by_status.entry(incident.status).or_default() += 1;
        *stats.by_severity.entry(incident.severity).or_default() += 1;
        *stats.by_category.entry(incident.category).or_default() += 1;
        if let Some(service) = &incident.service {
            *stats.by_service.entry(service.clone()).or_default() += 1;
        }
        if incident.reopen_count() > 0 {
            stats.reopened += 1;
        }
        to_acknowledge.extend(incident.time_to_acknowledge());
        to_resolve.extend(incident.time_to_resolve());
    }
    stats.mtta = DurationSummary::of(to_acknowledge);
    stats.mttr = DurationSummary::of(to_resolve);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_median_of_durations() {
        let secs = |values: &[i64]| {
            DurationSummary::of(values.iter().map(|&s| SignedDuration::from_secs(s)))
        };
        assert_eq!(secs(&[]), DurationSummary::default());
        let odd = secs(&[300, 60, 120]);
        assert_eq!(odd.count, 3);
        assert_eq!(odd.mean, Some(SignedDuration::from_secs(160)));
        assert_eq!(odd.median, Some(SignedDuration::from_secs(120)));
        let even = secs(&[10, 40, 20, 1000]);
        assert_eq!(even.mean, Some(SignedDuration::from_millis(267_500)));
        assert_eq!(even.median, Some(SignedDuration::from_secs(30)));
    }
}
