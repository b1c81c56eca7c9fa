//! Which active incidents the healing planner looks at on the next pass.
//!
//! Planning every active incident on every tick is O(all incidents) under
//! the engine's lock, and a server that ingests alerts holds hundreds of
//! thousands of them, almost all matching no healing rule. An incident is
//! planned again only when something its decision depends on may have
//! changed: the incident itself (every change the engine makes to an
//! incident is marked for persistence, and the marks feed this queue), the
//! healing configuration, the healing progress of its workload, or the
//! cluster snapshot (re-read every tick, so an incident about a pod is
//! always planned).

use std::collections::{HashMap, HashSet};

use crate::classify::ResourceKind;
use crate::healing::Decision;
use crate::incident::{Incident, IncidentBook, IncidentId};

/// The incidents to plan on the next pass, and those settled until
/// something wakes them.
#[derive(Debug, Default)]
pub(super) struct PlanQueue {
    due: HashSet<IncidentId>,
    /// Settled incidents by workload, woken when the workload's healing
    /// progress may have changed.
    settled: HashMap<String, HashSet<IncidentId>>,
    /// The workload each settled incident is filed under.
    workload_of: HashMap<IncidentId, String>,
}

impl PlanQueue {
    /// Plans `id` on the next pass.
    pub(super) fn mark(&mut self, id: IncidentId) {
        if let Some(workload) = self.workload_of.remove(&id)
            && let Some(ids) = self.settled.get_mut(&workload)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.settled.remove(&workload);
            }
        }
        self.due.insert(id);
    }

    /// Plans every active incident on the next pass (the rules changed, or
    /// the book was restored).
    pub(super) fn mark_all_active(&mut self, book: &IncidentBook) {
        self.settled.clear();
        self.workload_of.clear();
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
        for id in also {
            self.mark(id.clone());
        }
        let mut due: Vec<(usize, IncidentId)> = self
            .due
            .drain()
            .filter_map(|id| Some((book.position(&id)?, id)))
            .collect();
        due.sort_unstable_by_key(|(position, _)| *position);
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Files `incident`, just planned to `decision` on `workload`: settled
    /// (not planned until something wakes it) or due again next pass.
    ///
    /// Only "no rule matches" settles, and only for an incident that is not
    /// about a pod: its decision then depends on nothing but the incident
    /// (labels, category, severity, namespace, service), the rules, and the
    /// progress of its healing case (its category on its workload, which
    /// for anything but a pod does not depend on the snapshot). Any other
    /// decision (an action, a denial, a cooldown, the budget, an
    /// escalation) may have started progress on the workload, so the
    /// incidents settled there are woken.
    pub(super) fn file(&mut self, incident: &Incident, workload: &str, decision: &Decision) {
        let about_a_pod = incident
            .resource
            .as_ref()
            .is_some_and(|resource| resource.kind == ResourceKind::Pod);
        if matches!(decision, Decision::NoMatchingRule) && !about_a_pod {
            self.due.remove(&incident.id);
            self.settled
                .entry(workload.to_owned())
                .or_default()
                .insert(incident.id.clone());
            self.workload_of
                .insert(incident.id.clone(), workload.to_owned());
            return;
        }
        self.mark(incident.id.clone());
        if !matches!(decision, Decision::NoMatchingRule)
            && let Some(woken) = self.settled.remove(workload)
        {
            for id in woken {
                self.workload_of.remove(&id);
                self.due.insert(id);
            }
        }
    }

    /// How many incidents are settled.
    #[cfg(test)]
    pub(super) fn settled(&self) -> usize {
        self.workload_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertStatus};
    use crate::classify::ResourceRef;
    use crate::healing::Denial;
    use crate::incident::IncidentBookConfig;

    fn book_with(fingerprints: &[&str]) -> IncidentBook {
        let mut book = IncidentBook::new(IncidentBookConfig::default()).unwrap();
        let now: crate::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        for fingerprint in fingerprints {
            let alert = Alert {
                fingerprint: (*fingerprint).to_owned(),
                status: AlertStatus::Firing,
                labels: crate::labels::from_pairs([
                    ("alertname", "Test"),
                    ("instance", fingerprint),
                ]),
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
    fn no_matching_rule_settles_until_the_workload_or_the_incident_changes() {
        let book = book_with(&["a", "b"]);
        let a = book.incidents().next().unwrap().clone();
        let b = book.incidents().nth(1).unwrap().clone();
        let mut queue = PlanQueue::default();
        queue.mark_all_active(&book);
        let _ = queue.take(&book, []);
        queue.file(&a, "instance//x", &Decision::NoMatchingRule);
        assert_eq!(queue.settled(), 1);
        assert!(queue.take(&book, []).is_empty(), "settled: not planned");

        // Another incident's decision on the same workload wakes it.
        let denial = Decision::Deny(Denial::Protected {
            namespace: "kube-system".into(),
        });
        queue.file(&b, "instance//x", &denial);
        assert_eq!(queue.take(&book, []), vec![a.id.clone(), b.id.clone()]);
        assert_eq!(queue.settled(), 0);

        // A change to the incident (marked) plans it again.
        queue.file(&a, "instance//x", &Decision::NoMatchingRule);
        queue.mark(a.id.clone());
        assert_eq!(queue.settled(), 0);
        assert_eq!(queue.take(&book, []), vec![a.id.clone()]);

        // Anything but "no rule" stays due.
        queue.file(&a, "instance//x", &Decision::AwaitingHuman);
        assert_eq!(queue.take(&book, []), vec![a.id.clone()]);
    }

    #[test]
    fn an_incident_about_a_pod_never_settles() {
        let book = book_with(&["a"]);
        let mut incident = book.incidents().next().unwrap().clone();
        incident.resource = Some(ResourceRef {
            kind: ResourceKind::Pod,
            namespace: Some("shop".into()),
            name: "web-1".into(),
            node: None,
        });
        let mut queue = PlanQueue::default();
        queue.file(&incident, "deployment/shop/web", &Decision::NoMatchingRule);
        assert_eq!(queue.settled(), 0);
        assert_eq!(queue.take(&book, []), vec![incident.id.clone()]);
    }
}
