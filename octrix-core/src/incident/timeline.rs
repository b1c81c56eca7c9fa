//! What happened to an incident: [`TimelineEntry`] and [`TimelineEvent`].

use serde::{Deserialize, Serialize};

use super::model::{IncidentId, IncidentSource, IncidentStatus};
use crate::Timestamp;
use crate::classify::Severity;

/// The actor recorded for changes the book makes on its own (opening,
/// escalation, auto-resolution).
pub const SYSTEM_ACTOR: &str = "octrix";

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When it happened.
    pub at: Timestamp,
    /// Who did it: a person, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// What happened.
    #[serde(flatten)]
    pub event: TimelineEvent,
}

/// What happened. Non-exhaustive: healing actions and other kinds will be
/// added, so match with a wildcard arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimelineEvent {
    /// The incident was opened.
    Opened {
        /// Its severity at opening.
        severity: Severity,
        /// Where it came from.
        source: IncidentSource,
    },
    /// The problem started again (a new firing episode, or a reopening).
    Occurred {
        /// The occurrence count after this one.
        occurrences: u32,
    },
    /// The status changed.
    StatusChanged {
        /// Before.
        from: IncidentStatus,
        /// After.
        to: IncidentStatus,
        /// Why, in the actor's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The severity changed.
    SeverityChanged {
        /// Before.
        from: Severity,
        /// After.
        to: Severity,
        /// Why.
        reason: SeverityChangeReason,
    },
    /// Someone took (or was given) ownership.
    Assigned {
        /// The new owner.
        assignee: String,
        /// The previous owner, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
    },
    /// A free-text note.
    Note {
        /// The text.
        text: String,
    },
    /// It joined the correlation group of related incidents.
    Correlated {
        /// The group (its first incident's id).
        group: IncidentId,
    },
}

/// Why a severity changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityChangeReason {
    /// The source reported a higher severity.
    Source,
    /// The problem kept recurring.
    RepeatedOccurrences,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_serialise_flat_with_a_kind_tag() {
        let entry = TimelineEntry {
            at: Timestamp::from_second(60).unwrap(),
            actor: "alice@example.com".into(),
            event: TimelineEvent::StatusChanged {
                from: IncidentStatus::Open,
                to: IncidentStatus::Acknowledged,
                note: Some("looking".into()),
            },
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "at": "1970-01-01T00:01:00Z",
                "actor": "alice@example.com",
                "kind": "status_changed",
                "from": "open",
                "to": "acknowledged",
                "note": "looking"
            })
        );
        let back: TimelineEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
    }
}
