//! Sliding windows of call outcomes, kept under the breaker's lock.
//!
//! The count window stores only the positions of failed and slow calls: a
//! successful call is just an increment of the breaker's shared call counter,
//! so the success path never takes the lock. The time window aggregates per
//! second, like resilience4j's, and is updated on every call.

use std::collections::VecDeque;

/// Calls, failures and slow calls in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WindowCounts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// The last `size` calls, given as positions in the breaker's call counter.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u64,
    /// Counter value when the window was last emptied; earlier calls belong
    /// to a previous closed period.
    start: u64,
    /// Positions of failed calls, ascending.
    failures: VecDeque<u64>,
    /// Positions of slow calls, ascending.
    slow: VecDeque<u64>,
}

impl CountWindow {
    pub(crate) fn new(size: u32, start: u64) -> Self {
        Self {
            size: u64::from(size),
            start,
            failures: VecDeque::new(),
            slow: VecDeque::new(),
        }
    }

    /// Empties the window; calls from `start` on count.
    pub(crate) fn reset(&mut self, start: u64) {
        self.start = start;
        self.failures.clear();
        self.slow.clear();
    }

    /// Records the outcome of the call at `position` (successes need no
    /// record: the counter already holds them).
    pub(crate) fn record(&mut self, position: u64, failed: bool, slow: bool) {
        if failed {
            self.failures.push_back(position);
        }
        if slow {
            self.slow.push_back(position);
        }
    }

    /// Counts over the last `size` of the `completed` calls.
    pub(crate) fn counts(&mut self, completed: u64) -> WindowCounts {
        let lower = self.start.max(completed.saturating_sub(self.size));
        for marks in [&mut self.failures, &mut self.slow] {
            while marks.front().is_some_and(|&p| p < lower) {
                marks.pop_front();
            }
        }
        WindowCounts {
            calls: completed.saturating_sub(lower),
            failures: self.failures.len() as u64,
            slow: self.slow.len() as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    counts: WindowCounts,
}

/// The calls of the last `size` whole seconds, one bucket per second.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Vec<Bucket>,
    totals: WindowCounts,
    /// The latest second recorded or asked about.
    head: Option<i64>,
}

impl TimeWindow {
    pub(crate) fn new(seconds: u32) -> Self {
        Self {
            buckets: vec![Bucket::default(); seconds as usize],
            totals: WindowCounts::default(),
            head: None,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.buckets.fill(Bucket::default());
        self.totals = WindowCounts::default();
        self.head = None;
    }

    pub(crate) fn record(&mut self, second: i64, failed: bool, slow: bool) {
        let second = self.advance_to(second);
        let index = self.index(second);
        let bucket = &mut self.buckets[index].counts;
        for counts in [bucket, &mut self.totals] {
            counts.calls += 1;
            counts.failures += u64::from(failed);
            counts.slow += u64::from(slow);
        }
    }

    pub(crate) fn counts(&mut self, second: i64) -> WindowCounts {
        self.advance_to(second);
        self.totals
    }

    fn index(&self, second: i64) -> usize {
        second.rem_euclid(self.buckets.len() as i64) as usize
    }

    /// Moves the window's head to `second`, emptying the buckets of the
    /// seconds that fall out. A clock that went backwards counts as the
    /// current head, so that a skew never erases recent calls.
    fn advance_to(&mut self, second: i64) -> i64 {
        let head = match self.head {
            Some(head) if second <= head => return head,
            Some(head) => head,
            None => {
                self.head = Some(second);
                return second;
            }
        };
        let stale = (second - head).min(self.buckets.len() as i64);
        for offset in 1..=stale {
            let index = self.index(head + offset);
            let evicted = std::mem::take(&mut self.buckets[index].counts);
            self.totals.calls -= evicted.calls;
            self.totals.failures -= evicted.failures;
            self.totals.slow -= evicted.slow;
        }
        self.head = Some(second);
        second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_keeps_the_last_calls_since_its_start() {
        let mut window = CountWindow::new(4, 10);
        // Calls 10..16: failures at 10 and 13, slow at 14.
        window.record(10, true, false);
        assert_eq!(
            window.counts(12),
            WindowCounts {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        window.record(13, true, false);
        window.record(14, false, true);
        // 16 calls done: the window is 12..16, so 10 fell out.
        assert_eq!(
            window.counts(16),
            WindowCounts {
                calls: 4,
                failures: 1,
                slow: 1
            }
        );
        window.reset(16);
        assert_eq!(window.counts(17).calls, 1);
        assert_eq!(window.counts(17).failures, 0);
    }

    #[test]
    fn time_window_evicts_whole_seconds() {
        let mut window = TimeWindow::new(3);
        window.record(100, true, false);
        window.record(101, false, false);
        window.record(102, false, true);
        assert_eq!(
            window.counts(102),
            WindowCounts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        // At 103 the second 100 is out.
        assert_eq!(window.counts(103).failures, 0);
        assert_eq!(window.counts(103).calls, 2);
        // A clock going back records into the head second.
        window.record(90, true, false);
        assert_eq!(window.counts(103).failures, 1);
        // Far in the future everything is out.
        assert_eq!(window.counts(10_000), WindowCounts::default());
    }
}
