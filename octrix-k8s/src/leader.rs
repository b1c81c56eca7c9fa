//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! Octrix replicas only one heals and injects faults while all serve reads.
//!
//! The algorithm is client-go's (`tools/leaderelection`):
//!
//! * every [`LeaseConfig::retry_period`] each candidate reads the Lease;
//! * a Lease held by another identity is left alone until its record (holder
//!   and renew time) has not changed for the lease's duration *as measured by
//!   this candidate's own monotonic clock*, so clock skew between replicas
//!   does not matter; a released Lease (no holder) is free at once;
//! * acquiring and renewing replace the Lease with the `resourceVersion` that
//!   was read: of two candidates racing, the API server accepts one and
//!   answers the other 409 Conflict;
//! * a leader that has not renewed for [`LeaseConfig::renew_deadline`]
//!   (shorter than the lease duration) steps down before anybody else can
//!   take over, so two replicas never both believe they lead;
//! * [`LeaderElector::stop`] steps down and releases the Lease so a successor
//!   takes over within one retry period; a replica that dies without releasing
//!   is replaced within the lease duration.
//!
//! kube-lease-manager (the maintained crate for kube 5) was considered: it
//! keeps reporting leadership while renewals fail, which would let a cut-off
//! replica keep healing next to its successor, hence this module.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::rbac::{self, ApiOp};

/// Where and how to elect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (the pod name in a cluster).
    pub identity: String,
    /// How long a Lease stays held without renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Pause between two attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's timings: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why an election step or the release failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// A Lease request failed.
    #[error("cannot {verb} lease {lease}: {source}", verb = op.verb)]
    Request {
        /// What was attempted.
        op: ApiOp,
        /// The Lease, as `namespace/name`.
        lease: String,
        /// kube's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The timings cannot work: the renew deadline must be shorter than the
    /// lease duration and longer than the retry period.
    #[error(
        "invalid lease timings: need retry period {retry_period:?} < renew deadline {renew_deadline:?} < lease duration {lease_duration:?}"
    )]
    InvalidTimings {
        /// The lease duration.
        lease_duration: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
        /// The retry period.
        retry_period: Duration,
    },
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Another identity holds it and it has not expired: wait.
    Wait {
        /// The holder.
        holder: String,
    },
    /// Take it (free, released or expired).
    Acquire,
    /// This candidate holds it: renew.
    Renew,
}

/// Decides from a Lease's spec, how long its record has been unchanged as
/// seen by this candidate (`unchanged_for`), and this candidate's identity.
pub fn decide(
    spec: &LeaseSpec,
    identity: &str,
    unchanged_for: Duration,
    default_duration: Duration,
) -> Decision {
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    match holder {
        None => Decision::Acquire,
        Some(h) if h == identity => Decision::Renew,
        Some(h) => {
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(default_duration, Duration::from_secs);
            if unchanged_for >= duration {
                Decision::Acquire
            } else {
                Decision::Wait {
                    holder: h.to_owned(),
                }
            }
        }
    }
}

/// The record of a Lease that expiry is measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
}

struct Election {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<(Record, Instant)>,
    last_renewal: Option<Instant>,
    leader: watch::Sender<bool>,
}

impl Election {
    fn lease_id(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn error(&self, op: ApiOp, source: kube::Error) -> LeaderError {
        LeaderError::Request {
            op,
            lease: self.lease_id(),
            source: Box::new(source),
        }
    }

    fn set_leader(&mut self, leading: bool) {
        let changed = self.leader.send_if_modified(|l| {
            let changed = *l != leading;
            *l = leading;
            changed
        });
        if changed {
            tracing::info!(
                identity = %self.config.identity,
                lease = %self.lease_id(),
                leading,
                "leadership changed"
            );
        }
        if !leading {
            self.last_renewal = None;
        }
    }

    fn spec_for(&self, previous: Option<&LeaseSpec>, now: MicroTime) -> LeaseSpec {
        let renewing = previous
            .and_then(|s| s.holder_identity.as_deref())
            .is_some_and(|h| h == self.config.identity);
        let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: if renewing {
                previous.and_then(|s| s.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if renewing || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew; returns whether this candidate leads.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaderError> {
        let now = MicroTime(jiff::Timestamp::now());
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.error(rbac::GET_LEASE, e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec_for(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.error(rbac::CREATE_LEASE, e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = Record {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.clone(),
        };
        let unchanged_since = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record, at));
                at
            }
        };
        match decide(
            &spec,
            &self.config.identity,
            unchanged_since.elapsed(),
            self.config.lease_duration,
        ) {
            Decision::Wait { holder } => {
                tracing::debug!(identity = %self.config.identity, %holder, "lease held by another candidate");
                return Ok(false);
            }
            Decision::Acquire | Decision::Renew => {}
        }
        lease.spec = Some(self.spec_for(Some(&spec), now));
        // `lease.metadata.resource_version` is the one read: a concurrent
        // writer makes this replace fail with 409 Conflict.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.error(rbac::UPDATE_LEASE, e)),
        }
    }

    async fn step(&mut self) {
        let leading = *self.leader.borrow();
        match self.try_acquire_or_renew().await {
            Ok(true) => {
                self.last_renewal = Some(Instant::now());
                self.set_leader(true);
            }
            Ok(false) => self.set_leader(false),
            Err(error) => {
                tracing::warn!(identity = %self.config.identity, %error, "lease acquire/renew failed");
                let expired = self
                    .last_renewal
                    .is_none_or(|at| at.elapsed() >= self.config.renew_deadline);
                if leading && expired {
                    self.set_leader(false);
                }
            }
        }
    }

    /// Gives the Lease up if this candidate holds it.
    async fn release(&mut self) -> Result<(), LeaderError> {
        self.set_leader(false);
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.error(rbac::GET_LEASE, e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // Somebody else wrote the Lease meanwhile: it is not ours to release.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(self.error(rbac::UPDATE_LEASE, e)),
        }
    }
}

/// Takes part in the election in a background task.
///
/// Dropping it stops the task without releasing the Lease (as a crash
/// would); [`LeaderElector::stop`] releases it.
pub struct LeaderElector {
    identity: String,
    leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), LeaderError>>>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("identity", &self.identity)
            .field("is_leader", &self.is_leader())
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// Starts campaigning with `client` for the Lease `config` names.
    ///
    /// # Errors
    /// [`LeaderError::InvalidTimings`] unless retry period < renew deadline <
    /// lease duration.
    pub fn spawn(client: Client, config: LeaseConfig) -> Result<Self, LeaderError> {
        if !(config.retry_period < config.renew_deadline
            && config.renew_deadline < config.lease_duration)
        {
            return Err(LeaderError::InvalidTimings {
                lease_duration: config.lease_duration,
                renew_deadline: config.renew_deadline,
                retry_period: config.retry_period,
            });
        }
        let (leader_tx, leader) = watch::channel(false);
        let (stop, mut stopped) = oneshot::channel();
        let identity = config.identity.clone();
        let mut election = Election {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            last_renewal: None,
            leader: leader_tx,
        };
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(election.config.retry_period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => return election.release().await,
                    _ = ticks.tick() => election.step().await,
                }
            }
        });
        Ok(Self {
            identity,
            leader,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this candidate leads now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// A channel that holds `true` while this candidate leads; pass it to
    /// [`KubeActuator::with_leader`](crate::actuator::KubeActuator::with_leader).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Steps down, releases the Lease if held, and ends the task.
    ///
    /// # Errors
    /// [`LeaderError::Request`] when the release could not be written (the
    /// Lease then expires after its duration).
    pub async fn stop(mut self) -> Result<(), LeaderError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for LeaderElector {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, duration: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: duration,
            ..LeaseSpec::default()
        }
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn free_or_released_lease_is_acquired() {
        assert_eq!(
            decide(&spec(None, None), "a", Duration::ZERO, D),
            Decision::Acquire
        );
        assert_eq!(
            decide(&spec(Some(""), Some(1)), "a", Duration::ZERO, D),
            Decision::Acquire
        );
    }

    #[test]
    fn own_lease_is_renewed() {
        assert_eq!(
            decide(&spec(Some("a"), Some(15)), "a", Duration::from_secs(100), D),
            Decision::Renew
        );
    }

    #[test]
    fn others_lease_waits_for_its_own_duration() {
        let held = spec(Some("b"), Some(5));
        assert_eq!(
            decide(&held, "a", Duration::from_secs(4), D),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(
            decide(&held, "a", Duration::from_secs(5), D),
            Decision::Acquire
        );
        // Without a duration on the lease, the configured one applies.
        let no_duration = spec(Some("b"), None);
        assert_eq!(
            decide(&no_duration, "a", Duration::from_secs(14), D),
            Decision::Wait { holder: "b".into() }
        );
        assert_eq!(decide(&no_duration, "a", D, D), Decision::Acquire);
    }

    #[tokio::test]
    async fn timings_are_validated() {
        let (service, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = Client::new(service, "default");
        let mut config = LeaseConfig::new("default", "octrix", "a");
        config.renew_deadline = config.lease_duration;
        let err = LeaderElector::spawn(client, config).expect_err("invalid");
        assert!(matches!(err, LeaderError::InvalidTimings { .. }), "{err}");
    }

    type Handle = tower_test::mock::Handle<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >;

    async fn next(
        handle: &mut Handle,
        status: u16,
        reply: impl FnOnce(&serde_json::Value) -> serde_json::Value,
    ) -> (http::Method, String, serde_json::Value) {
        let (request, send) = handle.next_request().await.expect("a request");
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        let out = serde_json::to_vec(&reply(&body)).expect("JSON");
        send.send_response(
            http::Response::builder()
                .status(status)
                .body(kube::client::Body::from(out))
                .expect("response"),
        );
        (method, path, body)
    }

    fn status(code: u16, reason: &str) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": reason})
    }

    const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/octrix/leases/octrix-leader";

    #[tokio::test(start_paused = true)]
    async fn acquires_by_create_renews_by_guarded_replace_and_steps_down_on_conflict() {
        let (service, mut handle) = tower_test::mock::pair();
        let elector = LeaderElector::spawn(
            Client::new(service, "default"),
            LeaseConfig::new("octrix", "octrix-leader", "a"),
        )
        .expect("valid");
        let mut leading = elector.subscribe();
        assert!(!elector.is_leader());

        let (method, path, _) = next(&mut handle, 404, |_| status(404, "NotFound")).await;
        assert_eq!((method, path.as_str()), (http::Method::GET, LEASE));
        let (method, path, created) = next(&mut handle, 201, |body| {
            let mut lease = body.clone();
            lease["metadata"]["resourceVersion"] = "1".into();
            lease
        })
        .await;
        assert_eq!(
            (method, path.as_str()),
            (
                http::Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/octrix/leases"
            )
        );
        assert_eq!(created["metadata"]["name"], "octrix-leader");
        assert_eq!(created["spec"]["holderIdentity"], "a");
        assert_eq!(created["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(created["spec"]["leaseTransitions"], 0);
        leading.changed().await.expect("sender alive");
        assert!(elector.is_leader());

        // One retry period later: read, then replace guarded by the resourceVersion read.
        let mut stored = created.clone();
        stored["metadata"]["resourceVersion"] = "7".into();
        let (method, _, _) = next(&mut handle, 200, |_| stored.clone()).await;
        assert_eq!(method, http::Method::GET);
        let (method, path, renewed) = next(&mut handle, 409, |_| status(409, "Conflict")).await;
        assert_eq!((method, path.as_str()), (http::Method::PUT, LEASE));
        assert_eq!(renewed["metadata"]["resourceVersion"], "7");
        assert_eq!(renewed["spec"]["holderIdentity"], "a");
        assert_eq!(
            renewed["spec"]["acquireTime"],
            created["spec"]["acquireTime"]
        );
        assert_eq!(renewed["spec"]["leaseTransitions"], 0);
        // Somebody else wrote the lease: step down at once.
        leading.changed().await.expect("sender alive");
        assert!(!elector.is_leader());

        // Stopping releases nothing held by another candidate.
        let stopping = tokio::spawn(elector.stop());
        let mut taken = stored.clone();
        taken["spec"]["holderIdentity"] = "b".into();
        let (method, _, _) = next(&mut handle, 200, |_| taken.clone()).await;
        assert_eq!(method, http::Method::GET);
        stopping.await.expect("task").expect("stopped");
        assert!(handle.next_request().await.is_none(), "no write after stop");
    }
}
