//! Circuit breakers: stop calling a service that is failing, and find out
//! when it has recovered.
//!
//! A [`CircuitBreaker`] is *closed* while calls pass. It *opens* (rejects
//! every call) when, in the manner of resilience4j:
//!
//! * [`consecutive_failures`](BreakerConfig::consecutive_failures) calls in a
//!   row failed, or
//! * the failure rate, or the rate of calls slower than
//!   [`slow_call`](BreakerConfig::slow_call)'s threshold, reached its
//!   threshold over a [`SlidingWindow`] of the last N calls or the last N
//!   seconds, once the window holds
//!   [`minimum_calls`](BreakerConfig::minimum_calls).
//!
//! After [`open_timeout`](BreakerConfig::open_timeout) the next call finds it
//! *half-open*: [`half_open_trial_calls`](BreakerConfig::half_open_trial_calls)
//! trial calls go through; if all succeed it closes, if one fails (or is
//! slow) it opens again.
//!
//! Every state change is a [`BreakerTransition`], kept until drained with
//! [`CircuitBreaker::drain_transitions`] or
//! [`BreakerRegistry::drain_transitions`], for the incident book. Time comes
//! from a [`Clock`](crate::Clock); a count-window breaker without slow-call
//! tracking reads it only on failures and state changes.
//!
//! ```
//! use std::sync::Arc;
//! use octrix_core::resilience::{
//!     BreakerConfig, BreakerState, CallError, CircuitBreaker, SlidingWindow,
//! };
//! use octrix_core::time::SignedDuration;
//! use octrix_core::{ManualClock, Timestamp};
//!
//! let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
//! let config = BreakerConfig {
//!     consecutive_failures: Some(2),
//!     failure_rate_threshold: None,
//!     slow_call: None,
//!     window: SlidingWindow::Count { calls: 10 },
//!     minimum_calls: 1,
//!     open_timeout: SignedDuration::from_secs(30),
//!     half_open_trial_calls: 1,
//! };
//! let breaker = CircuitBreaker::new("payments", config, clock.clone()).unwrap();
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! runtime.block_on(async {
//!     for _ in 0..2 {
//!         let failed = breaker.call(|| async { Err::<(), _>("timeout") }).await;
//!         assert!(matches!(failed, Err(CallError::Failed("timeout"))));
//!     }
//!     assert_eq!(breaker.state(), BreakerState::Open);
//!     let rejected = breaker.call(|| async { Ok::<_, &str>(1) }).await;
//!     assert!(matches!(rejected, Err(CallError::Rejected(_))));
//!
//!     clock.advance(SignedDuration::from_secs(30));
//!     assert_eq!(breaker.call(|| async { Ok::<_, &str>(7) }).await.unwrap(), 7);
//!     assert_eq!(breaker.state(), BreakerState::Closed);
//! });
//!
//! let transitions = breaker.drain_transitions();
//! let states: Vec<_> = transitions.iter().map(|t| t.to).collect();
//! assert_eq!(states, [BreakerState::Open, BreakerState::HalfOpen, BreakerState::Closed]);
//! ```

mod breaker;
mod config;
mod registry;
mod transition;
mod window;

pub use breaker::{BreakerSnapshot, CallError, CallOutcome, CallPermit, CircuitBreaker, Rejected};
pub use config::{BreakerConfig, BreakerConfigError, SlidingWindow, SlowCallConfig};
pub use registry::BreakerRegistry;
pub use transition::{BreakerState, BreakerTransition, TransitionReason};
