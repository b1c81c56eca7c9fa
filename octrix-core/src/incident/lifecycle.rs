//! The state changes every path through the book shares, each keeping
//! status, timestamps and timeline in step.

use super::Error;
use super::config::IncidentBookConfig;
use super::intake::Draft;
use super::model::{Incident, IncidentStatus};
use super::timeline::{SYSTEM_ACTOR, SeverityChangeReason, TimelineEntry, TimelineEvent};
use crate::Timestamp;
use crate::classify::Severity;

/// `Ok` if `incident` may go to `to` from its current status.
pub(crate) fn require_status(
    incident: &Incident,
    to: IncidentStatus,
    allowed_from: &[IncidentStatus],
) -> Result<(), Error> {
    if allowed_from.contains(&incident.status) {
        Ok(())
    } else {
        Err(Error::IllegalTransition {
            id: incident.id.clone(),
            from: incident.status,
            to,
        })
    }
}

/// Sets the status and records the change.
pub(crate) fn change_status(
    incident: &mut Incident,
    to: IncidentStatus,
    actor: &str,
    note: Option<&str>,
    now: Timestamp,
) {
    let from = std::mem::replace(&mut incident.status, to);
    incident.timeline.push(TimelineEntry {
        at: now,
        actor: actor.to_owned(),
        event: TimelineEvent::StatusChanged {
            from,
            to,
            note: note.map(str::to_owned),
        },
    });
}

/// Resolves, remembering when.
pub(crate) fn resolve(incident: &mut Incident, actor: &str, note: Option<&str>, now: Timestamp) {
    incident.resolved_at = Some(now);
    incident.resolved_by_healing = false;
    change_status(incident, IncidentStatus::Resolved, actor, note, now);
}

/// Back to open; the latest acknowledgement and resolution no longer hold.
pub(crate) fn reopen(incident: &mut Incident, actor: &str, note: Option<&str>, now: Timestamp) {
    incident.acknowledged_at = None;
    incident.resolved_at = None;
    incident.resolved_by_healing = false;
    incident.escalated = false;
    change_status(incident, IncidentStatus::Open, actor, note, now);
}

/// A new occurrence: count it, take the source's severity if higher, then
/// raise one level on every `escalate_every_occurrences`-th occurrence.
pub(crate) fn record_occurrence(
    incident: &mut Incident,
    draft: &Draft,
    config: &IncidentBookConfig,
    now: Timestamp,
) {
    incident.occurrences = incident.occurrences.saturating_add(1);
    incident.occurrence_started_at = draft.occurrence_started_at;
    incident.timeline.push(TimelineEntry {
        at: now,
        actor: SYSTEM_ACTOR.to_owned(),
        event: TimelineEvent::Occurred {
            occurrences: incident.occurrences,
        },
    });
    raise_to(incident, draft.severity, SeverityChangeReason::Source, now);
    let every = config.escalate_every_occurrences;
    if every > 0 && incident.occurrences.is_multiple_of(every) {
        let raised = incident.severity.raised(1, config.escalation_ceiling);
        raise_to(
            incident,
            raised,
            SeverityChangeReason::RepeatedOccurrences,
            now,
        );
    }
}

/// Raises the severity to `to` if that is higher; severities are never
/// lowered automatically, since a calmer redelivery does not undo the
/// worst seen.
pub(crate) fn raise_to(
    incident: &mut Incident,
    to: Severity,
    reason: SeverityChangeReason,
    now: Timestamp,
) {
    if to <= incident.severity {
        return;
    }
    let from = std::mem::replace(&mut incident.severity, to);
    incident.timeline.push(TimelineEntry {
        at: now,
        actor: SYSTEM_ACTOR.to_owned(),
        event: TimelineEvent::SeverityChanged { from, to, reason },
    });
}
