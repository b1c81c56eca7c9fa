//! Classification: typed cluster observations turned into categorised,
//! graded [`Signal`]s.
//!
//! Adapters report [`Observation`]s (a pod's status, a node's conditions, a
//! CPU or memory utilisation, a restart rate, a detector's anomaly). The
//! [`Classifier`] grades each against the [`SeverityPolicy`], counting
//! consecutive samples per resource and category, and returns
//! [`Classification`]s: a [`Signal`] while a problem holds long enough, a
//! [`Cleared`] when a raised problem is observed healthy again (so that the
//! incident it opened can auto-resolve). The [`crate::incident`] module
//! turns both into incidents.
//!
//! ```
//! use octrix_core::classify::{
//!     Category, Classification, Classifier, Observation, Reading, ResourceRef,
//! };
//! use octrix_core::{Severity, Timestamp};
//!
//! let mut classifier = Classifier::default();
//! let pod = ResourceRef::pod("shop", "cart-7d9f").on_node("worker-1");
//! let sample = |second: i64, ratio: f64| {
//!     Observation::new(
//!         Timestamp::from_second(second).unwrap(),
//!         pod.clone(),
//!         Reading::CpuUtilisation { ratio },
//!     )
//!     .with_service("cart")
//! };
//!
//! // Above 80% must hold for 3 consecutive samples before it is medium.
//! assert!(classifier.observe(&sample(0, 0.90)).is_empty());
//! assert!(classifier.observe(&sample(15, 0.91)).is_empty());
//! let raised = classifier.observe(&sample(30, 0.92));
//! let signal = raised[0].as_signal().unwrap();
//! assert_eq!(signal.category, Category::HighCpu);
//! assert_eq!(signal.severity, Severity::Medium);
//! assert_eq!(signal.since.as_second(), 0);
//! assert_eq!(signal.threshold, Some(0.80));
//!
//! // The first healthy sample clears it, once.
//! let cleared = classifier.observe(&sample(45, 0.20));
//! assert!(matches!(&cleared[..], [Classification::Cleared(c)] if c.category == Category::HighCpu));
//! assert!(classifier.observe(&sample(60, 0.20)).is_empty());
//! ```
//!
//! # Grading
//!
//! Measured categories use a [`Ladder`]: a step per severity, each a
//! threshold (inclusive: "at or above") and a number of consecutive samples;
//! the highest step reached wins, and a sample below a step restarts that
//! step's count. Conditions (a crash loop, a node not ready) use a
//! [`ConditionPolicy`]: a severity after some consecutive samples, and
//! optionally a higher one if the condition lasts. Non-finite or
//! out-of-range readings are rejected and counted
//! ([`Classifier::rejected_readings`]); they never touch a counter.
//!
//! # Default policy
//!
//! | category | measured by | default |
//! |---|---|---|
//! | `pod-crash` | a container waiting for a failure reason (CrashLoopBackOff, ImagePullBackOff, ErrImagePull, InvalidImageName, CreateContainer(Config)Error, RunContainerError) or phase Failed | medium after 1 sample, high after 10 |
//! | `oom-killed` | a container OOMKilled now or in its last run, while not ready or restarted within `restart_window` | medium after 1 sample |
//! | `high-cpu` | CPU utilisation ratio | medium at 0.80 for 3 samples, high at 0.95 for 3 |
//! | `high-memory` | memory utilisation ratio | medium at 0.85 for 3 samples, high at 0.95 for 3 |
//! | `persistent-restarts` | restarts per hour: increase of the pod's restart count over `restart_window` (1 h), or a measured rate | medium at 3, high at 10, each for 1 sample |
//! | `node-not-ready` | Ready is False or Unknown | critical after 1 sample |
//! | `node-pressure` | MemoryPressure, DiskPressure or PIDPressure | medium after 1 sample, high after 10 |
//! | `anomaly` | detector anomaly score in [0, 1], per metric | low at 0.6, medium at 0.8, high at 0.95, each for 1 sample |
//!
//! In YAML (TOML takes the same fields):
//!
//! ```yaml
//! high_cpu:
//!   medium: { threshold: 0.8, for_samples: 3 }
//!   high: { threshold: 0.95, for_samples: 3 }
//! node_not_ready: { severity: critical, for_samples: 1 }
//! pod_crash:
//!   severity: medium
//!   escalation: { severity: high, after_samples: 10 }
//! restart_window: 1h
//! ```

mod category;
mod classifier;
mod finding;
mod fingerprint;
mod observation;
mod policy;
mod reasons;
mod resource;
mod restarts;
mod severity;
mod signal;
mod streak;

pub use category::{Category, UnknownCategory};
pub use classifier::Classifier;
pub use fingerprint::{Fingerprint, fnv1a_64};
pub use observation::{
    AnomalyReading, ConditionStatus, ContainerStatus, Direction, NodeConditions, Observation,
    PodPhase, PodStatus, Reading,
};
pub use policy::{ConditionPolicy, Escalation, Ladder, SeverityPolicy, Step};
pub use reasons::{TerminationReason, WaitingReason};
pub use resource::{ResourceKind, ResourceRef};
pub use severity::{Severity, UnknownSeverity};
pub use signal::{Classification, Cleared, Signal};

/// What can go wrong in classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A policy field is out of range; `field` is its configuration path.
    #[error("{field} {requirement}")]
    InvalidPolicy {
        /// The offending field, e.g. `high_cpu.high.threshold`.
        field: String,
        /// What it must satisfy, e.g. `must be within (0, 1]`.
        requirement: String,
    },
}

impl Error {
    fn invalid(field: impl Into<String>, requirement: impl Into<String>) -> Self {
        Error::InvalidPolicy {
            field: field.into(),
            requirement: requirement.into(),
        }
    }
}
