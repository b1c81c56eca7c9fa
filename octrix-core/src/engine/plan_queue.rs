//! Which active incidents the healing planner looks at on the next pass.
//!
//! Planning every active incident on every tick is O(all incidents) under
//! the engine's lock, and a server that ingests alerts holds hundreds of
//! thousands of them, almost all matching no healing rule. An incident is
//! planned again only when something its decision depends on may have
//! changed: the incident itself (every change the engine makes to an
//! incident is marked for persistence, and the marks feed this queue), the
//! healing configuration, or the cluster snapshot (re-read every tick, so
//! an incident about a cluster resource is always planned).

use std::collections::HashSet;

use crate::healing::Decision;
use crate::incident::{Incident, IncidentBook, IncidentId};

/// The incidents to plan on the next pass.
#[derive(Debug, Default)]
pub(super) struct PlanQueue {
    due: HashSet<IncidentId>,
}

impl PlanQueue {
    /// Plans `id` on the next pass.
    pub(super) fn mark(&mut self, id: IncidentId) {
        self.due.insert(id);
    }

    /// Plans every active incident on the next pass (the rules changed, or
    /// the book was restored).
    pub(super) fn mark_all_active(&mut self, book: &IncidentBook) {
        self.due.extend(
            book.incidents()
                .filter(|incident| incident.is_active())
                .map(|incident| incident.id.clone()),
        );
    }

    /// Takes the incidents due, with `also` (changed and not yet marked),
    /// in opening order: the order a full scan of the book would plan them
    /// in, which decides who leads a workload and who gets the budget first.
    pub(super) fn take<'a>(
        &mut self,
        book: &IncidentBook,
        also: impl IntoIterator<Item = &'a IncidentId>,
    ) -> Vec<IncidentId> {
        self.due.extend(also.into_iter().cloned());
        let mut due: Vec<(usize, IncidentId)> = self
            .due
            .drain()
            .filter_map(|id| Some((book.position(&id)?, id)))
            .collect();
        due.sort_unstable_by_key(|(position, _)| *position);
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Whether `incident`, planned to `decision`, must be planned again on
    /// the next pass even if nothing marks it.
    ///
    /// Only "no rule matches" settles an incident, and only one without a
    /// cluster resource: the decision then depends on nothing but the
    /// incident (its labels, category, severity, namespace, service) and
    /// the rules, and its healing case is its own (`incident/<id>`), so no
    /// other incident's progress can change it. Everything else (an action,
    /// a denial, a cooldown, the budget, a workload busy with another
    /// incident) may change with time or with the snapshot alone.
    pub(super) fn stays_due(incident: &Incident, decision: &Decision) -> bool {
        !(matches!(decision, Decision::NoMatchingRule) && incident.resource.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertStatus};
    use crate::classify::{ResourceKind, ResourceRef};
    use crate::healing::Denial;
    use crate::incident::IncidentBookConfig;

    fn book_with(fingerprints: &[&str]) -> IncidentBook {
        let mut book = IncidentBook::new(IncidentBookConfig::default()).unwrap();
        let now: crate::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        for fingerprint in fingerprints {
            let alert = Alert {
                fingerprint: (*fingerprint).to_owned(),
                status: AlertStatus::Firing,
                labels: crate::labels::from_pairs([("alertname", "Test"), ("instance", fingerprint)]),
                annotations: crate::Labels::new(),
                starts_at: now,
                ends_at: None,
                generator_url: None,
            };
            book.ingest_alert(&alert, now);
        }
        book
    }

    #[test]
    fn takes_what_is_due_once_in_opening_order() {
        let book = book_with(&["a", "b", "c"]);
        let ids: Vec<IncidentId> = book.incidents().map(|i| i.id.clone()).collect();
        let mut queue = PlanQueue::default();
        queue.mark(ids[2].clone());
        queue.mark(ids[0].clone());
        assert_eq!(queue.take(&book, [&ids[1], &ids[0]]), ids);
        assert!(queue.take(&book, []).is_empty());
    }

    #[test]
    fn forgets_ids_the_book_does_not_hold() {
        let book = book_with(&["a"]);
        let mut queue = PlanQueue::default();
        queue.mark(IncidentId::new("INC-999999"));
        assert!(queue.take(&book, []).is_empty());
    }

    #[test]
    fn marks_every_active_incident() {
        let book = book_with(&["a", "b"]);
        let mut queue = PlanQueue::default();
        queue.mark_all_active(&book);
        assert_eq!(queue.take(&book, []).len(), 2);
    }

    #[test]
    fn only_no_matching_rule_without_a_resource_settles() {
        let book = book_with(&["a"]);
        let mut incident = book.incidents().next().unwrap().clone();
        assert!(!PlanQueue::stays_due(&incident, &Decision::NoMatchingRule));
        let denial = Decision::Deny(Denial::Protected {
            namespace: "kube-system".into(),
        });
        assert!(PlanQueue::stays_due(&incident, &denial));
        assert!(PlanQueue::stays_due(&incident, &Decision::AwaitingHuman));
        incident.resource = Some(ResourceRef {
            kind: ResourceKind::Pod,
            namespace: Some("shop".into()),
            name: "web-1".into(),
            node: None,
        });
        assert!(PlanQueue::stays_due(&incident, &Decision::NoMatchingRule));
    }
}
