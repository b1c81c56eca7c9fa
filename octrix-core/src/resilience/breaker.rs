//! [`CircuitBreaker`]: closed, open, half-open, with a lock-free success path.
//!
//! The state lives in an atomic that every call reads; everything else sits
//! behind a mutex that only failures, slow calls, time-window calls and
//! state changes take. In a count window a successful call costs one atomic
//! load when permitted and one atomic increment when recorded: its position
//! in the call counter is all the window needs, since the window keeps the
//! positions of failures and counts calls by difference.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::config::{BreakerConfig, BreakerConfigError, SlidingWindow};
use super::transition::{BreakerState, BreakerTransition, TransitionReason};
use super::window::{CountWindow, TimeWindow, WindowCounts};
use crate::{Clock, Timestamp};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Transitions kept until drained; older ones are dropped (and counted) so
/// that a breaker nobody drains cannot grow without bound.
const MAX_PENDING_TRANSITIONS: usize = 1024;

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The call worked.
    Success,
    /// The call failed; counts towards tripping.
    Failure,
    /// Neither (e.g. a client error such as HTTP 404): not recorded.
    Ignored,
}

/// A call the breaker did not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker for {service} is {state}: call rejected{}", RetryHint(.retry_at))]
pub struct Rejected {
    /// The protected service.
    pub service: Arc<str>,
    /// Open, or half-open with every trial slot taken.
    pub state: BreakerState,
    /// When the open timeout ends, if open.
    pub retry_at: Option<Timestamp>,
}

struct RetryHint<'a>(&'a Option<Timestamp>);

impl fmt::Display for RetryHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(at) => write!(f, " until {at}"),
            None => Ok(()),
        }
    }
}

/// The error of a call made through a breaker.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker rejected the call; the operation did not run.
    #[error(transparent)]
    Rejected(Rejected),
    /// The operation ran and failed.
    #[error(transparent)]
    Failed(E),
}

impl<E> CallError<E> {
    /// The operation's own error, if it ran.
    pub fn into_failed(self) -> Option<E> {
        match self {
            CallError::Failed(error) => Some(error),
            CallError::Rejected(_) => None,
        }
    }
}

/// A breaker's state and window, for the API and dashboards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// The protected service.
    pub service: String,
    /// Current state.
    pub state: BreakerState,
    /// Calls in the sliding window (while closed).
    pub window_calls: u64,
    /// Failed calls in the window.
    pub window_failures: u64,
    /// Slow calls in the window.
    pub window_slow_calls: u64,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// When the breaker last opened, while open.
    pub opened_at: Option<Timestamp>,
    /// Transitions dropped because nobody drained them.
    pub dropped_transitions: u64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { since: Timestamp },
    HalfOpen { permitted: u32, succeeded: u32 },
}

impl Phase {
    fn state(self) -> BreakerState {
        match self {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug)]
enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

/// Failures in a row, tracked by call position: a failure continues the
/// streak only if it directly follows the previous failure, so successes
/// never need to reset it (and never need the lock).
#[derive(Debug, Default)]
struct Streak {
    last_failure: Option<u64>,
    length: u32,
}

impl Streak {
    fn extend(&mut self, position: u64) {
        let follows = position
            .checked_sub(1)
            .is_some_and(|previous| self.last_failure == Some(previous));
        self.length = if follows {
            self.length.saturating_add(1)
        } else {
            1
        };
        self.last_failure = Some(position);
    }

    fn current(&self, completed: u64) -> u32 {
        match self.last_failure {
            Some(last) if last + 1 == completed => self.length,
            _ => 0,
        }
    }
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped on every transition, so that a trial permit from an earlier
    /// half-open period cannot affect a later one.
    generation: u64,
    window: Window,
    streak: Streak,
    transitions: VecDeque<BreakerTransition>,
    dropped_transitions: u64,
}

/// A circuit breaker for one service; see the [module docs](super).
pub struct CircuitBreaker {
    /// CLOSED, OPEN or HALF_OPEN; written under `inner`'s lock, read without.
    state: AtomicU8,
    /// Calls recorded while closed; a call's position is its value before
    /// the increment.
    completed: AtomicU64,
    /// Slow calls are tracked: read the clock at both ends of a call.
    times_calls: bool,
    /// The window is count-based: successes need neither clock nor lock.
    count_window: bool,
    service: Arc<str>,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("service", &self.service)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A closed breaker for `service`, reading time from `clock`.
    pub fn new(
        service: impl Into<String>,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(service.into(), config, clock))
    }

    /// [`new`](Self::new) for a configuration already validated.
    pub(crate) fn with_valid_config(
        service: String,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let window = match config.window {
            SlidingWindow::Count { calls } => Window::Count(CountWindow::new(calls, 0)),
            SlidingWindow::Time { seconds } => Window::Time(TimeWindow::new(seconds)),
        };
        Self {
            state: AtomicU8::new(CLOSED),
            completed: AtomicU64::new(0),
            times_calls: config.slow_call.is_some(),
            count_window: matches!(config.window, SlidingWindow::Count { .. }),
            service: Arc::from(service),
            config,
            clock,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                generation: 0,
                window,
                streak: Streak::default(),
                transitions: VecDeque::new(),
                dropped_transitions: 0,
            }),
        }
    }

    /// The protected service.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state. An open breaker whose timeout has passed still
    /// reads open until the next call moves it to half-open.
    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Runs `operation` if the breaker lets it through and records whether
    /// its result is `Ok`. A rejected call never creates the future.
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_classified(operation, |result| match result {
            Ok(_) => CallOutcome::Success,
            Err(_) => CallOutcome::Failure,
        })
        .await
    }

    /// Like [`call`](Self::call), with `classify` deciding how the result
    /// counts (e.g. an HTTP 404 as [`CallOutcome::Ignored`]).
    pub async fn call_classified<T, E, F, Fut, C>(
        &self,
        operation: F,
        classify: C,
    ) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> CallOutcome,
    {
        if self.state.load(Ordering::Acquire) == CLOSED && !self.times_calls {
            // The hot path carries no permit across the await: a closed,
            // untimed call has nothing to give back if it is cancelled, and
            // keeping the future's state small avoids copying a permit in
            // and out of it (measured at about 8 ns a call).
            let result = operation().await;
            self.record_closed(None, classify(&result));
            return result.map_err(CallError::Failed);
        }
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        // If this future is dropped while the operation runs, the permit's
        // Drop gives a trial slot back.
        let result = operation().await;
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// Asks to make one call. Record its outcome on the permit; a permit
    /// dropped unrecorded counts as no call.
    #[inline]
    pub fn try_acquire(&self) -> Result<CallPermit<'_>, Rejected> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            let started_at = self.times_calls.then(|| self.clock.now());
            return Ok(CallPermit {
                breaker: self,
                trial_generation: None,
                started_at,
                settled: false,
            });
        }
        self.try_acquire_locked()
    }

    #[inline(never)]
    fn try_acquire_locked(&self) -> Result<CallPermit<'_>, Rejected> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let started_at = self.times_calls.then_some(now);
        if let Phase::Open { since } = inner.phase {
            let reopen_at = since.checked_add(self.config.open_timeout).ok();
            match reopen_at {
                Some(at) if now >= at => self.transition(
                    &mut inner,
                    Phase::HalfOpen {
                        permitted: 0,
                        succeeded: 0,
                    },
                    TransitionReason::OpenTimeoutElapsed,
                    now,
                ),
                _ => return Err(self.rejected(BreakerState::Open, reopen_at)),
            }
        }
        let generation = inner.generation;
        match &mut inner.phase {
            // The state changed between the atomic load and the lock.
            Phase::Closed => Ok(CallPermit {
                breaker: self,
                trial_generation: None,
                started_at,
                settled: false,
            }),
            Phase::HalfOpen { permitted, .. } if *permitted < self.config.half_open_trial_calls => {
                *permitted += 1;
                Ok(CallPermit {
                    breaker: self,
                    trial_generation: Some(generation),
                    started_at,
                    settled: false,
                })
            }
            Phase::HalfOpen { .. } => Err(self.rejected(BreakerState::HalfOpen, None)),
            Phase::Open { .. } => Err(self.rejected(BreakerState::Open, None)),
        }
    }

    fn rejected(&self, state: BreakerState, retry_at: Option<Timestamp>) -> Rejected {
        Rejected {
            service: Arc::clone(&self.service),
            state,
            retry_at,
        }
    }

    /// Closes the breaker and empties its window, as an operator would.
    pub fn reset(&self) {
        let now = self.clock.now();
        let mut inner = self.lock();
        if matches!(inner.phase, Phase::Closed) {
            self.reset_window(&mut inner);
        } else {
            self.transition(
                &mut inner,
                Phase::Closed,
                TransitionReason::ManualReset,
                now,
            );
        }
    }

    /// Opens the breaker now; it half-opens after the open timeout as after
    /// a trip.
    pub fn force_open(&self) {
        let now = self.clock.now();
        let mut inner = self.lock();
        if let Phase::Open { since } = &mut inner.phase {
            *since = now;
        } else {
            self.transition(
                &mut inner,
                Phase::Open { since: now },
                TransitionReason::ForcedOpen,
                now,
            );
        }
    }

    /// Takes the transitions recorded since the last drain, oldest first.
    pub fn drain_transitions(&self) -> Vec<BreakerTransition> {
        self.lock().transitions.drain(..).collect()
    }

    /// The breaker's state and window now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let completed = self.completed.load(Ordering::Relaxed);
        let counts = match (&inner.phase, &mut inner.window) {
            (Phase::Closed, Window::Count(window)) => window.counts(completed),
            (Phase::Closed, Window::Time(window)) => window.counts(now.as_second()),
            _ => WindowCounts::default(),
        };
        BreakerSnapshot {
            service: self.service.to_string(),
            state: inner.phase.state(),
            window_calls: counts.calls,
            window_failures: counts.failures,
            window_slow_calls: counts.slow,
            consecutive_failures: inner.streak.current(completed),
            opened_at: match inner.phase {
                Phase::Open { since } => Some(since),
                _ => None,
            },
            dropped_transitions: inner.dropped_transitions,
        }
    }

    #[inline]
    fn record_closed(&self, started_at: Option<Timestamp>, outcome: CallOutcome) {
        match outcome {
            CallOutcome::Ignored => {}
            CallOutcome::Success if self.count_window && !self.times_calls => {
                // The fast path: no clock, no lock.
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            CallOutcome::Success => self.record_closed_locked(started_at, false),
            CallOutcome::Failure => self.record_closed_locked(started_at, true),
        }
    }

    #[inline(never)]
    fn record_closed_locked(&self, started_at: Option<Timestamp>, failed: bool) {
        let now = self.clock.now();
        let slow = self.is_slow(started_at, now);
        if !failed && !slow && self.count_window {
            self.completed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut inner = self.lock();
        if !matches!(inner.phase, Phase::Closed) {
            // A call let through before the breaker tripped: the decision to
            // open stands, and the next closed period starts afresh.
            return;
        }
        // Taken under the lock so that failures get positions in the order
        // they are recorded, which the streak relies on.
        let position = self.completed.fetch_add(1, Ordering::Relaxed);
        match &mut inner.window {
            Window::Count(window) => window.record(position, failed, slow),
            Window::Time(window) => window.record(now.as_second(), failed, slow),
        }
        if failed {
            inner.streak.extend(position);
        }
        if (failed || slow)
            && let Some(reason) = self.trip_reason(&mut inner, position + 1, now)
        {
            self.transition(&mut inner, Phase::Open { since: now }, reason, now);
        }
    }

    fn trip_reason(
        &self,
        inner: &mut Inner,
        completed: u64,
        now: Timestamp,
    ) -> Option<TransitionReason> {
        if let Some(limit) = self.config.consecutive_failures {
            let count = inner.streak.current(completed);
            if count >= limit {
                return Some(TransitionReason::ConsecutiveFailures { count });
            }
        }
        let counts = match &mut inner.window {
            Window::Count(window) => window.counts(completed),
            Window::Time(window) => window.counts(now.as_second()),
        };
        if counts.calls < u64::from(self.config.minimum_calls) {
            return None;
        }
        let calls = counts.calls;
        if let Some(threshold) = self.config.failure_rate_threshold {
            let rate = counts.failures as f64 / calls as f64;
            if rate >= threshold {
                return Some(TransitionReason::FailureRate { rate, calls });
            }
        }
        if let Some(slow) = &self.config.slow_call {
            let rate = counts.slow as f64 / calls as f64;
            if rate >= slow.rate_threshold {
                return Some(TransitionReason::SlowCallRate { rate, calls });
            }
        }
        None
    }

    #[inline(never)]
    fn record_trial(&self, generation: u64, started_at: Option<Timestamp>, outcome: CallOutcome) {
        let now = self.clock.now();
        let slow = self.is_slow(started_at, now);
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        let Phase::HalfOpen {
            permitted,
            succeeded,
        } = &mut inner.phase
        else {
            return;
        };
        let next = match outcome {
            CallOutcome::Ignored => {
                *permitted = permitted.saturating_sub(1);
                None
            }
            CallOutcome::Failure => Some((
                Phase::Open { since: now },
                TransitionReason::TrialCallFailed,
            )),
            CallOutcome::Success if slow => {
                Some((Phase::Open { since: now }, TransitionReason::TrialCallSlow))
            }
            CallOutcome::Success => {
                *succeeded += 1;
                let count = *succeeded;
                (count >= self.config.half_open_trial_calls).then_some((
                    Phase::Closed,
                    TransitionReason::TrialCallsSucceeded { count },
                ))
            }
        };
        if let Some((phase, reason)) = next {
            self.transition(&mut inner, phase, reason, now);
        }
    }

    fn release_trial(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if let Phase::HalfOpen { permitted, .. } = &mut inner.phase {
            *permitted = permitted.saturating_sub(1);
        }
    }

    fn is_slow(&self, started_at: Option<Timestamp>, now: Timestamp) -> bool {
        match (&self.config.slow_call, started_at) {
            (Some(slow), Some(start)) => now.duration_since(start) >= slow.duration_threshold,
            _ => false,
        }
    }

    fn transition(&self, inner: &mut Inner, to: Phase, reason: TransitionReason, now: Timestamp) {
        let from = inner.phase.state();
        inner.phase = to;
        inner.generation += 1;
        if matches!(to, Phase::Closed) {
            self.reset_window(inner);
        }
        let code = match to {
            Phase::Closed => CLOSED,
            Phase::Open { .. } => OPEN,
            Phase::HalfOpen { .. } => HALF_OPEN,
        };
        self.state.store(code, Ordering::Release);
        if inner.transitions.len() == MAX_PENDING_TRANSITIONS {
            inner.transitions.pop_front();
            inner.dropped_transitions += 1;
        }
        inner.transitions.push_back(BreakerTransition {
            service: self.service.to_string(),
            from,
            to: to.state(),
            at: now,
            reason,
        });
    }

    fn reset_window(&self, inner: &mut Inner) {
        let start = self.completed.load(Ordering::Relaxed);
        match &mut inner.window {
            Window::Count(window) => window.reset(start),
            Window::Time(window) => window.reset(),
        }
        inner.streak = Streak::default();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update under this lock leaves `Inner` consistent before it
        // can panic, so a poisoned lock is still safe to use.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Leave to make one call through a [`CircuitBreaker`].
///
/// Record the outcome with [`record`](Self::record),
/// [`success`](Self::success) or [`failure`](Self::failure). Dropping it
/// unrecorded (e.g. when the call's future is cancelled) counts as no call
/// and frees a half-open trial slot.
#[must_use = "record the call's outcome on the permit"]
#[derive(Debug)]
pub struct CallPermit<'a> {
    breaker: &'a CircuitBreaker,
    /// `Some` for a half-open trial call, with the half-open period it
    /// belongs to.
    trial_generation: Option<u64>,
    started_at: Option<Timestamp>,
    settled: bool,
}

impl CallPermit<'_> {
    /// Records how the call went.
    #[inline]
    pub fn record(mut self, outcome: CallOutcome) {
        self.settled = true;
        match self.trial_generation {
            None => self.breaker.record_closed(self.started_at, outcome),
            Some(generation) => self
                .breaker
                .record_trial(generation, self.started_at, outcome),
        }
    }

    /// Records a successful call.
    #[inline]
    pub fn success(self) {
        self.record(CallOutcome::Success);
    }

    /// Records a failed call.
    #[inline]
    pub fn failure(self) {
        self.record(CallOutcome::Failure);
    }

    /// Whether this is a half-open trial call.
    pub fn is_trial(&self) -> bool {
        self.trial_generation.is_some()
    }
}

impl Drop for CallPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.settled
            && let Some(generation) = self.trial_generation
        {
            self.breaker.release_trial(generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::resilience::config::SlowCallConfig;
    use jiff::SignedDuration;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: None,
            failure_rate_threshold: None,
            slow_call: None,
            window: SlidingWindow::Count { calls: 10 },
            minimum_calls: 4,
            open_timeout: SignedDuration::from_secs(30),
            half_open_trial_calls: 2,
        }
    }

    fn breaker(config: BreakerConfig) -> (CircuitBreaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_000).unwrap()));
        let breaker = CircuitBreaker::new("payments", config, clock.clone()).unwrap();
        (breaker, clock)
    }

    fn call(breaker: &CircuitBreaker, outcome: CallOutcome) -> Result<(), Rejected> {
        breaker.try_acquire().map(|permit| permit.record(outcome))
    }

    fn reasons(breaker: &CircuitBreaker) -> Vec<(BreakerState, TransitionReason)> {
        breaker
            .drain_transitions()
            .into_iter()
            .map(|t| (t.to, t.reason))
            .collect()
    }

    use CallOutcome::{Failure, Ignored, Success};

    #[test]
    fn consecutive_failures_trip_and_a_success_resets_the_streak() {
        let (b, _) = breaker(BreakerConfig {
            consecutive_failures: Some(3),
            ..config()
        });
        for outcome in [Failure, Failure, Success, Failure, Failure] {
            call(&b, outcome).unwrap();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.snapshot().consecutive_failures, 2);
        // Ignored calls neither break nor extend the streak... they are not calls.
        call(&b, Ignored).unwrap();
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            reasons(&b),
            [(
                BreakerState::Open,
                TransitionReason::ConsecutiveFailures { count: 3 }
            )]
        );
    }

    #[test]
    fn failure_rate_needs_minimum_calls_and_slides() {
        let (b, _) = breaker(BreakerConfig {
            failure_rate_threshold: Some(0.5),
            window: SlidingWindow::Count { calls: 4 },
            ..config()
        });
        // 3 failures in 3 calls: fewer than the 4 minimum calls.
        for _ in 0..3 {
            call(&b, Failure).unwrap();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // Successes never trip, even once the window is full.
        call(&b, Success).unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.snapshot().window_failures, 3);
        for _ in 0..3 {
            call(&b, Success).unwrap();
        }
        // The window is now S S S S; one failure makes it S S S F = 25 %.
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            reasons(&b),
            [(
                BreakerState::Open,
                TransitionReason::FailureRate {
                    rate: 0.5,
                    calls: 4
                }
            )]
        );
    }

    #[test]
    fn time_window_forgets_old_seconds() {
        let (b, clock) = breaker(BreakerConfig {
            failure_rate_threshold: Some(0.5),
            window: SlidingWindow::Time { seconds: 10 },
            minimum_calls: 3,
            ..config()
        });
        call(&b, Failure).unwrap();
        call(&b, Failure).unwrap();
        clock.advance(SignedDuration::from_secs(10));
        // The two failures are 10 s old: out of the window.
        call(&b, Success).unwrap();
        call(&b, Success).unwrap();
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.snapshot().window_calls, 3);
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn slow_calls_trip_by_rate() {
        let (b, clock) = breaker(BreakerConfig {
            slow_call: Some(SlowCallConfig {
                duration_threshold: SignedDuration::from_secs(2),
                rate_threshold: 0.5,
            }),
            minimum_calls: 2,
            ..config()
        });
        let timed = |outcome, seconds| {
            let permit = b.try_acquire().unwrap();
            clock.advance(SignedDuration::from_secs(seconds));
            permit.record(outcome);
        };
        timed(Success, 1);
        timed(Success, 1);
        timed(Success, 3);
        assert_eq!(b.state(), BreakerState::Closed, "1 slow in 3");
        assert_eq!(b.snapshot().window_slow_calls, 1);
        timed(Success, 2);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            reasons(&b),
            [(
                BreakerState::Open,
                TransitionReason::SlowCallRate {
                    rate: 0.5,
                    calls: 4
                }
            )]
        );
    }

    #[test]
    fn open_rejects_until_timeout_then_trials_decide() {
        let (b, clock) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            ..config()
        });
        call(&b, Failure).unwrap();
        let rejected = call(&b, Success).unwrap_err();
        assert_eq!(rejected.state, BreakerState::Open);
        assert_eq!(
            rejected.retry_at,
            Some(Timestamp::from_second(1_030).unwrap())
        );
        assert_eq!(
            rejected.to_string(),
            "circuit breaker for payments is open: call rejected until 1970-01-01T00:17:10Z"
        );
        clock.advance(SignedDuration::from_secs(29));
        assert!(call(&b, Success).is_err());
        clock.advance(SignedDuration::from_secs(1));
        // Two trial slots: both taken, the third call is rejected.
        let first = b.try_acquire().unwrap();
        let second = b.try_acquire().unwrap();
        assert!(first.is_trial() && second.is_trial());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let third = b.try_acquire().unwrap_err();
        assert_eq!(
            (third.state, third.retry_at),
            (BreakerState::HalfOpen, None)
        );
        first.success();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        second.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            reasons(&b),
            [
                (
                    BreakerState::Open,
                    TransitionReason::ConsecutiveFailures { count: 1 }
                ),
                (BreakerState::HalfOpen, TransitionReason::OpenTimeoutElapsed),
                (
                    BreakerState::Closed,
                    TransitionReason::TrialCallsSucceeded { count: 2 }
                ),
            ]
        );
        // Closed afresh: the window and streak were emptied.
        let snapshot = b.snapshot();
        assert_eq!(
            (snapshot.window_calls, snapshot.consecutive_failures),
            (0, 0)
        );
    }

    #[test]
    fn a_failed_trial_reopens_and_stale_permits_do_nothing() {
        let (b, clock) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            ..config()
        });
        call(&b, Failure).unwrap();
        clock.advance(SignedDuration::from_secs(30));
        let slow_trial = b.try_acquire().unwrap();
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.snapshot().opened_at,
            Some(Timestamp::from_second(1_030).unwrap())
        );
        // The first trial ends after the breaker reopened: it belongs to a
        // past half-open period and changes nothing.
        slow_trial.success();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            reasons(&b).last().unwrap(),
            &(BreakerState::Open, TransitionReason::TrialCallFailed)
        );
    }

    #[test]
    fn unrecorded_and_ignored_trials_free_their_slots() {
        let (b, clock) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            half_open_trial_calls: 1,
            ..config()
        });
        call(&b, Failure).unwrap();
        clock.advance(SignedDuration::from_secs(30));
        drop(b.try_acquire().unwrap());
        call(&b, Ignored).unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        call(&b, Success).unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_slow_trial_reopens() {
        let (b, clock) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            slow_call: Some(SlowCallConfig {
                duration_threshold: SignedDuration::from_secs(1),
                rate_threshold: 1.0,
            }),
            ..config()
        });
        call(&b, Failure).unwrap();
        clock.advance(SignedDuration::from_secs(30));
        let trial = b.try_acquire().unwrap();
        clock.advance(SignedDuration::from_secs(1));
        trial.success();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            reasons(&b).last().unwrap(),
            &(BreakerState::Open, TransitionReason::TrialCallSlow)
        );
    }

    #[test]
    fn late_failures_of_calls_admitted_before_the_trip_are_ignored() {
        let (b, _) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            ..config()
        });
        let admitted = b.try_acquire().unwrap();
        call(&b, Failure).unwrap();
        admitted.failure();
        assert_eq!(reasons(&b).len(), 1);
    }

    #[test]
    fn operators_can_reset_and_force_open() {
        let (b, clock) = breaker(BreakerConfig {
            consecutive_failures: Some(2),
            ..config()
        });
        call(&b, Failure).unwrap();
        b.reset();
        call(&b, Failure).unwrap();
        assert_eq!(b.state(), BreakerState::Closed, "reset emptied the streak");
        b.force_open();
        assert_eq!(b.state(), BreakerState::Open);
        clock.advance(SignedDuration::from_secs(10));
        b.force_open();
        clock.advance(SignedDuration::from_secs(25));
        assert!(
            call(&b, Success).is_err(),
            "forcing again restarted the timeout"
        );
        b.reset();
        assert_eq!(b.state(), BreakerState::Closed);
        let reasons: Vec<_> = reasons(&b).into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            reasons,
            [TransitionReason::ForcedOpen, TransitionReason::ManualReset]
        );
    }

    #[test]
    fn undrained_transitions_are_bounded() {
        let (b, _) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            ..config()
        });
        for _ in 0..MAX_PENDING_TRANSITIONS {
            b.force_open();
            b.reset();
        }
        assert_eq!(
            b.snapshot().dropped_transitions,
            MAX_PENDING_TRANSITIONS as u64
        );
        let drained = b.drain_transitions();
        assert_eq!(drained.len(), MAX_PENDING_TRANSITIONS);
        assert_eq!(drained[0].at, Timestamp::from_second(1_000).unwrap());
    }

    #[test]
    fn call_classified_can_ignore_results() {
        let (b, _) = breaker(BreakerConfig {
            consecutive_failures: Some(1),
            ..config()
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let not_found = b
                .call_classified(
                    || async { Err::<(), u16>(404) },
                    |result| match result {
                        Err(404) => CallOutcome::Ignored,
                        Err(_) => CallOutcome::Failure,
                        Ok(_) => CallOutcome::Success,
                    },
                )
                .await;
            assert_eq!(not_found.unwrap_err().into_failed(), Some(404));
            assert_eq!(b.state(), BreakerState::Closed);
            let failed = b.call(|| async { Err::<(), u16>(503) }).await;
            assert_eq!(failed.unwrap_err().into_failed(), Some(503));
            assert_eq!(b.state(), BreakerState::Open);
        });
    }
}
