//! Incidents: alerts and signals turned into incidents with a lifecycle,
//! deduplicated, correlated, and measured (MTTA, MTTR).
//!
//! The [`IncidentBook`] holds the rules and is pure: it takes `now` as an
//! argument and reads no clock. Each ingest returns what it did
//! ([`Ingested`]); the caller then persists the incident through an
//! [`IncidentStore`] (an [`InMemoryIncidentStore`] here, a database in an
//! adapter).
//!
//! ```
//! use octrix_core::alert::{Alert, AlertStatus};
//! use octrix_core::incident::{IncidentBook, IncidentStatus, Ingested};
//! use octrix_core::labels::from_pairs;
//! use octrix_core::time::SignedDuration;
//! use octrix_core::{Clock, ManualClock, Severity, Timestamp};
//!
//! let clock = ManualClock::new("2026-11-23T09:06:35Z".parse::<Timestamp>().unwrap());
//! let mut book = IncidentBook::default();
//! let mut alert = Alert {
//!     fingerprint: "413724370af55eb6".into(),
//!     status: AlertStatus::Firing,
//!     labels: from_pairs([("alertname", "NodeUp"), ("service", "node"), ("severity", "warning")]),
//!     annotations: from_pairs([("summary", "node exporter is up")]),
//!     starts_at: clock.now(),
//!     ends_at: None,
//!     generator_url: None,
//! };
//!
//! let Ingested::Opened(id) = book.ingest_alert(&alert, clock.now()) else { unreachable!() };
//! assert_eq!(id.as_str(), "INC-000001");
//! // Alertmanager redelivers the same alert: deduplicated by fingerprint.
//! clock.advance(SignedDuration::from_secs(60));
//! assert_eq!(book.ingest_alert(&alert, clock.now()), Ingested::Duplicate(id.clone()));
//!
//! clock.advance(SignedDuration::from_secs(60));
//! book.acknowledge(&id, "alice@example.com", Some("on it"), clock.now()).unwrap();
//! clock.advance(SignedDuration::from_secs(480));
//! alert.status = AlertStatus::Resolved;
//! assert_eq!(book.ingest_alert(&alert, clock.now()), Ingested::AutoResolved(id.clone()));
//!
//! let incident = book.get(&id).unwrap();
//! assert_eq!(incident.status, IncidentStatus::Resolved);
//! assert_eq!(incident.severity, Severity::Medium); // "warning"
//! assert_eq!(incident.time_to_acknowledge(), Some(SignedDuration::from_mins(2)));
//! assert_eq!(incident.time_to_resolve(), Some(SignedDuration::from_mins(10)));
//! ```
//!
//! # Rules
//!
//! * **Deduplication.** An alert's identity is Alertmanager's fingerprint; a
//!   signal's is a stable FNV-1a hash of category, resource and metric
//!   ([`Signal::fingerprint`](crate::classify::Signal::fingerprint)). A
//!   fingerprint has at most one active (open or acknowledged) incident.
//!   Firing again with the same start (`startsAt`, `since`) is a redelivery
//!   ([`Ingested::Duplicate`]); with a later start it is a new occurrence
//!   ([`Ingested::Recurred`]).
//! * **Reopen or new.** When a resolved incident's fingerprint fires, the
//!   incident is reopened if it was resolved less than
//!   [`reopen_window`](IncidentBookConfig::reopen_window) ago (default
//!   30 min), else a new incident opens. This holds whoever resolved it: an
//!   alert still firing after a person resolved it reopens the incident.
//! * **Severity.** Taken from the source (see [`severity_from_label`]),
//!   raised (never lowered) when the source reports higher, and raised one
//!   level on every
//!   [`escalate_every_occurrences`](IncidentBookConfig::escalate_every_occurrences)-th
//!   occurrence (default 3), up to the ceiling (default critical).
//! * **Auto-resolve.** A resolved alert or a cleared signal resolves the
//!   active incident of its fingerprint (configurable); a resolution for an
//!   older occurrence than the current one is ignored.
//! * **Lifecycle.** open → acknowledged → resolved, open → resolved, and
//!   resolved → open (reopen); anything else is an
//!   [`Error::IllegalTransition`].
//! * **Correlation.** An incident opened while a related incident (same
//!   service, environment and severity by default) was seen within the last
//!   15 min joins that incident's group; see [`CorrelationConfig`].
//! * **Ids.** `INC-000001`, `INC-000002`, ... from a counter
//!   ([`SequentialIds`]), or any [`IncidentIdGenerator`].

mod book;
mod config;
mod correlate;
mod ids;
mod intake;
mod lifecycle;
mod model;
mod stats;
mod store;
mod timeline;

pub use book::{IgnoreReason, IncidentBook, Ingested, RestoreError};
pub use config::IncidentBookConfig;
pub use correlate::{CorrelationConfig, CorrelationKey};
pub use ids::{IncidentIdGenerator, SequentialIds};
pub use intake::severity_from_label;
pub use model::{Incident, IncidentId, IncidentSource, IncidentStatus, TimeRange};
pub use stats::{DurationSummary, IncidentStats, incident_stats};
pub use store::{
    InMemoryIncidentStore, IncidentFilter, IncidentPage, IncidentQuery, IncidentStore,
    MAX_PAGE_LIMIT, SortDirection, SortKey, StoreError,
};
pub use timeline::{
    HEALER_ACTOR, HealingOutcome, HealingStep, SYSTEM_ACTOR, SeverityChangeReason, TimelineEntry,
    TimelineEvent,
};

pub use crate::classify::Fingerprint;

/// What can go wrong when changing incidents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No incident has this id.
    #[error("unknown incident {0}")]
    UnknownIncident(IncidentId),
    /// The incident's status does not allow the change, e.g. acknowledging
    /// a resolved incident.
    #[error("incident {id} is {from} and cannot become {to}")]
    IllegalTransition {
        /// The incident.
        id: IncidentId,
        /// Its status.
        from: IncidentStatus,
        /// The status asked for.
        to: IncidentStatus,
    },
    /// A newer incident exists for the same fingerprint, so this one cannot
    /// be reopened.
    #[error("incident {id} cannot be reopened: {by} is the newer incident for its fingerprint")]
    Superseded {
        /// The incident asked for.
        id: IncidentId,
        /// The newer one.
        by: IncidentId,
    },
    /// The change only applies to an active incident, and this one is resolved.
    #[error("incident {0} is resolved")]
    NotActive(IncidentId),
    /// A change by a person needs the person's name.
    #[error("an actor is required")]
    MissingActor,
    /// An assignment needs an assignee.
    #[error("an assignee is required")]
    MissingAssignee,
    /// A configuration field is out of range.
    #[error("invalid incident book configuration: {field} {requirement}")]
    InvalidConfig {
        /// The offending field, e.g. `reopen_window`.
        field: String,
        /// What it must satisfy.
        requirement: String,
    },
}

impl Error {
    fn invalid_config(field: impl Into<String>, requirement: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            requirement: requirement.into(),
        }
    }
}
