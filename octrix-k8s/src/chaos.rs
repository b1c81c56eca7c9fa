//! [`KubeChaosExecutor`]: the core's chaos scenarios carried out on
//! Kubernetes.
//!
//! | scenario type | change on the cluster | revert |
//! |---|---|---|
//! | pod-failure | each target pod deleted (grace period of the actuator) | nothing: its controller replaces it |
//! | node-failure | each node cordoned, then drained through the Eviction API (disruption budgets hold); with `cordon: false` the node is uncordoned right after the drain | uncordon the nodes the run cordoned |
//! | cpu-stress | a Job on the pod's node running `stress-ng --cpu W --cpu-load P`, CPU limit `W × P %` | delete the Job and its pods |
//! | memory-stress | a Job on the pod's node running `stress-ng --vm 1 --vm-bytes NM --vm-keep`, memory limit `N + 64` MiB | delete the Job |
//! | disk-stress | a Job on the node filling an `emptyDir` (the node's disk) with `dd` up to the share asked for | delete the Job (the kubelet frees the `emptyDir`) |
//! | latency-injection | Istio fault: `delay.fixedDelay` on 100 % of the service's requests | restore the VirtualService |
//! | packet-loss | Istio fault: `abort` (HTTP 503) on the loss share of requests | restore the VirtualService |
//! | service-failure | Istio fault: `abort` (HTTP 503) on the error share | restore the VirtualService |
//! | database-overload | Istio fault: `delay` of the intensity's latency | restore the VirtualService |
//! | network-partition | a NetworkPolicy selecting the Service's pods with no rule for the cut directions (deny all) | delete the NetworkPolicy |
//! | memory-leak | unsupported ([`ExecutorError::Unsupported`]) | |
//!
//! Istio faults go into the service's own VirtualService (named like the
//! service) when it has one: its `spec.http` is kept in the annotation
//! [`ORIGINAL_HTTP_ANNOTATION`] and put back on revert, so a restart of Octrix
//! loses nothing. A service without a VirtualService gets one created for the
//! run, deleted on revert. Istio has no jitter: latency jitter is ignored.
//!
//! Everything created or changed carries the label [`RUN_LABEL`]
//! (`octrix.io/chaos-run: run-<id>`). Jobs also stop on their own
//! (`stress-ng --timeout`, `activeDeadlineSeconds`) by the plan's end, so a
//! crashed controller leaves no stress behind.
//!
//! As the core's [`ChaosExecutor`] contract asks, an injection is all or
//! nothing (a failure reverts what was done) and a revert is idempotent
//! (objects already gone count as reverted) and attempts every change.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, Client};
use octrix_core::chaos::{
    Change, ChaosExecutor, ExecutorError, Injection, InjectionPlan, Parameters, PartitionDirection,
    RunId, Target,
};
use octrix_core::cluster::{ClusterAction, ClusterActuator, ClusterError};
use octrix_core::routing::IstioApiVersion;
use octrix_core::routing::istio::{MANAGED_BY_LABEL, MANAGED_BY_OCTRIX};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::actuator::{ActuatorConfig, FIELD_MANAGER, KubeActuator};
use crate::api::{self, ApiError};
use crate::rbac::{self, ApiOp};
use crate::routing::{istio_served, virtual_service_resource};

/// The label carrying the run id on everything a run creates or changes.
pub const RUN_LABEL: &str = "octrix.io/chaos-run";

/// The annotation holding a VirtualService's `spec.http` from before a run
/// added faults to it, as JSON.
pub const ORIGINAL_HTTP_ANNOTATION: &str = "octrix.io/chaos-original-http";

/// How the executor acts.
#[derive(Debug, Clone)]
pub struct ChaosExecutorConfig {
    /// Deletes, cordons, drains and their Events, with retries; its cluster
    /// name names the executor.
    pub actuator: ActuatorConfig,
    /// Image with `stress-ng` on its `PATH`, for CPU and memory stress.
    pub stress_image: String,
    /// Image with a POSIX shell, `df`, `awk` and `dd`, for disk stress.
    pub shell_image: String,
    /// Namespace of the Jobs of node targets (disk stress).
    pub node_job_namespace: String,
    /// Istio API version of the VirtualServices faults go into.
    pub istio_version: IstioApiVersion,
    /// How long a node-failure drain may take.
    pub drain_timeout_seconds: u32,
}

impl ChaosExecutorConfig {
    /// Defaults: `polinux/stress-ng:latest`, `busybox:1.36`, disk-stress
    /// Jobs in `default`, Istio `v1`, drains of 60 s.
    pub fn new(cluster_name: impl Into<String>) -> Self {
        Self {
            actuator: ActuatorConfig::new(cluster_name),
            stress_image: "polinux/stress-ng:latest".to_owned(),
            shell_image: "busybox:1.36".to_owned(),
            node_job_namespace: "default".to_owned(),
            istio_version: IstioApiVersion::V1,
            drain_timeout_seconds: 60,
        }
    }
}

/// Runs chaos on a Kubernetes cluster.
pub struct KubeChaosExecutor {
    client: Client,
    config: ChaosExecutorConfig,
    actuator: KubeActuator,
    leader: Option<watch::Receiver<bool>>,
}

impl Debug for KubeChaosExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeChaosExecutor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a change id names: `<kind>/<namespace>/<name>` or `<kind>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Created {
    /// A pod deleted: nothing to revert.
    DeletedPod,
    /// A node drained: nothing to revert (the cordon is its own change).
    Drained,
    Job(String, String),
    NetworkPolicy(String, String),
    VirtualService(String, String),
    VirtualServiceFault(String, String),
}

impl Created {
    fn id(&self, namespace_name: Option<(&str, &str)>) -> String {
        let kind = match self {
            Self::DeletedPod => "pod",
            Self::Drained => "drain",
            Self::Job(..) => "job",
            Self::NetworkPolicy(..) => "networkpolicy",
            Self::VirtualService(..) => "virtualservice",
            Self::VirtualServiceFault(..) => "virtualservice-fault",
        };
        let (namespace, name) = match self {
            Self::Job(ns, name)
            | Self::NetworkPolicy(ns, name)
            | Self::VirtualService(ns, name)
            | Self::VirtualServiceFault(ns, name) => (ns.as_str(), name.as_str()),
            Self::DeletedPod | Self::Drained => match namespace_name {
                Some(pair) => pair,
                None => return kind.to_owned(),
            },
        };
        format!("{kind}/{namespace}/{name}")
    }

    fn parse(id: &str) -> Option<Self> {
        let mut parts = id.splitn(3, '/');
        let kind = parts.next()?;
        let first = parts.next()?.to_owned();
        let second = parts.next().map(str::to_owned);
        Some(match (kind, second) {
            ("pod", Some(_)) => Self::DeletedPod,
            ("drain", None) => Self::Drained,
            ("job", Some(name)) => Self::Job(first, name),
            ("networkpolicy", Some(name)) => Self::NetworkPolicy(first, name),
            ("virtualservice", Some(name)) => Self::VirtualService(first, name),
            ("virtualservice-fault", Some(name)) => Self::VirtualServiceFault(first, name),
            _ => return None,
        })
    }
}

/// A DNS-1123 name of at most 63 characters.
fn object_name(parts: &[&str]) -> String {
    let mut name: String = parts
        .join("-")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

fn run_labels(run: RunId) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RUN_LABEL.to_owned(), run.to_string()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_OCTRIX.to_owned()),
    ])
}

/// The container command and resource limits of a stress Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StressCommand {
    /// `stress` for pod targets, `disk` for node targets.
    pub image: String,
    /// The command.
    pub command: Vec<String>,
    /// Limits (and requests), e.g. `cpu: 800m`.
    pub limits: BTreeMap<String, String>,
    /// Whether the container needs an `emptyDir` at `/fill`.
    pub fill_volume: bool,
}

impl ChaosExecutorConfig {
    /// The stress command of `parameters`, or `None` for a type that is not a
    /// stress.
    pub fn stress_command(&self, parameters: &Parameters) -> Option<StressCommand> {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let duration = parameters.duration_seconds();
        Some(match *parameters {
            Parameters::CpuStress {
                workers,
                load_percent,
                ..
            } => StressCommand {
                image: self.stress_image.clone(),
                command: strings(&[
                    "stress-ng",
                    "--cpu",
                    &workers.to_string(),
                    "--cpu-load",
                    &load_percent.to_string(),
                    "--timeout",
                    &format!("{duration}s"),
                ]),
                limits: BTreeMap::from([
                    (
                        "cpu".to_owned(),
                        format!("{}m", (workers * load_percent * 10).max(10)),
                    ),
                    ("memory".to_owned(), "64Mi".to_owned()),
                ]),
                fill_volume: false,
            },
            Parameters::MemoryStress { memory_mb, .. } => StressCommand {
                image: self.stress_image.clone(),
                command: strings(&[
                    "stress-ng",
                    "--vm",
                    "1",
                    "--vm-bytes",
                    &format!("{memory_mb}M"),
                    "--vm-keep",
                    "--timeout",
                    &format!("{duration}s"),
                ]),
                limits: BTreeMap::from([
                    ("cpu".to_owned(), "250m".to_owned()),
                    ("memory".to_owned(), format!("{}Mi", memory_mb + 64)),
                ]),
                fill_volume: false,
            },
            Parameters::DiskStress { fill_percent, .. } => {
                // Whole percent, at least 1: `df` works in whole 1K blocks.
                let percent = fill_percent.round().clamp(1.0, 100.0);
                let script = format!(
                    "set -e; line=$(df -k /fill | tail -n 1); \
                     total=$(echo \"$line\" | awk '{{print $2}}'); \
                     used=$(echo \"$line\" | awk '{{print $3}}'); \
                     want=$((total * {percent} / 100 - used)); \
                     if [ \"$want\" -gt 0 ]; then dd if=/dev/zero of=/fill/octrix-chaos bs=1024 count=\"$want\" || true; fi; \
                     sleep {duration}"
                );
                StressCommand {
                    image: self.shell_image.clone(),
                    command: vec!["sh".to_owned(), "-c".to_owned(), script],
                    limits: BTreeMap::from([
                        ("cpu".to_owned(), "250m".to_owned()),
                        ("memory".to_owned(), "64Mi".to_owned()),
                    ]),
                    fill_volume: true,
                }
            }
            _ => return None,
        })
    }

    /// The stress Job `name` for `run`, pinned to `node`.
    pub fn stress_job(
        &self,
        run: RunId,
        name: &str,
        namespace: &str,
        node: &str,
        stress: &StressCommand,
        duration_seconds: u32,
    ) -> Result<Job, serde_json::Error> {
        let labels = run_labels(run);
        let mut container = json!({
            "name": "stress",
            "image": stress.image,
            "command": stress.command,
            "resources": {"limits": stress.limits, "requests": stress.limits},
        });
        let mut pod_spec = json!({
            "restartPolicy": "Never",
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
        });
        if stress.fill_volume {
            container["volumeMounts"] = json!([{"name": "fill", "mountPath": "/fill"}]);
            pod_spec["volumes"] = json!([{"name": "fill", "emptyDir": {}}]);
        }
        pod_spec["containers"] = json!([container]);
        serde_json::from_value(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "backoffLimit": 0,
                // The Job stops on its own shortly after the run's end.
                "activeDeadlineSeconds": i64::from(duration_seconds) + 30,
                "ttlSecondsAfterFinished": 60,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            }
        }))
    }
}

/// The Istio `fault` of `parameters`, or `None` for a type that is not an
/// HTTP fault.
pub fn istio_fault(parameters: &Parameters) -> Option<Value> {
    let delay = |ms: u32| json!({"delay": {"fixedDelay": format!("{ms}ms"), "percentage": {"value": 100.0}}});
    let abort =
        |percent: f64| json!({"abort": {"httpStatus": 503, "percentage": {"value": percent}}});
    Some(match *parameters {
        Parameters::LatencyInjection { latency_ms, .. } => delay(latency_ms),
        Parameters::DatabaseOverload { intensity, .. } => delay(intensity.added_latency_ms()),
        Parameters::PacketLoss { loss_percent, .. } => abort(loss_percent),
        Parameters::ServiceFailure { error_percent, .. } => abort(error_percent),
        _ => return None,
    })
}

/// The deny NetworkPolicy of a partition of the pods `selector` selects.
pub fn partition_policy(
    run: RunId,
    name: &str,
    namespace: &str,
    selector: &BTreeMap<String, String>,
    direction: PartitionDirection,
) -> Result<NetworkPolicy, serde_json::Error> {
    let types: &[&str] = match direction {
        PartitionDirection::To => &["Egress"],
        PartitionDirection::From => &["Ingress"],
        PartitionDirection::Both => &["Ingress", "Egress"],
    };
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run)},
        // No rule for a listed type: all of that traffic is denied.
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": types},
    }))
}

fn rejected(target: impl ToString, reason: impl ToString) -> ExecutorError {
    ExecutorError::Rejected {
        target: target.to_string(),
        reason: reason.to_string(),
    }
}

fn from_cluster(error: ClusterError, target: &str) -> ExecutorError {
    match error {
        ClusterError::Unavailable { cluster, reason } => {
            ExecutorError::Unavailable(format!("{cluster}: {reason}"))
        }
        ClusterError::NotFound { target } => rejected(target, "not found"),
        other => rejected(target, other),
    }
}

fn encode_error(target: &str, error: &serde_json::Error) -> ExecutorError {
    rejected(target, format!("cannot encode the object: {error}"))
}

fn mismatch(parameters: &Parameters, target: &Target) -> ExecutorError {
    rejected(
        target,
        format!(
            "a {} scenario acts on {}s",
            parameters.scenario_type(),
            parameters.scenario_type().target_kind()
        ),
    )
}

/// A 404 counts as done when reverting.
fn gone_is_ok(result: Result<(), ApiError>) -> Result<(), ApiError> {
    match result {
        Err(e) if e.status_code() == Some(404) => Ok(()),
        other => other,
    }
}

impl KubeChaosExecutor {
    /// An executor acting through `client`.
    pub fn new(client: Client, config: ChaosExecutorConfig) -> Self {
        let actuator = KubeActuator::new(client.clone(), config.actuator.clone());
        Self {
            client,
            config,
            actuator,
            leader: None,
        }
    }

    /// Only injects while `leader` is `true` (see
    /// [`LeaderElector::subscribe`](crate::leader::LeaderElector::subscribe));
    /// otherwise [`ChaosExecutor::inject`] is [`ExecutorError::Rejected`].
    /// Reverts are always allowed: a replica that lost the lease still
    /// undoes what it injected.
    #[must_use]
    pub fn with_leader(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leader = Some(leader);
        self
    }

    fn cluster(&self) -> &str {
        &self.config.actuator.cluster_name
    }

    fn api_error(&self, error: ApiError, target: &str) -> ExecutorError {
        from_cluster(error.into_cluster_error(self.cluster()), target)
    }

    async fn call<T, F, Fut>(&self, op: ApiOp, target: &str, request: F) -> Result<T, ExecutorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = kube::Result<T>>,
    {
        api::call(&self.config.actuator.retry, op, target, request)
            .await
            .map_err(|e| self.api_error(e, target))
    }

    async fn act(&self, action: ClusterAction, target: &str) -> Result<String, ExecutorError> {
        self.actuator
            .execute(&action, false)
            .await
            .map(|report| report.summary)
            .map_err(|e| from_cluster(e, target))
    }

    async fn inject_into(
        &self,
        plan: &InjectionPlan,
        changes: &mut Vec<Change>,
    ) -> Result<(), ExecutorError> {
        let parameters = &plan.parameters;
        let kind = parameters.scenario_type().target_kind();
        for (index, target) in plan.targets.iter().enumerate() {
            match (kind, target) {
                (octrix_core::chaos::TargetKind::Pod, Target::Pod { .. })
                | (octrix_core::chaos::TargetKind::Node, Target::Node { .. })
                | (octrix_core::chaos::TargetKind::Service, Target::Service { .. }) => {}
                _ => return Err(mismatch(parameters, target)),
            }
            match (parameters, target) {
                (Parameters::PodFailure { .. }, Target::Pod { namespace, name }) => {
                    let action = ClusterAction::RestartPod {
                        namespace: namespace.clone(),
                        pod: name.clone(),
                    };
                    let summary = self.act(action, &target.to_string()).await?;
                    changes.push(Change::Fault {
                        id: Created::DeletedPod.id(Some((namespace, name))),
                        target: target.clone(),
                        effect: summary,
                    });
                }
                (Parameters::NodeFailure { cordon, .. }, Target::Node { name }) => {
                    self.fail_node(name, *cordon, target, changes).await?;
                }
                (
                    Parameters::CpuStress { .. }
                    | Parameters::MemoryStress { .. }
                    | Parameters::DiskStress { .. },
                    _,
                ) => {
                    let change = self.start_stress(plan, index, target).await?;
                    changes.push(change);
                }
                (
                    Parameters::LatencyInjection { .. }
                    | Parameters::PacketLoss { .. }
                    | Parameters::ServiceFailure { .. }
                    | Parameters::DatabaseOverload { .. },
                    Target::Service { namespace, name },
                ) => {
                    let change = self
                        .add_istio_fault(plan.run, parameters, namespace, name, target)
                        .await?;
                    changes.push(change);
                }
                (
                    Parameters::NetworkPartition { direction, .. },
                    Target::Service { namespace, name },
                ) => {
                    let change = self
                        .partition(plan.run, *direction, namespace, name, target)
                        .await?;
                    changes.push(change);
                }
                _ => {
                    return Err(ExecutorError::Unsupported {
                        executor: self.name(),
                        scenario_type: parameters.scenario_type(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn fail_node(
        &self,
        node: &str,
        cordon: bool,
        target: &Target,
        changes: &mut Vec<Change>,
    ) -> Result<(), ExecutorError> {
        let target_name = target.to_string();
        let nodes: Api<Node> = Api::all(self.client.clone());
        let current = self
            .call(rbac::GET_NODE, &target_name, || nodes.get(node))
            .await?;
        let was_cordoned = current.spec.and_then(|s| s.unschedulable).unwrap_or(false);
        if !was_cordoned {
            self.act(
                ClusterAction::CordonNode {
                    node: node.to_owned(),
                },
                &target_name,
            )
            .await?;
            // Only a node the run cordoned is uncordoned on revert: an
            // operator's cordon stays.
            changes.push(Change::Cordon {
                node: node.to_owned(),
            });
        }
        let drain = ClusterAction::DrainNode {
            node: node.to_owned(),
            timeout_seconds: self.config.drain_timeout_seconds,
        };
        let summary = self.act(drain, &target_name).await?;
        changes.push(Change::Fault {
            id: format!("{}/{node}", Created::Drained.id(None)),
            target: target.clone(),
            effect: summary,
        });
        if !cordon && !was_cordoned {
            self.act(
                ClusterAction::UncordonNode {
                    node: node.to_owned(),
                },
                &target_name,
            )
            .await?;
            changes.retain(|c| {
                *c != Change::Cordon {
                    node: node.to_owned(),
                }
            });
        }
        Ok(())
    }

    async fn start_stress(
        &self,
        plan: &InjectionPlan,
        index: usize,
        target: &Target,
    ) -> Result<Change, ExecutorError> {
        let target_name = target.to_string();
        let stress = self
            .config
            .stress_command(&plan.parameters)
            .ok_or_else(|| mismatch(&plan.parameters, target))?;
        let (namespace, node) = match target {
            Target::Pod { namespace, name } => {
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let pod = self
                    .call(rbac::GET_POD, &target_name, || pods.get(name))
                    .await?;
                let node = pod
                    .spec
                    .and_then(|s| s.node_name)
                    .ok_or_else(|| rejected(&target_name, "the pod is not scheduled on a node"))?;
                (namespace.clone(), node)
            }
            Target::Node { name } => (self.config.node_job_namespace.clone(), name.clone()),
            Target::Service { .. } => return Err(mismatch(&plan.parameters, target)),
        };
        let type_name = plan.parameters.scenario_type().to_string();
        let short = type_name.trim_end_matches("-stress");
        let name = object_name(&["octrix", &plan.run.to_string(), short, &index.to_string()]);
        let job = self
            .config
            .stress_job(
                plan.run,
                &name,
                &namespace,
                &node,
                &stress,
                plan.parameters.duration_seconds(),
            )
            .map_err(|e| encode_error(&target_name, &e))?;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let post = PostParams::default();
        let job_target = format!("job/{namespace}/{name}");
        self.call(rbac::CREATE_JOB, &job_target, || jobs.create(&post, &job))
            .await?;
        Ok(Change::Fault {
            id: Created::Job(namespace, name.clone()).id(None),
            target: target.clone(),
            effect: format!(
                "{type_name} Job {name} on node {node}: {}",
                stress.command.join(" ")
            ),
        })
    }

    async fn ensure_istio(&self, target: &str) -> Result<(), ExecutorError> {
        let version = self.config.istio_version;
        let served = istio_served(&self.client, &self.config.actuator.retry, version)
            .await
            .map_err(|e| self.api_error(e, target))?;
        if served {
            Ok(())
        } else {
            Err(rejected(
                target,
                format!("Istio CRDs are not installed ({})", version.api_version()),
            ))
        }
    }

    fn virtual_services(&self, namespace: &str) -> Api<DynamicObject> {
        let resource = virtual_service_resource(self.config.istio_version);
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    async fn add_istio_fault(
        &self,
        run: RunId,
        parameters: &Parameters,
        namespace: &str,
        service: &str,
        target: &Target,
    ) -> Result<Change, ExecutorError> {
        let target_name = target.to_string();
        let fault = istio_fault(parameters).ok_or_else(|| mismatch(parameters, target))?;
        self.ensure_istio(&target_name).await?;
        let api = self.virtual_services(namespace);
        let vs_target = format!("virtualservice/{namespace}/{service}");
        let existing = self
            .call(rbac::GET_VIRTUAL_SERVICE, &vs_target, || {
                api.get_opt(service)
            })
            .await?;
        let effect = format!("Istio fault {fault} on {namespace}/{service}");
        if let Some(existing) = existing {
            if let Some(other) = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(RUN_LABEL))
            {
                return Err(rejected(
                    &vs_target,
                    format!("already carries the faults of chaos {other}"),
                ));
            }
            let original = existing.data["spec"]["http"].clone();
            let mut http = original.as_array().cloned().unwrap_or_default();
            for route in &mut http {
                route["fault"] = fault.clone();
            }
            let patch = json!({
                "metadata": {
                    "labels": {RUN_LABEL: run.to_string()},
                    "annotations": {ORIGINAL_HTTP_ANNOTATION: original.to_string()},
                },
                "spec": {"http": http},
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            let patch = Patch::Merge(&patch);
            self.call(rbac::PATCH_VIRTUAL_SERVICE, &vs_target, || {
                api.patch(service, &params, &patch)
            })
            .await?;
            return Ok(Change::Fault {
                id: Created::VirtualServiceFault(namespace.to_owned(), service.to_owned()).id(None),
                target: target.clone(),
                effect,
            });
        }
        let name = object_name(&["octrix-chaos", &run.to_string(), service]);
        let resource = virtual_service_resource(self.config.istio_version);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": resource.api_version,
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run)},
            "spec": {
                "hosts": [service],
                "http": [{
                    "name": "octrix-chaos",
                    "fault": fault,
                    "route": [{"destination": {"host": service}}],
                }],
            },
        }))
        .map_err(|e| encode_error(&target_name, &e))?;
        let created_target = format!("virtualservice/{namespace}/{name}");
        let post = PostParams::default();
        self.call(rbac::CREATE_VIRTUAL_SERVICE, &created_target, || {
            api.create(&post, &object)
        })
        .await?;
        Ok(Change::Fault {
            id: Created::VirtualService(namespace.to_owned(), name).id(None),
            target: target.clone(),
            effect,
        })
    }

    async fn partition(
        &self,
        run: RunId,
        direction: PartitionDirection,
        namespace: &str,
        service: &str,
        target: &Target,
    ) -> Result<Change, ExecutorError> {
        let target_name = target.to_string();
        let services: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        let found = self
            .call(rbac::GET_SERVICE, &target_name, || services.get(service))
            .await?;
        let selector = found
            .spec
            .and_then(|s| s.selector)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| rejected(&target_name, "the Service selects no pods"))?;
        let name = object_name(&["octrix-chaos", &run.to_string(), service]);
        let policy = partition_policy(run, &name, namespace, &selector, direction)
            .map_err(|e| encode_error(&target_name, &e))?;
        let policies: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
        let policy_target = format!("networkpolicy/{namespace}/{name}");
        let post = PostParams::default();
        self.call(rbac::CREATE_NETWORK_POLICY, &policy_target, || {
            policies.create(&post, &policy)
        })
        .await?;
        let selector_text: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Ok(Change::Fault {
            id: Created::NetworkPolicy(namespace.to_owned(), name.clone()).id(None),
            target: target.clone(),
            effect: format!(
                "NetworkPolicy {name} denies traffic {direction} pods {}",
                selector_text.join(",")
            ),
        })
    }

    async fn restore_virtual_service(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), ExecutorError> {
        let api = self.virtual_services(namespace);
        let target = format!("virtualservice/{namespace}/{name}");
        let Some(current) = self
            .call(rbac::GET_VIRTUAL_SERVICE, &target, || api.get_opt(name))
            .await?
        else {
            return Ok(());
        };
        let Some(original) = current
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ORIGINAL_HTTP_ANNOTATION))
        else {
            // Already restored.
            return Ok(());
        };
        let original: Value = serde_json::from_str(original).map_err(|e| {
            rejected(
                &target,
                format!("unreadable {ORIGINAL_HTTP_ANNOTATION}: {e}"),
            )
        })?;
        let patch = json!({
            "metadata": {
                "labels": {RUN_LABEL: null},
                "annotations": {ORIGINAL_HTTP_ANNOTATION: null},
            },
            "spec": {"http": original},
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(&patch);
        let patched = api::call(
            &self.config.actuator.retry,
            rbac::PATCH_VIRTUAL_SERVICE,
            &target,
            || api.patch(name, &params, &patch),
        )
        .await
        .map(drop);
        gone_is_ok(patched).map_err(|e| self.api_error(e, &target))
    }

    async fn delete_created(&self, created: &Created) -> Result<(), ExecutorError> {
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let retry = &self.config.actuator.retry;
        let (target, result) = match created {
            Created::DeletedPod | Created::Drained => return Ok(()),
            Created::VirtualServiceFault(namespace, name) => {
                return self.restore_virtual_service(namespace, name).await;
            }
            Created::Job(namespace, name) => {
                let target = format!("job/{namespace}/{name}");
                let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
                let result = api::call(retry, rbac::DELETE_JOB, &target, || {
                    jobs.delete(name, &background)
                })
                .await
                .map(drop);
                (target, result)
            }
            Created::NetworkPolicy(namespace, name) => {
                let target = format!("networkpolicy/{namespace}/{name}");
                let policies: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), namespace);
                let result = api::call(retry, rbac::DELETE_NETWORK_POLICY, &target, || {
                    policies.delete(name, &background)
                })
                .await
                .map(drop);
                (target, result)
            }
            Created::VirtualService(namespace, name) => {
                let target = format!("virtualservice/{namespace}/{name}");
                let api = self.virtual_services(namespace);
                let result = api::call(retry, rbac::DELETE_VIRTUAL_SERVICE, &target, || {
                    api.delete(name, &background)
                })
                .await
                .map(drop);
                (target, result)
            }
        };
        gone_is_ok(result).map_err(|e| self.api_error(e, &target))
    }
}

#[async_trait]
impl ChaosExecutor for KubeChaosExecutor {
    fn name(&self) -> String {
        format!("kubernetes cluster {}", self.cluster())
    }

    async fn inject(&self, plan: &InjectionPlan) -> Result<Injection, ExecutorError> {
        if self.leader.as_ref().is_some_and(|l| !*l.borrow()) {
            return Err(ExecutorError::Rejected {
                target: format!("chaos run {}", plan.run),
                reason: "this Octrix replica is not the leader; only the leader injects faults"
                    .to_owned(),
            });
        }
        if let Parameters::MemoryLeak { .. } = plan.parameters {
            return Err(ExecutorError::Unsupported {
                executor: self.name(),
                scenario_type: plan.scenario_type(),
            });
        }
        let mut injection = Injection {
            run: plan.run,
            changes: Vec::new(),
        };
        if let Err(error) = self.inject_into(plan, &mut injection.changes).await {
            // All or nothing: what was done goes; the injection error is
            // what the caller needs to see.
            if let Err(revert) = self.revert(&injection).await {
                tracing::warn!(%revert, run = %plan.run, "could not undo a failed injection");
            }
            return Err(error);
        }
        Ok(injection)
    }

    async fn revert(&self, injection: &Injection) -> Result<(), ExecutorError> {
        let mut first_error = None;
        for change in injection.changes.iter().rev() {
            let result = match change {
                Change::Fault { id, .. } => match Created::parse(id) {
                    Some(created) => self.delete_created(&created).await,
                    None => Err(ExecutorError::UnknownChange(id.clone())),
                },
                Change::Cordon { node } => self
                    .act(
                        ClusterAction::UncordonNode { node: node.clone() },
                        &format!("node/{node}"),
                    )
                    .await
                    .map(drop)
                    .or_else(|e| match e {
                        // A node that is gone needs no uncordon.
                        ExecutorError::Rejected { reason, .. } if reason == "not found" => Ok(()),
                        other => Err(other),
                    }),
            };
            if let Err(error) = result {
                tracing::warn!(%error, run = %injection.run, "could not revert a chaos change");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_ids_round_trip() {
        for created in [
            Created::Job("shop".into(), "octrix-run-1-cpu-0".into()),
            Created::NetworkPolicy("shop".into(), "p".into()),
            Created::VirtualService("shop".into(), "v".into()),
            Created::VirtualServiceFault("shop".into(), "web".into()),
        ] {
            assert_eq!(Created::parse(&created.id(None)), Some(created));
        }
        assert_eq!(
            Created::DeletedPod.id(Some(("shop", "web-1"))),
            "pod/shop/web-1"
        );
        assert_eq!(Created::parse("pod/shop/web-1"), Some(Created::DeletedPod));
        assert_eq!(Created::parse("drain/node-1"), Some(Created::Drained));
        assert_eq!(Created::parse("fault-3"), None);
        assert_eq!(Created::parse("job/only-one-part"), None);
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(
            object_name(&["octrix-chaos", "run-7", "Web_API"]),
            "octrix-chaos-run-7-web-api"
        );
        let long = "x".repeat(80);
        assert_eq!(object_name(&["octrix", &long]).len(), 63);
        assert_eq!(object_name(&["a", "b-"]), "a-b");
    }

    #[test]
    fn cpu_stress_job_is_pinned_labelled_and_limited() {
        let config = ChaosExecutorConfig::new("test");
        let parameters = Parameters::CpuStress {
            duration_seconds: 120,
            workers: 2,
            load_percent: 40,
        };
        let stress = config.stress_command(&parameters).expect("stress");
        assert_eq!(
            stress.command.join(" "),
            "stress-ng --cpu 2 --cpu-load 40 --timeout 120s"
        );
        assert_eq!(stress.limits["cpu"], "800m");
        let job = config
            .stress_job(
                RunId(7),
                "octrix-run-7-cpu-0",
                "shop",
                "node-1",
                &stress,
                120,
            )
            .expect("job");
        let labels = job.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels[RUN_LABEL], "run-7");
        let spec = job.spec.expect("spec");
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(150));
        let pod = spec.template.spec.expect("pod spec");
        assert_eq!(pod.node_name.as_deref(), Some("node-1"));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some("polinux/stress-ng:latest"));
        let limits = container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .expect("limits");
        assert_eq!(limits["cpu"].0, "800m");
        assert_eq!(limits["memory"].0, "64Mi");
        assert_eq!(
            spec.template
                .metadata
                .and_then(|m| m.labels)
                .expect("pod labels")[RUN_LABEL],
            "run-7"
        );
    }

    #[test]
    fn memory_and_disk_stress_commands() {
        let config = ChaosExecutorConfig::new("test");
        let memory = config
            .stress_command(&Parameters::MemoryStress {
                duration_seconds: 60,
                memory_mb: 256,
            })
            .expect("memory");
        assert!(memory.command.join(" ").contains("--vm-bytes 256M"));
        assert_eq!(memory.limits["memory"], "320Mi");
        let disk = config
            .stress_command(&Parameters::DiskStress {
                duration_seconds: 60,
                fill_percent: 80.4,
            })
            .expect("disk");
        assert_eq!(disk.image, "busybox:1.36");
        assert!(disk.fill_volume);
        assert!(
            disk.command[2].contains("total * 80 / 100 - used"),
            "{}",
            disk.command[2]
        );
        assert!(disk.command[2].ends_with("sleep 60"));
        let job = config
            .stress_job(RunId(1), "j", "default", "node-1", &disk, 60)
            .expect("job");
        let pod = job.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.volumes.as_ref().map(Vec::len), Some(1));
        assert!(
            config
                .stress_command(&Parameters::PodFailure {
                    duration_seconds: 1
                })
                .is_none()
        );
    }

    #[test]
    fn istio_faults_per_type() {
        assert_eq!(
            istio_fault(&Parameters::LatencyInjection {
                duration_seconds: 60,
                latency_ms: 250,
                jitter_ms: 10,
            }),
            Some(json!({"delay": {"fixedDelay": "250ms", "percentage": {"value": 100.0}}}))
        );
        assert_eq!(
            istio_fault(&Parameters::PacketLoss {
                duration_seconds: 60,
                loss_percent: 12.5,
            }),
            Some(json!({"abort": {"httpStatus": 503, "percentage": {"value": 12.5}}}))
        );
        assert_eq!(
            istio_fault(&Parameters::DatabaseOverload {
                duration_seconds: 60,
                intensity: octrix_core::chaos::Intensity::High,
            })
            .expect("fault")["delay"]["fixedDelay"],
            "1000ms"
        );
        assert!(
            istio_fault(&Parameters::NetworkPartition {
                duration_seconds: 60,
                direction: PartitionDirection::Both,
            })
            .is_none()
        );
    }

    #[test]
    fn partitions_deny_the_cut_directions() {
        let selector = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        for (direction, types) in [
            (PartitionDirection::To, vec!["Egress"]),
            (PartitionDirection::From, vec!["Ingress"]),
            (PartitionDirection::Both, vec!["Ingress", "Egress"]),
        ] {
            let policy =
                partition_policy(RunId(3), "p", "shop", &selector, direction).expect("policy");
            let spec = policy.spec.expect("spec");
            assert_eq!(
                spec.policy_types,
                Some(types.into_iter().map(str::to_owned).collect())
            );
            assert!(spec.ingress.is_none() && spec.egress.is_none());
            assert_eq!(
                spec.pod_selector.and_then(|s| s.match_labels),
                Some(selector.clone())
            );
            assert_eq!(policy.metadata.labels.expect("labels")[RUN_LABEL], "run-3");
        }
    }

    #[tokio::test]
    async fn a_follower_injects_nothing_and_sends_no_request() {
        let (service, handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let (_leading, follower) = watch::channel(false);
        let executor = KubeChaosExecutor::new(
            Client::new(service, "default"),
            ChaosExecutorConfig::new("mock"),
        )
        .with_leader(follower);
        let plan = InjectionPlan {
            run: RunId(4),
            parameters: Parameters::PodFailure {
                duration_seconds: 60,
            },
            targets: vec![Target::Pod {
                namespace: "shop".into(),
                name: "web-1".into(),
            }],
            until: jiff::Timestamp::UNIX_EPOCH,
        };
        let error = executor.inject(&plan).await.expect_err("follower");
        assert!(
            matches!(&error, ExecutorError::Rejected { target, reason }
                if target == "chaos run run-4" && reason.contains("not the leader")),
            "{error}"
        );
        drop(executor);
        let mut handle = handle;
        assert!(
            handle.next_request().await.is_none(),
            "a follower must not call the API server"
        );
    }
}
