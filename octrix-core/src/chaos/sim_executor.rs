//! The simulated cluster as a [`ChaosExecutor`]: each scenario type becomes
//! simulator faults (and cordons), which revert exactly.
//!
//! | Scenario type       | Simulator change                                  |
//! |---------------------|---------------------------------------------------|
//! | pod-failure         | transient `CrashLoop` on each pod                 |
//! | node-failure        | `NodeNotReady` on each node, plus a cordon        |
//! | cpu-stress          | `CpuSpike` of workers × load on each pod          |
//! | memory-stress       | `MemoryStress` holding the memory on each pod     |
//! | memory-leak         | `MemoryStress` growing at the rate on each pod    |
//! | latency-injection   | `Latency` on each service                         |
//! | packet-loss         | `ErrorBurst` of the loss on each service          |
//! | service-failure     | `ErrorBurst` of the error share on each service   |
//! | network-partition   | `ErrorBurst` of 100 % on each service             |
//! | database-overload   | `Latency` and `CpuSpike` on each service          |
//! | disk-stress         | `DiskFill` on each node                           |
//!
//! Memory chaos uses `MemoryStress`, not the application `MemoryLeak` fault,
//! because the memory of a chaos tool is freed when the run ends, while a
//! leak in the application only goes away with a restart.

use std::sync::Arc;

use async_trait::async_trait;

use super::Parameters;
use super::executor::{Change, ChaosExecutor, ExecutorError, Injection, InjectionPlan};
use super::select::Target;
use crate::cluster::{ClusterAction, ClusterActuator, ClusterError, ClusterObserver};
use crate::sim::{FaultId, FaultKind, FaultTarget, SimCluster, SimError};

const MIB: f64 = 1024.0 * 1024.0;

/// Runs chaos on a [`SimCluster`].
#[derive(Debug, Clone)]
pub struct SimChaosExecutor {
    sim: Arc<SimCluster>,
}

impl SimChaosExecutor {
    /// An executor acting on `sim`.
    pub fn new(sim: Arc<SimCluster>) -> Self {
        Self { sim }
    }
}

fn mismatch(parameters: &Parameters, target: &Target) -> ExecutorError {
    ExecutorError::Rejected {
        target: target.to_string(),
        reason: format!(
            "a {} scenario acts on {}s",
            parameters.scenario_type(),
            parameters.scenario_type().target_kind()
        ),
    }
}

/// The simulator faults that realise `parameters` on `target` (cordons aside).
pub fn sim_faults(
    parameters: &Parameters,
    target: &Target,
) -> Result<Vec<(FaultKind, FaultTarget)>, ExecutorError> {
    let kinds = match *parameters {
        Parameters::PodFailure { .. } => vec![FaultKind::CrashLoop { persistent: false }],
        Parameters::NodeFailure { .. } => vec![FaultKind::NodeNotReady],
        Parameters::CpuStress {
            workers,
            load_percent,
            ..
        } => vec![FaultKind::CpuSpike {
            extra_cores: f64::from(workers) * f64::from(load_percent) / 100.0,
        }],
        Parameters::MemoryStress { memory_mb, .. } => vec![FaultKind::MemoryStress {
            bytes: f64::from(memory_mb) * MIB,
            bytes_per_second: 0.0,
        }],
        Parameters::MemoryLeak {
            rate_mb_per_second, ..
        } => vec![FaultKind::MemoryStress {
            bytes: 0.0,
            bytes_per_second: rate_mb_per_second * MIB,
        }],
        Parameters::LatencyInjection { latency_ms, .. } => vec![FaultKind::Latency {
            // The simulator has no jitter: it reports the mean delay, which
            // is the configured latency for a symmetric jitter.
            added_seconds: f64::from(latency_ms) / 1_000.0,
        }],
        Parameters::PacketLoss { loss_percent, .. } => vec![FaultKind::ErrorBurst {
            error_rate: loss_percent / 100.0,
        }],
        Parameters::ServiceFailure { error_percent, .. } => vec![FaultKind::ErrorBurst {
            error_rate: error_percent / 100.0,
        }],
        Parameters::NetworkPartition { .. } => vec![FaultKind::ErrorBurst { error_rate: 1.0 }],
        Parameters::DatabaseOverload { intensity, .. } => vec![
            FaultKind::Latency {
                added_seconds: f64::from(intensity.added_latency_ms()) / 1_000.0,
            },
            FaultKind::CpuSpike {
                extra_cores: f64::from(intensity.cpu_load_percent()) / 100.0,
            },
        ],
        Parameters::DiskStress { fill_percent, .. } => vec![FaultKind::DiskFill {
            fraction: fill_percent / 100.0,
        }],
    };
    let fault_target = match (parameters.scenario_type().target_kind(), target) {
        (super::TargetKind::Pod, Target::Pod { namespace, name }) => FaultTarget::Pod {
            namespace: namespace.clone(),
            name: name.clone(),
        },
        (super::TargetKind::Node, Target::Node { name }) => {
            FaultTarget::Node { name: name.clone() }
        }
        (super::TargetKind::Service, Target::Service { namespace, name }) => {
            FaultTarget::Deployment {
                namespace: namespace.clone(),
                name: name.clone(),
            }
        }
        _ => return Err(mismatch(parameters, target)),
    };
    Ok(kinds
        .into_iter()
        .map(|kind| (kind, fault_target.clone()))
        .collect())
}

fn effect(kind: &FaultKind) -> String {
    match kind {
        FaultKind::CrashLoop { .. } => "crash loop".to_owned(),
        FaultKind::OomKill => "OOM kill".to_owned(),
        FaultKind::CpuSpike { extra_cores } => format!("CPU +{extra_cores:.2} cores"),
        FaultKind::MemoryLeak { bytes_per_second } => {
            format!("memory +{:.1} MiB/s", bytes_per_second / MIB)
        }
        FaultKind::MemoryStress {
            bytes,
            bytes_per_second,
        } => match (*bytes > 0.0, *bytes_per_second > 0.0) {
            (_, false) => format!("memory +{:.0} MiB held", bytes / MIB),
            (false, true) => format!("memory +{:.1} MiB/s", bytes_per_second / MIB),
            (true, true) => format!(
                "memory +{:.0} MiB held, +{:.1} MiB/s",
                bytes / MIB,
                bytes_per_second / MIB
            ),
        },
        FaultKind::NodeNotReady => "node NotReady".to_owned(),
        FaultKind::NodeMemoryPressure => "node memory pressure".to_owned(),
        FaultKind::DiskFill { fraction } => format!("disk filled to {:.0} %", fraction * 100.0),
        FaultKind::Latency { added_seconds } => {
            format!("latency +{:.0} ms", added_seconds * 1_000.0)
        }
        FaultKind::ErrorBurst { error_rate } => {
            format!("{:.0} % of requests fail", error_rate * 100.0)
        }
    }
}

fn from_sim(error: SimError) -> ExecutorError {
    match error {
        SimError::UnknownTarget(target) => ExecutorError::Rejected {
            target: format!("{target:?}"),
            reason: "no such object in the simulated cluster".to_owned(),
        },
        other => ExecutorError::Rejected {
            target: "simulated cluster".to_owned(),
            reason: other.to_string(),
        },
    }
}

fn from_cluster(error: ClusterError) -> ExecutorError {
    match error {
        ClusterError::Unavailable { cluster, reason } => {
            ExecutorError::Unavailable(format!("{cluster}: {reason}"))
        }
        ClusterError::NotFound { target } => ExecutorError::Rejected {
            target,
            reason: "not found".to_owned(),
        },
        other => ExecutorError::Rejected {
            target: "simulated cluster".to_owned(),
            reason: other.to_string(),
        },
    }
}

impl SimChaosExecutor {
    /// Makes the changes of `plan`, recording each one as soon as it is made
    /// so that a failure half-way can be undone.
    async fn inject_into(
        &self,
        plan: &InjectionPlan,
        changes: &mut Vec<Change>,
    ) -> Result<(), ExecutorError> {
        for target in &plan.targets {
            for (kind, fault_target) in sim_faults(&plan.parameters, target)? {
                let effect = effect(&kind);
                let id = self
                    .sim
                    .inject(kind, fault_target, Some(plan.until))
                    .map_err(from_sim)?;
                changes.push(Change::Fault {
                    id: id.to_string(),
                    target: target.clone(),
                    effect,
                });
            }
            if let (Parameters::NodeFailure { cordon: true, .. }, Target::Node { name }) =
                (&plan.parameters, target)
            {
                // Only a node the run cordons is uncordoned on revert: an
                // operator's cordon stays.
                let already = self
                    .sim
                    .snapshot_now()
                    .node(name)
                    .is_some_and(|n| n.unschedulable);
                if !already {
                    let cordon = ClusterAction::CordonNode { node: name.clone() };
                    self.sim
                        .execute(&cordon, false)
                        .await
                        .map_err(from_cluster)?;
                    changes.push(Change::Cordon { node: name.clone() });
                }
            }
        }
        Ok(())
    }
}

fn parse_fault_id(id: &str) -> Option<FaultId> {
    id.strip_prefix("fault-")?.parse().ok().map(FaultId)
}

#[async_trait]
impl ChaosExecutor for SimChaosExecutor {
    fn name(&self) -> String {
        ClusterObserver::info(self.sim.as_ref()).name
    }

    async fn inject(&self, plan: &InjectionPlan) -> Result<Injection, ExecutorError> {
        let mut injection = Injection {
            run: plan.run,
            changes: Vec::new(),
        };
        if let Err(error) = self.inject_into(plan, &mut injection.changes).await {
            // All or nothing: the partial changes go; the injection error is
            // what the caller needs to see.
            let _ = self.revert(&injection).await;
            return Err(error);
        }
        Ok(injection)
    }

    async fn revert(&self, injection: &Injection) -> Result<(), ExecutorError> {
        let mut first_error = None;
        for change in injection.changes.iter().rev() {
            let result = match change {
                Change::Fault { id, .. } => match parse_fault_id(id) {
                    // A fault that expired at its deadline is already reverted.
                    Some(fault) => match self.sim.clear(fault) {
                        Ok(_) | Err(SimError::UnknownFault(_)) => Ok(()),
                        Err(other) => Err(from_sim(other)),
                    },
                    None => Err(ExecutorError::UnknownChange(id.clone())),
                },
                Change::Cordon { node } => {
                    let uncordon = ClusterAction::UncordonNode { node: node.clone() };
                    self.sim
                        .execute(&uncordon, false)
                        .await
                        .map(|_| ())
                        .map_err(from_cluster)
                }
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::Intensity;
    use crate::chaos::RunId;
    use crate::sim::SimConfig;
    use crate::time::SignedDuration;
    use crate::{Clock, ManualClock, Timestamp};

    fn service(name: &str) -> Target {
        Target::Service {
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    #[test]
    fn every_type_maps_to_the_documented_faults() {
        let checkout = FaultTarget::Deployment {
            namespace: "shop".into(),
            name: "checkout".into(),
        };
        let db = Parameters::DatabaseOverload {
            duration_seconds: 1,
            intensity: Intensity::High,
        };
        assert_eq!(
            sim_faults(&db, &service("checkout")).unwrap(),
            [
                (FaultKind::Latency { added_seconds: 1.0 }, checkout.clone()),
                (FaultKind::CpuSpike { extra_cores: 0.9 }, checkout.clone()),
            ]
        );
        let partition = Parameters::NetworkPartition {
            duration_seconds: 1,
            direction: Default::default(),
        };
        assert_eq!(
            sim_faults(&partition, &service("checkout")).unwrap(),
            [(FaultKind::ErrorBurst { error_rate: 1.0 }, checkout)]
        );
        let cpu = Parameters::CpuStress {
            duration_seconds: 1,
            workers: 2,
            load_percent: 40,
        };
        let pod = Target::Pod {
            namespace: "shop".into(),
            name: "web-1".into(),
        };
        assert_eq!(
            sim_faults(&cpu, &pod).unwrap()[0].0,
            FaultKind::CpuSpike { extra_cores: 0.8 }
        );
        let leak = Parameters::MemoryLeak {
            duration_seconds: 1,
            rate_mb_per_second: 2.0,
        };
        assert_eq!(
            sim_faults(&leak, &pod).unwrap()[0].0,
            FaultKind::MemoryStress {
                bytes: 0.0,
                bytes_per_second: 2.0 * MIB
            }
        );
        let err = sim_faults(&cpu, &service("checkout")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "service/shop/checkout: a cpu-stress scenario acts on pods"
        );
    }

    #[tokio::test]
    async fn a_failed_injection_leaves_nothing_behind() {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
        let executor = SimChaosExecutor::new(sim.clone());
        let plan = InjectionPlan {
            run: RunId(1),
            parameters: Parameters::ServiceFailure {
                duration_seconds: 60,
                error_percent: 100.0,
            },
            targets: vec![service("checkout"), service("ghost")],
            until: clock
                .now()
                .checked_add(SignedDuration::from_mins(1))
                .unwrap(),
        };
        let err = executor.inject(&plan).await.unwrap_err();
        assert!(
            matches!(&err, ExecutorError::Rejected { reason, .. } if reason.contains("no such object")),
            "{err}"
        );
        assert!(
            sim.faults().is_empty(),
            "the checkout fault was rolled back"
        );
    }

    #[tokio::test]
    async fn revert_is_idempotent_and_keeps_an_operators_cordon() {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let sim = Arc::new(SimCluster::new(SimConfig::default(), clock.clone()).unwrap());
        let executor = SimChaosExecutor::new(sim.clone());
        let cordon = ClusterAction::CordonNode {
            node: "node-1".into(),
        };
        sim.execute(&cordon, false).await.unwrap();
        let plan = InjectionPlan {
            run: RunId(2),
            parameters: Parameters::NodeFailure {
                duration_seconds: 60,
                cordon: true,
            },
            targets: vec![
                Target::Node {
                    name: "node-0".into(),
                },
                Target::Node {
                    name: "node-1".into(),
                },
            ],
            until: clock
                .now()
                .checked_add(SignedDuration::from_mins(1))
                .unwrap(),
        };
        let injection = executor.inject(&plan).await.unwrap();
        assert_eq!(
            injection
                .changes
                .iter()
                .filter(|c| matches!(c, Change::Cordon { .. }))
                .count(),
            1,
            "node-1 was already cordoned"
        );
        assert_eq!(sim.faults().len(), 2);
        executor.revert(&injection).await.unwrap();
        executor.revert(&injection).await.unwrap();
        let snapshot = sim.snapshot_now();
        assert!(sim.faults().is_empty());
        assert!(!snapshot.node("node-0").unwrap().unschedulable);
        assert!(
            snapshot.node("node-1").unwrap().unschedulable,
            "the operator's cordon stays"
        );

        let bogus = Injection {
            run: RunId(3),
            changes: vec![Change::Fault {
                id: "netem-7".into(),
                target: service("checkout"),
                effect: String::new(),
            }],
        };
        assert_eq!(
            executor.revert(&bogus).await,
            Err(ExecutorError::UnknownChange("netem-7".into()))
        );
    }
}
