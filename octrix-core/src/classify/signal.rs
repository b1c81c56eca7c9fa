//! What the [`Classifier`](super::Classifier) produces: [`Signal`]s while a
//! problem lasts and a [`Cleared`] when it ends.

use serde::{Deserialize, Serialize};

use super::{Category, Fingerprint, ResourceRef, Severity};
use crate::{Labels, Timestamp};

/// A categorised, graded problem seen on a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// What kind of problem.
    pub category: Category,
    /// How bad it is now.
    pub severity: Severity,
    /// Where it was seen.
    pub resource: ResourceRef,
    /// The metric an anomaly is about; part of the fingerprint, so anomalies
    /// on two metrics of one pod are two problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The service the resource belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The observation's labels plus category details (`reason`, `container`, ...).
    #[serde(default)]
    pub labels: Labels,
    /// One line for people.
    pub summary: String,
    /// The measured value that was graded, for measured categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// The threshold of the step that gave the severity, for measured categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// When the problem began: the first sample of the current streak. The
    /// same `since` across signals means the same occurrence.
    pub since: Timestamp,
    /// When it was last observed.
    pub at: Timestamp,
}

impl Signal {
    /// The stable identity of the problem: category, resource and metric.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(self.category, &self.resource, self.metric.as_deref())
    }
}

/// A problem that was raised on a resource is no longer observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleared {
    /// The category that cleared.
    pub category: Category,
    /// Where.
    pub resource: ResourceRef,
    /// The metric, for anomalies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The service the resource belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// When the healthy sample was observed.
    pub at: Timestamp,
}

impl Cleared {
    /// The same fingerprint as the [`Signal`]s it clears.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(self.category, &self.resource, self.metric.as_deref())
    }
}

/// One result of classifying an observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Classification {
    /// A problem holds (again, or still).
    Raised(Signal),
    /// A previously raised problem no longer holds.
    Cleared(Cleared),
}

impl Classification {
    /// The category concerned.
    pub fn category(&self) -> Category {
        match self {
            Classification::Raised(signal) => signal.category,
            Classification::Cleared(cleared) => cleared.category,
        }
    }

    /// The signal, if this is one.
    pub fn as_signal(&self) -> Option<&Signal> {
        match self {
            Classification::Raised(signal) => Some(signal),
            Classification::Cleared(_) => None,
        }
    }
}

fn fingerprint_of(category: Category, resource: &ResourceRef, metric: Option<&str>) -> Fingerprint {
    let [kind, namespace, name] = resource.identity();
    Fingerprint::of_parts([
        category.as_str(),
        kind,
        namespace,
        name,
        metric.unwrap_or(""),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_has_the_fingerprint_of_the_signals_it_clears() {
        let at = Timestamp::UNIX_EPOCH;
        let signal = Signal {
            category: Category::HighCpu,
            severity: Severity::High,
            resource: ResourceRef::pod("shop", "cart-1").on_node("w1"),
            metric: None,
            service: Some("cart".into()),
            labels: Labels::new(),
            summary: String::new(),
            observed: Some(0.97),
            threshold: Some(0.95),
            since: at,
            at,
        };
        let cleared = Cleared {
            category: Category::HighCpu,
            resource: ResourceRef::pod("shop", "cart-1"),
            metric: None,
            service: None,
            at,
        };
        assert_eq!(signal.fingerprint(), cleared.fingerprint());
        let other_category = Cleared {
            category: Category::HighMemory,
            ..cleared
        };
        assert_ne!(signal.fingerprint(), other_category.fingerprint());
    }
}
