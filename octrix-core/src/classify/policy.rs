//! The [`SeverityPolicy`]: thresholds and durations per category.
//!
//! The defaults are tabulated in the [module docs](super#default-policy).
//! A category written in a configuration file replaces that category's
//! default as a whole (a `high_cpu` with only `medium` has no `high` step);
//! categories left out keep their defaults.

use serde::{Deserialize, Serialize};

use super::{Error, Severity};
use crate::time::SignedDuration;

const fn one_sample() -> u32 {
    1
}

const fn enabled() -> bool {
    true
}

/// One rung of a [`Ladder`]: a value at or above `threshold` for
/// `for_samples` consecutive samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The value to reach (inclusive).
    pub threshold: f64,
    /// Consecutive samples at or above it before the step applies; at least 1.
    #[serde(default = "one_sample")]
    pub for_samples: u32,
}

impl Step {
    /// A step at `threshold` for `for_samples` samples.
    pub const fn new(threshold: f64, for_samples: u32) -> Self {
        Self {
            threshold,
            for_samples,
        }
    }
}

/// Severity by a measured value: the highest step whose threshold has been
/// reached for its number of samples wins. A missing step is never reached.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ladder {
    /// Step to [`Severity::Low`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<Step>,
    /// Step to [`Severity::Medium`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<Step>,
    /// Step to [`Severity::High`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<Step>,
    /// Step to [`Severity::Critical`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<Step>,
}

impl Ladder {
    /// The step to `severity`, if there is one.
    pub fn step(&self, severity: Severity) -> Option<&Step> {
        match severity {
            Severity::Low => self.low.as_ref(),
            Severity::Medium => self.medium.as_ref(),
            Severity::High => self.high.as_ref(),
            Severity::Critical => self.critical.as_ref(),
        }
    }

    /// The steps present, lowest severity first.
    pub fn steps(&self) -> impl Iterator<Item = (Severity, &Step)> {
        Severity::ALL
            .into_iter()
            .filter_map(|severity| self.step(severity).map(|step| (severity, step)))
    }

    fn validate(&self, path: &str, range: ThresholdRange) -> Result<(), Error> {
        let mut lower: Option<(Severity, &Step)> = None;
        for (severity, step) in self.steps() {
            let field = format!("{path}.{severity}");
            if !range.contains(step.threshold) {
                return Err(Error::invalid(
                    format!("{field}.threshold"),
                    range.requirement(),
                ));
            }
            if step.for_samples == 0 {
                return Err(Error::invalid(
                    format!("{field}.for_samples"),
                    "must be at least 1",
                ));
            }
            if let Some((lower_severity, lower_step)) = lower {
                if step.threshold < lower_step.threshold {
                    return Err(Error::invalid(
                        format!("{field}.threshold"),
                        format!("must not be below {path}.{lower_severity}.threshold"),
                    ));
                }
                // Equal thresholds are a duration ladder ("above 80% for 3
                // samples medium, for 10 high"), so the higher step must wait longer.
                if step.threshold == lower_step.threshold
                    && step.for_samples <= lower_step.for_samples
                {
                    return Err(Error::invalid(
                        format!("{field}.for_samples"),
                        format!(
                            "must exceed {path}.{lower_severity}.for_samples when the thresholds are equal"
                        ),
                    ));
                }
            }
            lower = Some((severity, step));
        }
        Ok(())
    }
}

/// The values a ladder's thresholds may take.
#[derive(Debug, Clone, Copy)]
enum ThresholdRange {
    /// Ratios and scores: (0, 1].
    UnitInterval,
    /// Rates: positive and finite.
    Positive,
}

impl ThresholdRange {
    fn contains(self, value: f64) -> bool {
        match self {
            ThresholdRange::UnitInterval => value > 0.0 && value <= 1.0,
            ThresholdRange::Positive => value > 0.0 && value.is_finite(),
        }
    }

    fn requirement(self) -> &'static str {
        match self {
            ThresholdRange::UnitInterval => "must be within (0, 1]",
            ThresholdRange::Positive => "must be positive and finite",
        }
    }
}

/// Severity for a condition that either holds or not (a crash loop, a node
/// not ready): `severity` once it has held for `for_samples` consecutive
/// samples, and optionally a higher severity if it keeps holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionPolicy {
    /// Whether the category is raised at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Severity once the condition has held for `for_samples` samples.
    pub severity: Severity,
    /// Consecutive samples before it is raised; at least 1.
    #[serde(default = "one_sample")]
    pub for_samples: u32,
    /// A higher severity for a condition that lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

impl ConditionPolicy {
    /// Raised at `severity` after `for_samples` samples, never escalated.
    pub const fn new(severity: Severity, for_samples: u32) -> Self {
        Self {
            enabled: true,
            severity,
            for_samples,
            escalation: None,
        }
    }

    /// The same policy, escalated to `severity` after `after_samples`.
    pub const fn escalating_to(mut self, severity: Severity, after_samples: u32) -> Self {
        self.escalation = Some(Escalation {
            severity,
            after_samples,
        });
        self
    }

    /// The severity for a condition that has held for `samples` consecutive
    /// samples, or `None` while it has not held long enough.
    pub fn severity_after(&self, samples: u32) -> Option<Severity> {
        if !self.enabled || samples < self.for_samples {
            return None;
        }
        match self.escalation {
            Some(escalation) if samples >= escalation.after_samples => Some(escalation.severity),
            _ => Some(self.severity),
        }
    }

    fn validate(&self, path: &str) -> Result<(), Error> {
        if self.for_samples == 0 {
            return Err(Error::invalid(
                format!("{path}.for_samples"),
                "must be at least 1",
            ));
        }
        if let Some(escalation) = self.escalation {
            if escalation.severity <= self.severity {
                return Err(Error::invalid(
                    format!("{path}.escalation.severity"),
                    format!("must be above {path}.severity"),
                ));
            }
            if escalation.after_samples <= self.for_samples {
                return Err(Error::invalid(
                    format!("{path}.escalation.after_samples"),
                    format!("must exceed {path}.for_samples"),
                ));
            }
        }
        Ok(())
    }
}

/// A higher severity for a condition that keeps holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// The higher severity.
    pub severity: Severity,
    /// Consecutive samples before it applies.
    pub after_samples: u32,
}

/// Thresholds and durations for every category the
/// [`Classifier`](super::Classifier) raises.
///
/// Load it with serde from YAML or TOML (field names as below), then
/// [`validate`](SeverityPolicy::validate) it;
/// [`Classifier::new`](super::Classifier::new) validates too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeverityPolicy {
    /// `pod-crash`: a container waiting for a failure reason, or phase Failed.
    pub pod_crash: ConditionPolicy,
    /// `oom-killed`: a container whose current or previous run was OOM-killed.
    pub oom_killed: ConditionPolicy,
    /// `high-cpu`: CPU utilisation ratio, thresholds within (0, 1].
    pub high_cpu: Ladder,
    /// `high-memory`: memory utilisation ratio, thresholds within (0, 1].
    pub high_memory: Ladder,
    /// `persistent-restarts`: restarts per hour, thresholds positive.
    pub persistent_restarts: Ladder,
    /// How far back restart counts are compared to derive a rate.
    pub restart_window: SignedDuration,
    /// `node-not-ready`: Ready is False or Unknown.
    pub node_not_ready: ConditionPolicy,
    /// `node-pressure`: memory, disk or PID pressure.
    pub node_pressure: ConditionPolicy,
    /// `anomaly`: detector anomaly score, thresholds within (0, 1].
    pub anomaly: Ladder,
}

impl Default for SeverityPolicy {
    fn default() -> Self {
        Self {
            pod_crash: ConditionPolicy::new(Severity::Medium, 1).escalating_to(Severity::High, 10),
            oom_killed: ConditionPolicy::new(Severity::Medium, 1),
            high_cpu: Ladder {
                medium: Some(Step::new(0.80, 3)),
                high: Some(Step::new(0.95, 3)),
                ..Ladder::default()
            },
            high_memory: Ladder {
                medium: Some(Step::new(0.85, 3)),
                high: Some(Step::new(0.95, 3)),
                ..Ladder::default()
            },
            persistent_restarts: Ladder {
                medium: Some(Step::new(3.0, 1)),
                high: Some(Step::new(10.0, 1)),
                ..Ladder::default()
            },
            restart_window: SignedDuration::from_hours(1),
            node_not_ready: ConditionPolicy::new(Severity::Critical, 1),
            node_pressure: ConditionPolicy::new(Severity::Medium, 1)
                .escalating_to(Severity::High, 10),
            anomaly: Ladder {
                low: Some(Step::new(0.6, 1)),
                medium: Some(Step::new(0.8, 1)),
                high: Some(Step::new(0.95, 1)),
                critical: None,
            },
        }
    }
}

impl SeverityPolicy {
    /// Checks every threshold and duration; the error names the first
    /// offending field by its configuration path, e.g.
    /// `high_cpu.high.threshold must be within (0, 1]`.
    pub fn validate(&self) -> Result<(), Error> {
        self.pod_crash.validate("pod_crash")?;
        self.oom_killed.validate("oom_killed")?;
        self.high_cpu
            .validate("high_cpu", ThresholdRange::UnitInterval)?;
        self.high_memory
            .validate("high_memory", ThresholdRange::UnitInterval)?;
        self.persistent_restarts
            .validate("persistent_restarts", ThresholdRange::Positive)?;
        if self.restart_window <= SignedDuration::ZERO {
            return Err(Error::invalid("restart_window", "must be positive"));
        }
        self.node_not_ready.validate("node_not_ready")?;
        self.node_pressure.validate("node_pressure")?;
        self.anomaly
            .validate("anomaly", ThresholdRange::UnitInterval)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(policy: &SeverityPolicy) -> String {
        policy.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        SeverityPolicy::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_offending_field() {
        let mut policy = SeverityPolicy::default();
        policy.high_cpu.high = Some(Step::new(1.5, 3));
        assert_eq!(
            message(&policy),
            "high_cpu.high.threshold must be within (0, 1]"
        );

        let mut policy = SeverityPolicy::default();
        policy.high_memory.medium = Some(Step::new(0.0, 3));
        assert_eq!(
            message(&policy),
            "high_memory.medium.threshold must be within (0, 1]"
        );

        let mut policy = SeverityPolicy::default();
        policy.high_cpu.high = Some(Step::new(0.7, 3));
        assert_eq!(
            message(&policy),
            "high_cpu.high.threshold must not be below high_cpu.medium.threshold"
        );

        let mut policy = SeverityPolicy::default();
        policy.high_cpu.high = Some(Step::new(0.8, 3));
        assert_eq!(
            message(&policy),
            "high_cpu.high.for_samples must exceed high_cpu.medium.for_samples when the thresholds are equal"
        );

        let mut policy = SeverityPolicy::default();
        policy.persistent_restarts.high = Some(Step::new(f64::INFINITY, 1));
        assert_eq!(
            message(&policy),
            "persistent_restarts.high.threshold must be positive and finite"
        );

        let mut policy = SeverityPolicy::default();
        policy.anomaly.low = Some(Step::new(0.5, 0));
        assert_eq!(
            message(&policy),
            "anomaly.low.for_samples must be at least 1"
        );

        let policy = SeverityPolicy {
            node_pressure: ConditionPolicy::new(Severity::High, 2)
                .escalating_to(Severity::Medium, 5),
            ..SeverityPolicy::default()
        };
        assert_eq!(
            message(&policy),
            "node_pressure.escalation.severity must be above node_pressure.severity"
        );

        let policy = SeverityPolicy {
            pod_crash: ConditionPolicy::new(Severity::Medium, 5).escalating_to(Severity::High, 5),
            ..SeverityPolicy::default()
        };
        assert_eq!(
            message(&policy),
            "pod_crash.escalation.after_samples must exceed pod_crash.for_samples"
        );

        let policy = SeverityPolicy {
            restart_window: SignedDuration::ZERO,
            ..SeverityPolicy::default()
        };
        assert_eq!(message(&policy), "restart_window must be positive");
    }

    #[test]
    fn equal_thresholds_with_longer_duration_are_a_valid_ladder() {
        let mut policy = SeverityPolicy::default();
        policy.high_cpu.high = Some(Step::new(0.8, 10));
        policy.validate().unwrap();
    }

    #[test]
    fn condition_severity_follows_samples() {
        let policy = ConditionPolicy::new(Severity::Medium, 2).escalating_to(Severity::High, 4);
        assert_eq!(policy.severity_after(1), None);
        assert_eq!(policy.severity_after(2), Some(Severity::Medium));
        assert_eq!(policy.severity_after(3), Some(Severity::Medium));
        assert_eq!(policy.severity_after(4), Some(Severity::High));
        let disabled = ConditionPolicy {
            enabled: false,
            ..policy
        };
        assert_eq!(disabled.severity_after(10), None);
    }

    #[test]
    fn loads_from_yaml_with_defaults_for_missing_categories() {
        let yaml = r#"
high_cpu:
  medium: { threshold: 0.7, for_samples: 2 }
  high: { threshold: 0.9 }
node_not_ready: { severity: high, for_samples: 2 }
pod_crash:
  severity: low
  escalation: { severity: medium, after_samples: 4 }
restart_window: 30m
"#;
        let policy: SeverityPolicy = serde_norway::from_str(yaml).unwrap();
        policy.validate().unwrap();
        assert_eq!(policy.high_cpu.medium, Some(Step::new(0.7, 2)));
        assert_eq!(policy.high_cpu.high, Some(Step::new(0.9, 1)));
        assert_eq!(policy.high_cpu.critical, None);
        assert_eq!(
            policy.node_not_ready,
            ConditionPolicy::new(Severity::High, 2)
        );
        assert_eq!(
            policy.pod_crash,
            ConditionPolicy::new(Severity::Low, 1).escalating_to(Severity::Medium, 4)
        );
        assert_eq!(policy.restart_window, SignedDuration::from_mins(30));
        assert_eq!(policy.high_memory, SeverityPolicy::default().high_memory);
    }

    #[test]
    fn loads_from_toml_and_reports_the_bad_field() {
        let toml_text = r#"
restart_window = "2h"

[high_cpu.medium]
threshold = 0.8
for_samples = 3

[high_cpu.high]
threshold = 1.5

[anomaly.high]
threshold = 0.9
"#;
        let policy: SeverityPolicy = toml::from_str(toml_text).unwrap();
        assert_eq!(policy.restart_window, SignedDuration::from_hours(2));
        assert_eq!(policy.anomaly.low, None);
        assert_eq!(
            policy.validate().unwrap_err(),
            Error::InvalidPolicy {
                field: "high_cpu.high.threshold".into(),
                requirement: "must be within (0, 1]".into(),
            }
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let typo = "high_cpu:\n  meduim: { threshold: 0.7 }\n";
        let error = serde_norway::from_str::<SeverityPolicy>(typo).unwrap_err();
        assert!(error.to_string().contains("meduim"), "{error}");
    }

    #[test]
    fn the_default_policy_round_trips_through_yaml_and_toml() {
        let policy = SeverityPolicy::default();
        let yaml = serde_norway::to_string(&policy).unwrap();
        assert_eq!(
            serde_norway::from_str::<SeverityPolicy>(&yaml).unwrap(),
            policy
        );
        let toml_text = toml::to_string(&policy).unwrap();
        assert_eq!(
            toml::from_str::<SeverityPolicy>(&toml_text).unwrap(),
            policy
        );
    }
}
