//! Turning what the observer reports into the classifier's observations.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::Timestamp;
use crate::classify::{
    ContainerStatus, NodeConditions, Observation, PodStatus, Reading, ResourceRef,
    TerminationReason, WaitingReason,
};
use crate::cluster::{ClusterSnapshot, ConditionStatus, NodeState, PodState};

/// Observations of every pod and node in `snapshot`, taken at `at`.
pub(super) fn observations(snapshot: &ClusterSnapshot, at: Timestamp) -> Vec<Observation> {
    let mut out = Vec::with_capacity(snapshot.pods.len() * 3 + snapshot.nodes.len() * 3);
    for pod in &snapshot.pods {
        pod_observations(pod, at, &mut out);
    }
    for node in &snapshot.nodes {
        node_observations(node, at, &mut out);
    }
    out
}

fn pod_observations(pod: &PodState, at: Timestamp, out: &mut Vec<Observation>) {
    let mut resource = ResourceRef::pod(&pod.namespace, &pod.name);
    if let Some(node) = &pod.node {
        resource = resource.on_node(node);
    }
    let service = pod.deployment().map(str::to_owned);
    let observe = |reading: Reading| {
        let observation = Observation::new(at, resource.clone(), reading);
        match &service {
            Some(service) => observation.with_service(service),
            None => observation,
        }
    };
    let status = PodStatus {
        phase: pod.phase,
        containers: pod
            .containers
            .iter()
            .map(|c| ContainerStatus {
                ready: c.ready,
                restart_count: c.restart_count,
                waiting_reason: c.waiting_reason.clone().map(WaitingReason::from),
                last_termination_reason: c
                    .last_termination_reason
                    .clone()
                    .map(TerminationReason::from),
                ..ContainerStatus::running(&c.name)
            })
            .collect(),
    };
    out.push(observe(Reading::Pod(status)));
    // Utilisation is only meaningful against a limit.
    let (cpu, cpu_limit) = pod.containers.iter().fold((0.0, 0.0), |(u, l), c| {
        (u + c.cpu_used_cores, l + c.cpu_limit_cores.unwrap_or(0.0))
    });
    if cpu_limit > 0.0 && pod.containers.iter().all(|c| c.cpu_limit_cores.is_some()) {
        out.push(observe(Reading::CpuUtilisation {
            ratio: (cpu / cpu_limit).min(1.0),
        }));
    }
    let (memory, memory_limit) = pod.containers.iter().fold((0.0, 0.0), |(u, l), c| {
        (
            u + c.memory_used_bytes,
            l + c.memory_limit_bytes.unwrap_or(0.0),
        )
    });
    if memory_limit > 0.0
        && pod
            .containers
            .iter()
            .all(|c| c.memory_limit_bytes.is_some())
    {
        out.push(observe(Reading::MemoryUtilisation {
            ratio: (memory / memory_limit).min(1.0),
        }));
    }
}

fn node_observations(node: &NodeState, at: Timestamp, out: &mut Vec<Observation>) {
    let resource = ResourceRef::node(&node.name);
    let holds = |status: ConditionStatus| status == ConditionStatus::True;
    out.push(Observation::new(
        at,
        resource.clone(),
        Reading::Node(NodeConditions {
            ready: node.ready,
            memory_pressure: holds(node.memory_pressure),
            disk_pressure: holds(node.disk_pressure),
            pid_pressure: holds(node.pid_pressure),
        }),
    ));
    // Usage of zero means the observer does not know it (no metrics server):
    // it is not reported rather than reported as idle.
    if node.cpu_allocatable_cores > 0.0 && node.cpu_used_cores > 0.0 {
        out.push(Observation::new(
            at,
            resource.clone(),
            Reading::CpuUtilisation {
                ratio: (node.cpu_used_cores / node.cpu_allocatable_cores).min(1.0),
            },
        ));
    }
    if node.memory_allocatable_bytes > 0.0 && node.memory_used_bytes > 0.0 {
        out.push(Observation::new(
            at,
            resource,
            Reading::MemoryUtilisation {
                ratio: (node.memory_used_bytes / node.memory_allocatable_bytes).min(1.0),
            },
        ));
    }
}

/// Pods of a snapshot by namespace and name: the engine looks pods up for
/// every raised signal, and a scan of 10,000 pods each time dominated a tick.
#[derive(Debug, Default)]
pub(super) struct PodIndex {
    by_namespace: HashMap<String, HashMap<String, usize, RandomState>, RandomState>,
}

impl PodIndex {
    pub(super) fn build(snapshot: &ClusterSnapshot) -> Self {
        let mut index = Self::default();
        for (i, pod) in snapshot.pods.iter().enumerate() {
            index
                .by_namespace
                .entry(pod.namespace.clone())
                .or_default()
                .insert(pod.name.clone(), i);
        }
        index
    }

    pub(super) fn get<'a>(
        &self,
        snapshot: &'a ClusterSnapshot,
        namespace: &str,
        name: &str,
    ) -> Option<&'a PodState> {
        let i = *self.by_namespace.get(namespace)?.get(name)?;
        snapshot.pods.get(i)
    }
}

/// The workload a resource belongs to, used to verify healing across pod
/// replacements: `deployment/ns/name` for a deployment's pods, else the
/// resource itself.
pub(super) fn workload_of(
    index: &PodIndex,
    snapshot: &ClusterSnapshot,
    resource: &ResourceRef,
) -> String {
    let [kind, namespace, name] = resource.identity();
    if kind == "pod"
        && let Some(deployment) = index
            .get(snapshot, namespace, name)
            .and_then(PodState::deployment)
    {
        return format!("deployment/{namespace}/{deployment}");
    }
    format!("{kind}/{namespace}/{name}")
}
