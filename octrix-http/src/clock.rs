//! The operating system's clock, as the core's [`Clock`] port.
//!
//! The core never reads the system clock; the server does, here only.

use octrix_core::{Clock, Timestamp};

/// A [`Clock`] reading [`Timestamp::now`].
///
/// ```
/// use octrix_core::Clock;
/// use octrix_http::SystemClock;
///
/// let before = jiff::Timestamp::now();
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
