//! The incident data model (seed 001, extended): [`Incident`] and its parts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::timeline::{TimelineEntry, TimelineEvent};
use crate::classify::{Category, Fingerprint, ResourceRef, Severity};
use crate::time::SignedDuration;
use crate::{Labels, Timestamp};

/// An incident's identifier, e.g. `INC-000042`, given by the book's
/// [`IncidentIdGenerator`](super::IncidentIdGenerator).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(String);

impl IncidentId {
    /// Wraps an identifier.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Nobody has taken it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// It is over (until it is reopened).
    Resolved,
}

impl IncidentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [IncidentStatus; 3] = [
        IncidentStatus::Open,
        IncidentStatus::Acknowledged,
        IncidentStatus::Resolved,
    ];

    /// Open or acknowledged: not resolved.
    pub const fn is_active(self) -> bool {
        !matches!(self, IncidentStatus::Resolved)
    }

    /// The lowercase name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an incident came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSource {
    /// An external alert (Alertmanager).
    Alert,
    /// A streaming anomaly detector.
    Detector,
    /// The classifier's view of cluster state.
    Cluster,
}

/// A half-open time range `[start, end)`; a missing bound is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// Inclusive start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    /// Exclusive end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
}

impl TimeRange {
    /// All of time.
    pub const fn all() -> Self {
        Self {
            start: None,
            end: None,
        }
    }

    /// `[start, end)`.
    pub const fn between(start: Timestamp, end: Timestamp) -> Self {
        Self {
            start: Some(start),
            end: Some(end),
        }
    }

    /// Whether `at` falls in the range.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start.is_none_or(|start| at >= start) && self.end.is_none_or(|end| at < end)
    }
}

/// One incident: a problem with an identity (its fingerprint), a lifecycle
/// and a timeline.
///
/// Fields are public so adapters can serialise, store and display
/// incidents; the [`IncidentBook`](super::IncidentBook) is what keeps them
/// consistent (status with timeline, one active incident per fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Identifier.
    pub id: IncidentId,
    /// One line for people: the alert's `summary`, or the signal's summary.
    pub title: String,
    /// Longer text: the alert's `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What kind of problem.
    pub category: Category,
    /// How bad, now.
    pub severity: Severity,
    /// Lifecycle status.
    pub status: IncidentStatus,
    /// The affected service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The environment (production, staging, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The affected object, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceRef>,
    /// The source's labels.
    #[serde(default)]
    pub labels: Labels,
    /// Who owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Where the runbook is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// Link back to what produced the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// Identity used for deduplication.
    pub fingerprint: Fingerprint,
    /// How many times the problem started (firing episodes, reopenings
    /// included); redeliveries of one episode do not count.
    pub occurrences: u32,
    /// When the book opened the incident.
    pub first_seen: Timestamp,
    /// When the book last heard of it.
    pub last_seen: Timestamp,
    /// When the source says the current occurrence began (the alert's
    /// `startsAt`, the signal's `since`).
    pub occurrence_started_at: Timestamp,
    /// Where it came from.
    pub source: IncidentSource,
    /// The correlation group: the id of the first incident of the group
    /// (its own id when it is alone).
    pub correlation_group: IncidentId,
    /// The latest acknowledgement, cleared on reopening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// The latest resolution, cleared on reopening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Whether the last resolution came from a healing action that was
    /// verified to work, rather than from a person or the source.
    #[serde(default)]
    pub resolved_by_healing: bool,
    /// Whether healing gave up and handed the incident to a human.
    #[serde(default)]
    pub escalated: bool,
    /// Chaos runs that were active when the incident opened: the incident is
    /// an expected effect of a planned experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chaos_runs: Vec<String>,
    /// Everything that happened to it, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

impl Incident {
    /// Whether the incident is an expected effect of a chaos run.
    pub fn is_expected(&self) -> bool {
        !self.chaos_runs.is_empty()
    }

    /// Open or acknowledged.
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// From opening to the first acknowledgement: the incident's
    /// contribution to MTTA. `None` if never acknowledged.
    pub fn time_to_acknowledge(&self) -> Option<SignedDuration> {
        self.first_change_to(IncidentStatus::Acknowledged)
            .map(|at| at.duration_since(self.first_seen))
    }

    /// From opening to the first resolution: the incident's contribution to
    /// MTTR. `None` if never resolved. Later reopenings are counted by
    /// [`Incident::reopen_count`], not added here.
    pub fn time_to_resolve(&self) -> Option<SignedDuration> {
        self.first_change_to(IncidentStatus::Resolved)
            .map(|at| at.duration_since(self.first_seen))
    }

    /// How many times it went from resolved back to open.
    pub fn reopen_count(&self) -> usize {
        self.timeline
            .iter()
            .filter(|entry| {
                matches!(
                    entry.event,
                    TimelineEvent::StatusChanged {
                        from: IncidentStatus::Resolved,
                        to: IncidentStatus::Open,
                        ..
                    }
                )
            })
            .count()
    }

    fn first_change_to(&self, status: IncidentStatus) -> Option<Timestamp> {
        self.timeline.iter().find_map(|entry| match entry.event {
            TimelineEvent::StatusChanged { to, .. } if to == status => Some(entry.at),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_range_is_half_open() {
        let start = Timestamp::from_second(10).unwrap();
        let end = Timestamp::from_second(20).unwrap();
        let range = TimeRange::between(start, end);
        assert!(range.contains(start));
        assert!(range.contains(Timestamp::from_second(19).unwrap()));
        assert!(!range.contains(end));
        assert!(!range.contains(Timestamp::from_second(9).unwrap()));
        assert!(TimeRange::all().contains(Timestamp::MIN));
    }

    #[test]
    fn statuses_serialise_lowercase() {
        assert_eq!(
            serde_json::to_string(&IncidentStatus::Acknowledged).unwrap(),
            "\"acknowledged\""
        );
        assert_eq!(
            serde_json::to_string(&IncidentSource::Detector).unwrap(),
            "\"detector\""
        );
        assert!(IncidentStatus::Open.is_active());
        assert!(!IncidentStatus::Resolved.is_active());
    }
}
