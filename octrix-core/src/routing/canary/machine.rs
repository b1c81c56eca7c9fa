//! The canary state machine: pure, driven by [`Canary::step`] with the time
//! and what was observed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::analysis::{CheckOutcome, Observation};
use super::config::{CanaryConfig, CanaryError, CanaryStep};
use crate::metrics::ServiceSelector;
use crate::routing::rule::TrafficRule;

/// Where a canary is in its life.
///
/// ```text
/// Initialized ─▶ Progressing ⇄ Paused ⇄ Analysing ─▶ Promoting ─▶ Succeeded
///                    │            │          │
///                    └────────────┴──────────┴──▶ RolledBack (failure limit)
///                                               ▶ Failed (deadline, abort)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryState {
    /// Created; no traffic on the canary yet.
    Initialized,
    /// A weight step was just applied; the next step follows at the next
    /// [`Canary::step`].
    Progressing,
    /// Waiting for a pause to end (or for [`Canary::resume`]).
    Paused,
    /// Waiting for an analysis step's checks to pass.
    Analysing,
    /// Every step passed; all traffic is on the canary.
    Promoting,
    /// Promotion applied. Terminal.
    Succeeded,
    /// Too many checks failed; all traffic is back on stable. Terminal.
    RolledBack,
    /// Aborted or past its deadline; all traffic is back on stable. Terminal.
    Failed,
}

impl CanaryState {
    /// Whether the canary is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CanaryState::Succeeded | CanaryState::RolledBack | CanaryState::Failed
        )
    }
}

/// Why the state changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransitionReason {
    /// The first step started.
    Started,
    /// Step `index` started.
    StepStarted {
        /// Position of the step.
        index: usize,
    },
    /// The last step completed.
    StepsCompleted,
    /// An operator promoted the canary before its steps completed.
    ManualPromotion,
    /// The promoted weights were applied.
    PromotionApplied,
    /// More checks failed than the limit tolerates.
    FailureLimitExceeded {
        /// Failed checks so far.
        failed_checks: u32,
        /// The configured limit.
        failure_limit: u32,
    },
    /// The canary did not finish within its progress deadline.
    DeadlineExceeded,
    /// An operator aborted the canary.
    Aborted {
        /// The operator's reason.
        reason: String,
    },
}

/// What happened during one call on a [`Canary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CanaryEventKind {
    /// The state changed.
    StateChanged {
        /// Previous state.
        from: CanaryState,
        /// New state.
        to: CanaryState,
        /// Why.
        reason: TransitionReason,
    },
    /// A step of the plan started.
    StepStarted {
        /// Position of the step.
        index: usize,
        /// The step.
        step: CanaryStep,
    },
    /// The desired weights changed; apply [`Canary::traffic_rule`].
    WeightChanged {
        /// Stable's new share, in percent.
        stable: u32,
        /// The canary's new share, in percent.
        canary: u32,
    },
    /// The metrics were checked.
    Checked {
        /// The result.
        outcome: CheckOutcome,
        /// Failed checks so far, this one included.
        failed_checks: u32,
    },
}

/// One event, with when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryEvent {
    /// The time passed to the call that produced it.
    pub at: Timestamp,
    /// What happened.
    pub kind: CanaryEventKind,
}

/// The split a canary wants now; the two always sum to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CanaryWeights {
    /// Stable's share, in percent.
    pub stable: u32,
    /// The canary's share, in percent.
    pub canary: u32,
}

/// A canary in progress; see the [module docs](super).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    config: CanaryConfig,
    rule: TrafficRule,
    state: CanaryState,
    step_index: usize,
    canary_weight: u32,
    started_at: Option<Timestamp>,
    step_started_at: Option<Timestamp>,
    next_check_at: Option<Timestamp>,
    failed_checks: u32,
    passed_checks_in_step: u32,
}

impl Canary {
    /// A canary that will drive `rule` (whose destinations are the stable and
    /// canary subsets) through `config`'s steps. It starts with all traffic
    /// on stable, whatever the rule's weights.
    pub fn new(config: CanaryConfig, rule: TrafficRule) -> Result<Self, CanaryError> {
        config.validate(&rule)?;
        Ok(Self {
            config,
            rule,
            state: CanaryState::Initialized,
            step_index: 0,
            canary_weight: 0,
            started_at: None,
            step_started_at: None,
            next_check_at: None,
            failed_checks: 0,
            passed_checks_in_step: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CanaryConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> CanaryState {
        self.state
    }

    /// The split wanted now.
    pub fn weights(&self) -> CanaryWeights {
        CanaryWeights {
            stable: 100 - self.canary_weight,
            canary: self.canary_weight,
        }
    }

    /// The traffic rule with the wanted weights, ready for
    /// [`TrafficRule::to_istio`].
    pub fn traffic_rule(&self) -> TrafficRule {
        let weights = self.weights();
        let mut rule = self.rule.clone();
        for destination in &mut rule.destinations {
            destination.weight = if destination.subset == self.config.canary_subset {
                weights.canary
            } else {
                weights.stable
            };
        }
        rule
    }

    /// Failed checks so far.
    pub fn failed_checks(&self) -> u32 {
        self.failed_checks
    }

    /// The step being executed and its position, if any.
    pub fn current_step(&self) -> Option<(usize, &CanaryStep)> {
        match self.state {
            CanaryState::Progressing | CanaryState::Paused | CanaryState::Analysing => self
                .config
                .steps
                .get(self.step_index)
                .map(|step| (self.step_index, step)),
            _ => None,
        }
    }

    /// When the canary started, once it has.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }

    /// When the next metric check is due, if one is scheduled.
    pub fn next_check_at(&self) -> Option<Timestamp> {
        self.next_check_at
    }

    /// Whether the next [`step`](Self::step) at `now` will check metrics, so
    /// that a driver queries its source only then.
    pub fn is_check_due(&self, now: Timestamp) -> bool {
        let checking_state = match self.state {
            CanaryState::Analysing => true,
            // Outside analysis steps metrics are watched only while the
            // canary takes traffic: at 0 % there is nothing to see.
            CanaryState::Progressing | CanaryState::Paused => self.canary_weight > 0,
            _ => false,
        };
        checking_state && self.next_check_at.is_some_and(|due| now >= due)
    }

    /// What the metric source should be asked for: the canary subset's
    /// traffic over the analysis window.
    pub fn metric_selector(&self) -> ServiceSelector {
        ServiceSelector {
            namespace: self.rule.namespace.clone(),
            service: self.rule.service.clone(),
            version: Some(self.config.canary_subset.clone()),
            window_seconds: self.config.analysis.window_seconds,
        }
    }

    /// Advances the canary to `now` given what was observed of its traffic,
    /// and returns what happened. Applies at most one new weight per call, so
    /// that the caller can apply [`traffic_rule`](Self::traffic_rule) before
    /// the next one.
    pub fn step(&mut self, now: Timestamp, observation: &Observation) -> Vec<CanaryEvent> {
        let mut events = Vec::new();
        match self.state {
            CanaryState::Succeeded | CanaryState::RolledBack | CanaryState::Failed => {
                return events;
            }
            CanaryState::Initialized => {
                self.started_at = Some(now);
                self.enter_step(0, now, TransitionReason::Started, &mut events);
                return events;
            }
            CanaryState::Promoting => {
                self.transition(
                    CanaryState::Succeeded,
                    TransitionReason::PromotionApplied,
                    now,
                    &mut events,
                );
                return events;
            }
            CanaryState::Progressing | CanaryState::Paused | CanaryState::Analysing => {}
        }
        if self.deadline_passed(now) {
            self.back_to_stable(
                CanaryState::Failed,
                TransitionReason::DeadlineExceeded,
                now,
                &mut events,
            );
            return events;
        }
        if self.is_check_due(now)
            && let Some(outcome) = self.config.analysis.evaluate(observation)
        {
            self.record_check(outcome, now, &mut events);
            if self.state.is_terminal() {
                return events;
            }
        }
        // `get` rather than indexing: a canary restored from storage may
        // carry a step index its configuration does not have, and then the
        // plan is simply over.
        let step_done = match (self.state, self.config.steps.get(self.step_index)) {
            (_, None) => true,
            (CanaryState::Progressing, Some(_)) => true,
            (CanaryState::Paused, Some(CanaryStep::Pause(Some(duration)))) => self
                .step_started_at
                .and_then(|start| start.checked_add(*duration).ok())
                .is_none_or(|end| now >= end),
            (CanaryState::Analysing, Some(CanaryStep::Analysis { checks })) => {
                self.passed_checks_in_step >= *checks
            }
            _ => false,
        };
        if step_done {
            let next = self.step_index + 1;
            self.enter_step(
                next,
                now,
                TransitionReason::StepStarted { index: next },
                &mut events,
            );
        }
        events
    }

    /// Ends a pause, timed or not, as an operator would with
    /// `kubectl argo rollouts promote`. Does nothing outside a pause.
    pub fn resume(&mut self, now: Timestamp) -> Vec<CanaryEvent> {
        let mut events = Vec::new();
        if self.state == CanaryState::Paused {
            let next = self.step_index + 1;
            self.enter_step(
                next,
                now,
                TransitionReason::StepStarted { index: next },
                &mut events,
            );
        }
        events
    }

    /// Skips the remaining steps and promotes. Does nothing once promoting or
    /// over.
    pub fn promote(&mut self, now: Timestamp) -> Vec<CanaryEvent> {
        let mut events = Vec::new();
        if !self.state.is_terminal() && self.state != CanaryState::Promoting {
            self.set_canary_weight(100, now, &mut events);
            self.transition(
                CanaryState::Promoting,
                TransitionReason::ManualPromotion,
                now,
                &mut events,
            );
        }
        events
    }

    /// Stops the canary and returns all traffic to stable. Does nothing once
    /// over.
    pub fn abort(&mut self, now: Timestamp, reason: impl Into<String>) -> Vec<CanaryEvent> {
        let mut events = Vec::new();
        if !self.state.is_terminal() {
            let reason = TransitionReason::Aborted {
                reason: reason.into(),
            };
            self.back_to_stable(CanaryState::Failed, reason, now, &mut events);
        }
        events
    }

    fn deadline_passed(&self, now: Timestamp) -> bool {
        match (self.config.progress_deadline, self.started_at) {
            (Some(deadline), Some(start)) => {
                start.checked_add(deadline).is_ok_and(|end| now >= end)
            }
            _ => false,
        }
    }

    fn record_check(
        &mut self,
        outcome: CheckOutcome,
        now: Timestamp,
        events: &mut Vec<CanaryEvent>,
    ) {
        match outcome {
            CheckOutcome::Failed(_) => self.failed_checks += 1,
            CheckOutcome::Passed { .. } if self.state == CanaryState::Analysing => {
                self.passed_checks_in_step += 1;
            }
            CheckOutcome::Passed { .. } | CheckOutcome::Skipped { .. } => {}
        }
        let failed = matches!(outcome, CheckOutcome::Failed(_));
        events.push(CanaryEvent {
            at: now,
            kind: CanaryEventKind::Checked {
                outcome,
                failed_checks: self.failed_checks,
            },
        });
        self.next_check_at = self.after_interval(now);
        let limit = self.config.analysis.failure_limit;
        if failed && self.failed_checks > limit {
            let reason = TransitionReason::FailureLimitExceeded {
                failed_checks: self.failed_checks,
                failure_limit: limit,
            };
            self.back_to_stable(CanaryState::RolledBack, reason, now, events);
        }
    }

    fn enter_step(
        &mut self,
        index: usize,
        now: Timestamp,
        reason: TransitionReason,
        events: &mut Vec<CanaryEvent>,
    ) {
        self.step_index = index;
        self.step_started_at = Some(now);
        self.passed_checks_in_step = 0;
        let Some(step) = self.config.steps.get(index).cloned() else {
            self.set_canary_weight(100, now, events);
            self.transition(
                CanaryState::Promoting,
                TransitionReason::StepsCompleted,
                now,
                events,
            );
            return;
        };
        events.push(CanaryEvent {
            at: now,
            kind: CanaryEventKind::StepStarted {
                index,
                step: step.clone(),
            },
        });
        let state = match step {
            CanaryStep::SetWeight(weight) => {
                self.set_canary_weight(weight, now, events);
                CanaryState::Progressing
            }
            CanaryStep::Pause(_) => CanaryState::Paused,
            CanaryStep::Analysis { .. } => {
                if self.next_check_at.is_none() {
                    self.next_check_at = self.after_interval(now);
                }
                CanaryState::Analysing
            }
        };
        self.transition(state, reason, now, events);
    }

    fn set_canary_weight(&mut self, weight: u32, now: Timestamp, events: &mut Vec<CanaryEvent>) {
        let weight = weight.min(100);
        if weight == self.canary_weight {
            return;
        }
        self.canary_weight = weight;
        // Metrics gathered before the change describe the old split: the
        // next check waits a full interval.
        self.next_check_at = if weight > 0 {
            self.after_interval(now)
        } else {
            None
        };
        let weights = self.weights();
        events.push(CanaryEvent {
            at: now,
            kind: CanaryEventKind::WeightChanged {
                stable: weights.stable,
                canary: weights.canary,
            },
        });
    }

    fn back_to_stable(
        &mut self,
        to: CanaryState,
        reason: TransitionReason,
        now: Timestamp,
        events: &mut Vec<CanaryEvent>,
    ) {
        self.set_canary_weight(0, now, events);
        self.next_check_at = None;
        self.transition(to, reason, now, events);
    }

    fn transition(
        &mut self,
        to: CanaryState,
        reason: TransitionReason,
        now: Timestamp,
        events: &mut Vec<CanaryEvent>,
    ) {
        if self.state == to {
            return;
        }
        let from = std::mem::replace(&mut self.state, to);
        events.push(CanaryEvent {
            at: now,
            kind: CanaryEventKind::StateChanged { from, to, reason },
        });
    }

    fn after_interval(&self, now: Timestamp) -> Option<Timestamp> {
        // Saturate at jiff's maximum rather than fail: a check scheduled
        // after the year 9999 is a check that never comes.
        let due = now
            .checked_add(self.config.analysis.interval)
            .unwrap_or(Timestamp::MAX);
        Some(due)
    }
}
