//! Run statistics, as seed 000's simulator `/stats` reports them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ScenarioType;
use super::run::{RunStatus, ScenarioRun};

/// Outcome counts of one group of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeStats {
    /// Runs in the group.
    pub total: u64,
    /// Runs per status; every status is present, with 0 when none.
    pub by_status: BTreeMap<RunStatus, u64>,
    /// Completed and stopped runs over all runs that ran or failed (cancelled
    /// and active runs left out); `None` when there is none.
    pub success_rate: Option<f64>,
}

impl Default for OutcomeStats {
    fn default() -> Self {
        Self {
            total: 0,
            by_status: RunStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
            success_rate: None,
        }
    }
}

impl OutcomeStats {
    fn count(&mut self, status: RunStatus) {
        self.total += 1;
        *self.by_status.entry(status).or_default() += 1;
    }

    fn finish(&mut self) {
        let n = |s| self.by_status.get(&s).copied().unwrap_or(0);
        let succeeded = n(RunStatus::Completed) + n(RunStatus::Stopped);
        let decided = succeeded + n(RunStatus::Aborted) + n(RunStatus::Failed);
        self.success_rate = (decided > 0).then(|| succeeded as f64 / decided as f64);
    }
}

/// Statistics over all runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosStats {
    /// Counts over every run.
    #[serde(flatten)]
    pub overall: OutcomeStats,
    /// Runs pending or running.
    pub active: u64,
    /// Runs that were dry runs (counted in the totals too).
    pub dry_runs: u64,
    /// Counts per scenario type; every type is present.
    pub by_type: BTreeMap<ScenarioType, OutcomeStats>,
    /// Mean time from start to end of the runs that started and ended, in
    /// seconds; `None` when there is none.
    pub mean_duration_seconds: Option<f64>,
}

impl ChaosStats {
    /// Statistics of `runs`.
    pub fn from_runs<'a>(runs: impl IntoIterator<Item = &'a ScenarioRun>) -> Self {
        let mut stats = Self {
            overall: OutcomeStats::default(),
            active: 0,
            dry_runs: 0,
            by_type: ScenarioType::ALL
                .into_iter()
                .map(|t| (t, OutcomeStats::default()))
                .collect(),
            mean_duration_seconds: None,
        };
        let (mut duration_sum, mut durations) = (0.0, 0u32);
        for run in runs {
            stats.overall.count(run.status);
            stats
                .by_type
                .entry(run.scenario_type())
                .or_default()
                .count(run.status);
            stats.active += u64::from(run.status.is_active());
            stats.dry_runs += u64::from(run.dry_run);
            if let Some(seconds) = run.duration_seconds() {
                duration_sum += seconds;
                durations += 1;
            }
        }
        stats.overall.finish();
        stats.by_type.values_mut().for_each(OutcomeStats::finish);
        stats.mean_duration_seconds = (durations > 0).then(|| duration_sum / f64::from(durations));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::chaos::run::{RunAction, RunId};
    use crate::chaos::{Parameters, Scenario, ScenarioId};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn run(id: u64, parameters: Parameters, actions: &[(RunAction, i64)]) -> ScenarioRun {
        let scenario = Scenario::new(ScenarioId::new("s").unwrap(), "s", parameters);
        let mut run = ScenarioRun::new(RunId(id), scenario, false, at(0), at(0));
        for (action, second) in actions {
            run.apply(*action, at(*second)).unwrap();
        }
        run
    }

    #[test]
    fn totals_by_type_and_status_success_rate_and_mean_duration() {
        let pod = || Parameters::PodFailure {
            duration_seconds: 60,
        };
        let loss = || Parameters::PacketLoss {
            duration_seconds: 60,
            loss_percent: 5.0,
        };
        let runs = [
            run(
                1,
                pod(),
                &[(RunAction::Start, 0), (RunAction::Complete, 60)],
            ),
            run(2, pod(), &[(RunAction::Start, 0), (RunAction::Stop, 30)]),
            run(3, pod(), &[(RunAction::Start, 0), (RunAction::Abort, 10)]),
            run(4, loss(), &[(RunAction::Fail, 0)]),
            run(5, loss(), &[(RunAction::Cancel, 0)]),
            run(6, loss(), &[(RunAction::Start, 0)]),
            run(7, loss(), &[]),
        ];
        let stats = ChaosStats::from_runs(&runs);
        assert_eq!(stats.overall.total, 7);
        assert_eq!(stats.active, 2);
        assert_eq!(stats.overall.by_status[&RunStatus::Completed], 1);
        assert_eq!(stats.overall.by_status[&RunStatus::Pending], 1);
        assert_eq!(stats.overall.by_status[&RunStatus::Cancelled], 1);
        // 2 successes (completed, stopped) of 4 decided (plus aborted, failed).
        assert_eq!(stats.overall.success_rate, Some(0.5));
        // Runs 1-3 started and ended: 60, 30 and 10 s.
        assert_eq!(stats.mean_duration_seconds, Some(100.0 / 3.0));

        let pods = &stats.by_type[&ScenarioType::PodFailure];
        assert_eq!(pods.total, 3);
        assert_eq!(pods.success_rate, Some(2.0 / 3.0));
        let losses = &stats.by_type[&ScenarioType::PacketLoss];
        assert_eq!((losses.total, losses.success_rate), (4, Some(0.0)));
        let disks = &stats.by_type[&ScenarioType::DiskStress];
        assert_eq!((disks.total, disks.success_rate), (0, None));

        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["total"], 7);
        assert_eq!(json["by_status"]["aborted"], 1);
        assert_eq!(json["by_type"]["pod-failure"]["total"], 3);
    }

    #[test]
    fn no_runs_no_rates() {
        let stats = ChaosStats::from_runs(&[]);
        assert_eq!(stats.overall.total, 0);
        assert_eq!(stats.overall.success_rate, None);
        assert_eq!(stats.mean_duration_seconds, None);
        assert_eq!(stats.by_type.len(), ScenarioType::ALL.len());
    }
}
