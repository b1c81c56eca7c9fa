//! The circuit breaker against a plain model of the same rules, over random
//! sequences of calls, outcomes, held permits and clock moves.
//!
//! The model keeps every recorded outcome in a list and recomputes counts
//! from scratch; the breaker uses atomics, call positions and bucketed
//! windows. Both must agree on every permit, rejection and transition.

use std::sync::Arc;

use octrix_core::resilience::{
    BreakerConfig, BreakerState, BreakerTransition, CallOutcome, CallPermit, CircuitBreaker,
    SlidingWindow, SlowCallConfig, TransitionReason,
};
use octrix_core::time::SignedDuration;
use octrix_core::{Clock, ManualClock, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Record {
    second: i64,
    failed: bool,
    slow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelPhase {
    Closed,
    Open { since: Timestamp },
    HalfOpen { permitted: u32, succeeded: u32 },
}

#[derive(Debug, Clone, Copy)]
struct ModelPermit {
    /// The half-open period a trial permit belongs to.
    trial_generation: Option<u64>,
    started_at: Timestamp,
}

/// The breaker's rules, written as plainly as possible.
struct Model {
    config: BreakerConfig,
    phase: ModelPhase,
    generation: u64,
    /// Outcomes recorded since the breaker last closed, in order.
    records: Vec<Record>,
    transitions: Vec<(BreakerState, BreakerState, Timestamp, TransitionReason)>,
}

fn state_of(phase: ModelPhase) -> BreakerState {
    match phase {
        ModelPhase::Closed => BreakerState::Closed,
        ModelPhase::Open { .. } => BreakerState::Open,
        ModelPhase::HalfOpen { .. } => BreakerState::HalfOpen,
    }
}

impl Model {
    fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            phase: ModelPhase::Closed,
            generation: 0,
            records: Vec::new(),
            transitions: Vec::new(),
        }
    }

    fn go(&mut self, to: ModelPhase, reason: TransitionReason, now: Timestamp) {
        self.transitions
            .push((state_of(self.phase), state_of(to), now, reason));
        self.phase = to;
        self.generation += 1;
        if to == ModelPhase::Closed {
            self.records.clear();
        }
    }

    /// `Ok(permit)` or `Err((state, retry_at))`.
    fn acquire(
        &mut self,
        now: Timestamp,
    ) -> Result<ModelPermit, (BreakerState, Option<Timestamp>)> {
        if let ModelPhase::Open { since } = self.phase {
            let reopen = since + self.config.open_timeout;
            if now < reopen {
                return Err((BreakerState::Open, Some(reopen)));
            }
            self.go(
                ModelPhase::HalfOpen {
                    permitted: 0,
                    succeeded: 0,
                },
                TransitionReason::OpenTimeoutElapsed,
                now,
            );
        }
        match &mut self.phase {
            ModelPhase::Closed => Ok(ModelPermit {
                trial_generation: None,
                started_at: now,
            }),
            ModelPhase::HalfOpen { permitted, .. }
                if *permitted < self.config.half_open_trial_calls =>
            {
                *permitted += 1;
                Ok(ModelPermit {
                    trial_generation: Some(self.generation),
                    started_at: now,
                })
            }
            _ => Err((BreakerState::HalfOpen, None)),
        }
    }

    fn is_slow(&self, permit: ModelPermit, now: Timestamp) -> bool {
        self.config
            .slow_call
            .as_ref()
            .is_some_and(|slow| now.duration_since(permit.started_at) >= slow.duration_threshold)
    }

    fn record(&mut self, permit: ModelPermit, outcome: CallOutcome, now: Timestamp) {
        let slow = self.is_slow(permit, now);
        match permit.trial_generation {
            None => self.record_closed(outcome, slow, now),
            Some(generation) => self.record_trial(generation, outcome, slow, now),
        }
    }

    fn record_closed(&mut self, outcome: CallOutcome, slow: bool, now: Timestamp) {
        if outcome == CallOutcome::Ignored || self.phase != ModelPhase::Closed {
            return;
        }
        let failed = outcome == CallOutcome::Failure;
        self.records.push(Record {
            second: now.as_second(),
            failed,
            slow,
        });
        if !(failed || slow) {
            return;
        }
        if let Some(reason) = self.trip_reason(now) {
            self.go(ModelPhase::Open { since: now }, reason, now);
        }
    }

    fn trip_reason(&self, now: Timestamp) -> Option<TransitionReason> {
        if let Some(limit) = self.config.consecutive_failures {
            let count = self.records.iter().rev().take_while(|r| r.failed).count() as u32;
            if count >= limit {
                return Some(TransitionReason::ConsecutiveFailures { count });
            }
        }
        let in_window: Vec<&Record> = match self.config.window {
            SlidingWindow::Count { calls } => {
                self.records.iter().rev().take(calls as usize).collect()
            }
            SlidingWindow::Time { seconds } => {
                let oldest = now.as_second() - i64::from(seconds) + 1;
                self.records.iter().filter(|r| r.second >= oldest).collect()
            }
        };
        let calls = in_window.len() as u64;
        if calls < u64::from(self.config.minimum_calls) {
            return None;
        }
        let failures = in_window.iter().filter(|r| r.failed).count() as u64;
        let slow_calls = in_window.iter().filter(|r| r.slow).count() as u64;
        if let Some(threshold) = self.config.failure_rate_threshold {
            let rate = failures as f64 / calls as f64;
            if rate >= threshold {
                return Some(TransitionReason::FailureRate { rate, calls });
            }
        }
        if let Some(slow) = &self.config.slow_call {
            let rate = slow_calls as f64 / calls as f64;
            if rate >= slow.rate_threshold {
                return Some(TransitionReason::SlowCallRate { rate, calls });
            }
        }
        None
    }

    fn record_trial(&mut self, generation: u64, outcome: CallOutcome, slow: bool, now: Timestamp) {
        if generation != self.generation {
            return;
        }
        let ModelPhase::HalfOpen {
            permitted,
            succeeded,
        } = self.phase
        else {
            return;
        };
        match outcome {
            CallOutcome::Ignored => {
                self.phase = ModelPhase::HalfOpen {
                    permitted: permitted - 1,
                    succeeded,
                }
            }
            CallOutcome::Failure => self.go(
                ModelPhase::Open { since: now },
                TransitionReason::TrialCallFailed,
                now,
            ),
            CallOutcome::Success if slow => self.go(
                ModelPhase::Open { since: now },
                TransitionReason::TrialCallSlow,
                now,
            ),
            CallOutcome::Success if succeeded + 1 >= self.config.half_open_trial_calls => self.go(
                ModelPhase::Closed,
                TransitionReason::TrialCallsSucceeded {
                    count: succeeded + 1,
                },
                now,
            ),
            CallOutcome::Success => {
                self.phase = ModelPhase::HalfOpen {
                    permitted,
                    succeeded: succeeded + 1,
                }
            }
        }
    }

    fn release(&mut self, permit: ModelPermit) {
        if let (
            Some(generation),
            ModelPhase::HalfOpen {
                permitted,
                succeeded,
            },
        ) = (permit.trial_generation, self.phase)
            && generation == self.generation
        {
            self.phase = ModelPhase::HalfOpen {
                permitted: permitted - 1,
                succeeded,
            };
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Acquire, take `millis`, record.
    Call { outcome: CallOutcome, millis: i64 },
    /// Acquire and hold the permit.
    Begin,
    /// Take `millis`, then record a held permit.
    End {
        which: usize,
        outcome: CallOutcome,
        millis: i64,
    },
    /// Drop a held permit unrecorded.
    Abandon { which: usize },
    /// Move the clock.
    Wait { millis: i64 },
}

fn outcome() -> impl Strategy<Value = CallOutcome> {
    prop_oneof![
        5 => Just(CallOutcome::Success),
        4 => Just(CallOutcome::Failure),
        1 => Just(CallOutcome::Ignored),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (outcome(), 0_i64..1_500).prop_map(|(outcome, millis)| Op::Call { outcome, millis }),
        2 => Just(Op::Begin),
        2 => (any::<usize>(), outcome(), 0_i64..1_500)
            .prop_map(|(which, outcome, millis)| Op::End { which, outcome, millis }),
        1 => any::<usize>().prop_map(|which| Op::Abandon { which }),
        3 => (0_i64..4_000).prop_map(|millis| Op::Wait { millis }),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    let window = prop_oneof![
        (1_u32..12).prop_map(|calls| SlidingWindow::Count { calls }),
        (1_u32..6).prop_map(|seconds| SlidingWindow::Time { seconds }),
    ];
    (
        prop::option::of(1_u32..5),
        prop::option::of(prop::sample::select(vec![0.2, 0.5, 0.75, 1.0])),
        prop::option::of((100_i64..1_200, prop::sample::select(vec![0.3, 0.5, 1.0]))),
        window,
        1_u32..12,
        100_i64..5_000,
        1_u32..4,
    )
        .prop_map(
            |(consecutive, failure_rate, slow, window, minimum_calls, open_ms, trials)| {
                let minimum_calls = match window {
                    SlidingWindow::Count { calls } => minimum_calls.min(calls),
                    SlidingWindow::Time { .. } => minimum_calls,
                };
                BreakerConfig {
                    consecutive_failures: consecutive,
                    failure_rate_threshold: failure_rate,
                    slow_call: slow.map(|(ms, rate)| SlowCallConfig {
                        duration_threshold: SignedDuration::from_millis(ms),
                        rate_threshold: rate,
                    }),
                    window,
                    minimum_calls,
                    open_timeout: SignedDuration::from_millis(open_ms),
                    half_open_trial_calls: trials,
                }
            },
        )
        .prop_filter("some trip condition", |c| c.validate().is_ok())
}

fn summary(
    transitions: Vec<BreakerTransition>,
) -> Vec<(BreakerState, BreakerState, Timestamp, TransitionReason)> {
    transitions
        .into_iter()
        .map(|t| (t.from, t.to, t.at, t.reason))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn breaker_matches_model(config in config(), ops in prop::collection::vec(op(), 1..150)) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_000_000).unwrap()));
        let breaker = CircuitBreaker::new("svc", config.clone(), clock.clone()).unwrap();
        let mut model = Model::new(config);
        let mut held: Vec<(CallPermit<'_>, ModelPermit)> = Vec::new();
        let advance = |millis: i64| clock.advance(SignedDuration::from_millis(millis));

        for op in ops {
            match op {
                Op::Call { outcome, millis } => {
                    let real = breaker.try_acquire();
                    let expected = model.acquire(clock.now());
                    match (real, expected) {
                        (Ok(permit), Ok(model_permit)) => {
                            prop_assert_eq!(permit.is_trial(), model_permit.trial_generation.is_some());
                            advance(millis);
                            permit.record(outcome);
                            model.record(model_permit, outcome, clock.now());
                        }
                        (Err(rejected), Err((state, retry_at))) => {
                            prop_assert_eq!(rejected.state, state);
                            prop_assert_eq!(rejected.retry_at, retry_at);
                        }
                        (real, expected) => prop_assert!(
                            false,
                            "breaker {:?} but model {:?}",
                            real.map(|p| p.is_trial()),
                            expected
                        ),
                    }
                }
                Op::Begin => match (breaker.try_acquire(), model.acquire(clock.now())) {
                    (Ok(permit), Ok(model_permit)) => held.push((permit, model_permit)),
                    (Err(rejected), Err((state, retry_at))) => {
                        prop_assert_eq!(rejected.state, state);
                        prop_assert_eq!(rejected.retry_at, retry_at);
                    }
                    (real, expected) => prop_assert!(
                        false,
                        "breaker {:?} but model {:?}",
                        real.map(|p| p.is_trial()),
                        expected
                    ),
                },
                Op::End { which, outcome, millis } if !held.is_empty() => {
                    let (permit, model_permit) = held.remove(which % held.len());
                    advance(millis);
                    permit.record(outcome);
                    model.record(model_permit, outcome, clock.now());
                }
                Op::Abandon { which } if !held.is_empty() => {
                    let (permit, model_permit) = held.remove(which % held.len());
                    drop(permit);
                    model.release(model_permit);
                }
                Op::End { .. } | Op::Abandon { .. } => {}
                Op::Wait { millis } => advance(millis),
            }
            prop_assert_eq!(breaker.state(), state_of(model.phase));
            prop_assert_eq!(
                summary(breaker.drain_transitions()),
                std::mem::take(&mut model.transitions)
            );
        }
    }
}
