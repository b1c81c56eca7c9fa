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
                source: kube::Error::Api(s),
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
