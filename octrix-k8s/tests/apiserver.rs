//! End-to-end tests against a real kube-apiserver (with etcd, without kubelet,
//! scheduler or controllers), started by `scripts/test-k8s`, which sets
//! `KUBECONFIG` (contexts `octrix-test`, an admin, and
//! `octrix-test-unprivileged`, a user without any RBAC binding).
//!
//! The tests play the missing components: they create Nodes and bind pods to
//! them, write pod and node status as a kubelet would (CrashLoopBackOff,
//! OOMKilled, NotReady), create the ReplicaSet a Deployment controller would,
//! and the PodDisruptionBudget status the disruption controller would.
//! Each test works in its own namespace and on its own nodes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use octrix_core::chaos::{
    Change, ChaosExecutor, ExecutorError, InjectionPlan, Parameters, PartitionDirection, RunId,
    Target,
};
use octrix_core::cluster::{
    ClusterAction, ClusterActuator, ClusterError, ClusterKind, ClusterObserver, ClusterSnapshot,
    ConditionStatus, PodOwner, PodPhase,
};
use octrix_core::engine::{EngineEvent, Ports, RecordingNotifier, TrafficControl};
use octrix_core::incident::{InMemoryIncidentStore, IncidentStore, TimelineEvent};
use octrix_core::routing::{Destination, IstioApiVersion, TrafficRule};
use octrix_k8s::NoMetricSource;
use octrix_k8s::actuator::{ActuatorConfig, KubeActuator};
use octrix_k8s::chaos::{
    ChaosExecutorConfig, KubeChaosExecutor, ORIGINAL_HTTP_ANNOTATION, RUN_LABEL,
};
use octrix_k8s::leader::{LeaderElector, LeaseConfig};
use octrix_k8s::observer::{KubeObserver, ObserverConfig, ObserverError};
use octrix_k8s::routing::{KubeRoutingApplier, RoutingError, virtual_service_resource};
use serde_json::json;

mod common;
use common::{
    LastTermination, SMALL_NODE, Sandbox, connect, crash_loop, create_namespace, create_pod,
    eventually, install_istio, quiet_engine, run_pod, sandbox, set_node_ready, uninstall_istio,
    unique, weights,
};

const UNPRIVILEGED_CONTEXT: &str = "octrix-test-unprivileged";
const UNPRIVILEGED_USER: &str = "octrix-test-unprivileged";

async fn events_about(client: &Client, namespace: &str, name: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&Default::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

async fn snapshot_when<F>(observer: &KubeObserver, what: &str, mut ready: F) -> ClusterSnapshot
where
    F: FnMut(&ClusterSnapshot) -> bool,
{
    let start = Instant::now();
    loop {
        if let Ok(snapshot) = observer.snapshot().await
            && ready(&snapshot)
        {
            return snapshot;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn actuator(connection: &octrix_k8s::Connection) -> KubeActuator {
    let mut config = ActuatorConfig::new(connection.cluster_name.clone());
    // No kubelet confirms a graceful deletion here: delete at once.
    config.restart_grace_period_seconds = Some(0);
    config.eviction_retry_interval = Duration::from_millis(500);
    KubeActuator::new(connection.client.clone(), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn observes_crash_loops_and_not_ready_nodes_then_heals() {
    let connection = connect(None).await;
    let client = connection.client.clone();
    let Sandbox { ns, node, pods } = sandbox(&client, "observe").await;

    // The Deployment, and the ReplicaSet its controller would create.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}}
    }))
    .expect("deployment");
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let replica_sets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "ReplicaSet")),
    );
    let rs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d8f", "namespace": ns, "labels": {"app": "web", "pod-template-hash": "5d8f"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                          "uid": deployment.metadata.uid, "controller": true}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}},
                 "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8f"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}}
    }))
    .expect("replica set");
    let rs = replica_sets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replica set");
    let owned_by_rs = json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                                                  "uid": rs.metadata.uid, "controller": true}],
                             "labels": {"app": "web", "pod-template-hash": "5d8f"}});
    create_pod(&pods, "web-5d8f-a", &node, &owned_by_rs).await;
    create_pod(&pods, "web-5d8f-b", &node, &owned_by_rs).await;
    create_pod(&pods, "batch", &node, &json!({"labels": {"app": "batch"}})).await;

    let mut config = ObserverConfig::new(connection.cluster_name.clone());
    config.namespace = Some(ns.clone());
    config.node_label_selector = Some(format!("octrix-e2e={ns}"));
    let observer = KubeObserver::spawn(client.clone(), config.clone());
    assert_eq!(observer.info().kind, ClusterKind::Kubernetes);
    observer
        .wait_until_ready(Duration::from_secs(20))
        .await
        .expect("stores sync");

    // The kubelet reports a crash loop after an OOM kill.
    crash_loop(
        &Api::namespaced(client.clone(), &ns),
        "web-5d8f-a",
        6,
        LastTermination::OomKilled,
    )
    .await;
    let snapshot = snapshot_when(&observer, "the crash loop", |s| {
        s.pod(&ns, "web-5d8f-a").is_some_and(|p| {
            p.containers
                .first()
                .and_then(|c| c.waiting_reason.as_deref())
                == Some("CrashLoopBackOff")
        })
    })
    .await;
    assert!(snapshot.taken_at.is_some());
    let pod = snapshot.pod(&ns, "web-5d8f-a").expect("pod");
    assert_eq!(pod.owner, PodOwner::Deployment("web".into()));
    assert_eq!(pod.node.as_deref(), Some(node.as_str()));
    assert_eq!(pod.phase, PodPhase::Running);
    assert_eq!(pod.restarts(), 6);
    let app = &pod.containers[0];
    assert_eq!(app.last_termination_reason.as_deref(), Some("OOMKilled"));
    assert_eq!(app.cpu_limit_cores, Some(0.25));
    assert_eq!(app.memory_limit_bytes, Some(134_217_728.0));
    assert!(!app.ready);
    assert_eq!(
        snapshot.pod(&ns, "batch").expect("bare pod").owner,
        PodOwner::None
    );
    let d = snapshot.deployment(&ns, "web").expect("deployment");
    assert_eq!((d.replicas, d.ready_replicas), (2, 0));
    assert_eq!(snapshot.nodes.len(), 1, "node label filter");
    let n = snapshot.node(&node).expect("node");
    assert_eq!(n.ready, ConditionStatus::True);
    assert_eq!(n.cpu_allocatable_cores, 3.5);
    assert_eq!(n.memory_allocatable_bytes, 7.0 * 1024.0 * 1024.0 * 1024.0);

    // A label filter hides the other pods.
    let mut filtered = config.clone();
    filtered.label_selector = Some("app=batch".into());
    let batch_only = KubeObserver::spawn(client.clone(), filtered);
    batch_only
        .wait_until_ready(Duration::from_secs(20))
        .await
        .expect("filtered stores sync");
    let s = batch_only.snapshot().await.expect("snapshot");
    assert_eq!(
        s.pods.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["batch"]
    );
    assert!(s.deployments.is_empty());

    // The node goes NotReady under memory pressure.
    set_node_ready(&client, &node, false, SMALL_NODE).await;
    snapshot_when(&observer, "the node NotReady", |s| {
        s.node(&node).is_some_and(|n| {
            n.ready == ConditionStatus::False && n.memory_pressure == ConditionStatus::True
        })
    })
    .await;

    let actuator = actuator(&connection);

    // Dry run: validated by the server, nothing deleted, no Event.
    let restart = ClusterAction::RestartPod {
        namespace: ns.clone(),
        pod: "web-5d8f-a".into(),
    };
    let report = actuator.execute(&restart, true).await.expect("dry run");
    assert!(report.dry_run);
    assert!(
        pods.get_opt("web-5d8f-a").await.expect("get").is_some(),
        "dry run deleted the pod"
    );
    assert!(
        events_about(&client, &ns, "web-5d8f-a", "Restarted")
            .await
            .is_empty()
    );

    // Restart: the pod is deleted, an Event records it, the observer sees it go.
    let report = actuator.execute(&restart, false).await.expect("restart");
    assert_eq!(
        report.summary,
        format!("deleted pod {ns}/web-5d8f-a (grace period 0s)")
    );
    assert!(
        pods.get_opt("web-5d8f-a").await.expect("get").is_none(),
        "pod still there"
    );
    let events = events_about(&client, &ns, "web-5d8f-a", "Restarted").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reporting_controller.as_deref(), Some("octrix"));
    assert_eq!(events[0].action.as_deref(), Some("RestartPod"));
    snapshot_when(&observer, "the pod gone", |s| {
        s.pod(&ns, "web-5d8f-a").is_none()
    })
    .await;
    let gone = actuator
        .execute(&restart, false)
        .await
        .expect_err("already deleted");
    assert_eq!(
        gone,
        ClusterError::NotFound {
            target: format!("pod/{ns}/web-5d8f-a")
        }
    );

    // Scale: dry run changes nothing, then 2 -> 4 with an Event.
    let scale = |replicas| ClusterAction::ScaleDeployment {
        namespace: ns.clone(),
        deployment: "web".into(),
        replicas,
    };
    let report = actuator
        .execute(&scale(9), true)
        .await
        .expect("dry run scale");
    assert_eq!(
        report.summary,
        format!("would scale deployment {ns}/web from 2 to 9")
    );
    assert_eq!(
        deployments.get("web").await.expect("get").spec.replicas,
        Some(2)
    );
    let report = actuator.execute(&scale(4), false).await.expect("scale");
    assert_eq!(
        report.summary,
        format!("scaled deployment {ns}/web from 2 to 4")
    );
    assert_eq!(
        deployments.get("web").await.expect("get").spec.replicas,
        Some(4)
    );
    assert_eq!(events_about(&client, &ns, "web", "Scaled").await.len(), 1);
    snapshot_when(&observer, "4 replicas", |s| {
        s.deployment(&ns, "web").is_some_and(|d| d.replicas == 4)
    })
    .await;

    // Cordon: dry run leaves the node schedulable; then cordoned with an Event
    // (in `default`, as for every cluster-scoped object); then uncordoned.
    let nodes: Api<Node> = Api::all(client.clone());
    let cordon = ClusterAction::CordonNode { node: node.clone() };
    actuator
        .execute(&cordon, true)
        .await
        .expect("dry run cordon");
    let unschedulable = |n: Node| n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
    assert!(!unschedulable(nodes.get(&node).await.expect("node")));
    let report = actuator.execute(&cordon, false).await.expect("cordon");
    assert_eq!(report.summary, format!("cordoned node {node}"));
    assert!(unschedulable(nodes.get(&node).await.expect("node")));
    assert_eq!(
        events_about(&client, "default", &node, "Cordoned")
            .await
            .len(),
        1
    );
    snapshot_when(&observer, "the node cordoned", |s| {
        s.node(&node).is_some_and(|n| n.unschedulable)
    })
    .await;
    let report = actuator
        .execute(&ClusterAction::UncordonNode { node: node.clone() }, false)
        .await
        .expect("uncordon");
    assert_eq!(report.summary, format!("uncordoned node {node}"));
    assert!(!unschedulable(nodes.get(&node).await.expect("node")));
}

/// The PodDisruptionBudget API this server serves (policy/v1 from 1.21,
/// policy/v1beta1 before).
async fn pdb_api(client: &Client, namespace: &str) -> (Api<DynamicObject>, ApiResource) {
    let groups = client.list_api_groups().await.expect("discovery");
    let v1 = groups
        .groups
        .iter()
        .filter(|g| g.name == "policy")
        .flat_map(|g| &g.versions)
        .any(|v| v.version == "v1");
    let version = if v1 { "v1" } else { "v1beta1" };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        version,
        "PodDisruptionBudget",
    ));
    (
        Api::namespaced_with(client.clone(), namespace, &resource),
        resource,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn drain_evicts_within_disruption_budgets() {
    let connection = connect(None).await;
    let client = connection.client.clone();
    let Sandbox { ns, node, pods } = sandbox(&client, "drain").await;
    create_pod(&pods, "free", &node, &json!({})).await;
    create_pod(
        &pods,
        "guarded",
        &node,
        &json!({"labels": {"app": "guarded"}}),
    )
    .await;
    create_pod(&pods, "exporter",
        &node,
        &json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "exporter",
                                    "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]}),
    )
    .await;
    for pod in ["free", "guarded", "exporter"] {
        run_pod(&pods, pod).await;
    }
    let (pdbs, pdb_resource) = pdb_api(&client, &ns).await;
    let pdb: DynamicObject = serde_json::from_value(json!({
        "apiVersion": pdb_resource.api_version, "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded", "namespace": ns},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}
    }))
    .expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");

    let actuator = actuator(&connection);
    let nodes: Api<Node> = Api::all(client.clone());
    let drain = ClusterAction::DrainNode {
        node: node.clone(),
        timeout_seconds: 3,
    };

    // Dry run: the server validates each eviction, nothing changes.
    let report = actuator.execute(&drain, true).await.expect("dry-run drain");
    assert!(report.dry_run);
    assert!(
        pods.get_opt("free").await.expect("get").is_some(),
        "dry run evicted"
    );
    assert!(
        !nodes
            .get(&node)
            .await
            .expect("node")
            .spec
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        "dry run cordoned"
    );

    // The budget holds: no disruption controller has allowed any disruption.
    let started = Instant::now();
    let report = actuator.execute(&drain, false).await.expect("drain");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "gave up before the timeout: {report:?}"
    );
    assert!(
        report
            .summary
            .starts_with(&format!("drained node {node}: 1 pods evicted (policy/")),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("1 not evicted, 1 skipped"),
        "{}",
        report.summary
    );
    assert_eq!(report.not_evicted.len(), 1, "{:?}", report.not_evicted);
    assert!(
        report.not_evicted[0].starts_with(&format!(
            "{ns}/guarded: not evicted before the drain timeout; refused by a disruption budget"
        )),
        "{}",
        report.not_evicted[0]
    );
    assert!(
        pods.get_opt("free").await.expect("get").is_none(),
        "free pod not evicted"
    );
    assert!(pods.get_opt("guarded").await.expect("get").is_some());
    assert!(
        pods.get_opt("exporter").await.expect("get").is_some(),
        "DaemonSet pod evicted"
    );
    assert_eq!(
        nodes
            .get(&node)
            .await
            .expect("node")
            .spec
            .and_then(|s| s.unschedulable),
        Some(true)
    );
    let events = events_about(&client, "default", &node, "Drained").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    assert!(
        events[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("guarded"))
    );

    // The disruption controller's part: one disruption allowed now.
    let current = pdbs.get("guarded").await.expect("pdb");
    let generation = current.metadata.generation.expect("generation");
    let status = json!({"status": {"observedGeneration": generation, "disruptionsAllowed": 1,
                                   "currentHealthy": 1, "desiredHealthy": 0, "expectedPods": 1}});
    pdbs.patch_status("guarded", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pdb status");
    let report = actuator.execute(&drain, false).await.expect("drain again");
    assert!(report.not_evicted.is_empty(), "{:?}", report.not_evicted);
    assert!(
        report.summary.contains("1 pods evicted"),
        "{}",
        report.summary
    );
    assert!(pods.get_opt("guarded").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn missing_rbac_is_a_typed_forbidden_error() {
    let admin = connect(None).await;
    let Sandbox { ns, node, pods } = sandbox(&admin.client, "rbac").await;
    create_pod(&pods, "web", &node, &json!({})).await;

    let unprivileged = connect(Some(UNPRIVILEGED_CONTEXT)).await;
    let actuator = actuator(&unprivileged);
    let err = actuator
        .execute(&ClusterAction::CordonNode { node: node.clone() }, false)
        .await
        .expect_err("no RBAC");
    match err {
        ClusterError::Forbidden {
            verb,
            resource,
            message,
        } => {
            assert_eq!((verb.as_str(), resource.as_str()), ("get", "nodes"));
            assert!(message.contains(UNPRIVILEGED_USER), "{message}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }

    // Allowed to read pods but not to delete them: the delete is refused.
    let roles: Api<Role> = Api::namespaced(admin.client.clone(), &ns);
    let role = serde_json::from_value(json!({
        "metadata": {"name": "read-pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    }))
    .expect("role");
    roles
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let bindings: Api<RoleBinding> = Api::namespaced(admin.client.clone(), &ns);
    let binding = serde_json::from_value(json!({
        "metadata": {"name": "read-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-pods"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": UNPRIVILEGED_USER}]
    }))
    .expect("binding");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
    let restart = ClusterAction::RestartPod {
        namespace: ns.clone(),
        pod: "web".into(),
    };
    let err = eventually("RBAC to apply", Duration::from_secs(10), || async {
        match actuator.execute(&restart, false).await {
            Err(ClusterError::Forbidden { verb, .. }) if verb == "get" => None,
            other => Some(other),
        }
    })
    .await
    .expect_err("delete refused");
    assert!(
        matches!(&err, ClusterError::Forbidden { verb, resource, .. } if verb == "delete" && resource == "pods"),
        "{err:?}"
    );
    assert!(pods.get_opt("web").await.expect("get").is_some());

    // The observer cannot list: it is not ready, and says why.
    let observer = KubeObserver::spawn(
        unprivileged.client.clone(),
        ObserverConfig::new(unprivileged.cluster_name.clone()),
    );
    let err = observer
        .wait_until_ready(Duration::from_secs(3))
        .await
        .expect_err("forbidden");
    let ObserverError::NotSynced { reason, .. } = err;
    assert!(
        reason.contains("watching nodes fails") && reason.contains("forbidden"),
        "{reason}"
    );
    let err = observer.snapshot().await.expect_err("unavailable");
    assert!(matches!(err, ClusterError::Unavailable { .. }), "{err:?}");
}

async fn leader_among<'a>(electors: &'a [&'a LeaderElector]) -> Option<&'a str> {
    let leaders: Vec<_> = electors.iter().filter(|e| e.is_leader()).collect();
    assert!(leaders.len() <= 1, "two leaders at once");
    leaders.first().map(|e| e.identity())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn one_leader_and_takeover_after_stop_or_crash() {
    let connection = connect(None).await;
    let client = connection.client.clone();
    let ns = unique("lease");
    create_namespace(&client, &ns).await;
    let config = |identity: &str| {
        let mut c = LeaseConfig::new(ns.clone(), "octrix-leader", identity);
        c.lease_duration = Duration::from_secs(3);
        c.renew_deadline = Duration::from_secs(2);
        c.retry_period = Duration::from_millis(250);
        c
    };
    let a = LeaderElector::spawn(client.clone(), config("octrix-a")).expect("a");
    let b = LeaderElector::spawn(client.clone(), config("octrix-b")).expect("b");
    let first = eventually("a leader", Duration::from_secs(10), || async {
        leader_among(&[&a, &b]).await.map(str::to_owned)
    })
    .await;
    // Leadership is stable over several lease durations of renewals.
    for _ in 0..20 {
        assert_eq!(leader_among(&[&a, &b]).await, Some(first.as_str()));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases.get("octrix-leader").await.expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(first.as_str()));
    assert_eq!(spec.lease_duration_seconds, Some(3));

    // Only the leader's actuator acts.
    let (leader, follower) = if a.identity() == first {
        (a, b)
    } else {
        (b, a)
    };
    let gated = actuator(&connection).with_leader(follower.subscribe());
    let err = gated
        .execute(
            &ClusterAction::CordonNode {
                node: "none".into(),
            },
            false,
        )
        .await
        .expect_err("follower");
    assert!(matches!(err, ClusterError::Rejected { .. }), "{err:?}");

    // A stopped leader releases the lease: the other takes over at once.
    let mut follower_changes = follower.subscribe();
    let stopped = Instant::now();
    leader.stop().await.expect("release");
    eventually("the follower to lead", Duration::from_secs(3), || async {
        follower.is_leader().then_some(())
    })
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "takeover took {:?}",
        stopped.elapsed()
    );
    assert!(*follower_changes.borrow_and_update());
    let spec = leases
        .get("octrix-leader")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(follower.identity()));
    assert_eq!(spec.lease_transitions, Some(1));

    // A leader that dies without releasing is replaced within the lease duration.
    let c = LeaderElector::spawn(client.clone(), config("octrix-c")).expect("c");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!c.is_leader(), "took a held lease");
    let crashed = Instant::now();
    drop(follower);
    eventually("c to lead", Duration::from_secs(8), || async {
        c.is_leader().then_some(())
    })
    .await;
    let took = crashed.elapsed();
    // Lease duration (3 s) after the last renewal c saw, plus c's retry period and slack.
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    let spec = leases
        .get("octrix-leader")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("octrix-c"));
    assert_eq!(spec.lease_transitions, Some(2));
    c.stop().await.expect("release");
    let spec = leases
        .get("octrix-leader")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(spec.holder_identity, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn the_deployed_cluster_role_is_enough() {
    const DEPLOYED_CONTEXT: &str = "octrix-test-deployed";
    const DEPLOYED_USER: &str = "octrix-test-deployed";
    let admin = connect(None).await;
    let client = admin.client.clone();
    let Sandbox { ns, node, pods } = sandbox(&client, "deployed").await;
    create_pod(&pods, "web-1", &node, &json!({})).await;
    create_pod(&pods, "web-2", &node, &json!({})).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}}
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");

    // The ClusterRole of docs/deploy/, bound to a user that has nothing else.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy/clusterrole.yaml");
    let mut role: k8s_openapi::api::rbac::v1::ClusterRole =
        serde_norway::from_str(&std::fs::read_to_string(&path).expect("clusterrole.yaml"))
            .expect("ClusterRole");
    let role_name = unique("octrix");
    role.metadata.name = Some(role_name.clone());
    Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("create ClusterRole");
    let binding = serde_json::from_value(json!({
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEPLOYED_USER}]
    }))
    .expect("binding");
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("create ClusterRoleBinding");

    let deployed = connect(Some(DEPLOYED_CONTEXT)).await;
    let actuator = actuator(&deployed);
    let restart = ClusterAction::RestartPod {
        namespace: ns.clone(),
        pod: "web-1".into(),
    };
    // RBAC caches take a moment to see the new binding.
    let report = eventually("the binding to apply", Duration::from_secs(10), || async {
        match actuator.execute(&restart, false).await {
            Err(ClusterError::Forbidden { .. }) => None,
            other => Some(other),
        }
    })
    .await
    .expect("restart");
    assert!(
        !report.summary.contains("event not recorded"),
        "{}",
        report.summary
    );

    let mut config = ObserverConfig::new(deployed.cluster_name.clone());
    config.node_label_selector = Some(format!("octrix-e2e={ns}"));
    let observer = KubeObserver::spawn(deployed.client.clone(), config);
    observer
        .wait_until_ready(Duration::from_secs(20))
        .await
        .expect("observer syncs with the deployed role");
    let snapshot = observer.snapshot().await.expect("snapshot");
    assert!(snapshot.pod(&ns, "web-2").is_some());
    assert!(snapshot.deployment(&ns, "web").is_some());

    let scale = ClusterAction::ScaleDeployment {
        namespace: ns.clone(),
        deployment: "web".into(),
        replicas: 3,
    };
    for action in [
        scale,
        ClusterAction::CordonNode { node: node.clone() },
        ClusterAction::DrainNode {
            node: node.clone(),
            timeout_seconds: 5,
        },
        ClusterAction::UncordonNode { node: node.clone() },
    ] {
        let report = actuator
            .execute(&action, false)
            .await
            .unwrap_or_else(|e| panic!("{action:?}: {e}"));
        assert!(
            !report.summary.contains("event not recorded"),
            "{}",
            report.summary
        );
        assert!(report.not_evicted.is_empty(), "{:?}", report.not_evicted);
    }
    assert!(
        pods.get_opt("web-2").await.expect("get").is_none(),
        "drain evicted web-2"
    );
    assert_eq!(
        events_about(&client, "default", &node, "Drained")
            .await
            .len(),
        1
    );

    let mut lease = LeaseConfig::new(ns.clone(), "octrix-leader", "octrix-deployed");
    lease.lease_duration = Duration::from_secs(3);
    lease.renew_deadline = Duration::from_secs(2);
    lease.retry_period = Duration::from_millis(250);
    let elector = LeaderElector::spawn(deployed.client.clone(), lease).expect("elector");
    eventually(
        "leadership with the deployed role",
        Duration::from_secs(5),
        || async { elector.is_leader().then_some(()) },
    )
    .await;
    elector
        .stop()
        .await
        .expect("release with the deployed role");

    // Chaos with the deployed role: a partition, a stress Job and a pod failure.
    create_pod(&pods, "web-3", &node, &json!({})).await;
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), &ns);
    let service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    let executor = chaos_executor(&deployed);
    let web3 = Target::Pod {
        namespace: ns.clone(),
        name: "web-3".into(),
    };
    for (run, parameters, target) in [
        (
            20,
            Parameters::NetworkPartition {
                duration_seconds: 60,
                direction: PartitionDirection::From,
            },
            Target::Service {
                namespace: ns.clone(),
                name: "web".into(),
            },
        ),
        (
            21,
            Parameters::MemoryStress {
                duration_seconds: 60,
                memory_mb: 64,
            },
            web3.clone(),
        ),
        (
            22,
            Parameters::PodFailure {
                duration_seconds: 60,
            },
            web3.clone(),
        ),
    ] {
        let injection = executor
            .inject(&plan(run, parameters.clone(), vec![target]))
            .await
            .unwrap_or_else(|e| panic!("{parameters:?}: {e}"));
        executor
            .revert(&injection)
            .await
            .unwrap_or_else(|e| panic!("revert {parameters:?}: {e}"));
    }
    assert!(pods.get_opt("web-3").await.expect("get").is_none());
}

// ---------------------------------------------------------------------------------------------
// Istio routing, chaos and the engine
// ---------------------------------------------------------------------------------------------

fn chaos_executor(connection: &octrix_k8s::Connection) -> KubeChaosExecutor {
    let mut config = ChaosExecutorConfig::new(connection.cluster_name.clone());
    config.actuator.restart_grace_period_seconds = Some(0);
    config.actuator.eviction_retry_interval = Duration::from_millis(500);
    config.istio_version = IstioApiVersion::V1beta1;
    config.drain_timeout_seconds = 10;
    KubeChaosExecutor::new(connection.client.clone(), config)
}

fn plan(run: u64, parameters: Parameters, targets: Vec<Target>) -> InjectionPlan {
    InjectionPlan {
        run: RunId(run),
        parameters,
        targets,
        until: jiff::Timestamp::now() + jiff::SignedDuration::from_mins(5),
    }
}

/// One test, because Istio's CRDs are cluster-wide: first their absence, then
/// routing and fault injection with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn istio_routing_and_fault_injection() {
    let connection = connect(None).await;
    let client = connection.client.clone();
    let ns = unique("istio");
    create_namespace(&client, &ns).await;
    uninstall_istio(&client).await;

    let rule = TrafficRule::weighted(
        "web",
        ns.clone(),
        vec![
            Destination::for_version("v1", 90),
            Destination::for_version("v2", 10),
        ],
    );
    let applier = KubeRoutingApplier::new(client.clone(), IstioApiVersion::V1beta1);
    let err = applier.apply(&rule).await.expect_err("no CRDs yet");
    assert!(
        matches!(err, RoutingError::IstioNotInstalled { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Istio CRDs are not installed (networking.istio.io/v1beta1)"
    );
    let executor = chaos_executor(&connection);
    let latency = Parameters::LatencyInjection {
        duration_seconds: 60,
        latency_ms: 300,
        jitter_ms: 0,
    };
    let web = Target::Service {
        namespace: ns.clone(),
        name: "web".into(),
    };
    let err = executor
        .inject(&plan(1, latency.clone(), vec![web.clone()]))
        .await
        .expect_err("no CRDs yet");
    assert_eq!(
        err,
        ExecutorError::Rejected {
            target: format!("service/{ns}/web"),
            reason: "Istio CRDs are not installed (networking.istio.io/v1beta1)".into()
        }
    );

    install_istio(&client).await;
    // A negative discovery answer is not cached: the same applier now works.
    let applied = applier.apply(&rule).await.expect("apply");
    assert_eq!(
        weights(&applied.virtual_service),
        [("v1".into(), 90), ("v2".into(), 10)]
    );
    let read = applier
        .virtual_service(&ns, "web")
        .await
        .expect("get")
        .expect("VirtualService stored");
    assert_eq!(
        read.types.as_ref().expect("types").api_version,
        "networking.istio.io/v1beta1"
    );
    assert_eq!(read.data["spec"]["hosts"], json!(["web"]));
    assert_eq!(weights(&read), [("v1".into(), 90), ("v2".into(), 10)]);
    assert_eq!(
        read.metadata.labels.as_ref().expect("labels")["app.kubernetes.io/managed-by"],
        "octrix"
    );
    let managers: Vec<_> = read
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|f| {
            (
                f.manager.clone().unwrap_or_default(),
                f.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(managers, [("octrix".to_owned(), "Apply".to_owned())]);
    let dr = applier
        .destination_rule(&ns, "web")
        .await
        .expect("get")
        .expect("DestinationRule stored");
    assert_eq!(
        dr.data["spec"]["subsets"][1],
        json!({"name": "v2", "labels": {"version": "v2"}})
    );

    // The same objects through v1 (one storage version, both served).
    let v1 = KubeRoutingApplier::new(client.clone(), IstioApiVersion::V1);
    let mut shifted = rule.clone();
    shifted.destinations = vec![
        Destination::for_version("v1", 50),
        Destination::for_version("v2", 50),
    ];
    v1.apply(&shifted).await.expect("apply v1");
    let read = applier
        .virtual_service(&ns, "web")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(weights(&read), [("v1".into(), 50), ("v2".into(), 50)]);

    // Canary rollback through the engine's port.
    let summary = TrafficControl::rollback(&applier, &ns, "web")
        .await
        .expect("rollback");
    assert!(summary.contains("to subset v1"), "{summary}");
    let rolled_back = applier
        .virtual_service(&ns, "web")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        weights(&rolled_back),
        [("v1".into(), 100), ("v2".into(), 0)]
    );
    let err = TrafficControl::rollback(&applier, &ns, "ghost")
        .await
        .expect_err("no rule applied for ghost");
    assert!(err.reason.contains("stable subset"), "{err}");

    // Latency injection patches the service's VirtualService, revert restores it.
    let injection = executor
        .inject(&plan(2, latency, vec![web.clone()]))
        .await
        .expect("inject latency");
    assert_eq!(injection.changes.len(), 1);
    let faulty = applier
        .virtual_service(&ns, "web")
        .await
        .expect("get")
        .expect("stored");
    let fault = &faulty.data["spec"]["http"][0]["fault"];
    assert_eq!(fault["delay"]["fixedDelay"], "300ms");
    assert_eq!(fault["delay"]["percentage"]["value"].as_f64(), Some(100.0));
    assert_eq!(
        faulty.metadata.labels.as_ref().expect("labels")[RUN_LABEL],
        "run-2"
    );
    // A second run on the same service is refused and changes nothing.
    let busy = executor
        .inject(&plan(
            3,
            Parameters::ServiceFailure {
                duration_seconds: 60,
                error_percent: 50.0,
            },
            vec![web.clone()],
        ))
        .await
        .expect_err("already under chaos");
    assert!(busy.to_string().contains("run-2"), "{busy}");
    executor.revert(&injection).await.expect("revert");
    executor
        .revert(&injection)
        .await
        .expect("revert is idempotent");
    let restored = applier
        .virtual_service(&ns, "web")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(restored.data["spec"], rolled_back.data["spec"]);
    let labels = restored.metadata.labels.clone().unwrap_or_default();
    assert!(!labels.contains_key(RUN_LABEL), "{labels:?}");
    assert!(
        !restored
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(ORIGINAL_HTTP_ANNOTATION)
    );

    // Packet loss on a service without a VirtualService creates one for the run.
    let api = Target::Service {
        namespace: ns.clone(),
        name: "api".into(),
    };
    let injection = executor
        .inject(&plan(
            4,
            Parameters::PacketLoss {
                duration_seconds: 60,
                loss_percent: 20.0,
            },
            vec![api],
        ))
        .await
        .expect("inject packet loss");
    let vs_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &virtual_service_resource(IstioApiVersion::V1beta1),
    );
    let params = kube::api::ListParams::default().labels(&format!("{RUN_LABEL}=run-4"));
    let created = vs_api.list(&params).await.expect("list").items;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].data["spec"]["hosts"], json!(["api"]));
    let abort = &created[0].data["spec"]["http"][0]["fault"]["abort"];
    assert_eq!(abort["httpStatus"], 503);
    assert_eq!(abort["percentage"]["value"].as_f64(), Some(20.0));
    executor.revert(&injection).await.expect("revert");
    assert!(vs_api.list(&params).await.expect("list").items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn chaos_runs_are_reverted() {
    let connection = connect(None).await;
    let client = connection.client.clone();
    let Sandbox { ns, node, pods } = sandbox(&client, "chaos").await;
    for pod in ["web-1", "web-2", "web-3"] {
        create_pod(&pods, pod, &node, &json!({})).await;
    }
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), &ns);
    let service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    let executor = chaos_executor(&connection);
    let pod_target = |name: &str| Target::Pod {
        namespace: ns.clone(),
        name: name.into(),
    };

    // A wrong target kind is refused before anything changes.
    let err = executor
        .inject(&plan(
            10,
            Parameters::PodFailure {
                duration_seconds: 60,
            },
            vec![Target::Node { name: node.clone() }],
        ))
        .await
        .expect_err("pod-failure on a node");
    assert!(err.to_string().contains("acts on pods"), "{err}");
    let err = executor
        .inject(&plan(
            10,
            Parameters::MemoryLeak {
                duration_seconds: 60,
                rate_mb_per_second: 1.0,
            },
            vec![pod_target("web-1")],
        ))
        .await
        .expect_err("unsupported");
    assert!(matches!(err, ExecutorError::Unsupported { .. }), "{err}");

    // Stress: a Job labelled with the run, pinned to the pod's node; revert deletes it.
    let stress = executor
        .inject(&plan(
            11,
            Parameters::CpuStress {
                duration_seconds: 60,
                workers: 1,
                load_percent: 50,
            },
            vec![pod_target("web-3")],
        ))
        .await
        .expect("inject cpu stress");
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), &ns);
    let by_run = kube::api::ListParams::default().labels(&format!("{RUN_LABEL}=run-11"));
    let created = jobs.list(&by_run).await.expect("list jobs").items;
    assert_eq!(created.len(), 1);
    let pod_spec = created[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    assert_eq!(pod_spec.node_name.as_deref(), Some(node.as_str()));
    assert_eq!(
        pod_spec.containers[0]
            .command
            .as_ref()
            .expect("command")
            .join(" "),
        "stress-ng --cpu 1 --cpu-load 50 --timeout 60s"
    );
    executor.revert(&stress).await.expect("revert stress");
    assert!(jobs.list(&by_run).await.expect("list").items.is_empty());

    // Network partition: a deny NetworkPolicy over the Service's pods.
    let partition = executor
        .inject(&plan(
            12,
            Parameters::NetworkPartition {
                duration_seconds: 60,
                direction: PartitionDirection::Both,
            },
            vec![Target::Service {
                namespace: ns.clone(),
                name: "web".into(),
            }],
        ))
        .await
        .expect("inject partition");
    let policies: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), &ns);
    let by_run = kube::api::ListParams::default().labels(&format!("{RUN_LABEL}=run-12"));
    let created = policies.list(&by_run).await.expect("list policies").items;
    assert_eq!(created.len(), 1);
    let spec = created[0].spec.as_ref().expect("spec");
    assert_eq!(
        spec.pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some([("app".to_owned(), "web".to_owned())].into())
    );
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    executor.revert(&partition).await.expect("revert partition");
    assert!(policies.list(&by_run).await.expect("list").items.is_empty());

    // Pod failure deletes the pod.
    let failure = executor
        .inject(&plan(
            13,
            Parameters::PodFailure {
                duration_seconds: 60,
            },
            vec![pod_target("web-1")],
        ))
        .await
        .expect("inject pod failure");
    assert!(pods.get_opt("web-1").await.expect("get").is_none());
    executor.revert(&failure).await.expect("revert pod failure");

    // Node failure cordons and drains; revert uncordons.
    let nodes: Api<Node> = Api::all(client.clone());
    let unschedulable = |n: Node| n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let failure = executor
        .inject(&plan(
            14,
            Parameters::NodeFailure {
                duration_seconds: 60,
                cordon: true,
            },
            vec![Target::Node { name: node.clone() }],
        ))
        .await
        .expect("inject node failure");
    assert_eq!(failure.changes[0], Change::Cordon { node: node.clone() });
    assert!(unschedulable(nodes.get(&node).await.expect("node")));
    assert!(
        pods.get_opt("web-2").await.expect("get").is_none(),
        "drained"
    );
    executor
        .revert(&failure)
        .await
        .expect("revert node failure");
    assert!(!unschedulable(nodes.get(&node).await.expect("node")));
    executor
        .revert(&failure)
        .await
        .expect("revert is idempotent");

    // An operator's cordon stays after a run.
    nodes
        .patch(
            &node,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("cordon");
    let failure = executor
        .inject(&plan(
            15,
            Parameters::NodeFailure {
                duration_seconds: 60,
                cordon: true,
            },
            vec![Target::Node { name: node.clone() }],
        ))
        .await
        .expect("inject node failure");
    assert!(
        !failure
            .changes
            .iter()
            .any(|c| matches!(c, Change::Cordon { .. }))
    );
    executor.revert(&failure).await.expect("revert");
    assert!(unschedulable(nodes.get(&node).await.expect("node")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn the_engine_heals_a_crash_loop() {
    let connection = connect(None).await;
    let client = connection.client.clone();
    let Sandbox { ns, node, pods } = sandbox(&client, "engine").await;
    create_pod(&pods, "web-1", &node, &json!({})).await;
    create_pod(&pods, "web-2", &node, &json!({})).await;
    run_pod(&pods, "web-1").await;
    run_pod(&pods, "web-2").await;

    let mut config = ObserverConfig::new(connection.cluster_name.clone());
    config.namespace = Some(ns.clone());
    config.node_label_selector = Some(format!("octrix-e2e={ns}"));
    let observer = Arc::new(KubeObserver::spawn(client.clone(), config));
    observer
        .wait_until_ready(Duration::from_secs(20))
        .await
        .expect("stores sync");
    let store = Arc::new(InMemoryIncidentStore::default());
    let ports = Ports {
        metrics: Arc::new(NoMetricSource),
        observer: observer.clone(),
        actuator: Arc::new(actuator(&connection)),
        store: store.clone(),
        events: Arc::new(|_event: EngineEvent| {}),
        notifier: Arc::new(RecordingNotifier::default()),
        scripts: None,
        traffic: None,
        chaos: Some(Arc::new(chaos_executor(&connection))),
        silencer: None,
        clock: Arc::new(jiff::Timestamp::now),
    };
    let mut engine = quiet_engine(
        ports,
        r#"
settle_seconds: 60
rules:
  - name: crashloops
    match: { categories: [pod-crash] }
    actions:
      - type: restart-pod
"#,
    )
    .await;

    // The kubelet reports a crash loop.
    crash_loop(
        &Api::namespaced(client.clone(), &ns),
        "web-1",
        4,
        LastTermination::OomKilled,
    )
    .await;
    snapshot_when(&observer, "the crash loop", |s| {
        s.pod(&ns, "web-1").is_some_and(|p| {
            p.containers
                .iter()
                .any(|c| c.waiting_reason.as_deref() == Some("CrashLoopBackOff"))
        })
    })
    .await;
    let report = engine.tick().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // The crash loop, its OOM kill and the pod not being ready are each an
    // incident; the healing rule acts on the crash loop only.
    assert!(report.opened >= 1, "{report:?}");
    assert_eq!(report.actions, 1, "{report:?}");

    assert!(
        pods.get_opt("web-1").await.expect("get").is_none(),
        "restarted"
    );
    assert!(pods.get_opt("web-2").await.expect("get").is_some());
    assert_eq!(
        events_about(&client, &ns, "web-1", "Restarted").await.len(),
        1
    );
    let incident = engine
        .book()
        .incidents()
        .find(|i| i.category == octrix_core::Category::PodCrash)
        .expect("a pod-crash incident")
        .clone();
    assert_eq!(
        store.get(&incident.id).await.expect("store").map(|i| i.id),
        Some(incident.id.clone()),
        "persisted"
    );
    let steps: Vec<String> = incident
        .timeline
        .iter()
        .filter_map(|e| match &e.event {
            TimelineEvent::Healing {
                action, outcome, ..
            } => Some(format!(
                "{action}:{}",
                serde_json::to_value(outcome).expect("json")["result"]
                    .as_str()
                    .unwrap_or_default()
            )),
            _ => None,
        })
        .collect();
    assert_eq!(steps, ["restart-pod:executed"], "{:#?}", incident.timeline);
    let history: Vec<_> = engine.action_history().collect();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].target, format!("pod/{ns}/web-1"));
}
