//! Progressive delivery in the manner of Flagger and Argo Rollouts.
//!
//! A [`Canary`] moves traffic from a stable subset to a canary subset
//! through a plan of [`CanaryStep`]s: set a weight, pause (for a duration or
//! until resumed), or wait for a number of passed metric checks. While the
//! canary takes traffic, its metrics are checked every
//! [`AnalysisConfig::interval`] against the gates (success rate at least X,
//! p99 latency at most Y). Each failed check counts; one more than
//! [`AnalysisConfig::failure_limit`] rolls all traffic back to stable. A
//! check without traffic fails or is skipped, per [`NoTrafficPolicy`].
//!
//! The machine is pure: [`Canary::step`] takes the time and an
//! [`Observation`] and returns [`CanaryEvent`]s; [`Canary::traffic_rule`] is
//! the rule to apply. [`Canary::step_with_source`] is the thin async driver
//! that queries a [`MetricSource`] only when a check is due.
//!
//! ```
//! use octrix_core::Timestamp;
//! use octrix_core::metrics::ServiceMetrics;
//! use octrix_core::routing::canary::{
//!     AnalysisConfig, Canary, CanaryConfig, CanaryState, CanaryStep, NoTrafficPolicy,
//!     Observation,
//! };
//! use octrix_core::routing::{Destination, TrafficRule};
//! use octrix_core::time::SignedDuration;
//!
//! let rule = TrafficRule::weighted(
//!     "reviews",
//!     "bookinfo",
//!     vec![Destination::for_version("v1", 100), Destination::for_version("v2", 0)],
//! );
//! let config = CanaryConfig {
//!     stable_subset: "v1".into(),
//!     canary_subset: "v2".into(),
//!     steps: vec![CanaryStep::SetWeight(20), CanaryStep::Analysis { checks: 1 }],
//!     analysis: AnalysisConfig {
//!         interval: SignedDuration::from_secs(60),
//!         window_seconds: 60,
//!         failure_limit: 0,
//!         min_success_rate: Some(0.99),
//!         max_latency_p99_seconds: Some(0.5),
//!         min_request_rate: 1.0,
//!         no_traffic: NoTrafficPolicy::Fail,
//!     },
//!     progress_deadline: None,
//! };
//! let mut canary = Canary::new(config, rule).unwrap();
//! let t0 = Timestamp::from_second(1_700_000_000).unwrap();
//!
//! canary.step(t0, &Observation::NotMeasured); // starts, sets 20 %
//! assert_eq!(canary.traffic_rule().destinations[1].weight, 20);
//! canary.step(t0, &Observation::NotMeasured); // enters the analysis step
//! assert_eq!(canary.state(), CanaryState::Analysing);
//!
//! let t1 = t0 + SignedDuration::from_secs(60);
//! assert!(canary.is_check_due(t1));
//! let bad = ServiceMetrics {
//!     request_rate: 20.0,
//!     error_rate: Some(0.2),
//!     latency_p50_seconds: Some(0.05),
//!     latency_p99_seconds: Some(0.2),
//! };
//! canary.step(t1, &Observation::Measured(bad));
//! assert_eq!(canary.state(), CanaryState::RolledBack);
//! assert_eq!(canary.weights().stable, 100);
//! ```

mod analysis;
mod config;
mod machine;

pub use analysis::{CheckFailure, CheckOutcome, Observation};
pub use config::{AnalysisConfig, CanaryConfig, CanaryError, CanaryStep, NoTrafficPolicy};
pub use machine::{
    Canary, CanaryEvent, CanaryEventKind, CanaryState, CanaryWeights, TransitionReason,
};

use crate::Timestamp;
use crate::metrics::MetricSource;

impl Canary {
    /// [`step`](Self::step) with metrics from `source`, queried only when a
    /// check is due. A source error becomes [`Observation::Unavailable`],
    /// which counts as a failed check.
    pub async fn step_with_source(
        &mut self,
        now: Timestamp,
        source: &dyn MetricSource,
    ) -> Vec<CanaryEvent> {
        let observation = if self.is_check_due(now) {
            match source.service_metrics(&self.metric_selector()).await {
                Ok(metrics) => Observation::Measured(metrics),
                Err(error) => Observation::Unavailable {
                    reason: error.to_string(),
                },
            }
        } else {
            Observation::NotMeasured
        };
        self.step(now, &observation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ServiceMetrics;
    use crate::routing::rule::{Destination, FieldError, TrafficRule};
    use jiff::SignedDuration;

    fn rule() -> TrafficRule {
        TrafficRule::weighted(
            "reviews",
            "bookinfo",
            vec![
                Destination::for_version("v1", 100),
                Destination::for_version("v2", 0),
            ],
        )
    }

    fn config(steps: Vec<CanaryStep>) -> CanaryConfig {
        CanaryConfig {
            stable_subset: "v1".into(),
            canary_subset: "v2".into(),
            steps,
            analysis: AnalysisConfig {
                interval: SignedDuration::from_secs(60),
                window_seconds: 60,
                failure_limit: 1,
                min_success_rate: Some(0.99),
                max_latency_p99_seconds: Some(0.5),
                min_request_rate: 1.0,
                no_traffic: NoTrafficPolicy::Fail,
            },
            progress_deadline: None,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn good() -> Observation {
        Observation::Measured(ServiceMetrics {
            request_rate: 50.0,
            error_rate: Some(0.001),
            latency_p50_seconds: Some(0.02),
            latency_p99_seconds: Some(0.1),
        })
    }

    fn bad() -> Observation {
        Observation::Measured(ServiceMetrics {
            request_rate: 50.0,
            error_rate: Some(0.3),
            latency_p50_seconds: Some(0.02),
            latency_p99_seconds: Some(0.1),
        })
    }

    fn states(events: &[CanaryEvent]) -> Vec<CanaryState> {
        events
            .iter()
            .filter_map(|e| match e.kind {
                CanaryEventKind::StateChanged { to, .. } => Some(to),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn happy_path_walks_every_step_and_promotes() {
        let steps = vec![
            CanaryStep::SetWeight(10),
            CanaryStep::Pause(Some(SignedDuration::from_secs(120))),
            CanaryStep::SetWeight(50),
            CanaryStep::Analysis { checks: 2 },
        ];
        let mut canary = Canary::new(config(steps), rule()).unwrap();
        assert_eq!(
            canary.weights(),
            CanaryWeights {
                stable: 100,
                canary: 0
            }
        );

        let events = canary.step(at(0), &Observation::NotMeasured);
        assert_eq!(states(&events), [CanaryState::Progressing]);
        assert_eq!(canary.weights().canary, 10);
        assert!(events.iter().any(|e| e.kind
            == CanaryEventKind::WeightChanged {
                stable: 90,
                canary: 10
            }));

        canary.step(at(1), &Observation::NotMeasured);
        assert_eq!(canary.state(), CanaryState::Paused);
        // The pause started at 1 s; at 61 s a check is due and passes.
        let events = canary.step(at(61), &good());
        assert!(matches!(
            events[0].kind,
            CanaryEventKind::Checked {
                outcome: CheckOutcome::Passed { .. },
                failed_checks: 0
            }
        ));
        assert_eq!(canary.state(), CanaryState::Paused);
        canary.step(at(121), &Observation::NotMeasured);
        assert_eq!(canary.state(), CanaryState::Progressing);
        assert_eq!(canary.weights().canary, 50);

        canary.step(at(122), &Observation::NotMeasured);
        assert_eq!(canary.state(), CanaryState::Analysing);
        // Weight changed at 121 s: the first check is due at 181 s.
        assert!(!canary.is_check_due(at(180)));
        assert!(canary.is_check_due(at(181)));
        canary.step(at(181), &good());
        assert_eq!(canary.state(), CanaryState::Analysing);
        let events = canary.step(at(241), &good());
        assert_eq!(states(&events), [CanaryState::Promoting]);
        assert_eq!(
            canary.weights(),
            CanaryWeights {
                stable: 0,
                canary: 100
            }
        );
        let events = canary.step(at(242), &Observation::NotMeasured);
        assert_eq!(states(&events), [CanaryState::Succeeded]);
        assert!(canary.step(at(999), &bad()).is_empty());
        let rule = canary.traffic_rule();
        assert_eq!(
            (rule.destinations[0].weight, rule.destinations[1].weight),
            (0, 100)
        );
    }

    #[test]
    fn failures_beyond_the_limit_roll_back() {
        let steps = vec![
            CanaryStep::SetWeight(30),
            CanaryStep::Analysis { checks: 5 },
        ];
        let mut canary = Canary::new(config(steps), rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(60), &bad());
        assert_eq!(canary.failed_checks(), 1);
        assert_eq!(
            canary.state(),
            CanaryState::Analysing,
            "one failure is tolerated"
        );
        canary.step(at(120), &good());
        let events = canary.step(at(180), &bad());
        assert_eq!(canary.state(), CanaryState::RolledBack);
        assert_eq!(canary.weights().canary, 0);
        let last = events.last().unwrap();
        assert_eq!(
            last.kind,
            CanaryEventKind::StateChanged {
                from: CanaryState::Analysing,
                to: CanaryState::RolledBack,
                reason: TransitionReason::FailureLimitExceeded {
                    failed_checks: 2,
                    failure_limit: 1
                }
            }
        );
        assert_eq!(last.at, at(180));
    }

    #[test]
    fn no_traffic_fails_by_default_and_waits_when_skipped() {
        let silent = Observation::Measured(ServiceMetrics {
            request_rate: 0.0,
            error_rate: None,
            latency_p50_seconds: None,
            latency_p99_seconds: None,
        });
        let steps = vec![
            CanaryStep::SetWeight(10),
            CanaryStep::Analysis { checks: 1 },
        ];
        let mut canary = Canary::new(config(steps.clone()), rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(60), &silent);
        canary.step(at(120), &silent);
        assert_eq!(canary.state(), CanaryState::RolledBack);

        let mut skipping = config(steps);
        skipping.analysis.no_traffic = NoTrafficPolicy::Skip;
        let mut canary = Canary::new(skipping, rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(0), &Observation::NotMeasured);
        for minute in 1..10 {
            canary.step(at(60 * minute), &silent);
        }
        assert_eq!(canary.state(), CanaryState::Analysing);
        assert_eq!(canary.failed_checks(), 0);
        canary.step(at(600), &good());
        assert_eq!(canary.state(), CanaryState::Promoting);
    }

    #[test]
    fn a_due_check_waits_for_metrics() {
        let steps = vec![
            CanaryStep::SetWeight(10),
            CanaryStep::Analysis { checks: 1 },
        ];
        let mut canary = Canary::new(config(steps), rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(90), &Observation::NotMeasured);
        assert!(canary.is_check_due(at(90)));
        canary.step(at(91), &good());
        assert_eq!(canary.state(), CanaryState::Promoting);
    }

    #[test]
    fn indefinite_pause_waits_for_resume() {
        let steps = vec![CanaryStep::SetWeight(10), CanaryStep::Pause(None)];
        let mut canary = Canary::new(config(steps), rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(1), &Observation::NotMeasured);
        canary.step(at(10_000), &Observation::NotMeasured);
        assert_eq!(canary.state(), CanaryState::Paused);
        assert_eq!(canary.current_step(), Some((1, &CanaryStep::Pause(None))));
        let events = canary.resume(at(10_001));
        assert_eq!(states(&events), [CanaryState::Promoting]);
        assert!(canary.resume(at(10_002)).is_empty());
    }

    #[test]
    fn deadline_abort_and_manual_promotion() {
        let steps = vec![CanaryStep::SetWeight(10), CanaryStep::Pause(None)];
        let mut with_deadline = config(steps.clone());
        with_deadline.progress_deadline = Some(SignedDuration::from_secs(600));
        let mut canary = Canary::new(with_deadline, rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.step(at(599), &Observation::NotMeasured);
        assert_eq!(canary.state(), CanaryState::Paused);
        let events = canary.step(at(600), &Observation::NotMeasured);
        assert_eq!(states(&events), [CanaryState::Failed]);
        assert_eq!(canary.weights().canary, 0);

        let mut canary = Canary::new(config(steps.clone()), rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        let events = canary.abort(at(5), "bad release");
        assert_eq!(
            events.last().unwrap().kind,
            CanaryEventKind::StateChanged {
                from: CanaryState::Progressing,
                to: CanaryState::Failed,
                reason: TransitionReason::Aborted {
                    reason: "bad release".into()
                }
            }
        );
        assert!(canary.abort(at(6), "again").is_empty());

        let mut canary = Canary::new(config(steps), rule()).unwrap();
        canary.step(at(0), &Observation::NotMeasured);
        canary.promote(at(1));
        assert_eq!(canary.state(), CanaryState::Promoting);
        assert_eq!(canary.weights().canary, 100);
    }

    #[test]
    fn configuration_errors_name_their_fields() {
        let mut bad = config(vec![
            CanaryStep::SetWeight(120),
            CanaryStep::Pause(Some(SignedDuration::ZERO)),
            CanaryStep::Analysis { checks: 0 },
        ]);
        bad.canary_subset = "v3".into();
        bad.analysis.min_success_rate = Some(1.5);
        bad.analysis.interval = SignedDuration::ZERO;
        let error = Canary::new(bad, rule()).unwrap_err();
        let fields: Vec<&str> = error
            .field_errors()
            .iter()
            .map(|e: &FieldError| e.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "canary_subset",
                "steps[0].set_weight",
                "steps[1].pause.duration",
                "steps[2].analysis.checks",
                "analysis.interval",
                "analysis.min_success_rate",
            ]
        );
    }

    #[test]
    fn events_and_state_round_trip_through_json() {
        let steps = vec![
            CanaryStep::SetWeight(30),
            CanaryStep::Analysis { checks: 5 },
        ];
        let mut canary = Canary::new(config(steps), rule()).unwrap();
        let mut events = canary.step(at(0), &Observation::NotMeasured);
        events.extend(canary.step(at(0), &Observation::NotMeasured));
        events.extend(canary.step(at(60), &good()));
        events.extend(canary.step(at(120), &bad()));
        let silent = Observation::Measured(ServiceMetrics {
            request_rate: 0.0,
            error_rate: None,
            latency_p50_seconds: None,
            latency_p99_seconds: None,
        });
        events.extend(canary.step(at(180), &silent));
        assert_eq!(canary.state(), CanaryState::RolledBack);
        let json = serde_json::to_string(&events).unwrap();
        assert!(
            json.contains(
                r#"{"result":"failed","type":"no_traffic","request_rate":0.0},"failed_checks":2"#
            ),
            "{json}"
        );
        let back: Vec<CanaryEvent> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, events);
        let saved = serde_json::to_string(&canary).unwrap();
        assert_eq!(serde_json::from_str::<Canary>(&saved).unwrap(), canary);
    }

    #[test]
    fn config_reads_argo_like_yaml() {
        let yaml = "\
stable_subset: v1
canary_subset: v2
steps:
- set_weight: 10
- pause: {duration: 5m}
- analysis: {checks: 3}
- pause: {}
analysis:
  interval: 1m
  window_seconds: 60
  failure_limit: 2
  min_success_rate: 0.99
progress_deadline: 1h
";
        let parsed: CanaryConfig = serde_norway::from_str(yaml).unwrap();
        assert_eq!(
            parsed.steps,
            [
                CanaryStep::SetWeight(10),
                CanaryStep::Pause(Some(SignedDuration::from_mins(5))),
                CanaryStep::Analysis { checks: 3 },
                CanaryStep::Pause(None),
            ]
        );
        assert_eq!(parsed.analysis.no_traffic, NoTrafficPolicy::Fail);
        assert_eq!(
            parsed.progress_deadline,
            Some(SignedDuration::from_hours(1))
        );
        let rendered = serde_norway::to_string(&parsed).unwrap();
        assert!(
            rendered.contains("- set_weight: 10\n- pause:\n    duration: 5m\n"),
            "{rendered}"
        );
        assert_eq!(
            serde_norway::from_str::<CanaryConfig>(&rendered).unwrap(),
            parsed
        );
        let two_keys = yaml.replace(
            "- set_weight: 10",
            "- {set_weight: 10, analysis: {checks: 1}}",
        );
        assert!(serde_norway::from_str::<CanaryConfig>(&two_keys).is_err());
    }
}
