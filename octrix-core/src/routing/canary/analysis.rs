//! Metric gates: one check of a canary's metrics against its
//! [`AnalysisConfig`].

use serde::{Deserialize, Serialize};

use super::config::{AnalysisConfig, NoTrafficPolicy};
use crate::metrics::ServiceMetrics;

/// What the caller observed of the canary's traffic for one
/// [`Canary::step`](super::Canary::step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Observation {
    /// Nothing was measured for this step (no check was due); a due check
    /// waits for the next step that brings metrics.
    NotMeasured,
    /// The canary subset's metrics over the analysis window.
    Measured(ServiceMetrics),
    /// The metric source could not answer; counts as a failed check, as in
    /// Flagger, so that a blind canary cannot progress.
    Unavailable {
        /// The source's error.
        reason: String,
    },
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckFailure {
    /// The canary received (almost) no traffic.
    NoTraffic {
        /// Requests per second observed.
        request_rate: f64,
    },
    /// Too many requests failed.
    SuccessRateTooLow {
        /// Observed success rate.
        observed: f64,
        /// The gate.
        minimum: f64,
    },
    /// The p99 latency is over the gate.
    LatencyTooHigh {
        /// Observed p99 latency, in seconds.
        observed_seconds: f64,
        /// The gate, in seconds.
        maximum_seconds: f64,
    },
    /// A gate needs a value the source did not report.
    MissingMetric {
        /// Which metric, e.g. `latency_p99_seconds`.
        metric: String,
    },
    /// A reported value is not a number or out of range.
    InvalidMetric {
        /// Which metric.
        metric: String,
        /// The value.
        value: f64,
    },
    /// The metric source could not answer.
    MetricsUnavailable {
        /// The source's error.
        reason: String,
    },
}

/// The outcome of one check. Serialised with a `result` tag, so that a
/// failure's own `type` tag sits beside it:
/// `{"result": "failed", "type": "no_traffic", "request_rate": 0.0}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Every gate held.
    Passed {
        /// Observed success rate, when there is a success-rate gate.
        success_rate: Option<f64>,
        /// Observed p99 latency, when there is a latency gate.
        latency_p99_seconds: Option<f64>,
    },
    /// A gate did not hold.
    Failed(CheckFailure),
    /// No traffic, and [`NoTrafficPolicy::Skip`] says not to count it.
    Skipped {
        /// Requests per second observed.
        request_rate: f64,
    },
}

impl AnalysisConfig {
    /// Checks `observation` against the gates. `None` for
    /// [`Observation::NotMeasured`]: there is nothing to judge.
    pub fn evaluate(&self, observation: &Observation) -> Option<CheckOutcome> {
        match observation {
            Observation::NotMeasured => None,
            Observation::Unavailable { reason } => {
                Some(CheckOutcome::Failed(CheckFailure::MetricsUnavailable {
                    reason: reason.clone(),
                }))
            }
            Observation::Measured(metrics) => Some(self.evaluate_metrics(metrics)),
        }
    }

    fn evaluate_metrics(&self, metrics: &ServiceMetrics) -> CheckOutcome {
        let request_rate = metrics.request_rate;
        if request_rate.is_nan() || request_rate < 0.0 {
            return CheckOutcome::Failed(invalid("request_rate", request_rate));
        }
        // A source reports no error rate exactly when there was no traffic.
        if request_rate == 0.0
            || request_rate < self.min_request_rate
            || metrics.error_rate.is_none()
        {
            return match self.no_traffic {
                NoTrafficPolicy::Fail => {
                    CheckOutcome::Failed(CheckFailure::NoTraffic { request_rate })
                }
                NoTrafficPolicy::Skip => CheckOutcome::Skipped { request_rate },
            };
        }
        let success_rate = match (self.min_success_rate, metrics.error_rate) {
            (Some(minimum), Some(error_rate)) => {
                if !(0.0..=1.0).contains(&error_rate) {
                    return CheckOutcome::Failed(invalid("error_rate", error_rate));
                }
                let observed = 1.0 - error_rate;
                if observed < minimum {
                    return CheckOutcome::Failed(CheckFailure::SuccessRateTooLow {
                        observed,
                        minimum,
                    });
                }
                Some(observed)
            }
            _ => None,
        };
        let latency_p99_seconds = match self.max_latency_p99_seconds {
            Some(maximum) => {
                let Some(observed) = metrics.latency_p99_seconds else {
                    return CheckOutcome::Failed(CheckFailure::MissingMetric {
                        metric: "latency_p99_seconds".to_owned(),
                    });
                };
                if observed.is_nan() || observed < 0.0 {
                    return CheckOutcome::Failed(invalid("latency_p99_seconds", observed));
                }
                if observed > maximum {
                    return CheckOutcome::Failed(CheckFailure::LatencyTooHigh {
                        observed_seconds: observed,
                        maximum_seconds: maximum,
                    });
                }
                Some(observed)
            }
            None => None,
        };
        CheckOutcome::Passed {
            success_rate,
            latency_p99_seconds,
        }
    }
}

fn invalid(metric: &str, value: f64) -> CheckFailure {
    CheckFailure::InvalidMetric {
        metric: metric.to_owned(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn config(no_traffic: NoTrafficPolicy) -> AnalysisConfig {
        AnalysisConfig {
            interval: SignedDuration::from_secs(60),
            window_seconds: 60,
            failure_limit: 1,
            min_success_rate: Some(0.99),
            max_latency_p99_seconds: Some(0.5),
            min_request_rate: 1.0,
            no_traffic,
        }
    }

    fn measured(rate: f64, errors: Option<f64>, p99: Option<f64>) -> Observation {
        Observation::Measured(ServiceMetrics {
            request_rate: rate,
            error_rate: errors,
            latency_p50_seconds: p99.map(|p| p / 2.0),
            latency_p99_seconds: p99,
        })
    }

    #[test]
    fn healthy_metrics_pass_with_observed_values() {
        let outcome =
            config(NoTrafficPolicy::Fail).evaluate(&measured(10.0, Some(0.005), Some(0.2)));
        assert_eq!(
            outcome,
            Some(CheckOutcome::Passed {
                success_rate: Some(0.995),
                latency_p99_seconds: Some(0.2)
            })
        );
    }

    #[test]
    fn each_gate_fails_on_its_own() {
        let gates = config(NoTrafficPolicy::Fail);
        assert_eq!(
            gates.evaluate(&measured(10.0, Some(0.05), Some(0.2))),
            Some(CheckOutcome::Failed(CheckFailure::SuccessRateTooLow {
                observed: 0.95,
                minimum: 0.99
            }))
        );
        assert_eq!(
            gates.evaluate(&measured(10.0, Some(0.0), Some(0.8))),
            Some(CheckOutcome::Failed(CheckFailure::LatencyTooHigh {
                observed_seconds: 0.8,
                maximum_seconds: 0.5
            }))
        );
        assert_eq!(
            gates.evaluate(&measured(10.0, Some(0.0), None)),
            Some(CheckOutcome::Failed(CheckFailure::MissingMetric {
                metric: "latency_p99_seconds".into()
            }))
        );
        assert!(matches!(
            gates.evaluate(&measured(10.0, Some(f64::NAN), Some(0.1))),
            Some(CheckOutcome::Failed(CheckFailure::InvalidMetric { .. }))
        ));
    }

    #[test]
    fn no_traffic_fails_or_skips_by_policy() {
        let quiet = measured(0.5, Some(0.0), Some(0.1));
        assert_eq!(
            config(NoTrafficPolicy::Fail).evaluate(&quiet),
            Some(CheckOutcome::Failed(CheckFailure::NoTraffic {
                request_rate: 0.5
            }))
        );
        assert_eq!(
            config(NoTrafficPolicy::Skip).evaluate(&quiet),
            Some(CheckOutcome::Skipped { request_rate: 0.5 })
        );
        let silent = measured(0.0, None, None);
        assert_eq!(
            config(NoTrafficPolicy::Skip).evaluate(&silent),
            Some(CheckOutcome::Skipped { request_rate: 0.0 })
        );
    }

    #[test]
    fn unavailable_fails_and_not_measured_is_no_check() {
        let gates = config(NoTrafficPolicy::Skip);
        assert_eq!(gates.evaluate(&Observation::NotMeasured), None);
        assert_eq!(
            gates.evaluate(&Observation::Unavailable {
                reason: "timeout".into()
            }),
            Some(CheckOutcome::Failed(CheckFailure::MetricsUnavailable {
                reason: "timeout".into()
            }))
        );
    }
}
