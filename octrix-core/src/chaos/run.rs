//! Runs of scenarios and their state machine.
//!
//! ```text
//!            start            complete / stop / abort / fail
//! pending ──────────▶ running ─────────────────────────────▶ completed | stopped | aborted | failed
//!    │ cancel / abort / fail
//!    └───────────────────────▶ cancelled | aborted | failed
//! ```
//!
//! Every status but pending and running is final.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Error;
use super::executor::Injection;
use super::impact::BlastRadius;
use super::select::Target;
use super::{Scenario, ScenarioType};
use crate::Timestamp;
use crate::healing::Permit;

/// Identifies a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run-{}", self.0)
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Scheduled, not started: nothing was changed yet.
    Pending,
    /// Its faults are in force.
    Running,
    /// It ran its full duration and was reverted.
    Completed,
    /// Someone stopped it early; it was reverted.
    Stopped,
    /// Cancelled before it started.
    Cancelled,
    /// A guard breached or someone pulled the emergency brake; it was reverted.
    Aborted,
    /// It could not start, or could not be reverted cleanly.
    Failed,
}

impl RunStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Stopped,
        Self::Cancelled,
        Self::Aborted,
        Self::Failed,
    ];

    /// Pending or running.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }

    /// The status `action` leads to, or `None` when it is not allowed here.
    pub fn after(self, action: RunAction) -> Option<Self> {
        use RunAction as A;
        match (self, action) {
            (Self::Pending, A::Start) => Some(Self::Running),
            (Self::Pending, A::Cancel) => Some(Self::Cancelled),
            (Self::Running, A::Complete) => Some(Self::Completed),
            (Self::Running, A::Stop) => Some(Self::Stopped),
            (Self::Pending | Self::Running, A::Abort) => Some(Self::Aborted),
            (Self::Pending | Self::Running, A::Fail) => Some(Self::Failed),
            _ => None,
        }
    }

    /// The kebab-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
            Self::Cancelled => "cancelled",
            Self::Aborted => "aborted",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can happen to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunAction {
    /// Inject its faults.
    Start,
    /// End it at its deadline.
    Complete,
    /// End it early on request.
    Stop,
    /// Withdraw it before it starts.
    Cancel,
    /// End it for safety.
    Abort,
    /// Give up on it.
    Fail,
}

impl fmt::Display for RunAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Stop => "stop",
            Self::Cancel => "cancel",
            Self::Abort => "abort",
            Self::Fail => "fail",
        })
    }
}

/// One run of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRun {
    /// Its id.
    pub id: RunId,
    /// The scenario as it was when the run was created, with the start
    /// options' target and guards applied: later catalog edits do not
    /// rewrite history, and its guards are the ones watched.
    pub scenario: Scenario,
    /// Plan and record only; change nothing.
    pub dry_run: bool,
    /// Where it is.
    pub status: RunStatus,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// When it is (or was) due to start.
    pub start_at: Timestamp,
    /// When its faults were injected (or, for a dry run, planned).
    pub started_at: Option<Timestamp>,
    /// When it is due to complete: start plus the scenario's duration.
    pub deadline: Option<Timestamp>,
    /// When it reached a final status.
    pub ended_at: Option<Timestamp>,
    /// What it acts on.
    pub targets: Vec<Target>,
    /// What it touches and which replicas it takes away.
    pub blast_radius: BlastRadius,
    /// The changes the executor made (fault ids, cordons), until reverted.
    pub injection: Option<Injection>,
    /// When its changes were undone.
    pub reverted_at: Option<Timestamp>,
    /// The safety budget's permit, held from injection until revert.
    pub permit: Option<Permit>,
    /// How it ended, or why it is in its state.
    pub message: Option<String>,
    /// Incidents linked to it as expected effects.
    pub incidents: Vec<String>,
}

impl ScenarioRun {
    /// A pending run of `scenario`, due at `start_at`.
    pub fn new(
        id: RunId,
        scenario: Scenario,
        dry_run: bool,
        created_at: Timestamp,
        start_at: Timestamp,
    ) -> Self {
        Self {
            id,
            scenario,
            dry_run,
            status: RunStatus::Pending,
            created_at,
            start_at,
            started_at: None,
            deadline: None,
            ended_at: None,
            targets: Vec::new(),
            blast_radius: BlastRadius::default(),
            injection: None,
            reverted_at: None,
            permit: None,
            message: None,
            incidents: Vec::new(),
        }
    }

    /// The scenario's type.
    pub fn scenario_type(&self) -> ScenarioType {
        self.scenario.scenario_type()
    }

    /// Whether `action` is allowed now; changes nothing.
    pub fn check(&self, action: RunAction) -> Result<RunStatus, Error> {
        self.status.after(action).ok_or(Error::IllegalTransition {
            run: self.id,
            from: self.status,
            action,
        })
    }

    /// Applies `action` at `at`, stamping start and end times.
    pub fn apply(&mut self, action: RunAction, at: Timestamp) -> Result<RunStatus, Error> {
        let next = self.check(action)?;
        self.status = next;
        if next == RunStatus::Running {
            self.started_at = Some(at);
        } else if !next.is_active() {
            self.ended_at = Some(at);
        }
        Ok(next)
    }

    /// Whether changes made by the run are still in force.
    pub fn holds_changes(&self) -> bool {
        self.injection.is_some() && self.reverted_at.is_none()
    }

    /// Whether the run may be causing effects at `at`: it started by then,
    /// and had not been reverted more than `linger_seconds` before.
    pub fn in_effect_at(&self, at: Timestamp, linger_seconds: u32) -> bool {
        let Some(started) = self.started_at else {
            return false;
        };
        if self.dry_run || self.injection.is_none() || at < started {
            return false;
        }
        // Effects (restarts, detector windows) outlast the revert a little.
        let linger = crate::time::SignedDuration::from_secs(i64::from(linger_seconds));
        self.reverted_at
            .is_none_or(|reverted| at <= reverted.checked_add(linger).unwrap_or(Timestamp::MAX))
    }

    /// How long it ran, in seconds, once it has started and ended.
    pub fn duration_seconds(&self) -> Option<f64> {
        let (start, end) = (self.started_at?, self.ended_at?);
        Some(end.duration_since(start).as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{Parameters, ScenarioId};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn run() -> ScenarioRun {
        let scenario = Scenario::new(
            ScenarioId::new("s").unwrap(),
            "s",
            Parameters::PodFailure {
                duration_seconds: 60,
            },
        );
        ScenarioRun::new(RunId(3), scenario, false, at(0), at(0))
    }

    #[test]
    fn transition_table() {
        use RunAction as A;
        use RunStatus as S;
        let allowed = [
            (S::Pending, A::Start, S::Running),
            (S::Pending, A::Cancel, S::Cancelled),
            (S::Pending, A::Abort, S::Aborted),
            (S::Pending, A::Fail, S::Failed),
            (S::Running, A::Complete, S::Completed),
            (S::Running, A::Stop, S::Stopped),
            (S::Running, A::Abort, S::Aborted),
            (S::Running, A::Fail, S::Failed),
        ];
        let actions = [A::Start, A::Complete, A::Stop, A::Cancel, A::Abort, A::Fail];
        for from in RunStatus::ALL {
            for action in actions {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(from.after(action), expected, "{from} + {action}");
            }
        }
    }

    #[test]
    fn illegal_transitions_are_typed_errors_and_change_nothing() {
        let mut r = run();
        assert_eq!(r.apply(RunAction::Start, at(5)), Ok(RunStatus::Running));
        assert_eq!(r.started_at, Some(at(5)));
        assert_eq!(
            r.apply(RunAction::Complete, at(65)),
            Ok(RunStatus::Completed)
        );
        assert_eq!(r.ended_at, Some(at(65)));
        assert_eq!(r.duration_seconds(), Some(60.0));
        let err = r.apply(RunAction::Stop, at(70)).unwrap_err();
        assert_eq!(
            err,
            Error::IllegalTransition {
                run: RunId(3),
                from: RunStatus::Completed,
                action: RunAction::Stop
            }
        );
        assert_eq!(err.to_string(), "cannot stop run-3: it is completed");
        assert_eq!((r.status, r.ended_at), (RunStatus::Completed, Some(at(65))));

        let pending = run();
        assert_eq!(
            pending.check(RunAction::Stop).unwrap_err().to_string(),
            "cannot stop run-3: it is pending"
        );
    }

    #[test]
    fn in_effect_from_injection_until_revert_plus_linger() {
        let mut r = run();
        assert!(!r.in_effect_at(at(10), 60), "pending");
        r.apply(RunAction::Start, at(10)).unwrap();
        r.injection = Some(Injection {
            run: r.id,
            changes: Vec::new(),
        });
        assert!(!r.in_effect_at(at(9), 60));
        assert!(r.in_effect_at(at(10), 60));
        assert!(r.in_effect_at(at(10_000), 60), "until reverted");
        r.reverted_at = Some(at(100));
        assert!(r.in_effect_at(at(160), 60));
        assert!(!r.in_effect_at(at(161), 60));
        r.dry_run = true;
        assert!(!r.in_effect_at(at(50), 60), "dry runs change nothing");
    }
}
