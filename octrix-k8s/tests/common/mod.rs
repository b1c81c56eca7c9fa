//! What the end-to-end tests share: the connection to the test
//! kube-apiserver and the parts of a kubelet and of controllers that the
//! server does not run (node and pod status, namespaces).
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use octrix_core::engine::{Engine, EngineConfig, Ports};
use octrix_core::healing::HealingConfig;
use octrix_core::routing::IstioApiVersion;
use octrix_k8s::api::RetryConfig;
use octrix_k8s::routing::{istio_served, virtual_service_resource};
use serde_json::{Value, json};

/// The kubeconfig written by `scripts/test-k8s`.
pub fn kubeconfig() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "KUBECONFIG is not set: these tests need the test kube-apiserver; run \
             scripts/test-k8s (it starts the server, exports KUBECONFIG and runs them)"
        ),
    }
}

/// Connects with the kubeconfig's `context` (its current one when `None`).
pub async fn connect(context: Option<&str>) -> octrix_k8s::Connection {
    let path = kubeconfig();
    octrix_k8s::connect(Some(&path), context)
        .await
        .unwrap_or_else(|e| panic!("cannot connect with {}: {e}", path.display()))
}

/// A name unique to this run, usable as a namespace or node name.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Polls `probe` until it returns `Some`, at most `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// Where most tests start: a namespace of their own and one small, ready
/// node labelled after it.
pub struct Sandbox {
    /// The namespace.
    pub ns: String,
    /// The node's name.
    pub node: String,
    /// The namespace's pods.
    pub pods: Api<Pod>,
}

/// Creates a [`Sandbox`] whose names start with `prefix`.
pub async fn sandbox(client: &Client, prefix: &str) -> Sandbox {
    let ns = unique(prefix);
    create_namespace(client, &ns).await;
    let node = unique("node");
    create_node(client, &node, &ns, true, SMALL_NODE).await;
    let pods = Api::namespaced(client.clone(), &ns);
    Sandbox { ns, node, pods }
}

/// What a node reports as its capacity and allocatable resources.
#[derive(Debug, Clone, Copy)]
pub struct NodeSize {
    /// CPU capacity and allocatable CPU.
    pub cpu: (&'static str, &'static str),
    /// Memory capacity and allocatable memory.
    pub memory: (&'static str, &'static str),
    /// The most pods it runs.
    pub pods: &'static str,
}

/// A small worker node.
pub const SMALL_NODE: NodeSize = NodeSize {
    cpu: ("4", "3500m"),
    memory: ("8Gi", "7Gi"),
    pods: "110",
};

/// A node large enough for a thousand small pods.
pub const LARGE_NODE: NodeSize = NodeSize {
    cpu: ("64", "64"),
    memory: ("256Gi", "256Gi"),
    pods: "1100",
};

/// Creates a Node labelled `octrix-e2e=<label>` and reports its status as a
/// kubelet would.
pub async fn create_node(
    client: &Client,
    name: &str,
    label: &str,
    ready: bool,
    size: NodeSize,
) -> Node {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"octrix-e2e": label}}
    }))
    .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    set_node_ready(client, name, ready, size).await
}

/// Reports the node Ready (or NotReady under memory pressure) as a kubelet would.
pub async fn set_node_ready(client: &Client, name: &str, ready: bool, size: NodeSize) -> Node {
    let nodes: Api<Node> = Api::all(client.clone());
    let (status, reason) = if ready {
        ("True", "KubeletReady")
    } else {
        ("False", "KubeletNotReady")
    };
    let now = jiff::Timestamp::now().to_string();
    let patch = json!({"status": {
        "capacity": {"cpu": size.cpu.0, "memory": size.memory.0, "pods": size.pods},
        "allocatable": {"cpu": size.cpu.1, "memory": size.memory.1, "pods": size.pods},
        "conditions": [
            {"type": "Ready", "status": status, "reason": reason,
             "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "MemoryPressure", "status": if ready { "False" } else { "True" },
             "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": "False",
             "lastHeartbeatTime": now, "lastTransitionTime": now}
        ]
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch node status")
}

/// Creates a pod labelled `app=web` bound to `node`; `extra_meta` is merged
/// into its metadata (and replaces the labels when it has some).
pub async fn create_pod(pods: &Api<Pod>, name: &str, node: &str, extra_meta: &Value) -> Pod {
    let mut pod = json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": "registry.invalid/web:1",
                            "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}}}]
        }
    });
    if let (Some(meta), Some(extra)) = (pod["metadata"].as_object_mut(), extra_meta.as_object()) {
        meta.extend(extra.clone());
    }
    let pod = serde_json::from_value(pod).expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {name}: {e}"))
}

/// Reports a running, ready pod as a kubelet would (Pending pods are not
/// protected by disruption budgets).
pub async fn run_pod(pods: &Api<Pod>, name: &str) {
    let now = jiff::Timestamp::now().to_string();
    patch_pod_status(
        pods,
        name,
        json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{
                "name": "app", "image": "registry.invalid/web:1", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {"startedAt": now}}
            }]
        }),
    )
    .await;
}

/// How the container last terminated before it crash-looped.
#[derive(Debug, Clone, Copy)]
pub enum LastTermination {
    /// Exit code 1, reason `Error`.
    Error,
    /// Exit code 137, reason `OOMKilled`.
    OomKilled,
}

/// Reports a crash-looping container as a kubelet would.
pub async fn crash_loop(pods: &Api<Pod>, name: &str, restarts: i32, last: LastTermination) {
    let (exit_code, reason) = match last {
        LastTermination::Error => (1, "Error"),
        LastTermination::OomKilled => (137, "OOMKilled"),
    };
    let now = jiff::Timestamp::now().to_string();
    patch_pod_status(
        pods,
        name,
        json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{
                "name": "app", "image": "registry.invalid/web:1", "imageID": "", "ready": false,
                "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                                      "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": exit_code, "reason": reason,
                                             "startedAt": now, "finishedAt": now}}
            }]
        }),
    )
    .await;
}

async fn patch_pod_status(pods: &Api<Pod>, name: &str, status: Value) {
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .unwrap_or_else(|e| panic!("patch status of pod {name}: {e}"));
}

/// Istio's CRDs that Octrix writes objects of.
pub const ISTIO_CRDS: [&str; 2] = [
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
];

/// The CustomResourceDefinitions.
pub fn crd_api(client: &Client) -> Api<CustomResourceDefinition> {
    Api::all(client.clone())
}

/// Whether discovery serves `networking.istio.io/<version>`.
pub async fn istio_is_served(client: &Client, version: IstioApiVersion) -> bool {
    istio_served(client, &RetryConfig::default(), version)
        .await
        .expect("discovery")
}

/// Removes Istio's CRDs (left by an earlier run on a reused server) and waits
/// until discovery no longer serves the group.
pub async fn uninstall_istio(client: &Client) {
    let crds = crd_api(client);
    for name in ISTIO_CRDS {
        match crds.delete(name, &Default::default()).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => panic!("delete CRD {name}: {e}"),
        }
    }
    eventually("Istio to be gone", Duration::from_secs(30), || async {
        (!istio_is_served(client, IstioApiVersion::V1beta1).await).then_some(())
    })
    .await;
}

/// Installs the minimal Istio CRDs of `tests/data/` and waits until both
/// versions are served.
pub async fn install_istio(client: &Client) {
    let crds = crd_api(client);
    // Included rather than read: other crates' tests use this module too.
    for (file, text) in [
        (
            "istio-virtualservice-crd.yaml",
            include_str!("../data/istio-virtualservice-crd.yaml"),
        ),
        (
            "istio-destinationrule-crd.yaml",
            include_str!("../data/istio-destinationrule-crd.yaml"),
        ),
    ] {
        let crd: CustomResourceDefinition = serde_norway::from_str(text).expect("CRD");
        crds.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("create {file}: {e}"));
    }
    eventually(
        "Istio CRDs to be served",
        Duration::from_secs(30),
        || async {
            (istio_is_served(client, IstioApiVersion::V1beta1).await
                && istio_is_served(client, IstioApiVersion::V1).await)
                .then_some(())
        },
    )
    .await;
    // Discovery can list the group a moment before its handlers serve it.
    for version in [IstioApiVersion::V1beta1, IstioApiVersion::V1] {
        for resource in [
            virtual_service_resource(version),
            octrix_k8s::routing::destination_rule_resource(version),
        ] {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            eventually(
                "Istio resources to be served",
                Duration::from_secs(30),
                || async { api.list(&Default::default()).await.ok().map(drop) },
            )
            .await;
        }
    }
}

/// Installs Istio's CRDs unless both versions are already served.
pub async fn ensure_istio(client: &Client) {
    if istio_is_served(client, IstioApiVersion::V1beta1).await
        && istio_is_served(client, IstioApiVersion::V1).await
    {
        return;
    }
    uninstall_istio(client).await;
    install_istio(client).await;
}

/// The subsets and weights of a VirtualService's first HTTP route.
pub fn weights(virtual_service: &DynamicObject) -> Vec<(String, i64)> {
    virtual_service.data["spec"]["http"][0]["route"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|d| {
            (
                d["destination"]["subset"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d["weight"].as_i64().unwrap_or(100),
            )
        })
        .collect()
}

/// An engine on `ports` healing as `healing_yaml` says, after a first tick
/// that must find nothing wrong.
pub async fn quiet_engine(ports: Ports, healing_yaml: &str) -> Engine {
    let healing = HealingConfig::from_yaml(healing_yaml).expect("healing config");
    let mut engine = Engine::new(
        EngineConfig {
            healing,
            ..EngineConfig::default()
        },
        ports,
    )
    .expect("engine");
    let quiet = engine.tick().await;
    assert!(quiet.errors.is_empty(), "{:?}", quiet.errors);
    assert_eq!((quiet.opened, quiet.actions), (0, 0), "{quiet:?}");
    engine
}
