//! How bad something is: [`Severity`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a signal or an incident is, ordered from [`Severity::Low`] to
/// [`Severity::Critical`].
///
/// Seed 000 gives each level its consequence: low and medium are candidates
/// for auto-healing, high and critical are escalated to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Minor issue; auto-healing recommended.
    Low,
    /// Moderate issue; auto-healing attempted.
    Medium,
    /// Significant issue; escalated to people.
    High,
    /// Severe issue; immediate escalation.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in configuration and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Position in [`Severity::ALL`] (low = 0, critical = 3).
    pub const fn rank(self) -> usize {
        self as usize
    }

    /// The severity `levels` steps higher, stopping at `ceiling` (and at
    /// critical). A severity already above `ceiling` is left as it is: the
    /// ceiling limits raising, it never lowers.
    ///
    /// ```
    /// use octrix_core::Severity;
    ///
    /// assert_eq!(Severity::Low.raised(2, Severity::Critical), Severity::High);
    /// assert_eq!(Severity::Medium.raised(5, Severity::High), Severity::High);
    /// assert_eq!(Severity::Critical.raised(1, Severity::High), Severity::Critical);
    /// ```
    pub fn raised(self, levels: usize, ceiling: Severity) -> Severity {
        if self >= ceiling {
            return self;
        }
        let rank = (self.rank().saturating_add(levels)).min(ceiling.rank());
        Severity::ALL[rank]
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given is not one of `low`, `medium`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}`: expected low, medium, high or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == name)
            .ok_or_else(|| UnknownSeverity(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_low_to_critical() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::Medium < Severity::High);
        assert!(Severity::High < Severity::Critical);
    }

    #[test]
    fn serde_and_from_str_use_lowercase_names() {
        assert_eq!(
            serde_json::to_string(&Severity::Critical).unwrap(),
            "\"critical\""
        );
        let parsed: Severity = serde_json::from_str("\"medium\"").unwrap();
        assert_eq!(parsed, Severity::Medium);
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert_eq!(
            "warning".parse::<Severity>().unwrap_err(),
            UnknownSeverity("warning".into())
        );
    }

    #[test]
    fn raising_stops_at_the_ceiling() {
        assert_eq!(
            Severity::Low.raised(1, Severity::Critical),
            Severity::Medium
        );
        assert_eq!(
            Severity::High.raised(3, Severity::Critical),
            Severity::Critical
        );
        assert_eq!(Severity::Low.raised(0, Severity::Critical), Severity::Low);
        assert_eq!(
            Severity::Medium.raised(2, Severity::Medium),
            Severity::Medium
        );
    }
}
