//! The [`IncidentBook`]: alerts and signals in, incidents with a lifecycle
//! out. Pure: time comes in as `now` arguments.

use std::collections::HashMap;
use std::fmt;

mod restore;
pub use restore::RestoreError;

use super::Error;
use super::config::IncidentBookConfig;
use super::ids::{IncidentIdGenerator, SequentialIds};
use super::intake::Draft;
use super::lifecycle::{
    change_status, raise_to, record_occurrence, reopen, require_status, resolve,
};
use super::model::{Incident, IncidentId, IncidentStatus, TimeRange};
use super::stats::{IncidentStats, incident_stats};
use super::timeline::{
    HEALER_ACTOR, HealingOutcome, HealingStep, SYSTEM_ACTOR, SeverityChangeReason, TimelineEntry,
    TimelineEvent,
};
use crate::Timestamp;
use crate::alert::{Alert, AlertStatus};
use crate::classify::{Classification, Cleared, Fingerprint, Severity, Signal};

/// What ingesting an alert or a signal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// A new incident was opened.
    Opened(IncidentId),
    /// A recently resolved incident was reopened.
    Reopened(IncidentId),
    /// An active incident's problem started again (a new firing episode).
    Recurred(IncidentId),
    /// A redelivery of what an active incident already holds; only
    /// `last_seen` (and a higher severity, if any) changed.
    Duplicate(IncidentId),
    /// The source resolved, so the incident was.
    AutoResolved(IncidentId),
    /// Nothing changed.
    Ignored(IgnoreReason),
}

impl Ingested {
    /// The incident concerned, unless nothing was.
    pub fn incident_id(&self) -> Option<&IncidentId> {
        match self {
            Ingested::Opened(id)
            | Ingested::Reopened(id)
            | Ingested::Recurred(id)
            | Ingested::Duplicate(id)
            | Ingested::AutoResolved(id) => Some(id),
            Ingested::Ignored(_) => None,
        }
    }
}

/// Why a resolution from the source changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// No incident has this fingerprint.
    UnknownFingerprint,
    /// Its latest incident is already resolved.
    AlreadyResolved,
    /// Auto-resolution is switched off.
    AutoResolveDisabled,
    /// The resolution is for an earlier occurrence than the incident's
    /// current one (an out-of-order delivery).
    StaleResolution,
}

/// The incidents and the rules that drive them: deduplication by
/// fingerprint, correlation, reopening, escalation on repeated occurrences,
/// auto-resolution, and acknowledge/resolve/assign by people.
///
/// It keeps incidents in memory in opening order; after every change the
/// caller persists the incident it returns (or names) through an
/// [`IncidentStore`](super::IncidentStore). At most one incident per
/// fingerprint is active (open or acknowledged) at any time.
pub struct IncidentBook {
    config: IncidentBookConfig,
    ids: Box<dyn IncidentIdGenerator>,
    incidents: Vec<Incident>,
    position: HashMap<IncidentId, usize>,
    latest_for: HashMap<Fingerprint, usize>,
}

impl fmt::Debug for IncidentBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncidentBook")
            .field("config", &self.config)
            .field("incidents", &self.incidents.len())
            .finish_non_exhaustive()
    }
}

impl Default for IncidentBook {
    /// Default rules, ids `INC-000001` on.
    fn default() -> Self {
        Self::with_valid_config(
            IncidentBookConfig::default(),
            Box::new(SequentialIds::default()),
        )
    }
}

impl IncidentBook {
    /// An empty book with `config` (validated) and ids `INC-000001` on.
    pub fn new(config: IncidentBookConfig) -> Result<Self, Error> {
        Self::with_id_generator(config, Box::new(SequentialIds::default()))
    }

    /// An empty book taking ids from `ids`.
    pub fn with_id_generator(
        config: IncidentBookConfig,
        ids: Box<dyn IncidentIdGenerator>,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::with_valid_config(config, ids))
    }

    fn with_valid_config(config: IncidentBookConfig, ids: Box<dyn IncidentIdGenerator>) -> Self {
        Self {
            config,
            ids,
            incidents: Vec::new(),
            position: HashMap::new(),
            latest_for: HashMap::new(),
        }
    }

    /// The rules in force.
    pub fn config(&self) -> &IncidentBookConfig {
        &self.config
    }

    /// The incident with this id.
    pub fn get(&self, id: &IncidentId) -> Option<&Incident> {
        self.position.get(id).map(|&index| &self.incidents[index])
    }

    /// Where the incident is in opening order (0 for the first).
    pub fn position(&self, id: &IncidentId) -> Option<usize> {
        self.position.get(id).copied()
    }

    /// Every incident, in opening order.
    pub fn incidents(&self) -> impl ExactSizeIterator<Item = &Incident> {
        self.incidents.iter()
    }

    /// The active incident for a fingerprint, if there is one.
    pub fn active_for(&self, fingerprint: &Fingerprint) -> Option<&Incident> {
        self.latest_for
            .get(fingerprint)
            .map(|&index| &self.incidents[index])
            .filter(|incident| incident.is_active())
    }

    /// The incidents correlated with `id` (itself included), in opening order.
    pub fn group(&self, id: &IncidentId) -> Vec<&Incident> {
        let Some(group) = self.get(id).map(|incident| &incident.correlation_group) else {
            return Vec::new();
        };
        self.incidents
            .iter()
            .filter(|incident| &incident.correlation_group == group)
            .collect()
    }

    /// Counts, MTTA and MTTR of the incidents opened within `range`.
    pub fn stats(&self, range: &TimeRange) -> IncidentStats {
        incident_stats(&self.incidents, range)
    }

    /// Ingests an alert received at `now`: a firing alert opens, reopens or
    /// updates the incident of its fingerprint; a resolved one auto-resolves
    /// it (if configured).
    pub fn ingest_alert(&mut self, alert: &Alert, now: Timestamp) -> Ingested {
        match alert.status {
            AlertStatus::Firing => self.fire(
                Draft::from_alert(alert, self.config.default_alert_severity),
                now,
            ),
            AlertStatus::Resolved => self.source_resolved(
                &Fingerprint::new(alert.fingerprint.clone()),
                Some(alert.starts_at),
                "alert resolved at source",
                now,
            ),
        }
    }

    /// Ingests a classifier signal (a problem that holds).
    pub fn ingest_signal(&mut self, signal: &Signal, now: Timestamp) -> Ingested {
        self.fire(Draft::from_signal(signal), now)
    }

    /// Ingests a classifier clear (a raised problem no longer holds).
    pub fn ingest_cleared(&mut self, cleared: &Cleared, now: Timestamp) -> Ingested {
        self.source_resolved(&cleared.fingerprint(), None, "signal cleared", now)
    }

    /// Ingests either kind of classifier result.
    pub fn ingest(&mut self, classification: &Classification, now: Timestamp) -> Ingested {
        match classification {
            Classification::Raised(signal) => self.ingest_signal(signal, now),
            Classification::Cleared(cleared) => self.ingest_cleared(cleared, now),
        }
    }

    /// Marks an open incident as being worked on by `actor`.
    ///
    /// Only an open incident can be acknowledged: acknowledging it twice,
    /// or once resolved, is an [`Error::IllegalTransition`].
    pub fn acknowledge(
        &mut self,
        id: &IncidentId,
        actor: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.incident_mut(id, actor)?;
        require_status(
            incident,
            IncidentStatus::Acknowledged,
            &[IncidentStatus::Open],
        )?;
        incident.acknowledged_at = Some(now);
        change_status(incident, IncidentStatus::Acknowledged, actor, note, now);
        Ok(incident)
    }

    /// Resolves an open or acknowledged incident.
    pub fn resolve(
        &mut self,
        id: &IncidentId,
        actor: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.incident_mut(id, actor)?;
        require_status(
            incident,
            IncidentStatus::Resolved,
            &[IncidentStatus::Open, IncidentStatus::Acknowledged],
        )?;
        resolve(incident, actor, note, now);
        Ok(incident)
    }

    /// Reopens a resolved incident by hand. Only the latest incident of its
    /// fingerprint can be reopened, so that a fingerprint never has two
    /// active incidents.
    pub fn reopen(
        &mut self,
        id: &IncidentId,
        actor: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let index = self.index_of(id)?;
        let latest = self.latest_for[&self.incidents[index].fingerprint];
        if latest != index {
            return Err(Error::Superseded {
                id: id.clone(),
                by: self.incidents[latest].id.clone(),
            });
        }
        let incident = self.incident_mut(id, actor)?;
        require_status(incident, IncidentStatus::Open, &[IncidentStatus::Resolved])?;
        reopen(incident, actor, note, now);
        Ok(incident)
    }

    /// Gives the incident to `assignee`. Allowed in any status: ownership of
    /// a resolved incident's follow-up is still ownership.
    pub fn assign(
        &mut self,
        id: &IncidentId,
        assignee: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        if assignee.trim().is_empty() {
            return Err(Error::MissingAssignee);
        }
        let incident = self.incident_mut(id, actor)?;
        let previous = incident.assignee.replace(assignee.to_owned());
        incident.timeline.push(TimelineEntry {
            at: now,
            actor: actor.to_owned(),
            event: TimelineEvent::Assigned {
                assignee: assignee.to_owned(),
                previous,
            },
        });
        Ok(incident)
    }

    /// Adds a note to the timeline.
    pub fn add_note(
        &mut self,
        id: &IncidentId,
        actor: &str,
        text: &str,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.incident_mut(id, actor)?;
        incident.timeline.push(TimelineEntry {
            at: now,
            actor: actor.to_owned(),
            event: TimelineEvent::Note {
                text: text.to_owned(),
            },
        });
        Ok(incident)
    }

    /// Records a healing step on the timeline, as [`HEALER_ACTOR`].
    pub fn record_healing(
        &mut self,
        id: &IncidentId,
        step: HealingStep<'_>,
        outcome: HealingOutcome,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.incident_mut(id, HEALER_ACTOR)?;
        incident.timeline.push(TimelineEntry {
            at: now,
            actor: HEALER_ACTOR.to_owned(),
            event: TimelineEvent::Healing {
                rule: step.rule.to_owned(),
                action: step.action.to_owned(),
                target: step.target.to_owned(),
                outcome,
            },
        });
        Ok(incident)
    }

    /// Raises an active incident's severity one level (up to critical)
    /// because healing failed or did not help, and records the channel
    /// notified. Healing goes on with its next action.
    pub fn escalate_severity(
        &mut self,
        id: &IncidentId,
        reason: &str,
        channel: &str,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.active_mut(id)?;
        let raised = incident.severity.raised(1, Severity::Critical);
        raise_to(incident, raised, SeverityChangeReason::Escalation, now);
        push_escalated(incident, reason, channel, now);
        Ok(incident)
    }

    /// Hands an active incident to a human: healing stops for it, and the
    /// channel notified is recorded.
    pub fn escalate(
        &mut self,
        id: &IncidentId,
        reason: &str,
        channel: &str,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.active_mut(id)?;
        incident.escalated = true;
        push_escalated(incident, reason, channel, now);
        Ok(incident)
    }

    fn active_mut(&mut self, id: &IncidentId) -> Result<&mut Incident, Error> {
        let incident = self.incident_mut(id, HEALER_ACTOR)?;
        if !incident.is_active() {
            return Err(Error::NotActive(incident.id.clone()));
        }
        Ok(incident)
    }

    /// Marks an incident that its source resolved while a healing action
    /// awaited verification as resolved by that action.
    pub fn mark_resolved_by_healing(&mut self, id: &IncidentId) -> Result<(), Error> {
        let incident = self.incident_mut(id, HEALER_ACTOR)?;
        if incident.is_active() {
            return Err(Error::IllegalTransition {
                id: id.clone(),
                from: incident.status,
                to: IncidentStatus::Resolved,
            });
        }
        incident.resolved_by_healing = true;
        Ok(())
    }

    /// Resolves an incident whose healing action was verified to work.
    pub fn resolve_by_healing(
        &mut self,
        id: &IncidentId,
        note: &str,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        self.resolve(id, HEALER_ACTOR, Some(note), now)?;
        let incident = self.incident_mut(id, HEALER_ACTOR)?;
        incident.resolved_by_healing = true;
        Ok(incident)
    }

    /// Links an incident to a chaos run that was active when it opened,
    /// marking it as an expected effect of the experiment.
    pub fn link_chaos_run(
        &mut self,
        id: &IncidentId,
        run_id: &str,
        now: Timestamp,
    ) -> Result<&Incident, Error> {
        let incident = self.incident_mut(id, SYSTEM_ACTOR)?;
        if !incident.chaos_runs.iter().any(|r| r == run_id) {
            incident.chaos_runs.push(run_id.to_owned());
            incident.timeline.push(TimelineEntry {
                at: now,
                actor: SYSTEM_ACTOR.to_owned(),
                event: TimelineEvent::LinkedToChaosRun {
                    run_id: run_id.to_owned(),
                },
            });
        }
        Ok(incident)
    }

    /// Records a circuit breaker's state change on the timeline of every
    /// active incident of its service; returns those incidents.
    pub fn record_breaker_transition(
        &mut self,
        transition: &crate::resilience::BreakerTransition,
    ) -> Vec<IncidentId> {
        let mut recorded = Vec::new();
        for incident in self
            .incidents
            .iter_mut()
            .filter(|i| i.is_active() && i.service.as_deref() == Some(transition.service.as_str()))
        {
            incident.timeline.push(TimelineEntry {
                at: transition.at,
                actor: SYSTEM_ACTOR.to_owned(),
                event: TimelineEvent::CircuitBreaker {
                    from: transition.from,
                    to: transition.to,
                    reason: transition.reason.clone(),
                },
            });
            recorded.push(incident.id.clone());
        }
        recorded
    }

    /// Removes incidents resolved before `cutoff` (once they are safely in
    /// a store) and returns them. A removed incident can no longer
    /// be reopened: its fingerprint firing again opens a new one.
    pub fn prune_resolved(&mut self, cutoff: Timestamp) -> Vec<Incident> {
        let (pruned, kept) =
            std::mem::take(&mut self.incidents)
                .into_iter()
                .partition(|incident| {
                    !incident.is_active()
                        && incident.resolved_at.unwrap_or(incident.last_seen) < cutoff
                });
        self.incidents = kept;
        self.position.clear();
        self.latest_for.clear();
        for (index, incident) in self.incidents.iter().enumerate() {
            self.position.insert(incident.id.clone(), index);
            self.latest_for.insert(incident.fingerprint.clone(), index);
        }
        pruned
    }

    fn fire(&mut self, draft: Draft, now: Timestamp) -> Ingested {
        let Some(&index) = self.latest_for.get(&draft.fingerprint) else {
            return self.open(draft, now);
        };
        let config = &self.config;
        let incident = &mut self.incidents[index];
        if incident.is_active() {
            incident.last_seen = now;
            if draft.occurrence_started_at <= incident.occurrence_started_at {
                raise_to(incident, draft.severity, SeverityChangeReason::Source, now);
                return Ingested::Duplicate(incident.id.clone());
            }
            record_occurrence(incident, &draft, config, now);
            return Ingested::Recurred(incident.id.clone());
        }
        let resolved_at = incident.resolved_at.unwrap_or(incident.last_seen);
        if now.duration_since(resolved_at) < config.reopen_window {
            incident.last_seen = now;
            reopen(incident, SYSTEM_ACTOR, Some("fired again"), now);
            record_occurrence(incident, &draft, config, now);
            return Ingested::Reopened(incident.id.clone());
        }
        self.open(draft, now)
    }

    fn open(&mut self, draft: Draft, now: Timestamp) -> Ingested {
        let id = self.ids.next_id();
        let mut incident = Incident {
            id: id.clone(),
            title: draft.title,
            description: draft.description,
            category: draft.category,
            severity: draft.severity,
            status: IncidentStatus::Open,
            service: draft.service,
            environment: draft.environment,
            namespace: draft.namespace,
            resource: draft.resource,
            labels: draft.labels,
            assignee: None,
            runbook_url: draft.runbook_url,
            generator_url: draft.generator_url,
            fingerprint: draft.fingerprint,
            occurrences: 1,
            first_seen: now,
            last_seen: now,
            occurrence_started_at: draft.occurrence_started_at,
            source: draft.source,
            correlation_group: id.clone(),
            acknowledged_at: None,
            resolved_at: None,
            resolved_by_healing: false,
            escalated: false,
            chaos_runs: Vec::new(),
            timeline: vec![TimelineEntry {
                at: now,
                actor: SYSTEM_ACTOR.to_owned(),
                event: TimelineEvent::Opened {
                    severity: draft.severity,
                    source: draft.source,
                },
            }],
        };
        if let Some(group) = self
            .config
            .correlation
            .group_for(&incident, &self.incidents, now)
        {
            incident.correlation_group = group.clone();
            incident.timeline.push(TimelineEntry {
                at: now,
                actor: SYSTEM_ACTOR.to_owned(),
                event: TimelineEvent::Correlated { group },
            });
        }
        let index = self.incidents.len();
        self.position.insert(id.clone(), index);
        self.latest_for.insert(incident.fingerprint.clone(), index);
        self.incidents.push(incident);
        Ingested::Opened(id)
    }

    fn source_resolved(
        &mut self,
        fingerprint: &Fingerprint,
        occurrence_started_at: Option<Timestamp>,
        note: &str,
        now: Timestamp,
    ) -> Ingested {
        let Some(&index) = self.latest_for.get(fingerprint) else {
            return Ingested::Ignored(IgnoreReason::UnknownFingerprint);
        };
        let incident = &mut self.incidents[index];
        if !incident.is_active() {
            return Ingested::Ignored(IgnoreReason::AlreadyResolved);
        }
        // Whole seconds: Alertmanager's resolved notification may carry the
        // start time truncated to the second while the firing one had
        // milliseconds; an older occurrence is always seconds older.
        if occurrence_started_at
            .is_some_and(|started| started.as_second() < incident.occurrence_started_at.as_second())
        {
            return Ingested::Ignored(IgnoreReason::StaleResolution);
        }
        if !self.config.auto_resolve {
            return Ingested::Ignored(IgnoreReason::AutoResolveDisabled);
        }
        incident.last_seen = now;
        resolve(incident, SYSTEM_ACTOR, Some(note), now);
        Ingested::AutoResolved(incident.id.clone())
    }

    fn index_of(&self, id: &IncidentId) -> Result<usize, Error> {
        self.position
            .get(id)
            .copied()
            .ok_or_else(|| Error::UnknownIncident(id.clone()))
    }

    fn incident_mut(&mut self, id: &IncidentId, actor: &str) -> Result<&mut Incident, Error> {
        if actor.trim().is_empty() {
            return Err(Error::MissingActor);
        }
        let index = self.index_of(id)?;
        Ok(&mut self.incidents[index])
    }
}

#[cfg(test)]
mod tests;

fn push_escalated(incident: &mut Incident, reason: &str, channel: &str, now: Timestamp) {
    incident.timeline.push(TimelineEntry {
        at: now,
        actor: HEALER_ACTOR.to_owned(),
        event: TimelineEvent::Escalated {
            reason: reason.to_owned(),
            channel: channel.to_owned(),
        },
    });
}
