//! What kind of problem something is: [`Category`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of problem a signal or an incident is about.
///
/// The first seven are seed 000's incident categories, raised by the
/// [`Classifier`](super::Classifier) from cluster observations;
/// [`Category::Anomaly`] comes from a streaming detector and
/// [`Category::Alert`] from an external alerting system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// A pod in CrashLoopBackOff (or another start failure) or in the Failed phase.
    PodCrash,
    /// CPU utilisation above its thresholds.
    HighCpu,
    /// Memory utilisation above its thresholds.
    HighMemory,
    /// A container killed for running out of memory.
    OomKilled,
    /// A node reporting memory, disk or PID pressure.
    NodePressure,
    /// A node whose Ready condition is not True.
    NodeNotReady,
    /// A pod restarting too often.
    PersistentRestarts,
    /// A metric a detector found anomalous.
    Anomaly,
    /// An alert from an external system such as Alertmanager.
    Alert,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 9] = [
        Category::PodCrash,
        Category::HighCpu,
        Category::HighMemory,
        Category::OomKilled,
        Category::NodePressure,
        Category::NodeNotReady,
        Category::PersistentRestarts,
        Category::Anomaly,
        Category::Alert,
    ];

    /// The kebab-case name used in configuration and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::PodCrash => "pod-crash",
            Category::HighCpu => "high-cpu",
            Category::HighMemory => "high-memory",
            Category::OomKilled => "oom-killed",
            Category::NodePressure => "node-pressure",
            Category::NodeNotReady => "node-not-ready",
            Category::PersistentRestarts => "persistent-restarts",
            Category::Anomaly => "anomaly",
            Category::Alert => "alert",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given is not a known category.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown category `{0}`")]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|category| category.as_str() == name)
            .ok_or_else(|| UnknownCategory(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_as_str_and_from_str() {
        for category in Category::ALL {
            let json = serde_json::to_string(&category).unwrap();
            assert_eq!(json, format!("\"{}\"", category.as_str()));
            assert_eq!(category.as_str().parse::<Category>().unwrap(), category);
        }
        assert_eq!(
            serde_json::to_string(&Category::PersistentRestarts).unwrap(),
            "\"persistent-restarts\""
        );
        assert!("oom_killed".parse::<Category>().is_err());
    }
}
