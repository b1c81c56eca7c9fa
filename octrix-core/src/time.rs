//! Time as the core sees it: a [`Clock`] port and [`Timestamp`]s.
//!
//! The core never reads the system clock, so every decision that depends on
//! time (cooldowns, TTLs, MTTA) is reproducible under a [`ManualClock`].
//! Adapters provide a clock backed by the operating system.

use std::sync::Mutex;

pub use jiff::{SignedDuration, Timestamp};

/// Where the core gets the current time from.
///
/// Closures implement it, so a fixed clock is just `|| t`:
///
/// ```
/// use octrix_core::{Clock, Timestamp};
///
/// let t = Timestamp::from_second(1_700_000_000).unwrap();
/// let clock = move || t;
/// assert_eq!(clock.now(), t);
/// ```
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

impl<F> Clock for F
where
    F: Fn() -> Timestamp + Send + Sync,
{
    fn now(&self) -> Timestamp {
        self()
    }
}

/// A clock that only moves when told to, for tests and simulations.
///
/// ```
/// use octrix_core::{Clock, ManualClock, Timestamp};
/// use octrix_core::time::SignedDuration;
///
/// let clock = ManualClock::new(Timestamp::UNIX_EPOCH);
/// clock.advance(SignedDuration::from_secs(30));
/// assert_eq!(clock.now().as_second(), 30);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or backward, for a negative duration).
    ///
    /// # Panics
    /// When the result leaves jiff's supported range (years -9999 to 9999).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        *now = now
            .checked_add(by)
            .expect("ManualClock moved outside the supported time range");
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self.lock() = to;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A panic while holding this lock cannot leave a Timestamp half-written.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_second(100).unwrap());
        assert_eq!(clock.now().as_second(), 100);
        clock.advance(SignedDuration::from_secs(5));
        assert_eq!(clock.now().as_second(), 105);
        clock.set(Timestamp::from_second(7).unwrap());
        assert_eq!(clock.now().as_second(), 7);
    }
}
