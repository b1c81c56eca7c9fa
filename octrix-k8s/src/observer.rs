//! [`KubeObserver`]: the cluster as kube-runtime reflectors see it.
//!
//! Four watchers (list, then watch, with kube-runtime's default backoff) keep
//! in-memory stores of Pods, Nodes, Deployments and ReplicaSets up to date;
//! [`ClusterObserver::snapshot`] reads the stores without contacting the API
//! server. ReplicaSets are only kept to map a pod to the Deployment that owns
//! its ReplicaSet.
//!
//! A snapshot is refused with [`ClusterError::Unavailable`] until every store
//! has been listed once, and while a watcher fails (the data would be stale):
//! the reason names the resource and the error. A watcher counts as failing
//! from an error until its next event, or until [`WATCH_ERROR_WINDOW`] passes
//! without another error (kube-runtime retries at least every 30 s while a
//! failure lasts, and a quiet resource yields no event after reconnecting).
//!
//! Restart *rates* are not computed here: the core derives them from the
//! restart counts of successive snapshots.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use octrix_core::Clock;
use octrix_core::cluster::{
    ClusterError, ClusterInfo, ClusterKind, ClusterObserver, ClusterSnapshot,
};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::convert;

/// What to watch.
#[derive(Clone)]
pub struct ObserverConfig {
    /// Name the cluster is reported under (the kube context).
    pub cluster_name: String,
    /// Only pods, deployments and replica sets of this namespace; all
    /// namespaces when `None`.
    pub namespace: Option<String>,
    /// Label selector (`app=web,tier!=cache`) for pods, deployments and
    /// replica sets.
    pub label_selector: Option<String>,
    /// Label selector for nodes.
    pub node_label_selector: Option<String>,
    /// Stamps snapshots.
    pub clock: Arc<dyn Clock>,
}

impl Debug for ObserverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverConfig")
            .field("cluster_name", &self.cluster_name)
            .field("namespace", &self.namespace)
            .field("label_selector", &self.label_selector)
            .field("node_label_selector", &self.node_label_selector)
            .finish_non_exhaustive()
    }
}

impl ObserverConfig {
    /// Every namespace, no label filter, the system clock.
    pub fn new(cluster_name: impl Into<String>) -> Self {
        Self {
            cluster_name: cluster_name.into(),
            namespace: None,
            label_selector: None,
            node_label_selector: None,
            clock: Arc::new(jiff::Timestamp::now),
        }
    }
}

/// Why the observer is not ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserverError {
    /// The stores were not all listed within the time allowed.
    #[error("cluster {cluster}: not synced after {waited:?}: {reason}")]
    NotSynced {
        /// The cluster's name.
        cluster: String,
        /// How long was waited.
        waited: Duration,
        /// What is missing or failing.
        reason: String,
    },
}

/// How long a watch error keeps snapshots unavailable when no event follows.
pub const WATCH_ERROR_WINDOW: Duration = Duration::from_secs(60);

/// The health of one watcher: the last error, cleared by the next event.
#[derive(Debug, Default)]
struct WatchHealth {
    last_error: Mutex<Option<(String, Instant)>>,
}

impl WatchHealth {
    fn set(&self, error: Option<String>) {
        let mut guard = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = error.map(|e| (e, Instant::now()));
    }

    /// The error, if one happened within [`WATCH_ERROR_WINDOW`] and no event
    /// came after it.
    fn get(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(_, at)| at.elapsed() < WATCH_ERROR_WINDOW)
            .map(|(e, _)| e.clone())
    }
}

struct Watched<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq,
{
    resource: &'static str,
    store: Store<K>,
    health: Arc<WatchHealth>,
    task: JoinHandle<()>,
}

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn spawn(resource: &'static str, api: Api<K>, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        let health = Arc::new(WatchHealth::default());
        let stream = watcher(api, config)
            .default_backoff()
            .modify(|obj: &mut K| obj.managed_fields_mut().clear())
            .reflect(writer);
        let task_health = Arc::clone(&health);
        let task = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(_) => task_health.set(None),
                    Err(error) => {
                        tracing::warn!(resource, %error, "watch failed; retrying with backoff");
                        task_health.set(Some(error.to_string()));
                    }
                }
            }
        });
        Self {
            resource,
            store,
            health,
            task,
        }
    }

    /// `Err(reason)` while the store is not listed yet or the watch fails.
    fn check(&self) -> Result<(), String> {
        let ready = self.store.wait_until_ready().now_or_never().is_some();
        match (ready, self.health.get()) {
            (_, Some(error)) => Err(format!("watching {} fails: {error}", self.resource)),
            (false, None) => Err(format!("{} not listed yet", self.resource)),
            (true, None) => Ok(()),
        }
    }
}

/// Observes a Kubernetes cluster through kube-runtime reflectors.
///
/// Create it inside a Tokio runtime: [`KubeObserver::spawn`] starts the
/// watchers, dropping the observer stops them.
pub struct KubeObserver {
    config: ObserverConfig,
    pods: Watched<Pod>,
    nodes: Watched<Node>,
    deployments: Watched<Deployment>,
    replica_sets: Watched<ReplicaSet>,
}

impl Debug for KubeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeObserver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for KubeObserver {
    fn drop(&mut self) {
        self.pods.task.abort();
        self.nodes.task.abort();
        self.deployments.task.abort();
        self.replica_sets.task.abort();
    }
}

fn namespaced<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl KubeObserver {
    /// Starts watching with `client` as `config` says.
    pub fn spawn(client: Client, config: ObserverConfig) -> Self {
        let workloads = || match &config.label_selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        };
        let nodes = match &config.node_label_selector {
            Some(selector) => watcher::Config::default().labels(selector),
            None => watcher::Config::default(),
        };
        let ns = config.namespace.as_deref();
        Self {
            pods: Watched::spawn("pods", namespaced(&client, ns), workloads()),
            nodes: Watched::spawn("nodes", Api::all(client.clone()), nodes),
            deployments: Watched::spawn("deployments", namespaced(&client, ns), workloads()),
            replica_sets: Watched::spawn("replicasets", namespaced(&client, ns), workloads()),
            config,
        }
    }

    /// `Err(reasons)` unless every store is listed and every watch healthy.
    fn check(&self) -> Result<(), String> {
        let reasons: Vec<String> = [
            self.pods.check(),
            self.nodes.check(),
            self.deployments.check(),
            self.replica_sets.check(),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    /// Waits until every store has been listed once, at most `timeout`.
    ///
    /// # Errors
    /// [`ObserverError::NotSynced`] with the stores still missing or failing.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<(), ObserverError> {
        let all = async {
            // A store's writer lives as long as its task: these only fail if
            // the task ended, which `check` then reports.
            let _ = self.pods.store.wait_until_ready().await;
            let _ = self.nodes.store.wait_until_ready().await;
            let _ = self.deployments.store.wait_until_ready().await;
            let _ = self.replica_sets.store.wait_until_ready().await;
        };
        let _ = tokio::time::timeout(timeout, all).await;
        let ready = [
            self.pods.store.wait_until_ready().now_or_never(),
            self.nodes.store.wait_until_ready().now_or_never(),
            self.deployments.store.wait_until_ready().now_or_never(),
            self.replica_sets.store.wait_until_ready().now_or_never(),
        ]
        .iter()
        .all(|r| matches!(r, Some(Ok(()))));
        if ready {
            return Ok(());
        }
        Err(ObserverError::NotSynced {
            cluster: self.config.cluster_name.clone(),
            waited: timeout,
            reason: self
                .check()
                .err()
                .unwrap_or_else(|| "stores not listed".to_owned()),
        })
    }

    /// The snapshot of what the stores hold now.
    fn read_stores(&self) -> Result<ClusterSnapshot, ClusterError> {
        let unavailable = |reason: String| ClusterError::Unavailable {
            cluster: self.config.cluster_name.clone(),
            reason,
        };
        self.check().map_err(unavailable)?;
        let replica_sets: BTreeMap<(String, String), Arc<ReplicaSet>> = self
            .replica_sets
            .store
            .state()
            .into_iter()
            .map(|rs| ((rs.namespace().unwrap_or_default(), rs.name_any()), rs))
            .collect();
        let mut nodes = self
            .nodes
            .store
            .state()
            .iter()
            .map(|n| convert::node_state(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unavailable(e.to_string()))?;
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut deployments: Vec<_> = self
            .deployments
            .store
            .state()
            .iter()
            .map(|d| convert::deployment_state(d))
            .collect();
        deployments.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut pods = self
            .pods
            .store
            .state()
            .iter()
            .map(|p| {
                convert::pod_state(p, |ns, name| {
                    replica_sets
                        .get(&(ns.to_owned(), name.to_owned()))
                        .map(AsRef::as_ref)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unavailable(e.to_string()))?;
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(ClusterSnapshot {
            taken_at: Some(self.config.clock.now()),
            nodes,
            deployments,
            pods,
        })
    }
}

#[async_trait]
impl ClusterObserver for KubeObserver {
    fn info(&self) -> ClusterInfo {
        ClusterInfo {
            name: self.config.cluster_name.clone(),
            kind: ClusterKind::Kubernetes,
        }
    }

    async fn snapshot(&self) -> Result<ClusterSnapshot, ClusterError> {
        self.read_stores()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use octrix_core::Timestamp;
    use octrix_core::cluster::{ConditionStatus, PodOwner};
    use serde_json::{Value, json};

    fn list(kind: &str, api_version: &str, items: Value) -> Value {
        json!({"apiVersion": api_version, "kind": format!("{kind}List"),
               "metadata": {"resourceVersion": "10"}, "items": items})
    }

    fn list_for(path: &str) -> Value {
        match path {
            "/api/v1/namespaces/shop/pods" => list(
                "Pod",
                "v1",
                json!([{
                    "metadata": {"name": "web-7d-x", "namespace": "shop", "labels": {"app": "web"},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                      "name": "web-7d", "uid": "rs", "controller": true}]},
                    "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
                    "status": {"phase": "Running", "containerStatuses": [
                        {"name": "c", "ready": true, "restartCount": 2, "image": "i", "imageID": ""}]}
                }]),
            ),
            "/api/v1/nodes" => list(
                "Node",
                "v1",
                json!([{
                    "metadata": {"name": "n1"},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]}
                }]),
            ),
            "/apis/apps/v1/namespaces/shop/deployments" => list(
                "Deployment",
                "apps/v1",
                json!([{
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"replicas": 3, "selector": {}, "template": {}},
                    "status": {"readyReplicas": 1}
                }]),
            ),
            "/apis/apps/v1/namespaces/shop/replicasets" => list(
                "ReplicaSet",
                "apps/v1",
                json!([{
                    "metadata": {"name": "web-7d", "namespace": "shop",
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "name": "web", "uid": "d", "controller": true}]},
                    "spec": {"selector": {}}
                }]),
            ),
            other => panic!("unexpected list of {other}"),
        }
    }

    #[tokio::test]
    async fn snapshot_is_unavailable_until_listed_then_maps_owners() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let mut config = ObserverConfig::new("mock");
        config.namespace = Some("shop".into());
        config.label_selector = Some("app=web".into());
        let at = Timestamp::from_second(1_700_000_000).expect("valid");
        config.clock = Arc::new(move || at);
        let observer = KubeObserver::spawn(client, config);

        let err = observer.snapshot().await.expect_err("nothing listed yet");
        let ClusterError::Unavailable { cluster, reason } = err else {
            panic!("expected Unavailable, got {err:?}");
        };
        assert_eq!(cluster, "mock");
        for resource in ["pods", "nodes", "deployments", "replicasets"] {
            assert!(
                reason.contains(&format!("{resource} not listed yet")),
                "{reason}"
            );
        }

        // Answer the four lists; hold the watches open.
        let mut watches = Vec::new();
        let mut listed = Vec::new();
        while listed.len() < 4 {
            let (request, send) = handle.next_request().await.expect("a request");
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            if query.contains("watch=true") {
                watches.push(send);
                continue;
            }
            let filtered = query.contains("labelSelector=app%3Dweb");
            assert_eq!(filtered, path != "/api/v1/nodes", "{path}?{query}");
            let body = serde_json::to_vec(&list_for(&path)).expect("JSON");
            send.send_response(
                Response::builder()
                    .body(Body::from(body))
                    .expect("response"),
            );
            listed.push(path);
        }
        observer
            .wait_until_ready(Duration::from_secs(5))
            .await
            .expect("ready");
        let snapshot = observer.snapshot().await.expect("snapshot");
        assert_eq!(snapshot.taken_at, Some(at));
        let pod = snapshot.pod("shop", "web-7d-x").expect("pod");
        assert_eq!(pod.owner, PodOwner::Deployment("web".into()));
        assert_eq!(pod.restarts(), 2);
        assert!(pod.is_ready());
        let deployment = snapshot.deployment("shop", "web").expect("deployment");
        assert_eq!((deployment.replicas, deployment.ready_replicas), (3, 1));
        assert_eq!(
            snapshot.node("n1").expect("node").ready,
            ConditionStatus::True
        );
        drop(watches);
    }
}
