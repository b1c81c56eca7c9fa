//! Breaker states and the transitions between them, as events for the
//! incident timeline.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass; outcomes are recorded.
    Closed,
    /// Calls are rejected until the open timeout passes.
    Open,
    /// A limited number of trial calls pass; they decide between closed and
    /// open.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// Why a breaker changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransitionReason {
    /// This many calls failed in a row.
    ConsecutiveFailures {
        /// Failures in a row.
        count: u32,
    },
    /// The failure rate over the window reached the threshold.
    FailureRate {
        /// Observed failure rate, in [0, 1].
        rate: f64,
        /// Calls in the window.
        calls: u64,
    },
    /// The slow-call rate over the window reached the threshold.
    SlowCallRate {
        /// Observed slow-call rate, in [0, 1].
        rate: f64,
        /// Calls in the window.
        calls: u64,
    },
    /// The open timeout passed; trial calls may go through.
    OpenTimeoutElapsed,
    /// Every trial call succeeded.
    TrialCallsSucceeded {
        /// Trial calls that succeeded.
        count: u32,
    },
    /// A trial call failed.
    TrialCallFailed,
    /// A trial call succeeded, but slowly.
    TrialCallSlow,
    /// An operator closed the breaker.
    ManualReset,
    /// An operator opened the breaker.
    ForcedOpen,
}

/// A state change of one service's breaker; forward it to the incident book
/// to put it on the service's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerTransition {
    /// The service the breaker protects.
    pub service: String,
    /// Previous state.
    pub from: BreakerState,
    /// New state.
    pub to: BreakerState,
    /// When it changed, from the breaker's clock.
    pub at: Timestamp,
    /// Why.
    pub reason: TransitionReason,
}
