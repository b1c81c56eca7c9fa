//! The simulated cluster as an observer reports it: a [`ClusterSnapshot`],
//! refreshed in place so that a snapshot taken on every engine tick reuses
//! its strings instead of allocating 10,000 pods' worth again.

use super::fault::FaultKind;
use super::state::{DAEMONSET_NAME, DISK_PRESSURE_UTILISATION, SimPod, SimState};
use crate::Labels;
use crate::cluster::{
    ClusterSnapshot, ConditionStatus, ContainerState, DeploymentState, NodeState, PodOwner,
    PodPhase, PodState,
};

impl SimState {
    /// The state as a fresh snapshot.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let mut snapshot = ClusterSnapshot::default();
        self.refresh(&mut snapshot);
        snapshot
    }

    /// Makes `snapshot` the current state, reusing its buffers.
    pub fn refresh(&self, snapshot: &mut ClusterSnapshot) {
        let mut cpu = vec![0.0; self.nodes.len()];
        let mut memory = vec![0.0; self.nodes.len()];
        for pod in &self.pods {
            if let Some(n) = pod.node {
                cpu[n] += pod.cpu_cores;
                memory[n] += pod.memory_bytes;
            }
        }
        let nodes = &mut snapshot.nodes;
        nodes.truncate(self.nodes.len());
        for (n, node) in self.nodes.iter().enumerate() {
            if n == nodes.len() {
                nodes.push(empty_node());
            }
            let out = &mut nodes[n];
            out.name.clone_from(&node.name);
            out.ready = if self.node_is_ready(n) {
                ConditionStatus::True
            } else {
                ConditionStatus::Unknown
            };
            out.memory_pressure = if self.has_fault(|f| {
                f.kind == FaultKind::NodeMemoryPressure && f.applies_to_node(&node.name)
            }) {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            };
            out.disk_pressure = if self.disk_utilisation(n) >= DISK_PRESSURE_UTILISATION {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            };
            out.pid_pressure = ConditionStatus::False;
            out.unschedulable = node.unschedulable;
            out.cpu_allocatable_cores = self.config.node_cpu_cores;
            out.memory_allocatable_bytes = self.config.node_memory_bytes;
            out.cpu_used_cores = cpu[n];
            out.memory_used_bytes = memory[n];
            set_only_label(&mut out.labels, "kubernetes.io/hostname", &node.name);
        }

        let mut ready = vec![0u32; self.deployments.len()];
        for pod in &self.pods {
            if let (Some(d), true) = (pod.deployment, pod.ready) {
                ready[d] += 1;
            }
        }
        let deployments = &mut snapshot.deployments;
        deployments.truncate(self.deployments.len());
        for (d, deployment) in self.deployments.iter().enumerate() {
            if d == deployments.len() {
                deployments.push(DeploymentState {
                    namespace: String::new(),
                    name: String::new(),
                    replicas: 0,
                    ready_replicas: 0,
                    labels: Labels::new(),
                });
            }
            let out = &mut deployments[d];
            out.namespace.clone_from(&deployment.config.namespace);
            out.name.clone_from(&deployment.config.name);
            out.replicas = deployment.replicas;
            out.ready_replicas = ready[d];
            set_only_label(&mut out.labels, "app", &deployment.config.name);
        }

        let pods = &mut snapshot.pods;
        pods.truncate(self.pods.len());
        for (i, pod) in self.pods.iter().enumerate() {
            if i == pods.len() {
                pods.push(empty_pod());
            }
            self.refresh_pod(pod, &mut pods[i]);
        }
        snapshot.taken_at = Some(self.now);
    }

    fn refresh_pod(&self, pod: &SimPod, out: &mut PodState) {
        let deployment = pod.deployment.map(|d| &self.deployments[d]);
        let (app, cpu_limit, memory_limit) = match deployment {
            Some(d) => (
                d.config.name.as_str(),
                Some(d.config.cpu_limit_cores),
                Some(d.config.memory_limit_bytes),
            ),
            None => (DAEMONSET_NAME, None, None),
        };
        out.namespace.clone_from(&pod.namespace);
        out.name.clone_from(&pod.name);
        set_text(&mut out.node, pod.node.map(|n| self.nodes[n].name.as_str()));
        match (&mut out.owner, deployment) {
            (PodOwner::Deployment(name), Some(_)) | (PodOwner::DaemonSet(name), None) => {
                name.clear();
                name.push_str(app);
            }
            (owner, Some(_)) => *owner = PodOwner::Deployment(app.to_owned()),
            (owner, None) => *owner = PodOwner::DaemonSet(app.to_owned()),
        }
        out.phase = if pod.node.is_some() {
            PodPhase::Running
        } else {
            PodPhase::Pending
        };
        set_only_label(&mut out.labels, "app", app);
        out.containers.truncate(1);
        if out.containers.is_empty() {
            out.containers.push(ContainerState {
                name: String::new(),
                ready: false,
                restart_count: 0,
                waiting_reason: None,
                last_termination_reason: None,
                cpu_used_cores: 0.0,
                cpu_limit_cores: None,
                memory_used_bytes: 0.0,
                memory_limit_bytes: None,
            });
        }
        let container = &mut out.containers[0];
        container.name.clear();
        container.name.push_str(app);
        container.ready = pod.ready;
        container.restart_count = pod.restart_count;
        set_text(&mut container.waiting_reason, pod.waiting_reason);
        set_text(
            &mut container.last_termination_reason,
            pod.last_termination_reason,
        );
        container.cpu_used_cores = pod.cpu_cores;
        container.cpu_limit_cores = cpu_limit;
        container.memory_used_bytes = pod.memory_bytes;
        container.memory_limit_bytes = memory_limit;
    }
}

fn empty_node() -> NodeState {
    NodeState {
        name: String::new(),
        ready: ConditionStatus::Unknown,
        memory_pressure: ConditionStatus::Unknown,
        disk_pressure: ConditionStatus::Unknown,
        pid_pressure: ConditionStatus::Unknown,
        unschedulable: false,
        cpu_allocatable_cores: 0.0,
        memory_allocatable_bytes: 0.0,
        cpu_used_cores: 0.0,
        memory_used_bytes: 0.0,
        labels: Labels::new(),
    }
}

fn empty_pod() -> PodState {
    PodState {
        namespace: String::new(),
        name: String::new(),
        node: None,
        owner: PodOwner::None,
        phase: PodPhase::Pending,
        labels: Labels::new(),
        containers: Vec::new(),
    }
}

/// Makes `labels` hold exactly `name=value`, without allocating when it
/// already does.
fn set_only_label(labels: &mut Labels, name: &str, value: &str) {
    let holds = labels.len() == 1 && labels.get(name).is_some_and(|v| v == value);
    if !holds {
        labels.clear();
        labels.insert(name.to_owned(), value.to_owned());
    }
}

/// Sets an optional text field, reusing its buffer.
fn set_text(field: &mut Option<String>, value: Option<&str>) {
    match (field.as_mut(), value) {
        (Some(text), Some(value)) => {
            text.clear();
            text.push_str(value);
        }
        (None, Some(value)) => *field = Some(value.to_owned()),
        (_, None) => *field = None,
    }
}
