//! [`KubeActuator`]: the core's [`ClusterAction`]s carried out on Kubernetes.
//!
//! | action | requests |
//! |---|---|
//! | `RestartPod` | `GET` the pod, `DELETE` it with its UID as precondition and the configured grace period |
//! | `ScaleDeployment` | `GET` then merge-`PATCH` the `deployments/scale` subresource |
//! | `CordonNode` / `UncordonNode` | `GET` the node, merge-`PATCH` `spec.unschedulable` |
//! | `DrainNode` | cordon, list the node's pods, `POST` an Eviction for each (policy/v1, or policy/v1beta1 where v1 is not served) |
//!
//! Dry runs send the same requests with `dryRun=All`: the API server validates
//! them (admission, disruption budgets) and persists nothing. Every action
//! that is not a dry run is recorded as an `events.k8s.io/v1` Event on its
//! object, reported by controller `octrix`; a failure to record the Event is
//! logged and noted in the report's summary, it does not fail the action.
//!
//! A drain skips DaemonSet and mirror pods and pods already terminating. An
//! eviction refused by a PodDisruptionBudget (HTTP 429) is retried every
//! [`ActuatorConfig::eviction_retry_interval`] until the drain's timeout; the
//! pods still not evicted then are listed in
//! [`ActionReport::not_evicted`] with the reason. A drain does not wait for
//! evicted pods to terminate (that is the kubelet's part): an accepted
//! eviction counts as evicted.
//!
//! Bounds on replica counts and cooldowns are the core's business: the
//! actuator does what it is told.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ConstantBuilder, Retryable};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use octrix_core::cluster::{
    ActionReport, ClusterAction, ClusterActuator, ClusterError, ClusterInfo, ClusterKind,
};
use serde_json::json;
use tokio::sync::{OnceCell, watch};
use tokio::time::Instant;

use crate::api::{self, ApiError, RetryConfig};
use crate::convert::drain_skips;
use crate::rbac::{self, ApiOp};

/// The field manager and event reporting controller of every change.
pub const FIELD_MANAGER: &str = "octrix";

/// How the actuator acts.
#[derive(Debug, Clone)]
pub struct ActuatorConfig {
    /// Name the cluster is reported under (the kube context).
    pub cluster_name: String,
    /// Grace period of a restart's delete; `None` uses the pod's own
    /// `terminationGracePeriodSeconds`.
    pub restart_grace_period_seconds: Option<u32>,
    /// Who the recorded Events say reported them.
    pub reporter: Reporter,
    /// Retries of failed requests.
    pub retry: RetryConfig,
    /// Pause between two attempts at an eviction a disruption budget refused.
    pub eviction_retry_interval: Duration,
}

impl ActuatorConfig {
    /// Defaults: the pod's own grace period, reporter `octrix` with the host
    /// name (the pod name in a cluster) as instance, evictions retried every 5 s.
    pub fn new(cluster_name: impl Into<String>) -> Self {
        Self {
            cluster_name: cluster_name.into(),
            restart_grace_period_seconds: None,
            reporter: Reporter::from(FIELD_MANAGER),
            retry: RetryConfig::default(),
            eviction_retry_interval: Duration::from_secs(5),
        }
    }
}

/// Which Eviction API the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionVersion {
    /// `policy/v1` (Kubernetes 1.22 and later).
    V1,
    /// `policy/v1beta1` (before 1.22).
    V1Beta1,
}

impl EvictionVersion {
    /// The `apiVersion` of the Eviction body.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "policy/v1",
            Self::V1Beta1 => "policy/v1beta1",
        }
    }
}

/// Carries out [`ClusterAction`]s on a Kubernetes cluster.
pub struct KubeActuator {
    client: Client,
    config: ActuatorConfig,
    recorder: Recorder,
    eviction_version: OnceCell<EvictionVersion>,
    leader: Option<watch::Receiver<bool>>,
}

impl Debug for KubeActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeActuator")
            .field("config", &self.config)
            .field("eviction_version", &self.eviction_version.get())
            .field("leader_gated", &self.leader.is_some())
            .finish_non_exhaustive()
    }
}

/// The outcome of one eviction.
enum Eviction {
    Evicted,
    Refused(String),
}

impl KubeActuator {
    /// An actuator acting through `client`.
    pub fn new(client: Client, config: ActuatorConfig) -> Self {
        let recorder = Recorder::new(client.clone(), config.reporter.clone());
        Self {
            client,
            config,
            recorder,
            eviction_version: OnceCell::new(),
            leader: None,
        }
    }

    /// Only acts while `leader` is `true` (see
    /// [`LeaderElector::subscribe`](crate::leader::LeaderElector::subscribe));
    /// otherwise [`ClusterActuator::execute`] is
    /// [`ClusterError::Rejected`]. Dry runs are always allowed.
    #[must_use]
    pub fn with_leader(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leader = Some(leader);
        self
    }

    async fn call<T, F, Fut>(&self, op: ApiOp, target: &str, request: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = kube::Result<T>>,
    {
        api::call(&self.config.retry, op, target, request).await
    }

    /// Records an Event about `regarding`; returns a note for the summary
    /// when that failed.
    async fn record(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        action: &str,
        reason: &str,
        note: &str,
    ) -> String {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.to_owned()),
            action: action.to_owned(),
            secondary: None,
        };
        let target = format!(
            "event about {}/{}",
            regarding.kind.as_deref().unwrap_or_default(),
            regarding.name.as_deref().unwrap_or_default()
        );
        match self
            .call(rbac::CREATE_EVENT, &target, || {
                self.recorder.publish(&event, regarding)
            })
            .await
        {
            Ok(()) => String::new(),
            Err(error) => {
                tracing::warn!(%error, "could not record the action as a Kubernetes Event");
                format!(" (event not recorded: {error})")
            }
        }
    }

    async fn restart_pod(
        &self,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<ActionReport, ApiError> {
        let target = format!("pod/{namespace}/{name}");
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = self.call(rbac::GET_POD, &target, || pods.get(name)).await?;
        let params = DeleteParams {
            dry_run,
            grace_period_seconds: self.config.restart_grace_period_seconds,
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let grace = self
            .config
            .restart_grace_period_seconds
            .map(i64::from)
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        let deleted = self
            .call(rbac::DELETE_POD, &target, || pods.delete(name, &params))
            .await;
        match deleted {
            Ok(_) => {}
            // A retry after a delete that went through finds the pod gone.
            Err(e) if e.status_code() == Some(404) && !dry_run => {}
            Err(e) => return Err(e),
        }
        if dry_run {
            return Ok(report(
                true,
                format!("would delete pod {namespace}/{name} (grace period {grace}s)"),
            ));
        }
        let summary = format!("deleted pod {namespace}/{name} (grace period {grace}s)");
        let note = self
            .record(
                &pod.object_ref(&()),
                EventType::Normal,
                "RestartPod",
                "Restarted",
                &format!("Octrix {summary} so that its controller replaces it"),
            )
            .await;
        Ok(report(false, summary + &note))
    }

    async fn scale_deployment(
        &self,
        namespace: &str,
        name: &str,
        replicas: u32,
        dry_run: bool,
    ) -> Result<ActionReport, ApiError> {
        let target = format!("deployment/{namespace}/{name}");
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let current = self
            .call(rbac::GET_SCALE, &target, || deployments.get_scale(name))
            .await?;
        let from = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let params = PatchParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        let scaled = self
            .call(rbac::PATCH_SCALE, &target, || {
                deployments.patch_scale(name, &params, &patch)
            })
            .await?;
        let to = scaled.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if dry_run {
            return Ok(report(
                true,
                format!("would scale deployment {namespace}/{name} from {from} to {to}"),
            ));
        }
        let summary = format!("scaled deployment {namespace}/{name} from {from} to {to}");
        let regarding = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: scaled.metadata.uid.clone(),
            ..ObjectReference::default()
        };
        let note = self
            .record(
                &regarding,
                EventType::Normal,
                "ScaleDeployment",
                "Scaled",
                &format!("Octrix {summary}"),
            )
            .await;
        Ok(report(false, summary + &note))
    }

    /// Sets `spec.unschedulable`; returns the node and whether it changed.
    async fn set_unschedulable(
        &self,
        name: &str,
        unschedulable: bool,
        dry_run: bool,
    ) -> Result<(Node, bool), ApiError> {
        let target = format!("node/{name}");
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = self
            .call(rbac::GET_NODE, &target, || nodes.get(name))
            .await?;
        let was = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if was == unschedulable {
            return Ok((node, false));
        }
        let params = PatchParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(json!({ "spec": { "unschedulable": unschedulable } }));
        let patched = self
            .call(rbac::PATCH_NODE, &target, || {
                nodes.patch(name, &params, &patch)
            })
            .await?;
        Ok((patched, true))
    }

    async fn cordon(
        &self,
        name: &str,
        cordon: bool,
        dry_run: bool,
    ) -> Result<ActionReport, ApiError> {
        let (node, changed) = self.set_unschedulable(name, cordon, dry_run).await?;
        let verb = if cordon { "cordon" } else { "uncordon" };
        let summary = match (changed, dry_run) {
            (false, _) => format!("node {name} was already {verb}ed"),
            (true, true) => format!("would {verb} node {name}"),
            (true, false) => format!("{verb}ed node {name}"),
        };
        if dry_run {
            return Ok(report(true, summary));
        }
        let (action, reason) = if cordon {
            ("CordonNode", "Cordoned")
        } else {
            ("UncordonNode", "Uncordoned")
        };
        let note = self
            .record(
                &node.object_ref(&()),
                EventType::Normal,
                action,
                reason,
                &format!("Octrix {summary}"),
            )
            .await;
        Ok(report(false, summary + &note))
    }

    /// Discovers once whether `policy/v1` is served.
    async fn eviction_version(&self) -> Result<EvictionVersion, ApiError> {
        self.eviction_version
            .get_or_try_init(|| async {
                let groups = self
                    .call(rbac::DISCOVERY, "/apis", || self.client.list_api_groups())
                    .await?;
                let v1 = groups
                    .groups
                    .iter()
                    .filter(|g| g.name == "policy")
                    .flat_map(|g| &g.versions)
                    .any(|v| v.version == "v1");
                Ok(if v1 {
                    EvictionVersion::V1
                } else {
                    EvictionVersion::V1Beta1
                })
            })
            .await
            .copied()
    }

    /// The Eviction request for `namespace/name`.
    fn eviction_request(
        version: EvictionVersion,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<http::Request<Vec<u8>>, kube::Error> {
        let mut uri = format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction");
        let mut body = json!({
            "apiVersion": version.api_version(),
            "kind": "Eviction",
            "metadata": { "name": name, "namespace": namespace },
        });
        if dry_run {
            uri.push_str("?dryRun=All");
            body["deleteOptions"] = json!({ "dryRun": ["All"] });
        }
        let body = serde_json::to_vec(&body).map_err(kube::Error::SerdeError)?;
        http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(kube::Error::HttpError)
    }

    /// Evicts one pod, retrying budget refusals (429) and transient errors
    /// until `deadline`.
    async fn evict(
        &self,
        version: EvictionVersion,
        pod: &Pod,
        deadline: Instant,
        dry_run: bool,
    ) -> Result<Eviction, ApiError> {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let target = format!("pod/{namespace}/{name}");
        let last_refusal = Mutex::new(String::new());
        let attempt = || async {
            let request = Self::eviction_request(version, &namespace, &name, dry_run)?;
            self.client.request_text(request).await.map(drop)
        };
        let backoff = ConstantBuilder::default()
            .with_delay(self.config.eviction_retry_interval)
            .without_max_times();
        let retried = attempt
            .retry(backoff)
            .when(api::is_retryable)
            .notify(|error, _| {
                let mut last = last_refusal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *last = match error {
                    kube::Error::Api(s) if s.code == 429 => {
                        format!("refused by a disruption budget: {}", s.message)
                    }
                    other => other.to_string(),
                };
            });
        let outcome = match tokio::time::timeout_at(deadline, retried).await {
            Err(_elapsed) => {
                let last = last_refusal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                return Ok(Eviction::Refused(format!(
                    "{namespace}/{name}: not evicted before the drain timeout; {last}"
                )));
            }
            Ok(outcome) => outcome,
        };
        match outcome {
            Ok(()) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Eviction::Evicted),
            Err(kube::Error::Api(s)) if s.code == 403 => Err(ApiError::Request {
                op: rbac::CREATE_EVICTION,
                target,
                source: Box::new(kube::Error::Api(s)),
            }),
            Err(kube::Error::Api(s)) if s.code == 429 => Ok(Eviction::Refused(format!(
                "{namespace}/{name}: refused by a disruption budget: {}",
                s.message
            ))),
            Err(kube::Error::Api(s)) => Ok(Eviction::Refused(format!(
                "{namespace}/{name}: HTTP {}: {}",
                s.code, s.message
            ))),
            Err(other) => Ok(Eviction::Refused(format!("{namespace}/{name}: {other}"))),
        }
    }

    async fn drain(
        &self,
        name: &str,
        timeout_seconds: u32,
        dry_run: bool,
    ) -> Result<ActionReport, ApiError> {
        let deadline = Instant::now() + Duration::from_secs(u64::from(timeout_seconds));
        let (node, _) = self.set_unschedulable(name, true, dry_run).await?;
        let version = self.eviction_version().await?;
        let pods: Api<Pod> = Api::all(self.client.clone());
        let params = ListParams::default().fields(&format!("spec.nodeName={name}"));
        let on_node = self
            .call(rbac::LIST_PODS, &format!("pods on node/{name}"), || {
                pods.list(&params)
            })
            .await?;
        let mut skipped = 0usize;
        let mut to_evict = Vec::new();
        for pod in &on_node.items {
            if drain_skips(pod).is_some() || pod.metadata.deletion_timestamp.is_some() {
                skipped += 1;
            } else {
                to_evict.push(pod);
            }
        }
        let outcomes = futures::future::join_all(
            to_evict
                .iter()
                .map(|pod| self.evict(version, pod, deadline, dry_run)),
        )
        .await;
        let mut evicted = 0usize;
        let mut not_evicted = Vec::new();
        for outcome in outcomes {
            match outcome? {
                Eviction::Evicted => evicted += 1,
                Eviction::Refused(reason) => not_evicted.push(reason),
            }
        }
        not_evicted.sort();
        let summary = format!(
            "{}drained node {name}: {evicted} pods evicted ({}), {} not evicted, {skipped} skipped (DaemonSet, mirror or terminating)",
            if dry_run { "would have " } else { "" },
            version.api_version(),
            not_evicted.len(),
        );
        if dry_run {
            return Ok(ActionReport {
                dry_run,
                summary,
                not_evicted,
            });
        }
        let type_ = if not_evicted.is_empty() {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let mut note_text = format!("Octrix {summary}");
        for reason in &not_evicted {
            note_text.push_str("; ");
            note_text.push_str(reason);
        }
        // An Event note holds at most 1 kB.
        let note_text = truncate(&note_text, 1000);
        let note = self
            .record(
                &node.object_ref(&()),
                type_,
                "DrainNode",
                "Drained",
                &note_text,
            )
            .await;
        Ok(ActionReport {
            dry_run,
            summary: summary + &note,
            not_evicted,
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn report(dry_run: bool, summary: String) -> ActionReport {
    ActionReport {
        dry_run,
        summary,
        not_evicted: Vec::new(),
    }
}

#[async_trait]
impl ClusterActuator for KubeActuator {
    fn info(&self) -> ClusterInfo {
        ClusterInfo {
            name: self.config.cluster_name.clone(),
            kind: ClusterKind::Kubernetes,
        }
    }

    async fn execute(
        &self,
        action: &ClusterAction,
        dry_run: bool,
    ) -> Result<ActionReport, ClusterError> {
        if !dry_run && self.leader.as_ref().is_some_and(|l| !*l.borrow()) {
            return Err(ClusterError::Rejected {
                target: action.target(),
                reason:
                    "this Octrix replica is not the leader; only the leader changes the cluster"
                        .to_owned(),
            });
        }
        let result = match action {
            ClusterAction::RestartPod { namespace, pod } => {
                self.restart_pod(namespace, pod, dry_run).await
            }
            ClusterAction::ScaleDeployment {
                namespace,
                deployment,
                replicas,
            } => {
                self.scale_deployment(namespace, deployment, *replicas, dry_run)
                    .await
            }
            ClusterAction::CordonNode { node } => self.cordon(node, true, dry_run).await,
            ClusterAction::UncordonNode { node } => self.cordon(node, false, dry_run).await,
            ClusterAction::DrainNode {
                node,
                timeout_seconds,
            } => self.drain(node, *timeout_seconds, dry_run).await,
        };
        result.map_err(|e| e.into_cluster_error(&self.config.cluster_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use kube::client::Body;
    use serde_json::Value;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn actuator() -> (KubeActuator, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let mut config = ActuatorConfig::new("mock");
        config.reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some("octrix-0".into()),
        };
        config.retry = RetryConfig {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retries: 3,
        };
        config.eviction_retry_interval = Duration::from_millis(20);
        (KubeActuator::new(client, config), handle)
    }

    /// One request as the server saw it.
    #[derive(Debug)]
    struct Seen {
        method: Method,
        path: String,
        query: String,
        content_type: String,
        body: Value,
    }

    async fn next(handle: &mut Handle, status: u16, reply: impl FnOnce(&Seen) -> Value) -> Seen {
        let (request, send) = handle.next_request().await.expect("a request");
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        // kube leaves an empty first pair (`?&a=b`): compare the pairs only.
        let query = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        let seen = Seen {
            method,
            path,
            query,
            content_type,
            body,
        };
        let reply = serde_json::to_vec(&reply(&seen)).expect("JSON");
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(reply))
                .expect("response"),
        );
        seen
    }

    fn status(code: u16, reason: &str, message: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
               "code": code, "reason": reason, "message": message})
    }

    fn pod(namespace: &str, name: &str, extra: Value) -> Value {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "i"}], "terminationGracePeriodSeconds": 30}
        });
        if let (Some(meta), Some(extra)) = (pod["metadata"].as_object_mut(), extra.as_object()) {
            meta.extend(extra.clone());
        }
        pod
    }

    fn node(name: &str, unschedulable: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": name, "uid": format!("uid-{name}")},
               "spec": {"unschedulable": unschedulable}})
    }

    fn scale(replicas: i64) -> Value {
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"},
               "spec": {"replicas": replicas}, "status": {"replicas": 2}})
    }

    /// The client is gone once the actuator is dropped: no request is left.
    async fn assert_no_more_requests(actuator: KubeActuator, mut handle: Handle) {
        drop(actuator);
        assert!(handle.next_request().await.is_none(), "unexpected request");
    }

    #[tokio::test]
    async fn restart_deletes_with_uid_precondition_and_records_an_event() {
        let (actuator, mut handle) = actuator();
        let action = ClusterAction::RestartPod {
            namespace: "shop".into(),
            pod: "web-1".into(),
        };
        let run = tokio::spawn(async move {
            let out = actuator.execute(&action, false).await;
            (actuator, out)
        });
        let get = next(&mut handle, 200, |_| pod("shop", "web-1", json!({}))).await;
        assert_eq!(
            (get.method, get.path.as_str()),
            (Method::GET, "/api/v1/namespaces/shop/pods/web-1")
        );
        let delete = next(&mut handle, 200, |_| pod("shop", "web-1", json!({}))).await;
        assert_eq!(delete.method, Method::DELETE);
        assert_eq!(delete.path, "/api/v1/namespaces/shop/pods/web-1");
        assert_eq!(delete.query, "");
        assert_eq!(delete.body["preconditions"]["uid"], "uid-web-1");
        assert_eq!(delete.body.get("dryRun"), None);
        assert_eq!(delete.body.get("gracePeriodSeconds"), None);
        let event = next(&mut handle, 201, |s| s.body.clone()).await;
        assert_eq!(event.method, Method::POST);
        assert_eq!(event.path, "/apis/events.k8s.io/v1/namespaces/shop/events");
        assert_eq!(event.body["reason"], "Restarted");
        assert_eq!(event.body["action"], "RestartPod");
        assert_eq!(event.body["type"], "Normal");
        assert_eq!(event.body["reportingController"], "octrix");
        assert_eq!(event.body["reportingInstance"], "octrix-0");
        assert_eq!(event.body["regarding"]["kind"], "Pod");
        assert_eq!(event.body["regarding"]["uid"], "uid-web-1");
        let (actuator, out) = run.await.expect("task");
        let report = out.expect("restarted");
        assert!(!report.dry_run);
        assert_eq!(report.summary, "deleted pod shop/web-1 (grace period 30s)");
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn dry_run_restart_asks_the_server_and_records_nothing() {
        let (mut actuator, mut handle) = actuator();
        actuator.config.restart_grace_period_seconds = Some(0);
        let action = ClusterAction::RestartPod {
            namespace: "shop".into(),
            pod: "web-1".into(),
        };
        let run = tokio::spawn(async move {
            let out = actuator.execute(&action, true).await;
            (actuator, out)
        });
        next(&mut handle, 200, |_| pod("shop", "web-1", json!({}))).await;
        let delete = next(&mut handle, 200, |_| pod("shop", "web-1", json!({}))).await;
        assert_eq!(delete.method, Method::DELETE);
        assert_eq!(delete.body["dryRun"], json!(["All"]));
        assert_eq!(delete.body["gracePeriodSeconds"], 0);
        let (actuator, out) = run.await.expect("task");
        let report = out.expect("validated");
        assert!(report.dry_run);
        assert_eq!(
            report.summary,
            "would delete pod shop/web-1 (grace period 0s)"
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn scale_patches_the_scale_subresource_after_a_conflict() {
        let (actuator, mut handle) = actuator();
        let action = ClusterAction::ScaleDeployment {
            namespace: "shop".into(),
            deployment: "web".into(),
            replicas: 5,
        };
        let run = tokio::spawn(async move {
            let out = actuator.execute(&action, false).await;
            (actuator, out)
        });
        let get = next(&mut handle, 200, |_| scale(2)).await;
        assert_eq!(
            (get.method, get.path.as_str()),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/web/scale"
            )
        );
        // A conflict is retried with backoff.
        let conflict = next(&mut handle, 409, |_| {
            status(409, "Conflict", "the object has been modified")
        })
        .await;
        assert_eq!(conflict.method, Method::PATCH);
        let patch = next(&mut handle, 200, |_| scale(5)).await;
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(
            patch.path,
            "/apis/apps/v1/namespaces/shop/deployments/web/scale"
        );
        assert_eq!(patch.query, "fieldManager=octrix");
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert_eq!(patch.body, json!({"spec": {"replicas": 5}}));
        let event = next(&mut handle, 201, |s| s.body.clone()).await;
        assert_eq!(event.body["regarding"]["kind"], "Deployment");
        assert_eq!(event.body["regarding"]["apiVersion"], "apps/v1");
        assert_eq!(event.body["regarding"]["uid"], "uid-web");
        assert_eq!(event.body["reason"], "Scaled");
        let (actuator, out) = run.await.expect("task");
        assert_eq!(
            out.expect("scaled").summary,
            "scaled deployment shop/web from 2 to 5"
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn dry_run_scale_sends_dry_run_all() {
        let (actuator, mut handle) = actuator();
        let action = ClusterAction::ScaleDeployment {
            namespace: "shop".into(),
            deployment: "web".into(),
            replicas: 0,
        };
        let run = tokio::spawn(async move {
            let out = actuator.execute(&action, true).await;
            (actuator, out)
        });
        next(&mut handle, 200, |_| scale(2)).await;
        let patch = next(&mut handle, 200, |_| scale(0)).await;
        assert_eq!(patch.query, "dryRun=All&fieldManager=octrix");
        let (actuator, out) = run.await.expect("task");
        assert_eq!(
            out.expect("validated").summary,
            "would scale deployment shop/web from 2 to 0"
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn cordon_patches_unschedulable_and_records_a_node_event() {
        let (actuator, mut handle) = actuator();
        let run = tokio::spawn(async move {
            let out = actuator
                .execute(&ClusterAction::CordonNode { node: "n1".into() }, false)
                .await;
            (actuator, out)
        });
        let get = next(&mut handle, 200, |_| node("n1", false)).await;
        assert_eq!(
            (get.method, get.path.as_str()),
            (Method::GET, "/api/v1/nodes/n1")
        );
        let patch = next(&mut handle, 200, |_| node("n1", true)).await;
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.path, "/api/v1/nodes/n1");
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert_eq!(patch.body, json!({"spec": {"unschedulable": true}}));
        let event = next(&mut handle, 201, |s| s.body.clone()).await;
        // Events about cluster-scoped objects go to `default`.
        assert_eq!(
            event.path,
            "/apis/events.k8s.io/v1/namespaces/default/events"
        );
        assert_eq!(event.body["regarding"]["kind"], "Node");
        assert_eq!(event.body["reason"], "Cordoned");
        let (actuator, out) = run.await.expect("task");
        assert_eq!(out.expect("cordoned").summary, "cordoned node n1");
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn uncordon_of_a_schedulable_node_changes_nothing() {
        let (actuator, mut handle) = actuator();
        let run = tokio::spawn(async move {
            let out = actuator
                .execute(&ClusterAction::UncordonNode { node: "n1".into() }, false)
                .await;
            (actuator, out)
        });
        next(&mut handle, 200, |_| node("n1", false)).await;
        let event = next(&mut handle, 201, |s| s.body.clone()).await;
        assert_eq!(event.body["reason"], "Uncordoned");
        let (actuator, out) = run.await.expect("task");
        assert_eq!(
            out.expect("no-op").summary,
            "node n1 was already uncordoned"
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn drain_evicts_with_v1beta1_skips_daemonsets_and_reports_budget_refusals() {
        let (actuator, mut handle) = actuator();
        let run = tokio::spawn(async move {
            let action = ClusterAction::DrainNode {
                node: "n1".into(),
                timeout_seconds: 1,
            };
            let out = actuator.execute(&action, false).await;
            (actuator, out)
        });
        next(&mut handle, 200, |_| node("n1", false)).await;
        let cordon = next(&mut handle, 200, |_| node("n1", true)).await;
        assert_eq!(cordon.body, json!({"spec": {"unschedulable": true}}));
        let discovery = next(&mut handle, 200, |_| {
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "policy", "versions": [{"groupVersion": "policy/v1beta1", "version": "v1beta1"}],
                 "preferredVersion": {"groupVersion": "policy/v1beta1", "version": "v1beta1"}}
            ]})
        })
        .await;
        assert_eq!(discovery.path, "/apis");
        let list = next(&mut handle, 200, |_| {
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                pod("shop", "web-1", json!({})),
                pod("shop", "db-0", json!({})),
                pod("kube-system", "exporter-x", json!({"ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "exporter", "uid": "d", "controller": true}
                ]})),
                pod("kube-system", "etcd-n1", json!({"annotations": {"kubernetes.io/config.mirror": "x"}})),
            ]})
        })
        .await;
        assert_eq!(list.path, "/api/v1/pods");
        assert_eq!(list.query, "fieldSelector=spec.nodeName%3Dn1");
        // web-1 is evicted at once; db-0 is refused by its budget until the timeout.
        let mut refusals = 0;
        let event = loop {
            let (request, send) = handle.next_request().await.expect("a request");
            let path = request.uri().path().to_owned();
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body: Value = serde_json::from_slice(&bytes).expect("JSON");
            let (code, reply) = if path.ends_with("/web-1/eviction") {
                (
                    201,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
                )
            } else if path.ends_with("/db-0/eviction") {
                refusals += 1;
                let message = "Cannot evict pod as it would violate the pod's disruption budget.";
                (429, status(429, "TooManyRequests", message))
            } else {
                (201, body.clone())
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&reply).expect("JSON")))
                    .expect("response"),
            );
            if path.ends_with("/eviction") {
                assert_eq!(body["apiVersion"], "policy/v1beta1");
                assert_eq!(body["kind"], "Eviction");
                assert_eq!(body["metadata"]["namespace"], "shop");
                assert_eq!(body.get("deleteOptions"), None);
                continue;
            }
            break (path, body);
        };
        assert!(refusals >= 3, "db-0 eviction retried ({refusals} attempts)");
        assert_eq!(event.0, "/apis/events.k8s.io/v1/namespaces/default/events");
        assert_eq!(event.1["reason"], "Drained");
        assert_eq!(event.1["type"], "Warning");
        let (actuator, out) = run.await.expect("task");
        let report = out.expect("drained");
        assert_eq!(
            report.summary,
            "drained node n1: 1 pods evicted (policy/v1beta1), 1 not evicted, 2 skipped (DaemonSet, mirror or terminating)"
        );
        assert_eq!(report.not_evicted.len(), 1);
        assert!(
            report.not_evicted[0].starts_with("shop/db-0: not evicted before the drain timeout; refused by a disruption budget: Cannot evict pod"),
            "{}",
            report.not_evicted[0]
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn dry_run_drain_uses_policy_v1_with_dry_run_all() {
        let (actuator, mut handle) = actuator();
        let run = tokio::spawn(async move {
            let action = ClusterAction::DrainNode {
                node: "n1".into(),
                timeout_seconds: 5,
            };
            let out = actuator.execute(&action, true).await;
            (actuator, out)
        });
        next(&mut handle, 200, |_| node("n1", false)).await;
        let cordon = next(&mut handle, 200, |_| node("n1", true)).await;
        assert_eq!(cordon.query, "dryRun=All&fieldManager=octrix");
        next(&mut handle, 200, |_| {
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "policy", "versions": [{"groupVersion": "policy/v1", "version": "v1"}]}
            ]})
        })
        .await;
        next(&mut handle, 200, |_| {
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod("shop", "web-1", json!({}))]})
        })
        .await;
        let eviction = next(
            &mut handle,
            201,
            |_| json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
        )
        .await;
        assert_eq!(eviction.method, Method::POST);
        assert_eq!(eviction.path, "/api/v1/namespaces/shop/pods/web-1/eviction");
        assert_eq!(eviction.query, "dryRun=All");
        assert_eq!(
            eviction.body,
            json!({"apiVersion": "policy/v1", "kind": "Eviction",
                   "metadata": {"name": "web-1", "namespace": "shop"},
                   "deleteOptions": {"dryRun": ["All"]}})
        );
        let (actuator, out) = run.await.expect("task");
        let report = out.expect("validated");
        assert!(report.dry_run);
        assert!(report.not_evicted.is_empty());
        assert_eq!(
            report.summary,
            "would have drained node n1: 1 pods evicted (policy/v1), 0 not evicted, 0 skipped (DaemonSet, mirror or terminating)"
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn forbidden_names_verb_and_resource_and_missing_is_not_found() {
        let (actuator, mut handle) = actuator();
        let run = tokio::spawn(async move {
            let restart = ClusterAction::RestartPod {
                namespace: "shop".into(),
                pod: "web-1".into(),
            };
            let forbidden = actuator.execute(&restart, false).await;
            let missing = actuator
                .execute(
                    &ClusterAction::CordonNode {
                        node: "gone".into(),
                    },
                    false,
                )
                .await;
            (actuator, forbidden, missing)
        });
        next(&mut handle, 200, |_| pod("shop", "web-1", json!({}))).await;
        let message = "pods \"web-1\" is forbidden: User \"x\" cannot delete resource \"pods\"";
        next(&mut handle, 403, |_| status(403, "Forbidden", message)).await;
        next(&mut handle, 404, |_| {
            status(404, "NotFound", "nodes \"gone\" not found")
        })
        .await;
        let (actuator, forbidden, missing) = run.await.expect("task");
        assert_eq!(
            forbidden.expect_err("forbidden"),
            ClusterError::Forbidden {
                verb: "delete".into(),
                resource: "pods".into(),
                message: message.into(),
            }
        );
        assert_eq!(
            missing.expect_err("missing"),
            ClusterError::NotFound {
                target: "node/gone".into()
            }
        );
        assert_no_more_requests(actuator, handle).await;
    }

    #[tokio::test]
    async fn a_follower_does_not_act_but_may_dry_run() {
        let (actuator, mut handle) = actuator();
        let (leading, follower) = watch::channel(false);
        let actuator = actuator.with_leader(follower);
        let cordon = ClusterAction::CordonNode { node: "n1".into() };
        let err = actuator
            .execute(&cordon, false)
            .await
            .expect_err("follower");
        assert!(
            matches!(&err, ClusterError::Rejected { target, reason } if target == "node/n1" && reason.contains("not the leader")),
            "{err}"
        );
        leading.send(true).expect("receiver alive");
        let run = tokio::spawn(async move {
            let out = actuator.execute(&cordon, false).await;
            (actuator, out)
        });
        next(&mut handle, 200, |_| node("n1", true)).await;
        next(&mut handle, 201, |s| s.body.clone()).await;
        let (actuator, out) = run.await.expect("task");
        assert_eq!(
            out.expect("leader acts").summary,
            "node n1 was already cordoned"
        );
        assert_no_more_requests(actuator, handle).await;
    }
}
