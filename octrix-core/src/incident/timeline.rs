//! What happened to an incident: [`TimelineEntry`] and [`TimelineEvent`].

use serde::{Deserialize, Serialize};

use super::model::{IncidentId, IncidentSource, IncidentStatus};
use crate::Timestamp;
use crate::classify::Severity;

/// The actor recorded for changes the book makes on its own (opening,
/// escalation, auto-resolution).
pub const SYSTEM_ACTOR: &str = "octrix";

/// The actor recorded for healing steps and resolutions by healing.
pub const HEALER_ACTOR: &str = "octrix-healer";

/// The healing step a timeline entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealingStep<'a> {
    /// The rule that planned it.
    pub rule: &'a str,
    /// The action (`restart-pod`, ...).
    pub action: &'a str,
    /// What it acts on.
    pub target: &'a str,
}

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
    /// A healing step: planned, carried out, verified, denied or failed.
    Healing {
        /// The rule that planned it.
        rule: String,
        /// The action (`restart-pod`, ...).
        action: String,
        /// What it acted on (`pod/shop/web-1`, ...).
        target: String,
        /// What came of it.
        outcome: HealingOutcome,
    },
    /// Healing gave up: the incident needs a human.
    Escalated {
        /// Why.
        reason: String,
        /// The channel notified.
        channel: String,
    },
    /// The circuit breaker of the incident's service changed state.
    CircuitBreaker {
        /// The state it left.
        from: crate::resilience::BreakerState,
        /// The state it entered.
        to: crate::resilience::BreakerState,
        /// Why.
        reason: crate::resilience::TransitionReason,
    },
    /// The incident opened while a chaos run was active on what it concerns.
    LinkedToChaosRun {
        /// The run.
        run_id: String,
    },
    /// It joined the correlation group of related incidents.
    Correlated {
        /// The group (its first incident's id).
        group: IncidentId,
    },
}

/// What came of a healing step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HealingOutcome {
    /// The action was carried out; verification follows after the settle time.
    Executed {
        /// What the actuator reported.
        summary: String,
    },
    /// Dry run: planned and validated, nothing changed.
    DryRun {
        /// What would have happened.
        summary: String,
    },
    /// Verified: the problem is gone.
    Healed,
    /// Verified: the problem is still there.
    NotHealed,
    /// The action failed.
    Failed {
        /// The error.
        error: String,
    },
    /// The action was not allowed (budget, cooldown, protected namespace).
    Denied {
        /// Why.
        reason: String,
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
    /// Healing failed or did not help, so the incident was escalated.
    Escalation,
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
