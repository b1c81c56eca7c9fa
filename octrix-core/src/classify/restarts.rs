//! Restart rates derived from successive restart counts.

use std::collections::VecDeque;

use crate::Timestamp;
use crate::time::SignedDuration;

/// A pod's restart count over the last window, kept only where it changed so
/// that a quiet pod costs one entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct RestartHistory {
    /// `(when, total restarts)`, oldest first. The front entry may predate
    /// the window: it is the count at the window's start.
    changes: VecDeque<(Timestamp, u64)>,
    pub(crate) last_seen: Option<Timestamp>,
}

impl RestartHistory {
    /// Records the pod's total restart count at `at` and returns the number
    /// of restarts within the `window` ending at `at`.
    ///
    /// The first count seen is a baseline, not restarts: a pod found with 40
    /// old restarts is not restarting now. A count that goes down means the
    /// pod was recreated, so the history starts again.
    pub(crate) fn record(&mut self, at: Timestamp, total: u64, window: SignedDuration) -> u64 {
        self.last_seen = Some(at);
        match self.changes.back() {
            Some(&(_, last)) if last == total => {}
            Some(&(_, last)) if last > total => {
                self.changes.clear();
                self.changes.push_back((at, total));
            }
            _ => self.changes.push_back((at, total)),
        }
        let window_start = at.checked_sub(window).unwrap_or(Timestamp::MIN);
        // Keep the newest change at or before the window's start: it holds
        // the count the window starts from.
        while self.changes.len() >= 2 && self.changes[1].0 <= window_start {
            self.changes.pop_front();
        }
        let baseline = self.changes.front().map_or(total, |&(_, count)| count);
        total.saturating_sub(baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_second(minutes * 60).unwrap()
    }

    #[test]
    fn counts_restarts_within_the_window_only() {
        let window = SignedDuration::from_hours(1);
        let mut history = RestartHistory::default();
        assert_eq!(
            history.record(at(0), 40, window),
            0,
            "first count is a baseline"
        );
        assert_eq!(history.record(at(10), 41, window), 1);
        assert_eq!(history.record(at(20), 43, window), 3);
        assert_eq!(
            history.record(at(65), 43, window),
            3,
            "count at the window's start was 40"
        );
        assert_eq!(
            history.record(at(75), 43, window),
            2,
            "the 40 -> 41 change left the window"
        );
        assert_eq!(history.record(at(85), 43, window), 0);
    }

    #[test]
    fn a_lower_count_starts_again() {
        let window = SignedDuration::from_hours(1);
        let mut history = RestartHistory::default();
        history.record(at(0), 5, window);
        assert_eq!(history.record(at(1), 7, window), 2);
        assert_eq!(history.record(at(2), 0, window), 0);
        assert_eq!(history.record(at(3), 1, window), 1);
    }
}
