//! Properties of chaos runs over random sequences of operations:
//!
//! * the run state machine behaves like a small model;
//! * chaos starts, interleaved with healing acquisitions on the same safety
//!   budget, never exceed its concurrency nor any workload's limits;
//! * whatever happens, the simulator only holds faults and cordons of runs
//!   that still hold changes, and nothing once every run has ended.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use octrix_core::chaos::{
    AbortGuard, Change, ChaosConfig, ChaosController, Error, GuardObservation, GuardSignal,
    RunAction, RunId, RunStatus, ScenarioCatalog, ScenarioId, ScenarioType, SelectionMode,
    SimChaosExecutor, StartOptions, TargetSelector, builtin_scenario,
};
use octrix_core::healing::{
    BudgetConfig, DisruptionRequest, Disruptor, Permit, SafetyBudget, WorkloadImpact,
};
use octrix_core::sim::{SimCluster, SimConfig};
use octrix_core::time::SignedDuration;
use octrix_core::{ManualClock, Timestamp, labels};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

struct World {
    t0: Timestamp,
    clock: Arc<ManualClock>,
    sim: Arc<SimCluster>,
    chaos: ChaosController,
    budget: SafetyBudget,
    now: i64,
}

impl World {
    fn new(budget: BudgetConfig, seed: u64) -> Self {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
        let config = ChaosConfig {
            seed,
            ..ChaosConfig::default()
        };
        let chaos = ChaosController::new(
            config,
            ScenarioCatalog::default(),
            Arc::new(SimChaosExecutor::new(sim.clone())),
        );
        Self {
            t0,
            clock,
            sim,
            chaos,
            budget: SafetyBudget::new(budget),
            now: 0,
        }
    }

    fn at(&self, second: i64) -> Timestamp {
        self.t0
            .checked_add(SignedDuration::from_secs(second))
            .unwrap()
    }

    fn advance(&mut self, seconds: i64) {
        self.now += seconds;
        self.clock.set(self.at(self.now));
    }

    async fn start(
        &mut self,
        scenario: ScenarioType,
        options: StartOptions,
    ) -> Result<RunId, Error> {
        let snapshot = self.sim.snapshot_now();
        let now = self.at(self.now);
        self.chaos
            .start(
                &ScenarioId::builtin(scenario),
                options,
                &snapshot,
                &mut self.budget,
                now,
            )
            .await
    }

    async fn tick(&mut self) {
        let snapshot = self.sim.snapshot_now();
        let now = self.at(self.now);
        self.chaos.tick(&snapshot, &mut self.budget, now).await;
    }

    fn run_id(&self, index: usize) -> RunId {
        let runs = self.chaos.list();
        if runs.is_empty() {
            RunId(1_000)
        } else {
            runs[index % runs.len()].id
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Types whose runs take no replica away, so the budget only counts them.
const DEGRADING: [ScenarioType; 7] = [
    ScenarioType::LatencyInjection,
    ScenarioType::PacketLoss,
    ScenarioType::ServiceFailure,
    ScenarioType::NetworkPartition,
    ScenarioType::CpuStress,
    ScenarioType::DatabaseOverload,
    ScenarioType::MemoryLeak,
];

#[derive(Debug, Clone)]
enum Op {
    Start { scenario: usize, delay_steps: u8 },
    Stop(usize),
    Cancel(usize),
    Abort(usize),
    Tick(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DEGRADING.len(), 0u8..3).prop_map(|(scenario, delay_steps)| Op::Start { scenario, delay_steps }),
        2 => any::<usize>().prop_map(Op::Stop),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Abort),
        3 => (1u16..150).prop_map(Op::Tick),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ModelRun {
    status: RunStatus,
    start_at: i64,
    deadline: Option<i64>,
    duration: i64,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    Illegal(RunStatus, RunAction),
    Unknown,
}

fn outcome(result: Result<(), Error>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(Error::IllegalTransition { from, action, .. }) => Outcome::Illegal(from, action),
        Err(Error::UnknownRun(_)) => Outcome::Unknown,
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// The model's answer to `action` on run `index` (the same index rule as the world's).
fn model_act(model: &mut [ModelRun], index: usize, action: RunAction) -> Outcome {
    if model.is_empty() {
        return Outcome::Unknown;
    }
    let len = model.len();
    let run = &mut model[index % len];
    // The model's own table, written out independently of RunStatus::after.
    use RunStatus::{Aborted, Cancelled, Pending, Running, Stopped};
    let next = match (run.status, action) {
        (Running, RunAction::Stop) => Stopped,
        (Pending, RunAction::Cancel) => Cancelled,
        (Pending | Running, RunAction::Abort) => Aborted,
        (from, action) => return Outcome::Illegal(from, action),
    };
    run.status = next;
    Outcome::Ok
}

fn model_tick(model: &mut [ModelRun], now: i64) {
    for run in model.iter_mut() {
        if run.status == RunStatus::Running && run.deadline.is_some_and(|d| d <= now) {
            run.status = RunStatus::Completed;
        }
    }
    for run in model.iter_mut() {
        if run.status == RunStatus::Pending && run.start_at <= now {
            run.status = RunStatus::Running;
            run.deadline = Some(now + run.duration);
        }
    }
}

fn fault_ids(chaos: &ChaosController, holding_only: bool) -> BTreeSet<String> {
    chaos
        .list()
        .into_iter()
        .filter(|r| !holding_only || r.holds_changes())
        .filter_map(|r| r.injection.as_ref())
        .flat_map(|i| &i.changes)
        .filter_map(|c| match c {
            Change::Fault { id, .. } => Some(id.clone()),
            Change::Cordon { .. } => None,
        })
        .collect()
}

fn sim_fault_ids(sim: &SimCluster) -> BTreeSet<String> {
    sim.faults().iter().map(|f| f.id.to_string()).collect()
}

proptest! {
    #![proptest_config(Config::with_cases(64))]

    #[test]
    fn the_run_state_machine_matches_its_model(ops in prop::collection::vec(op(), 1..40)) {
        runtime().block_on(async {
            let roomy = BudgetConfig {
                max_concurrent: 1_000,
                max_per_window: 1_000,
                max_per_namespace: 1_000,
                ..BudgetConfig::default()
            };
            let mut world = World::new(roomy, 3);
            let mut model: Vec<ModelRun> = Vec::new();
            for op in ops {
                match op {
                    Op::Start { scenario, delay_steps } => {
                        let scenario = DEGRADING[scenario];
                        let delay = i64::from(delay_steps) * 30;
                        let options = StartOptions {
                            start_at: (delay > 0).then(|| world.at(world.now + delay)),
                            ..StartOptions::default()
                        };
                        let duration = i64::from(builtin_scenario(scenario).parameters.duration_seconds());
                        let id = world.start(scenario, options).await.unwrap();
                        prop_assert_eq!(id, RunId(model.len() as u64 + 1));
                        model.push(ModelRun {
                            status: if delay == 0 { RunStatus::Running } else { RunStatus::Pending },
                            start_at: world.now + delay,
                            deadline: (delay == 0).then_some(world.now + duration),
                            duration,
                        });
                    }
                    Op::Stop(i) => {
                        let (id, now) = (world.run_id(i), world.at(world.now));
                        let real = outcome(world.chaos.stop(id, &mut world.budget, now).await);
                        prop_assert_eq!(real, model_act(&mut model, i, RunAction::Stop));
                    }
                    Op::Cancel(i) => {
                        let (id, now) = (world.run_id(i), world.at(world.now));
                        let real = outcome(world.chaos.cancel(id, now));
                        prop_assert_eq!(real, model_act(&mut model, i, RunAction::Cancel));
                    }
                    Op::Abort(i) => {
                        let (id, now) = (world.run_id(i), world.at(world.now));
                        let real = outcome(world.chaos.abort(id, "prop", &mut world.budget, now).await);
                        prop_assert_eq!(real, model_act(&mut model, i, RunAction::Abort));
                    }
                    Op::Tick(dt) => {
                        world.advance(i64::from(dt));
                        world.tick().await;
                        model_tick(&mut model, world.now);
                    }
                }
                let real: Vec<RunStatus> = world.chaos.list().iter().map(|r| r.status).collect();
                let expected: Vec<RunStatus> = model.iter().map(|r| r.status).collect();
                prop_assert_eq!(&real, &expected);
                let deadlines: Vec<Option<Timestamp>> = world.chaos.list().iter().map(|r| r.deadline).collect();
                let expected: Vec<Option<Timestamp>> = model.iter().map(|r| r.deadline.map(|d| world.at(d))).collect();
                prop_assert_eq!(deadlines, expected);
                let running = model.iter().filter(|r| r.status == RunStatus::Running).count();
                prop_assert_eq!(world.budget.in_flight(), running, "one permit per running run");
                prop_assert_eq!(world.chaos.active().len(), running + model.iter().filter(|r| r.status == RunStatus::Pending).count());
                // The simulator holds exactly the faults of the running runs.
                prop_assert_eq!(sim_fault_ids(&world.sim), fault_ids(&world.chaos, true));
            }
            Ok(())
        })?;
    }
}

#[derive(Debug, Clone)]
enum BudgetOp {
    Chaos {
        scenario: ScenarioType,
        mode: SelectionMode,
        shop_only: bool,
    },
    HealingAcquire {
        workload: usize,
        ready: bool,
    },
    HealingRelease(usize),
    Stop(usize),
    Tick(u16),
}

fn budget_op() -> impl Strategy<Value = BudgetOp> {
    let scenario = prop::sample::select(vec![
        ScenarioType::PodFailure,
        ScenarioType::NodeFailure,
        ScenarioType::DiskStress,
        ScenarioType::MemoryStress,
        ScenarioType::LatencyInjection,
    ]);
    let mode = prop_oneof![
        Just(SelectionMode::One),
        Just(SelectionMode::All),
        (1u32..4).prop_map(SelectionMode::Fixed),
        (1.0f64..100.0).prop_map(SelectionMode::Percent),
    ];
    prop_oneof![
        4 => (scenario, mode, any::<bool>()).prop_map(|(scenario, mode, shop_only)| BudgetOp::Chaos { scenario, mode, shop_only }),
        3 => (0usize..3, any::<bool>()).prop_map(|(workload, ready)| BudgetOp::HealingAcquire { workload, ready }),
        2 => any::<usize>().prop_map(BudgetOp::HealingRelease),
        2 => any::<usize>().prop_map(BudgetOp::Stop),
        2 => (1u16..200).prop_map(BudgetOp::Tick),
    ]
}

/// Largest number of a workload's pods that may be disrupted at once.
fn allowed(config: &BudgetConfig, pods: u32) -> u32 {
    ((config.max_disrupted_fraction * f64::from(pods)).floor() as u32).max(1)
}

#[test]
fn chaos_and_healing_together_never_exceed_the_budget() {
    let config = BudgetConfig {
        max_concurrent: 3,
        max_per_window: 1_000,
        max_per_namespace: 1_000,
        ..BudgetConfig::default()
    };
    let mut runner = TestRunner::new(Config::with_cases(96));
    let (admitted, denied) = (Cell::new(0usize), Cell::new(0usize));
    let strategy = (prop::collection::vec(budget_op(), 1..40), any::<u64>());
    runner
        .run(&strategy, |(ops, seed)| {
            runtime().block_on(async {
                let mut world = World::new(config.clone(), seed);
                let mut healing: Vec<(Permit, WorkloadImpact)> = Vec::new();
                for op in ops {
                    match op {
                        BudgetOp::Chaos {
                            scenario,
                            mode,
                            shop_only,
                        } => {
                            let options = StartOptions {
                                // A 95 % disk fill takes the node's pods; memory stress
                                // aimed this high passes the 512 MiB limit.
                                target: Some(TargetSelector {
                                    namespace: shop_only.then(|| "shop".to_owned()),
                                    labels: Default::default(),
                                    mode,
                                }),
                                ..StartOptions::default()
                            };
                            let id = match world.start(scenario, options).await {
                                Ok(id) => id,
                                Err(Error::StartFailed { cause, .. }) => {
                                    prop_assert!(
                                        matches!(
                                            *cause,
                                            Error::Budget(_) | Error::NoTargets { .. }
                                        ),
                                        "{cause}"
                                    );
                                    denied.set(denied.get() + 1);
                                    continue;
                                }
                                Err(other) => panic!("{other}"),
                            };
                            admitted.set(admitted.get() + 1);
                            // Everything the new run takes, added to what every
                            // holder takes, stays within each workload's limits.
                            let run = world.chaos.get(id).unwrap();
                            for impact in &run.blast_radius.impacts {
                                let others = world
                                    .chaos
                                    .list()
                                    .into_iter()
                                    .filter(|r| r.id != id && r.holds_changes())
                                    .flat_map(|r| r.blast_radius.impacts.iter())
                                    .chain(healing.iter().map(|(_, i)| i))
                                    .filter(|i| i.workload == impact.workload);
                                let (pods, ready) = others.fold(
                                    (impact.disrupted_pods, impact.disrupted_ready_pods),
                                    |(p, r), i| (p + i.disrupted_pods, r + i.disrupted_ready_pods),
                                );
                                prop_assert!(
                                    pods <= allowed(&config, impact.pods),
                                    "{}: {pods} of {} disrupted",
                                    impact.workload,
                                    impact.pods
                                );
                                prop_assert!(
                                    impact.disrupted_ready_pods == 0 || ready < impact.ready_pods,
                                    "{}: its last ready replica is taken",
                                    impact.workload
                                );
                            }
                        }
                        BudgetOp::HealingAcquire { workload, ready } => {
                            let snapshot = world.sim.snapshot_now();
                            let deployment = ["frontend", "checkout", "payments"][workload];
                            let pods: Vec<_> = snapshot
                                .pods
                                .iter()
                                .filter(|p| p.deployment() == Some(deployment))
                                .collect();
                            let ready_pods = pods.iter().filter(|p| p.is_ready()).count() as u32;
                            let impact = WorkloadImpact {
                                workload: format!("shop/{deployment}"),
                                pods: pods.len() as u32,
                                ready_pods,
                                disrupted_pods: 1,
                                disrupted_ready_pods: u32::from(ready && ready_pods > 0),
                            };
                            let request = DisruptionRequest::new(
                                Disruptor::Healing,
                                format!("pod/shop/{deployment}"),
                            )
                            .in_namespace("shop")
                            .with_impact(impact.clone());
                            if let Ok(permit) =
                                world.budget.try_acquire(&request, world.at(world.now))
                            {
                                healing.push((permit, impact));
                            }
                        }
                        BudgetOp::HealingRelease(i) => {
                            if !healing.is_empty() {
                                let (permit, _) = healing.remove(i % healing.len());
                                world.budget.release(permit);
                            }
                        }
                        BudgetOp::Stop(i) => {
                            let (id, now) = (world.run_id(i), world.at(world.now));
                            let _ = world.chaos.stop(id, &mut world.budget, now).await;
                        }
                        BudgetOp::Tick(dt) => {
                            world.advance(i64::from(dt));
                            world.tick().await;
                        }
                    }
                    prop_assert!(world.budget.in_flight() <= config.max_concurrent as usize);
                    let holding = world
                        .chaos
                        .list()
                        .iter()
                        .filter(|r| r.holds_changes())
                        .count();
                    prop_assert_eq!(world.budget.in_flight(), holding + healing.len());
                }
                Ok(())
            })
        })
        .unwrap();
    let (admitted, denied) = (admitted.get(), denied.get());
    eprintln!("budget property: {admitted} chaos runs admitted, {denied} denied");
    assert!(
        admitted > 100 && denied > 100,
        "admitted {admitted}, denied {denied}"
    );
}

#[derive(Debug, Clone)]
enum RevertOp {
    Start {
        scenario: usize,
        dry_run: bool,
        guarded: bool,
        delay_steps: u8,
    },
    Stop(usize),
    Abort(usize),
    Cancel(usize),
    Breach,
    Tick(u16),
}

fn revert_op() -> impl Strategy<Value = RevertOp> {
    prop_oneof![
        4 => (0..ScenarioType::ALL.len(), prop::bool::weighted(0.2), any::<bool>(), 0u8..2)
            .prop_map(|(scenario, dry_run, guarded, delay_steps)| RevertOp::Start { scenario, dry_run, guarded, delay_steps }),
        2 => any::<usize>().prop_map(RevertOp::Stop),
        1 => any::<usize>().prop_map(RevertOp::Abort),
        1 => any::<usize>().prop_map(RevertOp::Cancel),
        1 => Just(RevertOp::Breach),
        3 => (1u16..200).prop_map(RevertOp::Tick),
    ]
}

fn check_sim_holds_only_live_changes(world: &World) -> Result<(), TestCaseError> {
    let live = fault_ids(&world.chaos, true);
    let in_sim = sim_fault_ids(&world.sim);
    prop_assert!(
        in_sim.is_subset(&live),
        "stray faults: {:?}",
        in_sim.difference(&live).collect::<Vec<_>>()
    );
    let cordoned_by_runs: BTreeSet<String> = world
        .chaos
        .list()
        .into_iter()
        .filter(|r| r.holds_changes())
        .filter_map(|r| r.injection.as_ref())
        .flat_map(|i| &i.changes)
        .filter_map(|c| match c {
            Change::Cordon { node } => Some(node.clone()),
            Change::Fault { .. } => None,
        })
        .collect();
    let cordoned: BTreeSet<String> = world
        .sim
        .snapshot_now()
        .nodes
        .into_iter()
        .filter(|n| n.unschedulable)
        .map(|n| n.name)
        .collect();
    prop_assert_eq!(&cordoned, &cordoned_by_runs);
    let holding = world
        .chaos
        .list()
        .iter()
        .filter(|r| r.holds_changes())
        .count();
    prop_assert_eq!(world.budget.in_flight(), holding);
    Ok(())
}

#[test]
fn ended_runs_leave_nothing_behind_in_the_simulator() {
    let budget = BudgetConfig {
        max_concurrent: 4,
        max_per_window: 1_000,
        max_per_namespace: 1_000,
        ..BudgetConfig::default()
    };
    let mut runner = TestRunner::new(Config::with_cases(96));
    let by_status: RefCell<BTreeMap<RunStatus, usize>> = RefCell::default();
    let strategy = (prop::collection::vec(revert_op(), 1..40), any::<u64>());
    runner
        .run(&strategy, |(ops, seed)| {
            runtime().block_on(async {
                let mut world = World::new(budget.clone(), seed);
                let guard = AbortGuard::new(
                    "steady-state",
                    GuardSignal::Anomaly {
                        metric: "octrix_sim_pod_error_rate".into(),
                        labels: labels::from_pairs([("namespace", "shop")]),
                    },
                );
                for op in ops {
                    let now = world.at(world.now);
                    match op {
                        RevertOp::Start {
                            scenario,
                            dry_run,
                            guarded,
                            delay_steps,
                        } => {
                            let delay = i64::from(delay_steps) * 30;
                            let options = StartOptions {
                                dry_run,
                                start_at: (delay > 0).then(|| world.at(world.now + delay)),
                                guards: if guarded {
                                    vec![guard.clone()]
                                } else {
                                    Vec::new()
                                },
                                ..StartOptions::default()
                            };
                            let _ = world.start(ScenarioType::ALL[scenario], options).await;
                        }
                        RevertOp::Stop(i) => {
                            let id = world.run_id(i);
                            let _ = world.chaos.stop(id, &mut world.budget, now).await;
                        }
                        RevertOp::Abort(i) => {
                            let id = world.run_id(i);
                            let _ = world.chaos.abort(id, "prop", &mut world.budget, now).await;
                        }
                        RevertOp::Cancel(i) => {
                            let id = world.run_id(i);
                            let _ = world.chaos.cancel(id, now);
                        }
                        RevertOp::Breach => {
                            let anomaly = GuardObservation::Anomaly {
                                metric: "octrix_sim_pod_error_rate".into(),
                                labels: labels::from_pairs([
                                    ("namespace", "shop"),
                                    ("service", "checkout"),
                                ]),
                            };
                            world
                                .chaos
                                .enforce_guards(&[anomaly], &mut world.budget, now)
                                .await;
                        }
                        RevertOp::Tick(dt) => {
                            world.advance(i64::from(dt));
                            world.tick().await;
                        }
                    }
                    check_sim_holds_only_live_changes(&world)?;
                }
                let now = world.at(world.now);
                world
                    .chaos
                    .abort_all("end of test", &mut world.budget, now)
                    .await
                    .unwrap();
                prop_assert!(world.sim.faults().is_empty());
                prop_assert!(
                    world
                        .sim
                        .snapshot_now()
                        .nodes
                        .iter()
                        .all(|n| !n.unschedulable)
                );
                prop_assert_eq!(world.budget.in_flight(), 0);
                for run in world.chaos.list() {
                    prop_assert!(!run.status.is_active());
                    prop_assert!(!run.holds_changes());
                    *by_status.borrow_mut().entry(run.status).or_default() += 1;
                }
                Ok(())
            })
        })
        .unwrap();
    // Every way of ending was exercised.
    let by_status = by_status.into_inner();
    eprintln!("revert property: runs ended {by_status:?}");
    for status in [
        RunStatus::Completed,
        RunStatus::Stopped,
        RunStatus::Cancelled,
        RunStatus::Aborted,
        RunStatus::Failed,
    ] {
        assert!(
            by_status.get(&status).copied().unwrap_or(0) > 10,
            "{by_status:?}"
        );
    }
}
