//! The blast radius of a run: what it touches (to link incidents to it) and
//! which replicas it takes away (to ask the [`SafetyBudget`] for).
//!
//! [`SafetyBudget`]: crate::healing::SafetyBudget

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Parameters;
use super::select::Target;
use crate::cluster::{ClusterSnapshot, PodOwner, PodState};
use crate::healing::WorkloadImpact;

const MIB: f64 = 1024.0 * 1024.0;

/// Disk usage, in percent, at which the kubelet reports `DiskPressure` and
/// starts evicting pods (its default `nodefs.available<10%`).
pub const DISK_PRESSURE_PERCENT: f64 = 90.0;

/// The workload a pod belongs to, as the safety budget keys it.
///
/// Deployments are `namespace/name`, exactly as healing keys them, so that
/// chaos and healing disruptions of one deployment add up in the budget;
/// other owners carry their kind so that names cannot collide.
pub fn workload_key(pod: &PodState) -> String {
    let ns = &pod.namespace;
    match &pod.owner {
        PodOwner::Deployment(name) => format!("{ns}/{name}"),
        PodOwner::DaemonSet(name) => format!("{ns}/daemonset/{name}"),
        PodOwner::Other(name) => format!("{ns}/controller/{name}"),
        PodOwner::None => format!("{ns}/pod/{}", pod.name),
    }
}

/// What an incident is about, as far as chaos coverage goes; every field is
/// optional, like the incident's own subject.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentScope {
    /// Namespace of the affected object.
    pub namespace: Option<String>,
    /// Affected service.
    pub service: Option<String>,
    /// Deployment owning the affected pod.
    pub deployment: Option<String>,
    /// Affected pod.
    pub pod: Option<String>,
    /// Affected node.
    pub node: Option<String>,
}

/// Everything a run touches, directly or through its targets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AffectedObjects {
    /// Pods, as `namespace/name`.
    pub pods: BTreeSet<String>,
    /// Workloads as [`workload_key`] names them; services as `namespace/name`.
    pub workloads: BTreeSet<String>,
    /// Node names.
    pub nodes: BTreeSet<String>,
}

impl AffectedObjects {
    /// Whether an incident about `scope` may be caused by this run.
    ///
    /// A pod, deployment, service or node named by the scope must be among
    /// the affected objects (one match is enough); a scope naming only a
    /// namespace matches a run that touched anything in it; an empty scope (a
    /// cluster-wide incident) matches every run.
    pub fn covers(&self, scope: &IncidentScope) -> bool {
        let ns = scope.namespace.as_deref();
        let scoped = |name: &str| ns.map(|ns| format!("{ns}/{name}"));
        let named = [
            scope
                .pod
                .as_deref()
                .map(|p| scoped(p).is_some_and(|k| self.pods.contains(&k))),
            scope
                .deployment
                .as_deref()
                .map(|d| scoped(d).is_some_and(|k| self.workloads.contains(&k))),
            scope
                .service
                .as_deref()
                .map(|s| scoped(s).is_some_and(|k| self.workloads.contains(&k))),
            scope.node.as_deref().map(|n| self.nodes.contains(n)),
        ];
        if named.iter().any(Option::is_some) {
            return named.into_iter().flatten().any(|hit| hit);
        }
        match ns {
            Some(ns) => {
                let prefix = format!("{ns}/");
                self.pods
                    .iter()
                    .chain(&self.workloads)
                    .any(|k| k.starts_with(&prefix))
            }
            None => true,
        }
    }
}

/// What a run touches and which replicas it takes away.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BlastRadius {
    /// Everything touched, for incident coverage.
    pub affected: AffectedObjects,
    /// One entry per workload that loses pods, sorted by workload; empty for
    /// runs that only degrade (latency, errors, CPU) without taking a
    /// replica away.
    pub impacts: Vec<WorkloadImpact>,
}

impl BlastRadius {
    /// The impact the run's permit is asked for: the workload losing the
    /// largest share of its pods (then the most ready ones).
    pub fn primary(&self) -> Option<&WorkloadImpact> {
        self.impacts.iter().max_by(|a, b| {
            let share = |w: &WorkloadImpact| f64::from(w.disrupted_pods) / f64::from(w.pods.max(1));
            share(a)
                .total_cmp(&share(b))
                .then(a.disrupted_ready_pods.cmp(&b.disrupted_ready_pods))
                // Equal risk: the first workload by name, for a stable choice.
                .then(b.workload.cmp(&a.workload))
        })
    }
}

/// Whether `pod` would pass its memory limit with `extra` more bytes.
fn would_oom(pod: &PodState, extra: f64) -> bool {
    pod.containers.iter().any(|c| {
        c.memory_limit_bytes
            .is_some_and(|limit| c.memory_used_bytes + extra >= limit)
    })
}

/// Computes the blast radius of a run with `parameters` on `targets`.
///
/// A pod is counted as disrupted when the run takes it out of service: pod
/// and node failures, nodes filled past [`DISK_PRESSURE_PERCENT`] (the kubelet
/// evicts their pods), and memory stress or leaks that would pass a
/// container's limit within the run (the container is OOM-killed). Latency,
/// errors, partitions and CPU stress degrade pods without removing them.
pub fn blast_radius(
    parameters: &Parameters,
    targets: &[Target],
    snapshot: &ClusterSnapshot,
) -> BlastRadius {
    let mut touched: Vec<&PodState> = Vec::new();
    let mut affected = AffectedObjects::default();
    for target in targets {
        match target {
            Target::Pod { namespace, name } => touched.extend(snapshot.pod(namespace, name)),
            Target::Node { name } => {
                affected.nodes.insert(name.clone());
                touched.extend(
                    snapshot
                        .pods
                        .iter()
                        .filter(|p| p.node.as_deref() == Some(name)),
                );
            }
            Target::Service { namespace, name } => {
                affected.workloads.insert(format!("{namespace}/{name}"));
                touched.extend(
                    snapshot
                        .pods
                        .iter()
                        .filter(|p| p.namespace == *namespace && p.deployment() == Some(name)),
                );
            }
        }
    }
    // Stress in a pod also loads its node (CPU, memory pressure).
    let stresses_nodes = matches!(
        parameters,
        Parameters::CpuStress { .. }
            | Parameters::MemoryStress { .. }
            | Parameters::MemoryLeak { .. }
    );
    for pod in &touched {
        affected
            .pods
            .insert(format!("{}/{}", pod.namespace, pod.name));
        affected.workloads.insert(workload_key(pod));
        if stresses_nodes && let Some(node) = &pod.node {
            affected.nodes.insert(node.clone());
        }
    }

    let disrupted: Vec<&PodState> = match *parameters {
        Parameters::PodFailure { .. } | Parameters::NodeFailure { .. } => touched,
        Parameters::DiskStress { fill_percent, .. } if fill_percent >= DISK_PRESSURE_PERCENT => {
            touched
        }
        Parameters::MemoryStress { memory_mb, .. } => touched
            .into_iter()
            .filter(|p| would_oom(p, f64::from(memory_mb) * MIB))
            .collect(),
        Parameters::MemoryLeak {
            rate_mb_per_second,
            duration_seconds,
        } => touched
            .into_iter()
            .filter(|p| would_oom(p, rate_mb_per_second * MIB * f64::from(duration_seconds)))
            .collect(),
        _ => Vec::new(),
    };

    let mut by_workload: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for pod in disrupted {
        let entry = by_workload.entry(workload_key(pod)).or_default();
        entry.0 += 1;
        entry.1 += u32::from(pod.is_ready());
    }
    let impacts = by_workload
        .into_iter()
        .map(|(workload, (disrupted_pods, disrupted_ready_pods))| {
            let members: Vec<&PodState> = snapshot
                .pods
                .iter()
                .filter(|p| workload_key(p) == workload)
                .collect();
            WorkloadImpact {
                pods: members.len() as u32,
                ready_pods: members.iter().filter(|p| p.is_ready()).count() as u32,
                workload,
                disrupted_pods,
                disrupted_ready_pods,
            }
        })
        .collect();
    BlastRadius { affected, impacts }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sim::{SimCluster, SimConfig};
    use crate::{ManualClock, Timestamp};

    fn snapshot() -> ClusterSnapshot {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let config = SimConfig {
            noise: 0.0,
            ..SimConfig::default()
        };
        let sim = SimCluster::new(config, clock.clone()).unwrap();
        // One step so that every pod, node-exporters included, is ready.
        clock.advance(crate::time::SignedDuration::from_secs(15));
        sim.snapshot_now()
    }

    fn pod(name: &str) -> Target {
        Target::Pod {
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    fn impact(workload: &str, pods: u32, disrupted: u32) -> WorkloadImpact {
        WorkloadImpact {
            workload: workload.into(),
            pods,
            ready_pods: pods,
            disrupted_pods: disrupted,
            disrupted_ready_pods: disrupted,
        }
    }

    #[test]
    fn pod_failure_disrupts_its_pods_keyed_like_healing() {
        let params = Parameters::PodFailure {
            duration_seconds: 60,
        };
        let radius = blast_radius(
            &params,
            &[pod("frontend-1"), pod("checkout-2")],
            &snapshot(),
        );
        assert_eq!(
            radius.impacts,
            [impact("shop/checkout", 2, 1), impact("shop/frontend", 3, 1)]
        );
        assert_eq!(radius.primary().unwrap().workload, "shop/checkout");
        assert_eq!(
            radius.affected.pods,
            BTreeSet::from(["shop/checkout-2".into(), "shop/frontend-1".into()])
        );
        assert!(
            radius.affected.nodes.is_empty(),
            "a failed pod does not load its node"
        );
    }

    #[test]
    fn node_failure_disrupts_everything_on_the_node() {
        let params = Parameters::NodeFailure {
            duration_seconds: 60,
            cordon: true,
        };
        let node = Target::Node {
            name: "node-0".into(),
        };
        let radius = blast_radius(&params, &[node], &snapshot());
        // Round-robin placement puts frontend-1, checkout-1, payments-2 and a
        // node-exporter on node-0.
        assert_eq!(
            radius.impacts,
            [
                impact("monitoring/daemonset/node-exporter", 3, 1),
                impact("shop/checkout", 2, 1),
                impact("shop/frontend", 3, 1),
                impact("shop/payments", 2, 1),
            ]
        );
        assert_eq!(radius.primary().unwrap().workload, "shop/checkout");
        assert!(radius.affected.nodes.contains("node-0"));
        assert!(radius.affected.pods.contains("shop/payments-2"));
    }

    #[test]
    fn degrading_runs_take_no_replica_but_still_touch_things() {
        let service = Target::Service {
            namespace: "shop".into(),
            name: "checkout".into(),
        };
        let params = Parameters::LatencyInjection {
            duration_seconds: 60,
            latency_ms: 200,
            jitter_ms: 0,
        };
        let radius = blast_radius(&params, &[service], &snapshot());
        assert!(radius.impacts.is_empty());
        assert_eq!(radius.primary(), None);
        assert_eq!(
            radius.affected.workloads,
            BTreeSet::from(["shop/checkout".into()])
        );
        assert_eq!(radius.affected.pods.len(), 2);

        let cpu = Parameters::CpuStress {
            duration_seconds: 60,
            workers: 1,
            load_percent: 100,
        };
        let radius = blast_radius(&cpu, &[pod("frontend-2")], &snapshot());
        assert!(radius.impacts.is_empty());
        assert_eq!(radius.affected.nodes, BTreeSet::from(["node-1".into()]));
    }

    #[test]
    fn memory_counts_as_disruption_only_past_the_limit_and_disk_only_past_pressure() {
        // Pods use 200 MiB of a 512 MiB limit.
        let hold = |memory_mb| Parameters::MemoryStress {
            duration_seconds: 60,
            memory_mb,
        };
        let s = snapshot();
        assert!(
            blast_radius(&hold(256), &[pod("payments-1")], &s)
                .impacts
                .is_empty()
        );
        assert_eq!(
            blast_radius(&hold(400), &[pod("payments-1")], &s).impacts,
            [impact("shop/payments", 2, 1)]
        );
        let leak = |rate| Parameters::MemoryLeak {
            duration_seconds: 120,
            rate_mb_per_second: rate,
        };
        assert!(
            blast_radius(&leak(2.0), &[pod("payments-1")], &s)
                .impacts
                .is_empty()
        );
        assert_eq!(
            blast_radius(&leak(3.0), &[pod("payments-1")], &s)
                .impacts
                .len(),
            1
        );

        let node = [Target::Node {
            name: "node-1".into(),
        }];
        let fill = |fill_percent| Parameters::DiskStress {
            duration_seconds: 60,
            fill_percent,
        };
        assert!(blast_radius(&fill(80.0), &node, &s).impacts.is_empty());
        assert_eq!(blast_radius(&fill(95.0), &node, &s).impacts.len(), 3);
    }

    #[test]
    fn coverage_matches_named_objects_namespaces_and_cluster_wide_incidents() {
        let params = Parameters::NodeFailure {
            duration_seconds: 60,
            cordon: false,
        };
        let node = Target::Node {
            name: "node-0".into(),
        };
        let affected = blast_radius(&params, &[node], &snapshot()).affected;
        let scope =
            |ns: Option<&str>, pod: Option<&str>, deployment: Option<&str>, node: Option<&str>| {
                IncidentScope {
                    namespace: ns.map(Into::into),
                    pod: pod.map(Into::into),
                    deployment: deployment.map(Into::into),
                    service: None,
                    node: node.map(Into::into),
                }
            };
        assert!(affected.covers(&scope(Some("shop"), Some("frontend-1"), None, None)));
        assert!(!affected.covers(&scope(Some("shop"), Some("frontend-2"), None, None)));
        assert!(
            !affected.covers(&scope(None, Some("frontend-1"), None, None)),
            "pods need their namespace"
        );
        assert!(affected.covers(&scope(Some("shop"), None, Some("checkout"), None)));
        assert!(affected.covers(&scope(None, None, None, Some("node-0"))));
        assert!(!affected.covers(&scope(None, None, None, Some("node-1"))));
        assert!(
            affected.covers(&scope(
                Some("shop"),
                Some("frontend-2"),
                None,
                Some("node-0")
            )),
            "one match is enough"
        );
        assert!(affected.covers(&scope(Some("monitoring"), None, None, None)));
        assert!(!affected.covers(&scope(Some("billing"), None, None, None)));
        assert!(affected.covers(&IncidentScope::default()));
        let service = IncidentScope {
            namespace: Some("shop".into()),
            service: Some("payments".into()),
            ..IncidentScope::default()
        };
        assert!(affected.covers(&service));
    }
}
