//! The chaos controller: the catalog, the runs and their state machine, the
//! safety rules, and the executor that carries runs out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::Error;
use super::catalog::ScenarioCatalog;
use super::event::ChaosEvent;
use super::executor::{ChaosExecutor, InjectionPlan};
use super::guard::{AbortGuard, GuardBreach, GuardObservation, first_breach, validate_guards};
use super::impact::{BlastRadius, IncidentScope, blast_radius};
use super::run::{RunAction, RunId, RunStatus, ScenarioRun};
use super::select::{Target, select_targets};
use super::stats::ChaosStats;
use super::{Scenario, ScenarioId, TargetSelector};
use crate::Timestamp;
use crate::cluster::ClusterSnapshot;
use crate::healing::{DisruptionRequest, Disruptor, SafetyBudget, WorkloadImpact};
use crate::time::SignedDuration;

/// Settings of the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosConfig {
    /// Namespaces chaos never targets.
    pub protected_namespaces: BTreeSet<String>,
    /// Seed of target selection: the same seed and the same calls choose the
    /// same targets.
    pub seed: u64,
    /// How long after a run is reverted incidents may still be its doing, in
    /// seconds (restarts settle, detector windows drain).
    pub linger_seconds: u32,
    /// Ended runs kept in the history (and in the statistics); the oldest
    /// are forgotten on [`ChaosController::tick`].
    pub max_history: usize,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            protected_namespaces: ["kube-system", "octrix-system"].map(str::to_owned).into(),
            seed: 0,
            linger_seconds: 300,
            max_history: 1_000,
        }
    }
}

/// How to start a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StartOptions {
    /// Plan and record the run without changing anything: targets are chosen
    /// and the budget is consulted, then the run completes at once.
    pub dry_run: bool,
    /// Start later: the run stays pending (and can be cancelled) until a
    /// [`ChaosController::tick`] at or after this time.
    pub start_at: Option<Timestamp>,
    /// Aim the scenario elsewhere than its own selector says.
    pub target: Option<TargetSelector>,
    /// Guards to watch on top of the scenario's own.
    pub guards: Vec<AbortGuard>,
}

/// Runs scenarios safely and keeps their history.
///
/// The state is plain data changed only through these methods; the async
/// ones call the [`ChaosExecutor`]. Time is passed in, and so are the
/// cluster snapshot that targets are chosen from and the [`SafetyBudget`]
/// shared with healing: every run that changes something holds one permit
/// (with [`Disruptor::Chaos`]) from injection until its changes are reverted.
///
/// Safety rules, checked before anything changes:
/// * protected namespaces are never targeted (a selector naming one is an
///   error, and a selector without a namespace skips them);
/// * the permit's request carries the workload that loses the largest share
///   of its pods, so the budget enforces its fraction and
///   never-the-last-ready-replica rules; every other workload the run takes
///   replicas from is checked against the same budget (on a copy, so it uses
///   no slot) and must pass too, counting what other chaos runs take from it
///   beyond what their own permits record;
/// * a dry run does all of this and changes nothing.
///
/// One limit remains: a [`DisruptionRequest`] carries one workload, so the
/// budget itself only records a run's primary workload. Healing requests see
/// the other workloads a run disrupts through the readiness in their
/// snapshot, not through the budget's accounting.
pub struct ChaosController {
    config: ChaosConfig,
    catalog: ScenarioCatalog,
    executor: Arc<dyn ChaosExecutor>,
    runs: BTreeMap<RunId, ScenarioRun>,
    next_run: u64,
    rng: Pcg64Mcg,
    events: Vec<ChaosEvent>,
}

impl std::fmt::Debug for ChaosController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosController")
            .field("executor", &self.executor.name())
            .field("runs", &self.runs.len())
            .finish_non_exhaustive()
    }
}

fn after(at: Timestamp, seconds: u32) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .unwrap_or(Timestamp::MAX)
}

/// The budget request of a run, carrying `impact` if any.
fn disruption_request(targets: &[Target], impact: Option<&WorkloadImpact>) -> DisruptionRequest {
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    let mut request = DisruptionRequest::new(Disruptor::Chaos, names.join(", "));
    // Runs over one namespace count against it; node runs and runs spanning
    // namespaces are only held to the global limits.
    let namespaces: BTreeSet<Option<&str>> = targets.iter().map(Target::namespace).collect();
    if let [Some(namespace)] = namespaces.into_iter().collect::<Vec<_>>()[..] {
        request = request.in_namespace(namespace);
    }
    if let Some(impact) = impact {
        request = request.with_impact(impact.clone());
    }
    request
}

impl ChaosController {
    /// A controller with no runs yet.
    pub fn new(
        config: ChaosConfig,
        catalog: ScenarioCatalog,
        executor: Arc<dyn ChaosExecutor>,
    ) -> Self {
        Self {
            rng: Pcg64Mcg::seed_from_u64(config.seed),
            config,
            catalog,
            executor,
            runs: BTreeMap::new(),
            next_run: 1,
            events: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ChaosConfig {
        &self.config
    }

    /// The scenarios.
    pub fn catalog(&self) -> &ScenarioCatalog {
        &self.catalog
    }

    fn check_protected(&self, selector: &TargetSelector) -> Result<(), Error> {
        match &selector.namespace {
            Some(ns) if self.config.protected_namespaces.contains(ns) => {
                Err(Error::ProtectedNamespace {
                    namespace: ns.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Adds a custom scenario; it may not aim at a protected namespace.
    pub fn add_scenario(&mut self, scenario: Scenario) -> Result<(), Error> {
        self.check_protected(&scenario.target)?;
        self.catalog.add(scenario)
    }

    /// Removes a custom scenario. Its past runs keep their copy of it.
    pub fn remove_scenario(&mut self, id: &ScenarioId) -> Result<Scenario, Error> {
        self.catalog.remove(id)
    }

    fn run_mut(&mut self, id: RunId) -> Result<&mut ScenarioRun, Error> {
        self.runs.get_mut(&id).ok_or(Error::UnknownRun(id))
    }

    /// Starts a run of scenario `scenario` now, or schedules it.
    ///
    /// Errors about the request itself (unknown scenario, invalid override,
    /// protected namespace) record nothing. Once the run is recorded, a
    /// failure to start it (no target, budget denial, executor error) leaves
    /// it failed, emits [`ChaosEvent::RunFailed`] and returns
    /// [`Error::StartFailed`] with its id.
    pub async fn start(
        &mut self,
        scenario: &ScenarioId,
        options: StartOptions,
        cluster: &ClusterSnapshot,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Result<RunId, Error> {
        let mut scenario = self
            .catalog
            .get(scenario)
            .cloned()
            .ok_or_else(|| Error::UnknownScenario(scenario.clone()))?;
        if let Some(target) = options.target {
            target.validate("options.target")?;
            scenario.target = target;
        }
        self.check_protected(&scenario.target)?;
        // The scenario's guards come first, so `guards[i]` counts across both lists.
        scenario.guards.extend(options.guards);
        validate_guards(&scenario.guards, "guards")?;

        let start_at = options.start_at.map_or(now, |at| at.max(now));
        let id = RunId(self.next_run);
        self.next_run += 1;
        let scenario_id = scenario.id.clone();
        let run = ScenarioRun::new(id, scenario, options.dry_run, now, start_at);
        self.runs.insert(id, run);
        if start_at > now {
            self.events.push(ChaosEvent::RunScheduled {
                run: id,
                scenario: scenario_id,
                start_at,
            });
            return Ok(id);
        }
        self.begin(id, cluster, budget, now).await.map(|()| id)
    }

    /// Takes pending run `id` to running (or, for a dry run, straight to
    /// completed), or to failed.
    async fn begin(
        &mut self,
        id: RunId,
        cluster: &ClusterSnapshot,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Result<(), Error> {
        let run = &self.runs[&id];
        let (parameters, selector, dry_run) = (
            run.scenario.parameters.clone(),
            run.scenario.target.clone(),
            run.dry_run,
        );
        let kind = parameters.scenario_type().target_kind();
        let protected = &self.config.protected_namespaces;
        let targets = match select_targets(cluster, kind, &selector, protected, &mut self.rng) {
            Ok(targets) => targets,
            Err(cause) => return self.fail_start(id, cause, now),
        };
        let radius = blast_radius(&parameters, &targets, cluster);
        let run = self.run_mut(id)?;
        run.targets.clone_from(&targets);
        run.blast_radius = radius.clone();
        if let Err(denial) = self.check_budget(id, &targets, &radius, budget, now) {
            return self.fail_start(id, denial, now);
        }
        let deadline = after(now, parameters.duration_seconds());
        if dry_run {
            let run = self.run_mut(id)?;
            run.apply(RunAction::Start, now)?;
            run.deadline = Some(deadline);
            run.apply(RunAction::Complete, now)?;
            let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
            run.message = Some(format!(
                "dry run: would inject {} on {}; nothing was changed",
                parameters.describe(),
                names.join(", ")
            ));
            self.push_started(id, now);
            self.events
                .push(ChaosEvent::RunCompleted { run: id, at: now });
            return Ok(());
        }
        let request = disruption_request(&targets, radius.primary());
        let permit = match budget.try_acquire(&request, now) {
            Ok(permit) => permit,
            Err(denial) => return self.fail_start(id, denial.into(), now),
        };
        let plan = InjectionPlan {
            run: id,
            parameters,
            targets,
            until: deadline,
        };
        let executor = Arc::clone(&self.executor);
        match executor.inject(&plan).await {
            Ok(injection) => {
                let run = self.run_mut(id)?;
                run.apply(RunAction::Start, now)?;
                run.deadline = Some(deadline);
                run.injection = Some(injection);
                run.permit = Some(permit);
                self.push_started(id, now);
                Ok(())
            }
            Err(error) => {
                budget.release(permit);
                self.fail_start(id, error.into(), now)
            }
        }
    }

    fn push_started(&mut self, id: RunId, now: Timestamp) {
        let run = &self.runs[&id];
        self.events.push(ChaosEvent::RunStarted {
            run: id,
            scenario: run.scenario.id.clone(),
            scenario_type: run.scenario_type(),
            targets: run.targets.clone(),
            dry_run: run.dry_run,
            deadline: run.deadline.unwrap_or(now),
            at: now,
        });
    }

    fn fail_start(&mut self, id: RunId, cause: Error, now: Timestamp) -> Result<(), Error> {
        let reason = cause.to_string();
        let run = self.run_mut(id)?;
        run.apply(RunAction::Fail, now)?;
        run.message = Some(reason.clone());
        self.events.push(ChaosEvent::RunFailed {
            run: id,
            reason,
            at: now,
        });
        Err(Error::StartFailed {
            run: id,
            cause: Box::new(cause),
        })
    }

    /// Ends running run `id` through `action` (complete, stop or abort),
    /// reverting its changes first. When the revert fails the run is failed,
    /// keeps its permit, and the revert is retried on every tick.
    async fn end(
        &mut self,
        id: RunId,
        action: RunAction,
        reason: Option<String>,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Result<(), Error> {
        let run = self.runs.get(&id).ok_or(Error::UnknownRun(id))?;
        run.check(action)?;
        let injection = run.injection.clone().filter(|_| run.holds_changes());
        let reverted = match &injection {
            Some(injection) => Arc::clone(&self.executor).revert(injection).await,
            None => Ok(()),
        };
        let run = self.run_mut(id)?;
        if let Err(error) = reverted {
            run.apply(RunAction::Fail, now)?;
            let message =
                format!("{action} requested but its changes could not be reverted: {error}");
            run.message = Some(message.clone());
            self.events.push(ChaosEvent::RevertFailed {
                run: id,
                error: error.to_string(),
                at: now,
            });
            self.events.push(ChaosEvent::RunFailed {
                run: id,
                reason: message,
                at: now,
            });
            return Err(Error::RevertFailed {
                run: id,
                source: error,
            });
        }
        run.apply(action, now)?;
        run.message = reason.clone();
        let had_changes = injection.is_some();
        if had_changes {
            run.reverted_at = Some(now);
        }
        if let Some(permit) = run.permit.take() {
            budget.release(permit);
        }
        self.events.push(match action {
            RunAction::Complete => ChaosEvent::RunCompleted { run: id, at: now },
            RunAction::Stop => ChaosEvent::RunStopped { run: id, at: now },
            _ => ChaosEvent::RunAborted {
                run: id,
                reason: reason.unwrap_or_default(),
                at: now,
            },
        });
        if had_changes {
            self.events
                .push(ChaosEvent::RunReverted { run: id, at: now });
        }
        Ok(())
    }

    /// Replicas of `workload` that other chaos runs take away without the
    /// budget knowing: their impacts on workloads other than the one their
    /// permit records. As (pods, ready pods).
    fn unrecorded_chaos_disruption(&self, except: RunId, workload: &str) -> (u32, u32) {
        self.runs
            .values()
            .filter(|r| r.id != except && r.holds_changes())
            .flat_map(|r| {
                let primary = r.blast_radius.primary();
                r.blast_radius
                    .impacts
                    .iter()
                    .filter(move |i| Some(*i) != primary)
            })
            .filter(|i| i.workload == workload)
            .fold((0, 0), |(pods, ready), i| {
                (pods + i.disrupted_pods, ready + i.disrupted_ready_pods)
            })
    }

    /// Checks every workload run `id` takes replicas from against the budget,
    /// on copies so that no slot is used (the permit itself is acquired later,
    /// for the primary workload only). Each check adds what other chaos runs
    /// take from the workload beyond what their permits record, so that two
    /// runs cannot together exceed a limit neither reaches alone.
    fn check_budget(
        &self,
        id: RunId,
        targets: &[Target],
        radius: &BlastRadius,
        budget: &SafetyBudget,
        now: Timestamp,
    ) -> Result<(), Error> {
        if radius.impacts.is_empty() {
            budget
                .clone()
                .try_acquire(&disruption_request(targets, None), now)?;
            return Ok(());
        }
        // The primary first, so that its denial is the one reported.
        let primary = radius.primary();
        let impacts = primary
            .into_iter()
            .chain(radius.impacts.iter().filter(|i| Some(*i) != primary));
        for impact in impacts {
            let (pods, ready) = self.unrecorded_chaos_disruption(id, &impact.workload);
            let mut combined = impact.clone();
            combined.disrupted_pods += pods;
            combined.disrupted_ready_pods += ready;
            budget
                .clone()
                .try_acquire(&disruption_request(targets, Some(&combined)), now)?;
        }
        Ok(())
    }

    /// Stops running run `id` early and reverts it.
    pub async fn stop(
        &mut self,
        id: RunId,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.end(
            id,
            RunAction::Stop,
            Some("stopped on request".to_owned()),
            budget,
            now,
        )
        .await
    }

    /// Cancels pending run `id`; nothing was changed, so nothing is reverted.
    pub fn cancel(&mut self, id: RunId, now: Timestamp) -> Result<(), Error> {
        let run = self.run_mut(id)?;
        run.apply(RunAction::Cancel, now)?;
        run.message = Some("cancelled before it started".to_owned());
        self.events
            .push(ChaosEvent::RunCancelled { run: id, at: now });
        Ok(())
    }

    /// Aborts run `id` for `reason`: a pending run never starts, a running
    /// one is reverted.
    pub async fn abort(
        &mut self,
        id: RunId,
        reason: impl Into<String>,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Result<(), Error> {
        let reason = reason.into();
        let run = self.run_mut(id)?;
        if run.status == RunStatus::Pending {
            run.apply(RunAction::Abort, now)?;
            run.message = Some(reason.clone());
            self.events.push(ChaosEvent::RunAborted {
                run: id,
                reason,
                at: now,
            });
            return Ok(());
        }
        self.end(id, RunAction::Abort, Some(reason), budget, now)
            .await
    }

    /// Aborts every pending and running run: the emergency brake. Every run
    /// is attempted; the first error is returned.
    pub async fn abort_all(
        &mut self,
        reason: &str,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Result<(), Error> {
        let active: Vec<RunId> = self.active().iter().map(|r| r.id).collect();
        let mut first_error = None;
        for id in active {
            if let Err(error) = self.abort(id, reason, budget, now).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Moves time forward to `now`: retries failed reverts, completes and
    /// reverts runs past their deadline, then starts pending runs that are
    /// due (choosing their targets from `cluster`). Outcomes are recorded on
    /// the runs and as events.
    pub async fn tick(
        &mut self,
        cluster: &ClusterSnapshot,
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) {
        let stuck: Vec<RunId> = self
            .runs
            .values()
            .filter(|r| !r.status.is_active() && r.holds_changes())
            .map(|r| r.id)
            .collect();
        for id in stuck {
            self.retry_revert(id, budget, now).await;
        }
        let expired: Vec<RunId> = self
            .runs
            .values()
            .filter(|r| r.status == RunStatus::Running && r.deadline.is_some_and(|d| d <= now))
            .map(|r| r.id)
            .collect();
        for id in expired {
            let reason = Some("ran its full duration".to_owned());
            // A failed revert is recorded on the run and retried next tick.
            let _ = self.end(id, RunAction::Complete, reason, budget, now).await;
        }
        let due: Vec<RunId> = self
            .runs
            .values()
            .filter(|r| r.status == RunStatus::Pending && r.start_at <= now)
            .map(|r| r.id)
            .collect();
        for id in due {
            // A failed start is recorded on the run and as an event.
            let _ = self.begin(id, cluster, budget, now).await;
        }
        self.forget_oldest();
    }

    /// Drops the oldest ended runs beyond [`ChaosConfig::max_history`]; runs
    /// still holding changes are kept whatever their age.
    fn forget_oldest(&mut self) {
        let ended: Vec<RunId> = self
            .runs
            .values()
            .filter(|r| !r.status.is_active() && !r.holds_changes())
            .map(|r| r.id)
            .collect();
        let excess = ended.len().saturating_sub(self.config.max_history);
        for id in &ended[..excess] {
            self.runs.remove(id);
        }
    }

    async fn retry_revert(&mut self, id: RunId, budget: &mut SafetyBudget, now: Timestamp) {
        let Some(injection) = self.runs.get(&id).and_then(|r| r.injection.clone()) else {
            return;
        };
        match Arc::clone(&self.executor).revert(&injection).await {
            Ok(()) => {
                if let Some(run) = self.runs.get_mut(&id) {
                    run.reverted_at = Some(now);
                    if let Some(permit) = run.permit.take() {
                        budget.release(permit);
                    }
                }
                self.events
                    .push(ChaosEvent::RunReverted { run: id, at: now });
            }
            Err(error) => self.events.push(ChaosEvent::RevertFailed {
                run: id,
                error: error.to_string(),
                at: now,
            }),
        }
    }

    /// The first guard of running run `id` that `observations` breach.
    /// Pure; `None` for runs that are not running.
    pub fn evaluate_guards(
        &self,
        id: RunId,
        observations: &[GuardObservation],
    ) -> Option<GuardBreach> {
        let run = self.runs.get(&id)?;
        if run.status != RunStatus::Running {
            return None;
        }
        first_breach(&run.scenario.guards, observations)
    }

    /// Evaluates the guards of every running run and aborts those that
    /// breach, returning their ids.
    pub async fn enforce_guards(
        &mut self,
        observations: &[GuardObservation],
        budget: &mut SafetyBudget,
        now: Timestamp,
    ) -> Vec<RunId> {
        let breached: Vec<(RunId, GuardBreach)> = self
            .runs
            .keys()
            .filter_map(|&id| self.evaluate_guards(id, observations).map(|b| (id, b)))
            .collect();
        let mut aborted = Vec::new();
        for (id, breach) in breached {
            // A failed revert still ends the run (failed, retried on tick).
            let _ = self.abort(id, breach.to_string(), budget, now).await;
            aborted.push(id);
        }
        aborted
    }

    /// The runs whose effects may explain an incident about `scope` opened
    /// at `at`.
    ///
    /// Contract for the incident book: call it when an incident opens; for
    /// each run returned, link the incident to the run (and call
    /// [`ChaosController::link_incident`]) and mark the incident *expected*.
    /// A run covers the incident when it had changed the cluster by `at`
    /// and was not reverted more than [`ChaosConfig::linger_seconds`] before
    /// `at`, and when it touched what the scope names (see
    /// [`AffectedObjects::covers`](super::AffectedObjects::covers)). Dry runs
    /// cover nothing. Expected incidents are still recorded and healed (chaos
    /// is often run to exercise healing); only paging may treat them
    /// differently.
    pub fn runs_covering(&self, scope: &IncidentScope, at: Timestamp) -> Vec<RunId> {
        self.runs
            .values()
            .filter(|r| r.in_effect_at(at, self.config.linger_seconds))
            .filter(|r| r.blast_radius.affected.covers(scope))
            .map(|r| r.id)
            .collect()
    }

    /// Records that incident `incident` is an expected effect of run `id`.
    pub fn link_incident(&mut self, id: RunId, incident: impl Into<String>) -> Result<(), Error> {
        let incident = incident.into();
        let run = self.run_mut(id)?;
        if !run.incidents.contains(&incident) {
            run.incidents.push(incident);
        }
        Ok(())
    }

    /// Pending and running runs, oldest first.
    pub fn active(&self) -> Vec<&ScenarioRun> {
        self.runs
            .values()
            .filter(|r| r.status.is_active())
            .collect()
    }

    /// Run `id`.
    pub fn get(&self, id: RunId) -> Option<&ScenarioRun> {
        self.runs.get(&id)
    }

    /// Every run, oldest first.
    pub fn list(&self) -> Vec<&ScenarioRun> {
        self.runs.values().collect()
    }

    /// Statistics over every run.
    pub fn stats(&self) -> ChaosStats {
        ChaosStats::from_runs(self.runs.values())
    }

    /// Takes back runs recorded before a restart (from storage), so that the
    /// history and statistics survive and new runs do not reuse their ids.
    ///
    /// A run that was still pending or running when the server stopped can
    /// no longer be followed: it is recorded as failed, saying so, and its
    /// budget permit (which the new process never granted) is dropped.
    /// Returns the ids of the runs changed that way, for the caller to
    /// persist. Runs whose id is already known are ignored.
    pub fn restore_runs(
        &mut self,
        runs: impl IntoIterator<Item = ScenarioRun>,
        now: Timestamp,
    ) -> Vec<RunId> {
        let mut interrupted = Vec::new();
        for mut run in runs {
            if self.runs.contains_key(&run.id) {
                continue;
            }
            self.next_run = self.next_run.max(run.id.0 + 1);
            if run.status.is_active() && run.apply(RunAction::Fail, now).is_ok() {
                run.permit = None;
                run.message = Some(if run.holds_changes() {
                    "interrupted by a server restart while running; its changes may still be in force and need a manual revert".to_owned()
                } else {
                    "interrupted by a server restart before it started".to_owned()
                });
                interrupted.push(run.id);
            }
            self.runs.insert(run.id, run);
        }
        interrupted
    }

    /// Events since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<ChaosEvent> {
        std::mem::take(&mut self.events)
    }
}
