//! Per-resource duration counters: how many consecutive samples a condition
//! or a threshold has held.

use super::{ConditionPolicy, Ladder, Severity};
use crate::Timestamp;

/// The verdict on one sample, before it becomes a signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Grade {
    /// Below every threshold, or the condition does not hold.
    Healthy,
    /// Above a threshold, but not yet for long enough.
    Pending,
    /// Raised at a severity; `threshold` is the step's, for ladders.
    Raised {
        severity: Severity,
        threshold: Option<f64>,
    },
}

/// What one sample measures for one category.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Measure {
    /// A value graded by a ladder.
    Value(Ladder, f64),
    /// Whether a condition holds, graded by its policy.
    Condition(ConditionPolicy, bool),
}

/// The run of unhealthy samples of one category on one resource.
#[derive(Debug, Clone)]
pub(crate) struct Streak {
    /// Consecutive samples at or above each severity's step (ladders); a
    /// condition counts in slot 0.
    consecutive: [u32; 4],
    /// The first sample of the streak: the problem's `since`.
    pub(crate) since: Timestamp,
    /// Whether a signal was raised during the streak, so that its end is
    /// reported as cleared.
    pub(crate) raised: bool,
    /// The latest sample, for idle eviction.
    pub(crate) last_seen: Timestamp,
}

impl Streak {
    pub(crate) fn starting(at: Timestamp) -> Self {
        Self {
            consecutive: [0; 4],
            since: at,
            raised: false,
            last_seen: at,
        }
    }

    /// Counts one sample.
    pub(crate) fn grade(&mut self, measure: &Measure) -> Grade {
        match measure {
            Measure::Value(ladder, value) => self.grade_value(ladder, *value),
            Measure::Condition(policy, holds) => self.grade_condition(policy, *holds),
        }
    }

    /// Counts `value` against every step of `ladder`; a sample below a step
    /// restarts that step's count.
    pub(crate) fn grade_value(&mut self, ladder: &Ladder, value: f64) -> Grade {
        let mut reached = None;
        let mut above_any = false;
        for severity in Severity::ALL {
            let count = &mut self.consecutive[severity.rank()];
            match ladder.step(severity) {
                Some(step) if value >= step.threshold => {
                    *count = count.saturating_add(1);
                    above_any = true;
                    if *count >= step.for_samples {
                        reached = Some((severity, step.threshold));
                    }
                }
                _ => *count = 0,
            }
        }
        match reached {
            Some((severity, threshold)) => Grade::Raised {
                severity,
                threshold: Some(threshold),
            },
            None if above_any => Grade::Pending,
            None => Grade::Healthy,
        }
    }

    /// Counts one sample of a condition.
    pub(crate) fn grade_condition(&mut self, policy: &ConditionPolicy, holds: bool) -> Grade {
        if !holds || !policy.enabled {
            self.consecutive[0] = 0;
            return Grade::Healthy;
        }
        self.consecutive[0] = self.consecutive[0].saturating_add(1);
        match policy.severity_after(self.consecutive[0]) {
            Some(severity) => Grade::Raised {
                severity,
                threshold: None,
            },
            None => Grade::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Step;

    fn ladder() -> Ladder {
        Ladder {
            medium: Some(Step::new(0.8, 3)),
            high: Some(Step::new(0.95, 2)),
            ..Ladder::default()
        }
    }

    #[test]
    fn a_step_applies_after_its_consecutive_samples() {
        let mut streak = Streak::starting(Timestamp::UNIX_EPOCH);
        let ladder = ladder();
        assert_eq!(streak.grade_value(&ladder, 0.85), Grade::Pending);
        assert_eq!(streak.grade_value(&ladder, 0.96), Grade::Pending);
        assert_eq!(
            streak.grade_value(&ladder, 0.96),
            Grade::Raised {
                severity: Severity::High,
                threshold: Some(0.95)
            }
        );
        // Dropping below the high step restarts its count; medium keeps counting.
        assert_eq!(
            streak.grade_value(&ladder, 0.9),
            Grade::Raised {
                severity: Severity::Medium,
                threshold: Some(0.8)
            }
        );
        assert_eq!(
            streak.grade_value(&ladder, 0.97),
            Grade::Raised {
                severity: Severity::Medium,
                threshold: Some(0.8)
            }
        );
        assert_eq!(streak.grade_value(&ladder, 0.5), Grade::Healthy);
        assert_eq!(streak.grade_value(&ladder, 0.85), Grade::Pending);
    }

    #[test]
    fn the_threshold_is_inclusive() {
        let mut streak = Streak::starting(Timestamp::UNIX_EPOCH);
        let ladder = Ladder {
            low: Some(Step::new(0.5, 1)),
            ..Ladder::default()
        };
        assert_eq!(
            streak.grade_value(&ladder, 0.5),
            Grade::Raised {
                severity: Severity::Low,
                threshold: Some(0.5)
            }
        );
        assert_eq!(streak.grade_value(&ladder, 0.4999), Grade::Healthy);
    }

    #[test]
    fn a_condition_escalates_while_it_holds() {
        let mut streak = Streak::starting(Timestamp::UNIX_EPOCH);
        let policy = ConditionPolicy::new(Severity::Medium, 2).escalating_to(Severity::High, 3);
        assert_eq!(streak.grade_condition(&policy, true), Grade::Pending);
        let medium = Grade::Raised {
            severity: Severity::Medium,
            threshold: None,
        };
        assert_eq!(streak.grade_condition(&policy, true), medium);
        assert_eq!(
            streak.grade_condition(&policy, true),
            Grade::Raised {
                severity: Severity::High,
                threshold: None
            }
        );
        assert_eq!(streak.grade_condition(&policy, false), Grade::Healthy);
        assert_eq!(streak.grade_condition(&policy, true), Grade::Pending);
    }
}
