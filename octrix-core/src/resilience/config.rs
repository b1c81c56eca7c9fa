//! [`BreakerConfig`]: when a circuit breaker trips and how it recovers.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// When a breaker trips and how it recovers, after resilience4j's options.
///
/// At least one trip condition must be set: consecutive failures, a failure
/// rate, or a slow-call rate. Rates are measured over [`window`](Self::window)
/// once it holds [`minimum_calls`](Self::minimum_calls), and are evaluated
/// when a failed or slow call is recorded (a success never trips a breaker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Trip after this many failures in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// Trip when failed calls make up at least this share of the window, in
    /// (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate_threshold: Option<f64>,
    /// Count slow calls, and trip when they make up too large a share of the
    /// window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_call: Option<SlowCallConfig>,
    /// The calls rates are measured over.
    pub window: SlidingWindow,
    /// Rates are not judged on fewer calls than this.
    pub minimum_calls: u32,
    /// How long the breaker stays open before letting trial calls through.
    #[serde(serialize_with = "jiff::fmt::serde::duration::friendly::compact::required")]
    pub open_timeout: SignedDuration,
    /// Trial calls allowed while half-open; all must succeed to close, one
    /// failure reopens.
    pub half_open_trial_calls: u32,
}

impl Default for BreakerConfig {
    /// Five failures in a row, or half of the last 100 calls (judged from 20
    /// on), open the breaker for 30 s; then 3 trial calls decide.
    fn default() -> Self {
        Self {
            consecutive_failures: Some(5),
            failure_rate_threshold: Some(0.5),
            slow_call: None,
            window: SlidingWindow::Count { calls: 100 },
            minimum_calls: 20,
            open_timeout: SignedDuration::from_secs(30),
            half_open_trial_calls: 3,
        }
    }
}

/// The calls over which rates are measured; in YAML
/// `{type: count, calls: 100}` or `{type: time, seconds: 60}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SlidingWindow {
    /// The last `calls` calls. Successful calls cost one atomic increment and
    /// no clock read (unless slow calls are tracked).
    Count {
        /// Window size, 1 to 1,000,000.
        calls: u32,
    },
    /// The calls of the last `seconds` whole seconds, in one-second buckets.
    /// Every call reads the clock and takes the breaker's lock.
    Time {
        /// Window length, 1 to 3,600.
        seconds: u32,
    },
}

/// What makes a call slow, and how many slow calls trip the breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowCallConfig {
    /// Calls taking at least this long are slow. Tracking them reads the
    /// clock at the start and end of every call.
    #[serde(serialize_with = "jiff::fmt::serde::duration::friendly::compact::required")]
    pub duration_threshold: SignedDuration,
    /// Trip when slow calls make up at least this share of the window, in
    /// (0, 1].
    pub rate_threshold: f64,
}

/// Why a breaker configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerConfigError {
    /// A field is out of range.
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the field, e.g. `window.calls`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Nothing would ever trip the breaker.
    #[error("no trip condition: set consecutive_failures, failure_rate_threshold or slow_call")]
    NoTripCondition,
}

const MAX_COUNT_WINDOW: u32 = 1_000_000;
const MAX_TIME_WINDOW_SECONDS: u32 = 3_600;

impl BreakerConfig {
    /// Checks every field; reports the first problem.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        let invalid = |field: &str, message: String| {
            Err(BreakerConfigError::Invalid {
                field: field.to_owned(),
                message,
            })
        };
        if self.consecutive_failures.is_none()
            && self.failure_rate_threshold.is_none()
            && self.slow_call.is_none()
        {
            return Err(BreakerConfigError::NoTripCondition);
        }
        if self.consecutive_failures == Some(0) {
            return invalid("consecutive_failures", "must be at least 1".into());
        }
        if let Some(rate) = self.failure_rate_threshold
            && !(rate > 0.0 && rate <= 1.0)
        {
            return invalid(
                "failure_rate_threshold",
                format!("must be in (0, 1], got {rate}"),
            );
        }
        if let Some(slow) = &self.slow_call {
            if slow.duration_threshold <= SignedDuration::ZERO {
                return invalid(
                    "slow_call.duration_threshold",
                    format!("must be positive, got {:#}", slow.duration_threshold),
                );
            }
            if !(slow.rate_threshold > 0.0 && slow.rate_threshold <= 1.0) {
                return invalid(
                    "slow_call.rate_threshold",
                    format!("must be in (0, 1], got {}", slow.rate_threshold),
                );
            }
        }
        match self.window {
            SlidingWindow::Count { calls } if calls == 0 || calls > MAX_COUNT_WINDOW => {
                return invalid(
                    "window.calls",
                    format!("must be in 1..={MAX_COUNT_WINDOW}, got {calls}"),
                );
            }
            SlidingWindow::Count { calls } if self.minimum_calls > calls => {
                // The window could never hold enough calls to judge a rate.
                return invalid(
                    "minimum_calls",
                    format!(
                        "must be at most the window's {calls} calls, got {}",
                        self.minimum_calls
                    ),
                );
            }
            SlidingWindow::Time { seconds }
                if seconds == 0 || seconds > MAX_TIME_WINDOW_SECONDS =>
            {
                return invalid(
                    "window.seconds",
                    format!("must be in 1..={MAX_TIME_WINDOW_SECONDS}, got {seconds}"),
                );
            }
            _ => {}
        }
        if self.minimum_calls == 0 {
            return invalid("minimum_calls", "must be at least 1".into());
        }
        if self.open_timeout <= SignedDuration::ZERO {
            return invalid(
                "open_timeout",
                format!("must be positive, got {:#}", self.open_timeout),
            );
        }
        if self.half_open_trial_calls == 0 {
            return invalid("half_open_trial_calls", "must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &BreakerConfig) -> Option<String> {
        match config.validate() {
            Err(BreakerConfigError::Invalid { field, .. }) => Some(field),
            Err(BreakerConfigError::NoTripCondition) => Some("<none>".into()),
            Ok(()) => None,
        }
    }

    #[test]
    fn default_is_valid() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn each_field_is_checked() {
        let base = BreakerConfig::default();
        let cases: Vec<(BreakerConfig, &str)> = vec![
            (
                BreakerConfig {
                    consecutive_failures: None,
                    failure_rate_threshold: None,
                    ..base.clone()
                },
                "<none>",
            ),
            (
                BreakerConfig {
                    consecutive_failures: Some(0),
                    ..base.clone()
                },
                "consecutive_failures",
            ),
            (
                BreakerConfig {
                    failure_rate_threshold: Some(0.0),
                    ..base.clone()
                },
                "failure_rate_threshold",
            ),
            (
                BreakerConfig {
                    slow_call: Some(SlowCallConfig {
                        duration_threshold: SignedDuration::ZERO,
                        rate_threshold: 0.5,
                    }),
                    ..base.clone()
                },
                "slow_call.duration_threshold",
            ),
            (
                BreakerConfig {
                    window: SlidingWindow::Count { calls: 0 },
                    ..base.clone()
                },
                "window.calls",
            ),
            (
                BreakerConfig {
                    window: SlidingWindow::Count { calls: 10 },
                    ..base.clone()
                },
                "minimum_calls",
            ),
            (
                BreakerConfig {
                    window: SlidingWindow::Time { seconds: 7200 },
                    ..base.clone()
                },
                "window.seconds",
            ),
            (
                BreakerConfig {
                    open_timeout: SignedDuration::ZERO,
                    ..base.clone()
                },
                "open_timeout",
            ),
            (
                BreakerConfig {
                    half_open_trial_calls: 0,
                    ..base.clone()
                },
                "half_open_trial_calls",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(field_of(&config).as_deref(), Some(field));
        }
    }

    #[test]
    fn reads_from_yaml() {
        let yaml = "\
consecutive_failures: 3
slow_call: {duration_threshold: 2s, rate_threshold: 0.8}
window: {type: time, seconds: 60}
minimum_calls: 10
open_timeout: 45s
half_open_trial_calls: 2
";
        let config: BreakerConfig = serde_norway::from_str(yaml).unwrap();
        assert_eq!(config.window, SlidingWindow::Time { seconds: 60 });
        assert_eq!(config.open_timeout, SignedDuration::from_secs(45));
        assert_eq!(config.validate(), Ok(()));
    }
}
