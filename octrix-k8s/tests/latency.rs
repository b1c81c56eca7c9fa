//! Latency of the healing loop against a real kube-apiserver (issue 7, "8. Measure"):
//! with 1,000 pods observed, how long from a pod's status change to the
//! incident, and from the incident to the action.
//!
//! Run by `scripts/test-k8s crash_loop_to_incident_to_restart_latency --nocapture`
//! (see `docs/benchmarks.md`, "Kubernetes latency"). There is no kubelet: the test creates a Node, binds the
//! pods to it and writes their status as a kubelet would; the ReplicaSet is the one
//! a Deployment controller would create.
//!
//! The test asserts behaviour: every crash loop opens an incident and is
//! restarted within 5 s, the incident before the action. The latencies it
//! prints are the measurement, compared with the 200 ms target in
//! `docs/benchmarks.md`; they are not asserted, because a timed assertion
//! fails on a loaded machine rather than on a regression.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use octrix_core::Category;
use octrix_core::cluster::ClusterObserver;
use octrix_core::engine::{EngineEvent, Ports, RecordingNotifier};
use octrix_core::incident::{HealingOutcome, InMemoryIncidentStore};
use octrix_k8s::NoMetricSource;
use octrix_k8s::actuator::{ActuatorConfig, KubeActuator};
use octrix_k8s::observer::{KubeObserver, ObserverConfig};
use serde_json::json;

mod common;
use common::{
    LARGE_NODE, LastTermination, connect, crash_loop, create_namespace, create_node, create_pod,
    quiet_engine, run_pod, unique,
};
use tokio::sync::mpsc;

/// Pods in the namespace.
const PODS: usize = 1_000;
/// Pods made to crash-loop, one after another.
const SAMPLES: usize = 50;
/// The engine's tick interval.
const TICK: Duration = Duration::from_millis(20);
/// Concurrent requests while setting the namespace up.
const CONCURRENCY: usize = 32;

/// Creates the Deployment `app` of `PODS / SAMPLES` replicas and the ReplicaSet its controller would create;
/// returns the ownership metadata of the ReplicaSet's pods.
async fn create_workload(client: &Client, ns: &str, app: &str) -> serde_json::Value {
    let replicas = PODS / SAMPLES;
    let rs_name = format!("{app}-5d8f");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}}
    }))
    .expect("deployment");
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let replica_sets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "ReplicaSet")),
    );
    let rs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": ns, "labels": {"app": app, "pod-template-hash": "5d8f"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                          "uid": deployment.metadata.uid, "controller": true}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app, "pod-template-hash": "5d8f"}},
                 "template": {"metadata": {"labels": {"app": app, "pod-template-hash": "5d8f"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}}
    }))
    .expect("replica set");
    let rs = replica_sets
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replica set");
    json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                                "uid": rs.metadata.uid, "controller": true}],
           "labels": {"app": app, "pod-template-hash": "5d8f"}})
}

/// What the engine published about a pod, and when the sink saw it.
#[derive(Debug)]
enum Seen {
    /// A pod-crash incident opened for the pod.
    Incident { pod: String, at: Instant },
    /// The restart of the pod was executed.
    Executed { pod: String, at: Instant },
}

/// The `q`-quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    assert!(!sorted.is_empty());
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints p50/p95/p99/max of `values`.
fn report(what: &str, values: &mut [Duration]) {
    values.sort();
    let (p50, p95, p99) = (
        quantile(values, 0.50),
        quantile(values, 0.95),
        quantile(values, 0.99),
    );
    let max = *values.last().expect("values");
    println!(
        "{what}: n={} p50={:.1} ms p95={:.1} ms p99={:.1} ms max={:.1} ms",
        values.len(),
        ms(p50),
        ms(p95),
        ms(p99),
        ms(max)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test"]
async fn crash_loop_to_incident_to_restart_latency_with_1000_pods() {
    let started = Instant::now();
    let connection = connect(None).await;
    let client = connection.client.clone();
    let ns = unique("latency");
    create_namespace(&client, &ns).await;
    let node = unique("node");
    create_node(&client, &node, &ns, true, LARGE_NODE).await;
    // One Deployment per sample: the engine heals one case of a category per
    // workload at a time (the next waits for the first to be verified), so
    // the samples must not share a workload to be measured one after another.
    let apps: Vec<String> = (0..SAMPLES).map(|i| format!("web{i:02}")).collect();
    let owners: Vec<serde_json::Value> = futures::stream::iter(apps.iter())
        .map(|app| create_workload(&client, &ns, app))
        .buffered(CONCURRENCY)
        .collect()
        .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let per_app = PODS / SAMPLES;
    // Pod `i` of every app, then pod `i + 1`...: the samples are pods 0..SAMPLES.
    let names: Vec<(String, usize)> = (0..PODS)
        .map(|i| {
            let app = i % SAMPLES;
            (format!("{}-5d8f-{:03}", apps[app], i / SAMPLES), app)
        })
        .collect();
    assert_eq!(names.len(), per_app * SAMPLES);
    futures::stream::iter(names.iter())
        .map(|(name, app)| async {
            create_pod(&pods, name, &node, &owners[*app]).await;
            run_pod(&pods, name).await;
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    println!(
        "{PODS} pods created and running in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut config = ObserverConfig::new(connection.cluster_name.clone());
    config.namespace = Some(ns.clone());
    config.node_label_selector = Some(format!("octrix-e2e={ns}"));
    let observer = Arc::new(KubeObserver::spawn(client.clone(), config));
    observer
        .wait_until_ready(Duration::from_secs(30))
        .await
        .expect("stores sync");
    let sync_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snapshot = observer.snapshot().await.expect("snapshot");
        let running_ready = snapshot
            .pods
            .iter()
            .filter(|p| p.is_ready() && p.node.as_deref() == Some(node.as_str()))
            .count();
        if snapshot.pods.len() == PODS && running_ready == PODS {
            break;
        }
        assert!(
            Instant::now() < sync_deadline,
            "observer sees {} pods ({running_ready} ready), want {PODS}",
            snapshot.pods.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The sink timestamps what the engine publishes, as it publishes it.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let pod_prefix = format!("pod/{ns}/");
    let sink = move |event: EngineEvent| {
        let at = Instant::now();
        let seen = match event {
            EngineEvent::IncidentOpened(incident) if incident.category == Category::PodCrash => {
                incident
                    .resource
                    .map(|r| Seen::Incident { pod: r.name, at })
            }
            EngineEvent::Healing(healing)
                if matches!(healing.outcome, HealingOutcome::Executed { .. }) =>
            {
                healing
                    .target
                    .strip_prefix(&pod_prefix)
                    .map(|pod| Seen::Executed {
                        pod: pod.to_owned(),
                        at,
                    })
            }
            _ => None,
        };
        if let Some(seen) = seen {
            // The receiver lives until the end of the test.
            let _ = seen_tx.send(seen);
        }
    };
    let mut actuator_config = ActuatorConfig::new(connection.cluster_name.clone());
    // No kubelet confirms a graceful deletion here: delete at once.
    actuator_config.restart_grace_period_seconds = Some(0);
    let ports = Ports {
        metrics: Arc::new(NoMetricSource),
        observer: observer.clone(),
        actuator: Arc::new(KubeActuator::new(client.clone(), actuator_config)),
        store: Arc::new(InMemoryIncidentStore::default()),
        events: Arc::new(sink),
        notifier: Arc::new(RecordingNotifier::default()),
        scripts: None,
        traffic: None,
        chaos: None,
        silencer: None,
        clock: Arc::new(jiff::Timestamp::now),
    };
    let mut engine = quiet_engine(
        ports,
        r#"
settle_seconds: 600
budget:
  max_concurrent: 1000
  max_per_window: 1000
  max_per_namespace: 1000
  max_disrupted_fraction: 1.0
rules:
  - name: crashloops
    match: { categories: [pod-crash] }
    cooldown_seconds: 0
    actions:
      - type: restart-pod
"#,
    )
    .await;

    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0_u64;
        let mut busy = Duration::ZERO;
        let mut errors = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = interval.tick() => {
                    let start = Instant::now();
                    let report = engine.tick().await;
                    busy += start.elapsed();
                    ticks += 1;
                    errors.extend(report.errors.into_iter().map(|e| format!("{e:?}")));
                }
            }
        }
        (ticks, busy, errors)
    });

    // Crash-loop one pod of each Deployment, one after another.
    let mut to_incident = Vec::with_capacity(SAMPLES);
    let mut to_action = Vec::with_capacity(SAMPLES);
    for (sample, (name, _)) in names.iter().enumerate().take(SAMPLES) {
        let t0 = Instant::now();
        crash_loop(&pods, name, 4, LastTermination::Error).await;
        let (mut t1, mut t2) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while t1.is_none() || t2.is_none() {
            match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                Ok(Some(Seen::Incident { pod, at })) if &pod == name => t1 = t1.or(Some(at)),
                Ok(Some(Seen::Executed { pod, at })) if &pod == name => t2 = t2.or(Some(at)),
                Ok(Some(other)) => panic!("unexpected event while healing {name}: {other:?}"),
                Ok(None) => panic!("the engine stopped"),
                Err(_) => panic!(
                    "pod {name} (sample {sample}) not healed within 5 s: incident {t1:?}, action {t2:?}"
                ),
            }
        }
        let (t1, t2) = (t1.expect("incident"), t2.expect("action"));
        assert!(t1 <= t2, "the action on {name} came before its incident");
        to_incident.push(t1 - t0);
        to_action.push(t2 - t1);
        assert!(
            pods.get_opt(name).await.expect("get pod").is_none(),
            "{name} restarted (deleted)"
        );
    }
    stop_tx.send(()).expect("ticker running");
    let (ticks, busy, errors) = ticker.await.expect("ticker");
    assert!(errors.is_empty(), "tick errors: {errors:?}");

    println!(
        "{PODS} pods, {SAMPLES} crash loops healed, tick every {} ms: {ticks} ticks, mean tick {:.1} ms",
        TICK.as_millis(),
        ms(busy) / ticks.max(1) as f64
    );
    report("status change -> incident", &mut to_incident);
    report("incident -> action       ", &mut to_action);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(to_incident.len(), SAMPLES);

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &Default::default())
        .await
        .expect("delete namespace");
    let nodes: Api<Node> = Api::all(client);
    nodes
        .delete(&node, &Default::default())
        .await
        .expect("delete node");
}
