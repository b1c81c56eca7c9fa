//! What a user writes to describe a canary: steps, metric gates and limits.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::routing::rule::{FieldError, FieldErrors, TrafficRule};

/// A canary: which subsets are stable and new, the steps from 0 % to
/// promotion, and how the new version is judged on the way.
///
/// In YAML:
///
/// ```yaml
/// stable_subset: v1
/// canary_subset: v2
/// steps:
/// - set_weight: 10
/// - pause: {duration: 5m}
/// - set_weight: 50
/// - analysis: {checks: 3}
/// - pause: {}              # until resumed by an operator
/// analysis:
///   interval: 1m
///   window_seconds: 60
///   failure_limit: 2
///   min_success_rate: 0.99
///   max_latency_p99_seconds: 0.5
/// progress_deadline: 1h
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The subset serving production traffic now.
    pub stable_subset: String,
    /// The subset of the new version.
    pub canary_subset: String,
    /// The plan, executed in order; promotion follows the last step.
    pub steps: Vec<CanaryStep>,
    /// Metric gates and how often they are checked.
    pub analysis: AnalysisConfig,
    /// The canary fails (and returns all traffic to stable) when it has not
    /// finished this long after it started.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "jiff::fmt::serde::duration::friendly::compact::optional"
    )]
    pub progress_deadline: Option<SignedDuration>,
}

/// One step of a canary's plan, written like Argo Rollouts' steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StepFields", into = "StepFields")]
pub enum CanaryStep {
    /// Send this percentage of the traffic to the canary (0 to 100).
    SetWeight(u32),
    /// Wait this long, or until [`resume`](super::Canary::resume)d when
    /// `None`. Metrics are still checked while paused.
    Pause(Option<SignedDuration>),
    /// Wait until this many metric checks have passed.
    Analysis {
        /// Passed checks needed to go on (at least 1).
        checks: u32,
    },
}

/// The wire form of [`CanaryStep`]: a map with exactly one key, so that YAML
/// reads `- set_weight: 20` rather than serde's `- !set_weight 20`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set_weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pause: Option<PauseFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    analysis: Option<AnalysisStepFields>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseFields {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "jiff::fmt::serde::duration::friendly::compact::optional"
    )]
    duration: Option<SignedDuration>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisStepFields {
    checks: u32,
}

impl TryFrom<StepFields> for CanaryStep {
    type Error = String;

    fn try_from(fields: StepFields) -> Result<Self, Self::Error> {
        match (fields.set_weight, fields.pause, fields.analysis) {
            (Some(weight), None, None) => Ok(CanaryStep::SetWeight(weight)),
            (None, Some(pause), None) => Ok(CanaryStep::Pause(pause.duration)),
            (None, None, Some(analysis)) => Ok(CanaryStep::Analysis {
                checks: analysis.checks,
            }),
            _ => Err("a canary step needs exactly one of set_weight, pause or analysis".to_owned()),
        }
    }
}

impl From<CanaryStep> for StepFields {
    fn from(step: CanaryStep) -> Self {
        let mut fields = StepFields {
            set_weight: None,
            pause: None,
            analysis: None,
        };
        match step {
            CanaryStep::SetWeight(weight) => fields.set_weight = Some(weight),
            CanaryStep::Pause(duration) => fields.pause = Some(PauseFields { duration }),
            CanaryStep::Analysis { checks } => {
                fields.analysis = Some(AnalysisStepFields { checks })
            }
        }
        fields
    }
}

/// Metric gates and the rhythm of checks, like Flagger's `analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Time between two metric checks.
    #[serde(serialize_with = "jiff::fmt::serde::duration::friendly::compact::required")]
    pub interval: SignedDuration,
    /// Look-back window of each metric query, in seconds.
    pub window_seconds: u32,
    /// Failed checks tolerated; one more rolls the canary back. 0 means the
    /// first failed check does.
    pub failure_limit: u32,
    /// The canary's success rate (1 - error rate) must be at least this, in
    /// [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_success_rate: Option<f64>,
    /// The canary's p99 latency must be at most this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_p99_seconds: Option<f64>,
    /// Below this many requests per second the canary counts as receiving
    /// no traffic, and its rates mean nothing.
    #[serde(default)]
    pub min_request_rate: f64,
    /// What a check without traffic counts as.
    #[serde(default)]
    pub no_traffic: NoTrafficPolicy,
}

/// How a check without traffic counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoTrafficPolicy {
    /// As a failed check (Flagger's behaviour): a canary nobody calls has
    /// proven nothing.
    #[default]
    Fail,
    /// As no check at all: an analysis step waits for traffic.
    Skip,
}

/// Why a canary could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CanaryError {
    /// The configuration or its traffic rule is invalid; all problems are
    /// listed.
    #[error("canary for {service} is invalid: {}", FieldErrors(.errors))]
    Invalid {
        /// The service of the traffic rule.
        service: String,
        /// Every problem found.
        errors: Vec<FieldError>,
    },
}

impl CanaryError {
    /// The field-level problems.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            CanaryError::Invalid { errors, .. } => errors,
        }
    }
}

impl CanaryConfig {
    /// Checks the configuration against the traffic rule it will drive: the
    /// rule must be valid and have exactly the stable and canary subsets.
    pub fn validate(&self, rule: &TrafficRule) -> Result<(), CanaryError> {
        let mut errors = Vec::new();
        if let Err(error) = rule.validate() {
            errors.extend(error.field_errors().iter().map(|e| FieldError {
                field: format!("rule.{}", e.field),
                message: e.message.clone(),
            }));
        }
        self.subset_errors(rule, &mut errors);
        self.step_errors(&mut errors);
        self.analysis_errors(&mut errors);
        if let Some(deadline) = self.progress_deadline
            && deadline <= SignedDuration::ZERO
        {
            errors.push(FieldError::new(
                "progress_deadline",
                format!("must be positive, got {deadline:#}"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CanaryError::Invalid {
                service: rule.service.clone(),
                errors,
            })
        }
    }

    fn subset_errors(&self, rule: &TrafficRule, errors: &mut Vec<FieldError>) {
        for (field, subset) in [
            ("stable_subset", &self.stable_subset),
            ("canary_subset", &self.canary_subset),
        ] {
            if rule.destination(subset).is_none() {
                errors.push(FieldError::new(
                    field,
                    format!("{subset:?} is not one of the rule's destinations"),
                ));
            }
        }
        if self.stable_subset == self.canary_subset {
            errors.push(FieldError::new(
                "canary_subset",
                "must differ from stable_subset",
            ));
        }
        if rule.destinations.len() != 2 {
            // The canary moves weight between two subsets only; a third
            // destination's share would have no owner.
            errors.push(FieldError::new(
                "rule.destinations",
                format!(
                    "a canary's rule must have exactly the stable and canary destinations, it has {}",
                    rule.destinations.len()
                ),
            ));
        }
    }

    fn step_errors(&self, errors: &mut Vec<FieldError>) {
        if self.steps.is_empty() {
            errors.push(FieldError::new("steps", "must list at least one step"));
        }
        for (i, step) in self.steps.iter().enumerate() {
            match *step {
                CanaryStep::SetWeight(weight) if weight > 100 => errors.push(FieldError::new(
                    format!("steps[{i}].set_weight"),
                    format!("must be at most 100, got {weight}"),
                )),
                CanaryStep::Pause(Some(duration)) if duration <= SignedDuration::ZERO => errors
                    .push(FieldError::new(
                        format!("steps[{i}].pause.duration"),
                        format!("must be positive, got {duration:#}"),
                    )),
                CanaryStep::Analysis { checks: 0 } => errors.push(FieldError::new(
                    format!("steps[{i}].analysis.checks"),
                    "must be at least 1",
                )),
                _ => {}
            }
        }
    }

    fn analysis_errors(&self, errors: &mut Vec<FieldError>) {
        let analysis = &self.analysis;
        let field = |name: &str| format!("analysis.{name}");
        if analysis.interval <= SignedDuration::ZERO {
            errors.push(FieldError::new(
                field("interval"),
                format!("must be positive, got {:#}", analysis.interval),
            ));
        }
        if analysis.window_seconds == 0 {
            errors.push(FieldError::new(
                field("window_seconds"),
                "must be at least 1",
            ));
        }
        if let Some(rate) = analysis.min_success_rate
            && !(0.0..=1.0).contains(&rate)
        {
            errors.push(FieldError::new(
                field("min_success_rate"),
                format!("must be in [0, 1], got {rate}"),
            ));
        }
        if let Some(latency) = analysis.max_latency_p99_seconds
            && !(latency.is_finite() && latency > 0.0)
        {
            errors.push(FieldError::new(
                field("max_latency_p99_seconds"),
                format!("must be a positive number of seconds, got {latency}"),
            ));
        }
        if !(analysis.min_request_rate.is_finite() && analysis.min_request_rate >= 0.0) {
            errors.push(FieldError::new(
                field("min_request_rate"),
                format!("must be at least 0, got {}", analysis.min_request_rate),
            ));
        }
    }
}
