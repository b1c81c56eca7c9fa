//! What a simulated cluster looks like: serde configuration with defaults.

use serde::{Deserialize, Serialize};

use super::SimError;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Shape of a simulated cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random draw: the same seed and clock give the same cluster.
    pub seed: u64,
    /// Number of worker nodes.
    pub nodes: u32,
    /// Allocatable CPU per node, in cores.
    pub node_cpu_cores: f64,
    /// Allocatable memory per node, in bytes.
    pub node_memory_bytes: f64,
    /// Simulation step in seconds: state advances in steps of this size.
    pub step_seconds: u32,
    /// Run a node-exporter DaemonSet pod on every node (drains skip them).
    pub daemonset_per_node: bool,
    /// Relative standard deviation of metric noise (0.05 = 5 %).
    pub noise: f64,
    /// Relative amplitude of the daily traffic pattern (0.3 = ±30 %).
    pub daily_amplitude: f64,
    /// The workloads.
    pub deployments: Vec<SimDeploymentConfig>,
}

/// One simulated workload: a deployment and the service in front of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimDeploymentConfig {
    /// Namespace.
    pub namespace: String,
    /// Deployment (and service) name.
    pub name: String,
    /// Initial replicas.
    pub replicas: u32,
    /// Ready replicas a disruption budget keeps during drains.
    pub min_available: u32,
    /// Mean requests per second to the whole service.
    pub request_rate: f64,
    /// CPU seconds spent per request.
    pub cpu_seconds_per_request: f64,
    /// CPU used by an idle pod, in cores.
    pub idle_cpu_cores: f64,
    /// CPU limit per pod, in cores.
    pub cpu_limit_cores: f64,
    /// Working set of a fresh pod, in bytes.
    pub base_memory_bytes: f64,
    /// Memory limit per pod, in bytes.
    pub memory_limit_bytes: f64,
    /// Median latency of an unloaded pod, in seconds.
    pub base_latency_seconds: f64,
    /// Fraction of requests failing when healthy.
    pub base_error_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            nodes: 3,
            node_cpu_cores: 8.0,
            node_memory_bytes: 32.0 * GIB,
            step_seconds: 15,
            daemonset_per_node: true,
            noise: 0.03,
            daily_amplitude: 0.3,
            deployments: vec![
                SimDeploymentConfig::named("shop", "frontend", 3),
                SimDeploymentConfig::named("shop", "checkout", 2),
                SimDeploymentConfig::named("shop", "payments", 2),
            ],
        }
    }
}

impl Default for SimDeploymentConfig {
    fn default() -> Self {
        Self::named("default", "app", 2)
    }
}

impl SimDeploymentConfig {
    /// A workload with typical defaults.
    pub fn named(namespace: &str, name: &str, replicas: u32) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            replicas,
            min_available: 1,
            request_rate: 50.0 * f64::from(replicas),
            cpu_seconds_per_request: 0.004,
            idle_cpu_cores: 0.02,
            cpu_limit_cores: 1.0,
            base_memory_bytes: 200.0 * MIB,
            memory_limit_bytes: 512.0 * MIB,
            base_latency_seconds: 0.02,
            base_error_rate: 0.001,
        }
    }
}

impl SimConfig {
    /// A cluster of `nodes` nodes running `pods` pods spread over
    /// deployments of ten replicas, for benchmarks.
    pub fn large(nodes: u32, pods: u32) -> Self {
        let deployments = (0..pods.div_ceil(10))
            .map(|i| SimDeploymentConfig::named(&format!("ns-{}", i % 50), &format!("svc-{i}"), 10))
            .collect();
        Self {
            nodes,
            daemonset_per_node: false,
            node_cpu_cores: 64.0,
            node_memory_bytes: 256.0 * GIB,
            deployments,
            ..Self::default()
        }
    }

    /// Checks every field, naming the first one that is wrong.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |field: String, reason: &str| SimError::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        if self.nodes == 0 {
            return Err(invalid("nodes".into(), "must be at least 1"));
        }
        if self.step_seconds == 0 {
            return Err(invalid("step_seconds".into(), "must be at least 1"));
        }
        for (field, value) in [
            ("node_cpu_cores", self.node_cpu_cores),
            ("node_memory_bytes", self.node_memory_bytes),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(field.into(), "must be a positive number"));
            }
        }
        for (field, value) in [
            ("noise", self.noise),
            ("daily_amplitude", self.daily_amplitude),
        ] {
            if !(value.is_finite() && (0.0..1.0).contains(&value)) {
                return Err(invalid(field.into(), "must be within [0, 1)"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, d) in self.deployments.iter().enumerate() {
            let field = |name: &str| format!("deployments[{i}].{name}");
            if d.name.is_empty() || d.namespace.is_empty() {
                return Err(invalid(
                    field("name"),
                    "name and namespace must not be empty",
                ));
            }
            if !seen.insert((&d.namespace, &d.name)) {
                return Err(invalid(field("name"), "duplicate deployment"));
            }
            for (name, value) in [
                ("request_rate", d.request_rate),
                ("cpu_seconds_per_request", d.cpu_seconds_per_request),
                ("idle_cpu_cores", d.idle_cpu_cores),
                ("base_memory_bytes", d.base_memory_bytes),
                ("base_latency_seconds", d.base_latency_seconds),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(field(name), "must be a non-negative number"));
                }
            }
            for (name, value) in [
                ("cpu_limit_cores", d.cpu_limit_cores),
                ("memory_limit_bytes", d.memory_limit_bytes),
            ] {
                if !(value.is_finite() && value > 0.0) {
                    return Err(invalid(field(name), "must be a positive number"));
                }
            }
            if d.base_memory_bytes >= d.memory_limit_bytes {
                return Err(invalid(
                    field("base_memory_bytes"),
                    "must be below memory_limit_bytes",
                ));
            }
            if !(0.0..=1.0).contains(&d.base_error_rate) {
                return Err(invalid(field("base_error_rate"), "must be within [0, 1]"));
            }
        }
        Ok(())
    }
}
