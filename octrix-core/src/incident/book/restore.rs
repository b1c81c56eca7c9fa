//! Taking incidents back from storage after a restart.

use std::collections::{HashMap, HashSet};

use super::IncidentBook;
use crate::classify::Fingerprint;
use crate::incident::model::{Incident, IncidentId};

/// Why stored incidents could not be taken back: the stored set breaks an
/// invariant of the book, so it was left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The id is already in the book, or given twice.
    #[error("incident {0} is given twice")]
    DuplicateId(IncidentId),
    /// Two incidents of one fingerprint are active; the book allows one.
    #[error("incidents {first} and {second} are both active for fingerprint {fingerprint}")]
    TwoActive {
        /// The fingerprint.
        fingerprint: Fingerprint,
        /// The incident already active for it.
        first: IncidentId,
        /// The other one.
        second: IncidentId,
    },
}

impl IncidentBook {
    /// Takes back incidents read from storage after a restart, so that the
    /// book goes on where the previous process stopped:
    ///
    /// * an alert or signal with the fingerprint of a restored active
    ///   incident deduplicates into it (a resolved one is reopened within
    ///   the reopen window, as usual);
    /// * people can acknowledge, resolve and assign them;
    /// * new ids continue after every restored id and after
    ///   `highest_used_id` (the highest id ever stored, resolved incidents
    ///   included, which the caller need not restore).
    ///
    /// Incidents are placed in opening order (`first_seen`, then id). Either
    /// all are taken or, on an error, none.
    pub fn restore(
        &mut self,
        incidents: impl IntoIterator<Item = Incident>,
        highest_used_id: Option<&IncidentId>,
    ) -> Result<usize, RestoreError> {
        let mut restored: Vec<Incident> = incidents.into_iter().collect();
        restored.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.id.cmp(&b.id)));
        self.check_restorable(&restored)?;

        for incident in &restored {
            self.ids.continue_after(&incident.id);
        }
        if let Some(id) = highest_used_id {
            self.ids.continue_after(id);
        }
        let count = restored.len();
        for incident in restored {
            let index = self.incidents.len();
            let newer_than_latest = match self.latest_for.get(&incident.fingerprint) {
                None => true,
                Some(&latest) => {
                    let latest = &self.incidents[latest];
                    incident.is_active()
                        || (!latest.is_active() && incident.first_seen >= latest.first_seen)
                }
            };
            if newer_than_latest {
                self.latest_for.insert(incident.fingerprint.clone(), index);
            }
            self.position.insert(incident.id.clone(), index);
            self.incidents.push(incident);
        }
        Ok(count)
    }

    fn check_restorable(&self, restored: &[Incident]) -> Result<(), RestoreError> {
        let mut ids: HashSet<&IncidentId> = self.position.keys().collect();
        let mut active: HashMap<&Fingerprint, &IncidentId> = self
            .incidents
            .iter()
            .filter(|i| i.is_active())
            .map(|i| (&i.fingerprint, &i.id))
            .collect();
        for incident in restored {
            if !ids.insert(&incident.id) {
                return Err(RestoreError::DuplicateId(incident.id.clone()));
            }
            if incident.is_active()
                && let Some(first) = active.insert(&incident.fingerprint, &incident.id)
            {
                return Err(RestoreError::TwoActive {
                    fingerprint: incident.fingerprint.clone(),
                    first: first.clone(),
                    second: incident.id.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::alert::{Alert, AlertStatus};
    use crate::incident::{IncidentStatus, Ingested};
    use crate::labels::from_pairs;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
    }

    fn firing(fingerprint: &str, starts_minute: i64) -> Alert {
        Alert {
            fingerprint: fingerprint.into(),
            status: AlertStatus::Firing,
            labels: from_pairs([("alertname", fingerprint), ("severity", "warning")]),
            annotations: from_pairs([("summary", "latency high")]),
            starts_at: at(starts_minute),
            ends_at: None,
            generator_url: None,
        }
    }

    /// A book that opened three incidents, acknowledged the second and
    /// resolved the third, as a previous process would have stored them.
    fn stored() -> Vec<Incident> {
        let mut book = IncidentBook::default();
        for (n, fingerprint) in ["a", "b", "c"].iter().enumerate() {
            book.ingest_alert(&firing(fingerprint, 0), at(n as i64));
        }
        let second = IncidentId::new("INC-000002");
        let third = IncidentId::new("INC-000003");
        book.acknowledge(&second, "alice", None, at(5)).unwrap();
        book.resolve(&third, "alice", None, at(6)).unwrap();
        book.incidents().cloned().collect()
    }

    #[test]
    fn restored_incidents_deduplicate_and_ids_continue() {
        let active: Vec<Incident> = stored().into_iter().filter(|i| i.is_active()).collect();
        let mut book = IncidentBook::default();
        let restored = book
            .restore(active, Some(&IncidentId::new("INC-000003")))
            .unwrap();
        assert_eq!(restored, 2);
        assert_eq!(
            book.get(&IncidentId::new("INC-000002")).unwrap().status,
            IncidentStatus::Acknowledged
        );
        // A redelivery deduplicates into the restored incident.
        assert_eq!(
            book.ingest_alert(&firing("a", 0), at(10)),
            Ingested::Duplicate(IncidentId::new("INC-000001"))
        );
        // A new fingerprint gets an id after the highest stored one, even
        // though that (resolved) incident was not restored.
        assert_eq!(
            book.ingest_alert(&firing("d", 0), at(10)),
            Ingested::Opened(IncidentId::new("INC-000004"))
        );
        // A person can go on working on a restored incident.
        book.resolve(&IncidentId::new("INC-000002"), "bob", None, at(11))
            .unwrap();
    }

    #[test]
    fn a_restored_resolved_incident_reopens_within_the_window() {
        let mut book = IncidentBook::default();
        book.restore(stored(), None).unwrap();
        assert_eq!(
            book.ingest_alert(&firing("c", 8), at(8)),
            Ingested::Reopened(IncidentId::new("INC-000003"))
        );
        assert_eq!(book.incidents().len(), 3);
    }

    #[test]
    fn a_broken_stored_set_is_refused_whole() {
        let incidents = stored();
        let mut twin = incidents[0].clone();
        twin.id = IncidentId::new("INC-000009");
        let mut book = IncidentBook::default();
        let error = book
            .restore([incidents[0].clone(), twin], None)
            .unwrap_err();
        assert_eq!(
            error,
            RestoreError::TwoActive {
                fingerprint: incidents[0].fingerprint.clone(),
                first: IncidentId::new("INC-000001"),
                second: IncidentId::new("INC-000009"),
            }
        );
        assert_eq!(book.incidents().len(), 0);

        book.restore([incidents[1].clone()], None).unwrap();
        assert_eq!(
            book.restore([incidents[1].clone()], None).unwrap_err(),
            RestoreError::DuplicateId(IncidentId::new("INC-000002"))
        );
        assert_eq!(book.incidents().len(), 1);
    }
}
