//! Taking the working set back from storage after a restart.

use super::{ActionRecord, Engine, Error};
use crate::healing::HealingConfig;
use crate::incident::{Incident, IncidentId};

/// What an engine takes back from storage when its process starts again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoredState {
    /// Stored incidents to go on with: at least every open and acknowledged
    /// one (so alerts deduplicate into them); resolved ones may be added so
    /// that they can still be reopened.
    pub incidents: Vec<Incident>,
    /// The highest incident id ever stored, resolved ones included: new ids
    /// continue after it.
    pub highest_incident_id: Option<IncidentId>,
    /// The healing configuration (rules, policies, dry-run switch), when
    /// one was saved.
    pub healing: Option<HealingConfig>,
    /// Past actions, oldest first (the newest 10,000 are kept).
    pub action_history: Vec<ActionRecord>,
}

impl Engine {
    /// Takes back what a previous process stored, before the first tick or
    /// delivery. Either everything is taken or, on an error, the engine is
    /// unchanged. Returns how many incidents were restored.
    ///
    /// What is not restored starts afresh: detector baselines, actions
    /// waiting for verification (an incident still active is planned
    /// again), and the safety budget's windows.
    pub fn restore(&mut self, state: RestoredState) -> Result<usize, Error> {
        if let Some(healing) = &state.healing {
            healing
                .validate()
                .map_err(|e| Error::Config(format!("stored healing configuration: {e}")))?;
        }
        let restored = self
            .book
            .restore(state.incidents, state.highest_incident_id.as_ref())
            .map_err(|e| Error::Store(format!("cannot restore stored incidents: {e}")))?;
        if let Some(healing) = state.healing {
            self.planner.set_config(healing);
        }
        self.plan_queue.mark_all_active(&self.book);
        let skip = state
            .action_history
            .len()
            .saturating_sub(super::ACTION_HISTORY);
        let mut history: std::collections::VecDeque<ActionRecord> =
            state.action_history.into_iter().skip(skip).collect();
        history.extend(self.history.drain(..));
        while history.len() > super::ACTION_HISTORY {
            history.pop_front();
        }
        self.history = history;
        Ok(restored)
    }

    /// How many actions this engine recorded in its history since it was
    /// built (restored ones not counted): a caller that persists the
    /// history remembers this number and later asks for
    /// [`Engine::actions_since`].
    pub fn actions_recorded(&self) -> u64 {
        self.actions_recorded
    }

    /// The actions recorded after [`Engine::actions_recorded`] returned
    /// `recorded`, oldest first (at most the 10,000 the history keeps).
    pub fn actions_since(&self, recorded: u64) -> impl Iterator<Item = &ActionRecord> {
        let new = self.actions_recorded.saturating_sub(recorded);
        let new = usize::try_from(new)
            .unwrap_or(usize::MAX)
            .min(self.history.len());
        self.history.iter().skip(self.history.len() - new)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::{Alert, AlertStatus};
    use crate::engine::{EngineConfig, Ports};
    use crate::incident::{HealingOutcome, IncidentBook, Ingested};
    use crate::labels::from_pairs;
    use crate::sim::{SimCluster, SimConfig};
    use crate::{Clock, ManualClock, Timestamp};

    fn engine(clock: Arc<ManualClock>) -> Engine {
        let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
        Engine::new(EngineConfig::default(), Ports::simulated(sim, clock)).unwrap()
    }

    fn alert(fingerprint: &str, starts_at: Timestamp) -> Alert {
        Alert {
            fingerprint: fingerprint.into(),
            status: AlertStatus::Firing,
            labels: from_pairs([("alertname", "HighLatency"), ("severity", "critical")]),
            annotations: from_pairs([("summary", "latency high")]),
            starts_at,
            ends_at: None,
            generator_url: None,
        }
    }

    fn record(n: usize) -> ActionRecord {
        ActionRecord {
            at: Timestamp::from_second(1_800_000_000 + n as i64).unwrap(),
            incident_id: format!("INC-{n:06}"),
            rule: "restart-crashloop".into(),
            action: "restart-pod".into(),
            target: "default/api-0".into(),
            dry_run: true,
            outcome: HealingOutcome::DryRun {
                summary: "would restart".into(),
            },
        }
    }

    #[tokio::test]
    async fn a_restored_engine_goes_on_where_the_stored_one_stopped() {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        let mut book = IncidentBook::default();
        book.ingest_alert(&alert("f1", clock.now()), clock.now());
        let stored: Vec<Incident> = book.incidents().cloned().collect();
        let healing = HealingConfig {
            dry_run: true,
            ..HealingConfig::default()
        };

        let mut engine = engine(clock.clone());
        let restored = engine
            .restore(RestoredState {
                incidents: stored,
                highest_incident_id: Some(IncidentId::new("INC-000010")),
                healing: Some(healing),
                action_history: (1..=3).map(record).collect(),
            })
            .unwrap();
        assert_eq!(restored, 1);
        assert!(engine.planner().config().dry_run);
        assert_eq!(engine.action_history().len(), 3);
        assert_eq!(engine.actions_recorded(), 0);
        assert_eq!(engine.actions_since(0).count(), 0);

        let outcome = engine
            .ingest_alerts(&[alert("f1", clock.now()), alert("f2", clock.now())])
            .await
            .unwrap();
        assert_eq!(
            outcome,
            vec![
                Ingested::Duplicate(IncidentId::new("INC-000001")),
                Ingested::Opened(IncidentId::new("INC-000011")),
            ]
        );
    }

    #[tokio::test]
    async fn a_restored_recently_resolved_incident_reopens_and_an_older_one_does_not() {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let mut book = IncidentBook::default();
        book.ingest_alert(&alert("recent", start), start);
        book.ingest_alert(&alert("old", start), start);
        let minutes = |m: i64| start + jiff::SignedDuration::from_mins(m);
        book.resolve(&IncidentId::new("INC-000002"), "alice", None, minutes(1))
            .unwrap();
        book.resolve(&IncidentId::new("INC-000001"), "alice", None, minutes(20))
            .unwrap();
        let stored: Vec<Incident> = book.incidents().cloned().collect();

        // The process restarts 40 minutes after the start: the default
        // reopen window (30 minutes) covers the first, not the second.
        clock.set(minutes(40));
        let mut engine = engine(clock.clone());
        engine
            .restore(RestoredState {
                incidents: stored,
                highest_incident_id: Some(IncidentId::new("INC-000002")),
                ..RestoredState::default()
            })
            .unwrap();
        let outcome = engine
            .ingest_alerts(&[alert("recent", minutes(39)), alert("old", minutes(39))])
            .await
            .unwrap();
        assert_eq!(
            outcome,
            vec![
                Ingested::Reopened(IncidentId::new("INC-000001")),
                Ingested::Opened(IncidentId::new("INC-000003")),
            ]
        );
    }

    #[test]
    fn actions_since_returns_only_the_newer_records() {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        let mut engine = engine(clock);
        engine.push_history(record(1));
        let seen = engine.actions_recorded();
        engine.push_history(record(2));
        engine.push_history(record(3));
        let new: Vec<&str> = engine
            .actions_since(seen)
            .map(|r| r.incident_id.as_str())
            .collect();
        assert_eq!(new, ["INC-000002", "INC-000003"]);
        assert_eq!(engine.actions_recorded(), 3);
    }

    #[test]
    fn an_invalid_stored_configuration_leaves_the_engine_unchanged() {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_800_000_000).unwrap(),
        ));
        let mut engine = engine(clock.clone());
        let mut healing = HealingConfig::default();
        healing.budget.window_seconds = 0;
        let mut book = IncidentBook::default();
        book.ingest_alert(&alert("f1", clock.now()), clock.now());
        let error = engine
            .restore(RestoredState {
                incidents: book.incidents().cloned().collect(),
                healing: Some(healing),
                ..RestoredState::default()
            })
            .unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
        assert_eq!(engine.book().incidents().len(), 0);
    }
}
