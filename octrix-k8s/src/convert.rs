//! Kubernetes objects turned into the core's cluster states.
//!
//! These functions are pure: they read k8s-openapi objects and build
//! [`NodeState`], [`DeploymentState`] and [`PodState`], so they are tested on
//! JSON fixtures without a cluster.
//!
//! CPU and memory *usage* are not part of the Kubernetes API (they come from
//! metrics-server or from Prometheus): every `*_used_*` field is `0.0` here and
//! the core takes usage from its Prometheus metric source.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, NodeCondition, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use octrix_core::Labels;
use octrix_core::cluster::{
    ConditionStatus, ContainerState, DeploymentState, NodeState, PodOwner, PodPhase, PodState,
};

/// Annotation the kubelet puts on mirror pods of static pods.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A resource quantity is not in Kubernetes' quantity syntax.
    #[error("{object}: {field} = {value:?} is not a quantity: {reason}")]
    InvalidQuantity {
        /// The object, as `kind/namespace/name`.
        object: String,
        /// Which field held it.
        field: String,
        /// The text found.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Parses a Kubernetes resource quantity (`"500m"`, `"2"`, `"1Gi"`, `"1e3"`,
/// `"128974848"`) into a plain number: cores for CPU, bytes for memory.
///
/// ```
/// use octrix_k8s::convert::parse_quantity;
/// assert_eq!(parse_quantity("250m"), Ok(0.25));
/// assert_eq!(parse_quantity("1Gi"), Ok(1073741824.0));
/// assert_eq!(parse_quantity("1.5k"), Ok(1500.0));
/// ```
///
/// # Errors
/// A short reason when `text` is not a quantity.
pub fn parse_quantity(text: &str) -> Result<f64, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty");
    }
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err("no digits");
    }
    let value: f64 = number.parse().map_err(|_| "malformed number")?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exponent: i32 = s[1..].parse().map_err(|_| "malformed exponent")?;
            10f64.powi(exponent)
        }
        _ => return Err("unknown suffix"),
    };
    Ok(value * factor)
}

fn quantity(
    object: &str,
    field: &str,
    map: Option<&BTreeMap<String, Quantity>>,
    key: &str,
) -> Result<Option<f64>, ConvertError> {
    let Some(q) = map.and_then(|m| m.get(key)) else {
        return Ok(None);
    };
    parse_quantity(&q.0)
        .map(Some)
        .map_err(|reason| ConvertError::InvalidQuantity {
            object: object.to_owned(),
            field: format!("{field}.{key}"),
            value: q.0.clone(),
            reason,
        })
}

fn condition_status(conditions: &[NodeCondition], type_: &str) -> ConditionStatus {
    match conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
    {
        Some("True") => ConditionStatus::True,
        Some("False") => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

fn labels(map: Option<&BTreeMap<String, String>>) -> Labels {
    map.cloned().unwrap_or_default()
}

/// A node as the core sees it: conditions (a missing condition is
/// `Unknown`), cordon state, allocatable CPU and memory.
///
/// # Errors
/// [`ConvertError::InvalidQuantity`] when an allocatable quantity is malformed.
pub fn node_state(node: &Node) -> Result<NodeState, ConvertError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let object = format!("node/{name}");
    let status = node.status.as_ref();
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let allocatable = status.and_then(|s| s.allocatable.as_ref());
    Ok(NodeState {
        ready: condition_status(conditions, "Ready"),
        memory_pressure: condition_status(conditions, "MemoryPressure"),
        disk_pressure: condition_status(conditions, "DiskPressure"),
        pid_pressure: condition_status(conditions, "PIDPressure"),
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        cpu_allocatable_cores: quantity(&object, "status.allocatable", allocatable, "cpu")?
            .unwrap_or(0.0),
        memory_allocatable_bytes: quantity(&object, "status.allocatable", allocatable, "memory")?
            .unwrap_or(0.0),
        cpu_used_cores: 0.0,
        memory_used_bytes: 0.0,
        labels: labels(node.metadata.labels.as_ref()),
        name,
    })
}

/// A deployment: desired replicas (`spec.replicas`, 1 when unset), ready
/// replicas and the labels of its pod template.
pub fn deployment_state(deployment: &Deployment) -> DeploymentState {
    let spec = &deployment.spec;
    DeploymentState {
        namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
        name: deployment.metadata.name.clone().unwrap_or_default(),
        replicas: spec.replicas.map_or(1, |r| u32::try_from(r).unwrap_or(0)),
        ready_replicas: deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .map_or(0, |r| u32::try_from(r).unwrap_or(0)),
        labels: labels(
            spec.template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref()),
        ),
    }
}

fn controller_of(owners: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| o.controller == Some(true))
}

/// The owner of a pod, following a ReplicaSet to its Deployment.
///
/// `replica_set` looks up a ReplicaSet by namespace and name (the observer's
/// store). A pod owned by a ReplicaSet that is unknown or not owned by a
/// Deployment is `Other("ReplicaSet/<name>")`; other controllers are
/// `Other("<Kind>/<name>")`; mirror pods and bare pods are `None`.
pub fn pod_owner<'a, F>(pod: &Pod, replica_set: F) -> PodOwner
where
    F: FnOnce(&str, &str) -> Option<&'a ReplicaSet>,
{
    let is_mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if is_mirror {
        return PodOwner::None;
    }
    let Some(owner) = controller_of(pod.metadata.owner_references.as_ref()) else {
        return PodOwner::None;
    };
    match owner.kind.as_str() {
        "DaemonSet" => PodOwner::DaemonSet(owner.name.clone()),
        "ReplicaSet" => {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            replica_set(namespace, &owner.name)
                .and_then(|rs| controller_of(rs.metadata.owner_references.as_ref()))
                .filter(|o| o.kind == "Deployment")
                .map_or_else(
                    || PodOwner::Other(format!("ReplicaSet/{}", owner.name)),
                    |d| PodOwner::Deployment(d.name.clone()),
                )
        }
        kind => PodOwner::Other(format!("{kind}/{}", owner.name)),
    }
}

fn phase(pod: &Pod) -> PodPhase {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        // A pod the API server has just accepted has no status yet.
        None => PodPhase::Pending,
        Some(_) => PodPhase::Unknown,
    }
}

fn container_state(
    object: &str,
    container: &Container,
    status: Option<&ContainerStatus>,
) -> Result<ContainerState, ConvertError> {
    let field = format!("spec.containers[{}].resources.limits", container.name);
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let state = status.and_then(|s| s.state.as_ref());
    let last = status.and_then(|s| s.last_state.as_ref());
    Ok(ContainerState {
        name: container.name.clone(),
        ready: status.is_some_and(|s| s.ready),
        restart_count: status.map_or(0, |s| u32::try_from(s.restart_count).unwrap_or(0)),
        waiting_reason: state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone()),
        // The previous instance's termination; while the current instance is
        // itself terminated (not restarted yet), that is the latest one.
        last_termination_reason: last
            .and_then(|s| s.terminated.as_ref())
            .or_else(|| state.and_then(|s| s.terminated.as_ref()))
            .and_then(|t| t.reason.clone()),
        cpu_used_cores: 0.0,
        cpu_limit_cores: quantity(object, &field, limits, "cpu")?,
        memory_used_bytes: 0.0,
        memory_limit_bytes: quantity(object, &field, limits, "memory")?,
    })
}

/// A pod: node, owner (see [`pod_owner`]), phase, labels and one
/// [`ContainerState`] per container of its spec, joined with the container
/// statuses the kubelet reported (none yet: not ready, no restarts).
///
/// # Errors
/// [`ConvertError::InvalidQuantity`] when a container limit is malformed.
pub fn pod_state<'a, F>(pod: &Pod, replica_set: F) -> Result<PodState, ConvertError>
where
    F: FnOnce(&str, &str) -> Option<&'a ReplicaSet>,
{
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let object = format!("pod/{namespace}/{name}");
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let status = statuses.iter().find(|s| s.name == c.name);
            container_state(&object, c, status)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PodState {
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        owner: pod_owner(pod, replica_set),
        phase: phase(pod),
        labels: labels(pod.metadata.labels.as_ref()),
        containers,
        namespace,
        name,
    })
}

/// Whether a drain leaves this pod alone: DaemonSet pods (their controller
/// ignores `unschedulable` and would recreate them) and mirror pods (the
/// kubelet owns them), as `kubectl drain --ignore-daemonsets` does.
pub fn drain_skips(pod: &Pod) -> Option<&'static str> {
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if mirror {
        return Some("mirror pod");
    }
    match controller_of(pod.metadata.owner_references.as_ref()) {
        Some(o) if o.kind == "DaemonSet" => Some("DaemonSet pod"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("valid Pod JSON")
    }

    fn crashing_pod() -> Pod {
        pod(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-7d9f-abcde", "namespace": "shop",
                "labels": {"app": "web", "pod-template-hash": "7d9f"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
                    "uid": "rs-uid", "controller": true
                }]
            },
            "spec": {
                "nodeName": "node-a",
                "containers": [
                    {"name": "app", "image": "web:1",
                     "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}},
                    {"name": "sidecar", "image": "proxy:1"}
                ]
            },
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "app", "ready": false, "restartCount": 7, "image": "web:1", "imageID": "",
                     "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                     "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}},
                    {"name": "sidecar", "ready": true, "restartCount": 0, "image": "proxy:1", "imageID": "",
                     "state": {"running": {"startedAt": "2024-05-01T10:00:00Z"}}}
                ]
            }
        }))
    }

    fn replica_set(owner: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-7d9f", "namespace": "shop", "ownerReferences": owner},
            "spec": {"selector": {"matchLabels": {"app": "web"}}}
        }))
        .expect("valid ReplicaSet JSON")
    }

    #[test]
    fn quantities_parse_in_every_notation() {
        for (text, want) in [
            ("2", 2.0),
            ("250m", 0.25),
            ("100n", 1e-7),
            ("1.5", 1.5),
            ("1Ki", 1024.0),
            ("128Mi", 134_217_728.0),
            ("16Gi", 17_179_869_184.0),
            ("2k", 2000.0),
            ("129M", 129e6),
            ("1e3", 1000.0),
            ("5E-3", 0.005),
            ("+3", 3.0),
        ] {
            let got = parse_quantity(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{text}: {got} != {want}"
            );
        }
        assert_eq!(parse_quantity(""), Err("empty"));
        assert_eq!(parse_quantity("Gi"), Err("no digits"));
        assert_eq!(parse_quantity("12Qi"), Err("unknown suffix"));
        assert_eq!(parse_quantity("1.2.3"), Err("malformed number"));
        assert_eq!(parse_quantity("1ex"), Err("malformed exponent"));
    }

    #[test]
    fn crash_looping_oom_killed_container_is_seen() {
        let rs = replica_set(json!([{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid", "controller": true
        }]));
        let state = pod_state(&crashing_pod(), |ns, name| {
            assert_eq!((ns, name), ("shop", "web-7d9f"));
            Some(&rs)
        })
        .expect("converts");
        assert_eq!(state.namespace, "shop");
        assert_eq!(state.name, "web-7d9f-abcde");
        assert_eq!(state.node.as_deref(), Some("node-a"));
        assert_eq!(state.owner, PodOwner::Deployment("web".into()));
        assert_eq!(state.phase, PodPhase::Running);
        assert_eq!(state.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(state.restarts(), 7);
        assert!(!state.is_ready());
        let app = &state.containers[0];
        assert_eq!(app.name, "app");
        assert!(!app.ready);
        assert_eq!(app.restart_count, 7);
        assert_eq!(app.waiting_reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(app.last_termination_reason.as_deref(), Some("OOMKilled"));
        assert_eq!(app.cpu_limit_cores, Some(0.5));
        assert_eq!(app.memory_limit_bytes, Some(268_435_456.0));
        assert_eq!(app.cpu_used_cores, 0.0);
        let sidecar = &state.containers[1];
        assert!(sidecar.ready);
        assert_eq!(sidecar.waiting_reason, None);
        assert_eq!(sidecar.last_termination_reason, None);
        assert_eq!(sidecar.cpu_limit_cores, None);
    }

    #[test]
    fn replica_set_without_deployment_or_unknown_is_other() {
        let orphan = replica_set(json!([]));
        let state = pod_state(&crashing_pod(), |_, _| Some(&orphan)).expect("converts");
        assert_eq!(state.owner, PodOwner::Other("ReplicaSet/web-7d9f".into()));
        let state = pod_state(&crashing_pod(), |_, _| None).expect("converts");
        assert_eq!(state.owner, PodOwner::Other("ReplicaSet/web-7d9f".into()));
    }

    #[test]
    fn daemonset_mirror_bare_and_other_owners() {
        let owned = |kind: &str| {
            pod(json!({
                "metadata": {"name": "p", "namespace": "kube-system", "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": kind, "name": "ctl", "uid": "u", "controller": true}
                ]},
                "spec": {"containers": []}
            }))
        };
        let ds = owned("DaemonSet");
        assert_eq!(
            pod_owner(&ds, |_, _| None),
            PodOwner::DaemonSet("ctl".into())
        );
        assert_eq!(drain_skips(&ds), Some("DaemonSet pod"));
        let sts = owned("StatefulSet");
        assert_eq!(
            pod_owner(&sts, |_, _| None),
            PodOwner::Other("StatefulSet/ctl".into())
        );
        assert_eq!(drain_skips(&sts), None);
        let mirror = pod(json!({
            "metadata": {"name": "etcd-node-a", "namespace": "kube-system",
                         "annotations": {"kubernetes.io/config.mirror": "abc"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-a",
                                              "uid": "n", "controller": true}]},
            "spec": {"containers": []}
        }));
        assert_eq!(pod_owner(&mirror, |_, _| None), PodOwner::None);
        assert_eq!(drain_skips(&mirror), Some("mirror pod"));
        let bare = pod(json!({"metadata": {"name": "b"}, "spec": {"containers": []}}));
        assert_eq!(pod_owner(&bare, |_, _| None), PodOwner::None);
        let state = pod_state(&bare, |_, _| None).expect("converts");
        assert_eq!(state.phase, PodPhase::Pending);
        assert_eq!(state.node, None);
    }

    #[test]
    fn pending_pod_without_statuses_has_unready_containers() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending"}
        }));
        let state = pod_state(&p, |_, _| None).expect("converts");
        assert_eq!(state.containers.len(), 1);
        assert!(!state.containers[0].ready);
        assert_eq!(state.containers[0].restart_count, 0);
        assert_eq!(state.phase, PodPhase::Pending);
    }

    #[test]
    fn terminated_container_reports_its_own_reason() {
        let p = pod(json!({
            "metadata": {"name": "job-x", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "c", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                 "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
            ]}
        }));
        let state = pod_state(&p, |_, _| None).expect("converts");
        assert_eq!(state.phase, PodPhase::Failed);
        assert_eq!(
            state.containers[0].last_termination_reason.as_deref(),
            Some("OOMKilled")
        );
    }

    #[test]
    fn malformed_limit_is_an_error_naming_the_field() {
        let p = pod(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "lots"}}}]}
        }));
        let err = pod_state(&p, |_, _| None).expect_err("malformed");
        assert_eq!(
            err,
            ConvertError::InvalidQuantity {
                object: "pod/default/p".into(),
                field: "spec.containers[c].resources.limits.memory".into(),
                value: "lots".into(),
                reason: "no digits",
            }
        );
    }

    #[test]
    fn not_ready_node_under_memory_pressure() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-a", "labels": {"zone": "a"}},
            "spec": {"unschedulable": true},
            "status": {
                "allocatable": {"cpu": "3920m", "memory": "16Gi", "pods": "110"},
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "KubeletNotReady"},
                    {"type": "MemoryPressure", "status": "True"},
                    {"type": "DiskPressure", "status": "False"}
                ]
            }
        }))
        .expect("valid Node JSON");
        let state = node_state(&node).expect("converts");
        assert_eq!(state.name, "node-a");
        assert_eq!(state.ready, ConditionStatus::False);
        assert_eq!(state.memory_pressure, ConditionStatus::True);
        assert_eq!(state.disk_pressure, ConditionStatus::False);
        assert_eq!(state.pid_pressure, ConditionStatus::Unknown);
        assert!(state.unschedulable);
        assert!((state.cpu_allocatable_cores - 3.92).abs() < 1e-12);
        assert_eq!(state.memory_allocatable_bytes, 17_179_869_184.0);
        assert_eq!(state.memory_used_bytes, 0.0);
        assert_eq!(state.labels.get("zone").map(String::as_str), Some("a"));
    }

    #[test]
    fn new_node_without_status_is_unknown_and_schedulable() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).expect("node");
        let state = node_state(&node).expect("converts");
        assert_eq!(state.ready, ConditionStatus::Unknown);
        assert!(!state.unschedulable);
        assert_eq!(state.cpu_allocatable_cores, 0.0);
    }

    #[test]
    fn deployment_replicas_and_template_labels() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "x"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}}},
            "status": {"readyReplicas": 2}
        }))
        .expect("deployment");
        let state = deployment_state(&d);
        assert_eq!(state.namespace, "shop");
        assert_eq!(state.name, "web");
        assert_eq!(state.replicas, 3);
        assert_eq!(state.ready_replicas, 2);
        assert_eq!(
            state.labels,
            octrix_core::labels::from_pairs([("app", "web")])
        );
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "w", "namespace": "s"},
            "spec": {"selector": {}, "template": {}}
        }))
        .expect("deployment");
        let state = deployment_state(&d);
        assert_eq!((state.replicas, state.ready_replicas), (1, 0));
    }
}
