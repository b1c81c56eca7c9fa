//! The simulated cluster's state and how it evolves, step by step.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;

use super::SimError;
use super::config::{SimConfig, SimDeploymentConfig};
use super::fault::{Fault, FaultId, FaultKind, FaultTarget};
use crate::cluster::{ActionReport, ClusterAction, ClusterError};
use crate::time::SignedDuration;
use crate::{Labels, Timestamp, labels};

const SECONDS_PER_DAY: f64 = 86_400.0;
const BYTES_PER_REQUEST: f64 = 2_048.0;
const DAEMONSET_NAMESPACE: &str = "monitoring";
pub(super) const DAEMONSET_NAME: &str = "node-exporter";
/// Disk utilisation at which a node reports `DiskPressure` (kubelet's default
/// hard eviction threshold is `nodefs.available<10%`).
pub(super) const DISK_PRESSURE_UTILISATION: f64 = 0.9;

#[derive(Debug, Clone)]
pub(super) struct SimNode {
    pub name: String,
    pub unschedulable: bool,
}

#[derive(Debug, Clone)]
pub(super) struct SimDeployment {
    pub config: SimDeploymentConfig,
    pub replicas: u32,
    pub next_pod: u64,
    pub request_rate: f64,
    pub error_rate: f64,
    pub latency_p50: f64,
    pub latency_p99: f64,
}

#[derive(Debug, Clone)]
pub(super) struct SimPod {
    pub namespace: String,
    pub name: String,
    /// Index into `deployments`, or `None` for DaemonSet pods.
    pub deployment: Option<usize>,
    /// Index into `nodes`, or `None` while unscheduled.
    pub node: Option<usize>,
    /// Steps left before a new pod turns ready.
    pub starting_steps: u32,
    pub ready: bool,
    pub restart_count: u32,
    pub waiting_reason: Option<&'static str>,
    pub last_termination_reason: Option<&'static str>,
    pub cpu_cores: f64,
    pub memory_bytes: f64,
    pub leaked_bytes: f64,
    /// Memory grown so far by [`FaultKind::MemoryStress`] faults; freed when
    /// none applies any more.
    pub stress_bytes: f64,
    pub request_rate: f64,
    /// The labels of the pod's metric series (namespace, pod, service), for
    /// deployment pods: made once and shared by every scrape, so that
    /// consumers can recognise a series by its labels' identity.
    pub series_labels: Option<Arc<Labels>>,
}

/// The whole simulated cluster. Pure: it changes only through its methods.
#[derive(Debug, Clone)]
pub(super) struct SimState {
    pub config: SimConfig,
    rng: Pcg64Mcg,
    /// Time of the last step.
    pub now: Timestamp,
    pub nodes: Vec<SimNode>,
    pub deployments: Vec<SimDeployment>,
    pub pods: Vec<SimPod>,
    pub faults: Vec<Fault>,
    next_fault: u64,
}

impl SimState {
    pub fn new(config: SimConfig, start: Timestamp) -> Result<Self, SimError> {
        config.validate()?;
        let nodes = (0..config.nodes)
            .map(|i| SimNode {
                name: format!("node-{i}"),
                unschedulable: false,
            })
            .collect();
        let deployments = config
            .deployments
            .iter()
            .map(|d| SimDeployment {
                config: d.clone(),
                replicas: d.replicas,
                next_pod: 0,
                request_rate: 0.0,
                error_rate: 0.0,
                latency_p50: d.base_latency_seconds,
                latency_p99: d.base_latency_seconds,
            })
            .collect();
        let mut state = Self {
            rng: Pcg64Mcg::seed_from_u64(config.seed),
            config,
            now: start,
            nodes,
            deployments,
            pods: Vec::new(),
            faults: Vec::new(),
            next_fault: 1,
        };
        if state.config.daemonset_per_node {
            for node in 0..state.nodes.len() {
                state.pods.push(SimPod {
                    namespace: DAEMONSET_NAMESPACE.to_owned(),
                    name: format!("{DAEMONSET_NAME}-{}", state.nodes[node].name),
                    deployment: None,
                    node: Some(node),
                    ..SimPod::fresh(0.0)
                });
            }
        }
        let mut next_node = 0;
        for d in 0..state.deployments.len() {
            for _ in 0..state.deployments[d].replicas {
                let mut pod = state.new_pod(d);
                pod.starting_steps = 0;
                pod.ready = true;
                pod.node = Some(next_node % state.nodes.len());
                next_node += 1;
                state.pods.push(pod);
            }
        }
        state.step_once();
        Ok(state)
    }

    fn new_pod(&mut self, deployment: usize) -> SimPod {
        let d = &mut self.deployments[deployment];
        d.next_pod += 1;
        let name = format!("{}-{}", d.config.name, d.next_pod);
        let series_labels = labels::from_pairs([
            ("namespace", d.config.namespace.as_str()),
            ("pod", name.as_str()),
            ("service", d.config.name.as_str()),
        ]);
        SimPod {
            namespace: d.config.namespace.clone(),
            name,
            deployment: Some(deployment),
            series_labels: Some(Arc::new(series_labels)),
            ..SimPod::fresh(d.config.base_memory_bytes)
        }
    }

    /// Advances the state in whole steps up to `now`.
    pub fn advance_to(&mut self, now: Timestamp) {
        let step = SignedDuration::from_secs(i64::from(self.config.step_seconds));
        while let Some(next) = self.now.checked_add(step).ok().filter(|next| *next <= now) {
            self.now = next;
            self.step_once();
        }
    }

    fn noise(&mut self) -> f64 {
        let sd = self.config.noise;
        if sd == 0.0 {
            return 1.0;
        }
        // A finite, positive sd is checked by SimConfig::validate.
        let normal = Normal::new(1.0, sd).expect("noise is validated");
        normal.sample(&mut self.rng).max(0.0)
    }

    pub(super) fn has_fault(&self, matches: impl Fn(&Fault) -> bool) -> bool {
        self.faults.iter().any(matches)
    }

    pub(super) fn node_is_ready(&self, node: usize) -> bool {
        let name = &self.nodes[node].name;
        !self.has_fault(|f| f.kind == FaultKind::NodeNotReady && f.applies_to_node(name))
    }

    fn step_once(&mut self) {
        let now = self.now;
        self.faults
            .retain(|f| f.until.is_none_or(|until| until > now));
        self.schedule_pending();
        let seconds = now.as_second() as f64;
        let load = 1.0
            + self.config.daily_amplitude
                * (2.0 * std::f64::consts::PI * seconds / SECONDS_PER_DAY).sin();
        let step = f64::from(self.config.step_seconds);

        let mut ready = vec![0u32; self.deployments.len()];
        for i in 0..self.pods.len() {
            self.step_pod(i, step);
            if let (Some(d), true) = (self.pods[i].deployment, self.pods[i].ready) {
                ready[d] += 1;
            }
        }
        let rates: Vec<f64> = (0..self.deployments.len())
            .map(|d| self.deployments[d].config.request_rate * load * self.noise())
            .collect();
        // One pass over pods for all deployments: a tick of 10,000 pods must stay cheap.
        let mut utilisation_sum = vec![0.0; self.deployments.len()];
        for pod in &mut self.pods {
            let Some(d) = pod.deployment else { continue };
            if pod.ready {
                pod.request_rate = rates[d] / f64::from(ready[d]);
                utilisation_sum[d] += pod.cpu_cores / self.deployments[d].config.cpu_limit_cores;
            } else {
                pod.request_rate = 0.0;
            }
        }
        for d in 0..self.deployments.len() {
            self.step_deployment(d, rates[d], ready[d], utilisation_sum[d]);
        }
    }

    fn step_pod(&mut self, i: usize, step: f64) {
        let node_ready = self.pods[i].node.is_some_and(|n| self.node_is_ready(n));
        let noise = self.noise();
        let pod = &self.pods[i];
        let deployment = pod.deployment.map(|d| &self.deployments[d]);
        let deployment_name = deployment.map(|d| d.config.name.as_str());
        let faults: Vec<FaultKind> = self
            .faults
            .iter()
            .filter(|f| f.applies_to_pod(&pod.namespace, &pod.name, deployment_name))
            .map(|f| f.kind.clone())
            .collect();
        let (base_memory, memory_limit, idle_cpu, cpu_limit, cpu_per_request) = match deployment {
            Some(d) => (
                d.config.base_memory_bytes,
                d.config.memory_limit_bytes,
                d.config.idle_cpu_cores,
                d.config.cpu_limit_cores,
                d.config.cpu_seconds_per_request,
            ),
            None => (30.0 * 1024.0 * 1024.0, f64::INFINITY, 0.01, 0.2, 0.0),
        };

        let pod = &mut self.pods[i];
        if pod.node.is_none() {
            pod.ready = false;
            pod.cpu_cores = 0.0;
            pod.memory_bytes = 0.0;
            pod.request_rate = 0.0;
            return;
        }
        pod.waiting_reason = None;
        let mut ready = node_ready;
        if pod.starting_steps > 0 {
            pod.starting_steps -= 1;
            ready = false;
        }
        let mut extra_cpu = 0.0;
        let mut stress_held = 0.0;
        let mut stress_growth = 0.0;
        let mut stressed = false;
        for fault in &faults {
            match fault {
                FaultKind::CrashLoop { .. } => {
                    // Back-off doubles in a real kubelet; one restart per step is
                    // enough to drive restart-rate signals.
                    pod.restart_count += 1;
                    pod.waiting_reason = Some("CrashLoopBackOff");
                    pod.last_termination_reason = Some("Error");
                    ready = false;
                }
                FaultKind::OomKill => {
                    pod.leaked_bytes = memory_limit;
                }
                FaultKind::MemoryLeak { bytes_per_second } => {
                    pod.leaked_bytes += bytes_per_second * step;
                }
                FaultKind::CpuSpike { extra_cores } => extra_cpu += extra_cores,
                FaultKind::MemoryStress {
                    bytes,
                    bytes_per_second,
                } => {
                    stressed = true;
                    stress_held += bytes;
                    stress_growth += bytes_per_second * step;
                }
                _ => {}
            }
        }
        // The stress tool's memory is its own: gone as soon as no stress applies.
        pod.stress_bytes = if stressed {
            pod.stress_bytes + stress_growth
        } else {
            0.0
        };
        let memory = base_memory * noise + pod.leaked_bytes + stress_held + pod.stress_bytes;
        if memory >= memory_limit {
            pod.restart_count += 1;
            pod.last_termination_reason = Some("OOMKilled");
            pod.leaked_bytes = 0.0;
            pod.stress_bytes = 0.0;
            pod.memory_bytes = base_memory * noise;
            ready = false;
        } else {
            pod.memory_bytes = memory;
        }
        pod.ready = ready;
        pod.cpu_cores = if pod.waiting_reason.is_some() {
            0.0
        } else {
            ((idle_cpu + pod.request_rate * cpu_per_request) * noise + extra_cpu).min(cpu_limit)
        };
    }

    fn step_deployment(&mut self, d: usize, rate: f64, ready: u32, utilisation_sum: f64) {
        let mut added_latency = 0.0;
        let mut added_errors = 0.0;
        let config = &self.deployments[d].config;
        for fault in self
            .faults
            .iter()
            .filter(|f| f.applies_to_deployment(&config.namespace, &config.name))
        {
            match fault.kind {
                FaultKind::Latency { added_seconds } => added_latency += added_seconds,
                FaultKind::ErrorBurst { error_rate } => added_errors += error_rate,
                _ => {}
            }
        }
        let deployment = &mut self.deployments[d];
        let config = &deployment.config;
        let utilisation = if ready == 0 {
            0.95
        } else {
            (utilisation_sum / f64::from(ready)).min(0.95)
        };
        deployment.request_rate = rate;
        deployment.error_rate = if ready == 0 {
            1.0
        } else {
            (config.base_error_rate + added_errors).min(1.0)
        };
        // Queueing: latency grows as 1 / (1 - utilisation).
        deployment.latency_p50 = config.base_latency_seconds / (1.0 - utilisation) + added_latency;
        deployment.latency_p99 = deployment.latency_p50 * (2.5 + 2.0 * utilisation);
    }

    fn schedulable_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| !self.nodes[n].unschedulable && self.node_is_ready(n))
            .collect()
    }

    fn schedule_pending(&mut self) {
        if self.pods.iter().all(|p| p.node.is_some()) {
            return;
        }
        let candidates = self.schedulable_nodes();
        if candidates.is_empty() {
            return;
        }
        let mut load = vec![0usize; self.nodes.len()];
        for pod in &self.pods {
            if let Some(n) = pod.node {
                load[n] += 1;
            }
        }
        for pod in self.pods.iter_mut().filter(|p| p.node.is_none()) {
            let node = *candidates
                .iter()
                .min_by_key(|&&n| (load[n], n))
                .expect("candidates is not empty");
            load[node] += 1;
            pod.node = Some(node);
        }
    }

    fn reconcile(&mut self, d: usize) {
        let current = self.pods.iter().filter(|p| p.deployment == Some(d)).count() as u32;
        let desired = self.deployments[d].replicas;
        if current < desired {
            for _ in current..desired {
                let pod = self.new_pod(d);
                self.pods.push(pod);
            }
        } else if current > desired {
            // Like the ReplicaSet controller: remove unready pods first, then the newest.
            let mut owned: Vec<usize> = (0..self.pods.len())
                .filter(|&i| self.pods[i].deployment == Some(d))
                .collect();
            owned.sort_by_key(|&i| (self.pods[i].ready, std::cmp::Reverse(i)));
            let mut doomed: Vec<usize> = owned
                .into_iter()
                .take((current - desired) as usize)
                .collect();
            doomed.sort_unstable_by(|a, b| b.cmp(a));
            for i in doomed {
                self.pods.remove(i);
            }
        }
        self.schedule_pending();
    }

    fn find_pod(&self, namespace: &str, name: &str) -> Option<usize> {
        self.pods
            .iter()
            .position(|p| p.namespace == namespace && p.name == name)
    }

    fn find_deployment(&self, namespace: &str, name: &str) -> Option<usize> {
        self.deployments
            .iter()
            .position(|d| d.config.namespace == namespace && d.config.name == name)
    }

    fn find_node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Replaces pod `i` by a fresh one from its controller; returns the new name.
    fn replace_pod(&mut self, i: usize) -> Option<String> {
        let old = self.pods.remove(i);
        let d = old.deployment?;
        let mut fresh = self.new_pod(d);
        fresh.starting_steps = 1;
        let name = fresh.name.clone();
        for fault in &mut self.faults {
            // A persistent crash follows its pod to the replacement.
            if let (
                FaultKind::CrashLoop { persistent: true },
                FaultTarget::Pod {
                    namespace,
                    name: pod,
                },
            ) = (&fault.kind, &mut fault.target)
                && *namespace == old.namespace
                && *pod == old.name
            {
                pod.clone_from(&name);
            }
        }
        self.pods.push(fresh);
        self.schedule_pending();
        Some(name)
    }

    pub fn execute(
        &mut self,
        action: &ClusterAction,
        dry_run: bool,
    ) -> Result<ActionReport, ClusterError> {
        let not_found = || ClusterError::NotFound {
            target: action.target(),
        };
        let report = |summary: String| ActionReport {
            dry_run,
            summary,
            not_evicted: Vec::new(),
        };
        match action {
            ClusterAction::RestartPod { namespace, pod } => {
                let i = self.find_pod(namespace, pod).ok_or_else(not_found)?;
                if dry_run {
                    return Ok(report(format!("would delete pod {namespace}/{pod}")));
                }
                let summary = match self.replace_pod(i) {
                    Some(new) => format!("deleted pod {namespace}/{pod}; replaced by {new}"),
                    None => format!("deleted pod {namespace}/{pod}; it has no controller"),
                };
                Ok(report(summary))
            }
            ClusterAction::ScaleDeployment {
                namespace,
                deployment,
                replicas,
            } => {
                let d = self
                    .find_deployment(namespace, deployment)
                    .ok_or_else(not_found)?;
                let from = self.deployments[d].replicas;
                if dry_run {
                    return Ok(report(format!(
                        "would scale deployment {namespace}/{deployment} from {from} to {replicas}"
                    )));
                }
                self.deployments[d].replicas = *replicas;
                self.reconcile(d);
                Ok(report(format!(
                    "scaled deployment {namespace}/{deployment} from {from} to {replicas}"
                )))
            }
            ClusterAction::CordonNode { node } | ClusterAction::UncordonNode { node } => {
                let n = self.find_node(node).ok_or_else(not_found)?;
                let cordon = matches!(action, ClusterAction::CordonNode { .. });
                let verb = if cordon { "cordon" } else { "uncordon" };
                if !dry_run {
                    self.nodes[n].unschedulable = cordon;
                    self.schedule_pending();
                }
                Ok(report(format!(
                    "{}{verb}ed node {node}",
                    if dry_run { "would have " } else { "" }
                )))
            }
            ClusterAction::DrainNode { node, .. } => {
                let n = self.find_node(node).ok_or_else(not_found)?;
                self.drain(n, dry_run)
            }
        }
    }

    fn drain(&mut self, n: usize, dry_run: bool) -> Result<ActionReport, ClusterError> {
        let node = self.nodes[n].name.clone();
        let mut not_evicted = Vec::new();
        let mut evicted = Vec::new();
        let mut ready: Vec<u32> = vec![0; self.deployments.len()];
        for pod in &self.pods {
            if let (Some(d), true) = (pod.deployment, pod.ready) {
                ready[d] += 1;
            }
        }
        for pod in self.pods.iter().filter(|p| p.node == Some(n)) {
            let Some(d) = pod.deployment else {
                continue; // DaemonSet pods stay, as `kubectl drain --ignore-daemonsets` does.
            };
            let budget = self.deployments[d].config.min_available;
            if pod.ready && ready[d] <= budget {
                not_evicted.push(format!(
                    "{}/{}: disruption budget requires {budget} available",
                    pod.namespace, pod.name
                ));
                continue;
            }
            if pod.ready {
                ready[d] -= 1;
            }
            evicted.push((pod.namespace.clone(), pod.name.clone()));
        }
        if !dry_run {
            self.nodes[n].unschedulable = true;
            for (namespace, name) in &evicted {
                if let Some(i) = self.find_pod(namespace, name) {
                    self.replace_pod(i);
                }
            }
        }
        Ok(ActionReport {
            dry_run,
            summary: format!(
                "{}drained node {node}: {} pods evicted, {} kept",
                if dry_run { "would have " } else { "" },
                evicted.len(),
                not_evicted.len()
            ),
            not_evicted,
        })
    }

    pub fn inject(
        &mut self,
        kind: FaultKind,
        target: FaultTarget,
        until: Option<Timestamp>,
    ) -> Result<FaultId, SimError> {
        let exists = match &target {
            FaultTarget::Pod { namespace, name } => self.find_pod(namespace, name).is_some(),
            FaultTarget::Deployment { namespace, name } => {
                self.find_deployment(namespace, name).is_some()
            }
            FaultTarget::Node { name } => self.find_node(name).is_some(),
        };
        if !exists {
            return Err(SimError::UnknownTarget(target));
        }
        let id = FaultId(self.next_fault);
        self.next_fault += 1;
        self.faults.push(Fault {
            id,
            kind,
            target,
            until,
        });
        Ok(id)
    }

    pub fn clear(&mut self, id: FaultId) -> Result<Fault, SimError> {
        let i = self
            .faults
            .iter()
            .position(|f| f.id == id)
            .ok_or(SimError::UnknownFault(id))?;
        Ok(self.faults.remove(i))
    }

    /// Network bytes per second through node `n`.
    pub fn node_network_bytes(&self, n: usize) -> f64 {
        self.pods
            .iter()
            .filter(|p| p.node == Some(n))
            .map(|p| p.request_rate * BYTES_PER_REQUEST)
            .sum()
    }

    /// Disk utilisation of node `n` in [0, 1]: a steady draw that only needs
    /// to look alive, raised by [`FaultKind::DiskFill`] faults.
    pub fn disk_utilisation(&self, n: usize) -> f64 {
        // Deterministic per node: a disk fills slowly, it does not jitter.
        let mut rng = Pcg64Mcg::seed_from_u64(self.config.seed ^ n as u64);
        let steady = 0.3 + 0.2 * rng.random::<f64>();
        let name = &self.nodes[n].name;
        self.faults
            .iter()
            .filter(|f| f.applies_to_node(name))
            .filter_map(|f| match f.kind {
                FaultKind::DiskFill { fraction } => Some(fraction.clamp(0.0, 1.0)),
                _ => None,
            })
            .fold(steady, f64::max)
    }
}

impl SimPod {
    fn fresh(base_memory: f64) -> Self {
        Self {
            namespace: String::new(),
            name: String::new(),
            deployment: None,
            node: None,
            starting_steps: 1,
            ready: true,
            restart_count: 0,
            waiting_reason: None,
            last_termination_reason: None,
            cpu_cores: 0.0,
            memory_bytes: base_memory,
            leaked_bytes: 0.0,
            stress_bytes: 0.0,
            request_rate: 0.0,
            series_labels: None,
        }
    }
}
