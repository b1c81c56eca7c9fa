//! Several replicas on one PostgreSQL database: one leads, the others
//! follow.
//!
//! * The leader holds a lease row in the database ([`SqlStorage::try_lease`])
//!   and renews it; it alone runs the engine's ticks (detection, healing,
//!   chaos) and handles writes.
//! * A follower serves reads: incidents straight from storage, the rest
//!   (rules, runs, action history, healing configuration) from an engine it
//!   reloads from storage every `follower_refresh_ms` and after each write
//!   it forwarded. Writes (every method but `GET`, `HEAD`, `OPTIONS`) are
//!   forwarded to the leader's advertised URL with the caller's headers; when
//!   no leader is known or it does not answer, the answer is 503 with
//!   `Retry-After` saying so. Live event streams are the leader's: a
//!   follower answers them with 503 naming the leader.
//! * When the lease expires (the leader died) or is released (it stopped),
//!   a follower takes it: it reloads the whole state from storage first and
//!   only then ticks and accepts writes.
//!
//! A leader that cannot renew stops acting as one when its last renewal's
//! duration has passed on its own monotonic clock, measured from before it
//! asked: by then the database's clock has passed the expiry it recorded, so
//! two replicas never both act as the leader (with clocks that advance at
//! the same rate; their offsets do not matter).
//!
//! SQLite is single-replica ([`Role::Single`]): there is no lease.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::{AppState, Reload, Restored};
use crate::storage::SqlStorage;

/// The header a follower adds to a request it forwards (its replica id):
/// a replica that is not the leader either answers 503 instead of
/// forwarding again.
pub const FORWARDED_BY: &str = "x-octrix-forwarded-by";

/// Seconds a client is told to wait when no leader can take a write.
const RETRY_AFTER_SECONDS: u64 = 2;

/// What this replica is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The only replica (SQLite, or no lease configured): it leads.
    Single,
    /// It holds the lease: it ticks and takes writes.
    Leader,
    /// Another replica leads (or none yet): it serves reads and forwards
    /// writes.
    Follower,
}

impl Role {
    /// `single`, `leader` or `follower`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Leader => "leader",
            Self::Follower => "follower",
        }
    }
}

/// This replica's part, as `/health`, `/ready` and
/// `/api/v1/metrics/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Replication {
    /// `single`, `leader` or `follower`.
    pub role: Role,
    /// This replica's id in the lease (none when single).
    pub replica: Option<String>,
    /// The leader's id, when one is known.
    pub leader: Option<String>,
    /// Where the leader serves (writes are forwarded there).
    pub leader_url: Option<String>,
    /// The lease's term: grows by one each time leadership changes hands.
    pub term: Option<i64>,
    /// What this replica does, or why no leader is known.
    pub detail: String,
}

struct Status {
    shown: Replication,
    /// Until when this replica may act as the leader (leaders only).
    leading_until: Option<Instant>,
}

/// Where a write goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRoute {
    /// This replica handles it.
    Here,
    /// The leader at this URL does (this replica's id goes along).
    Forward {
        /// The leader's advertised URL.
        url: String,
        /// The leader's id.
        leader: String,
        /// This replica's id.
        replica: String,
    },
    /// Nobody can take it now, and why.
    Unavailable(String),
}

/// This replica's role, shared by the elector, the ticker and the handlers.
/// Cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    status: Arc<RwLock<Status>>,
    mirror: Arc<Notify>,
    metrics: Option<octrix_prom::OctrixMetrics>,
    client: Arc<OnceLock<reqwest::Client>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// A single replica: it always leads.
    pub fn single(metrics: Option<octrix_prom::OctrixMetrics>) -> Self {
        if let Some(metrics) = &metrics {
            metrics.set_leader(true);
        }
        Self {
            status: Arc::new(RwLock::new(Status {
                shown: Replication {
                    role: Role::Single,
                    replica: None,
                    leader: None,
                    leader_url: None,
                    term: None,
                    detail: "single replica: it runs the engine and takes writes".to_owned(),
                },
                leading_until: None,
            })),
            mirror: Arc::new(Notify::new()),
            metrics,
            client: Arc::new(OnceLock::new()),
        }
    }

    /// What this replica is now.
    pub fn status(&self) -> Replication {
        self.read().shown.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Status> {
        self.status.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica may run the engine and take writes now.
    pub fn leads(&self) -> bool {
        let status = self.read();
        match status.shown.role {
            Role::Single => true,
            Role::Leader => status.leading_until.is_some_and(|t| Instant::now() < t),
            Role::Follower => false,
        }
    }

    /// Whether this replica follows a known leader (and so should mirror
    /// the stored state).
    pub fn follows(&self) -> bool {
        let status = self.read();
        status.shown.role == Role::Follower && status.shown.leader.is_some()
    }

    /// Where a write received now goes.
    pub fn route(&self) -> WriteRoute {
        if self.leads() {
            return WriteRoute::Here;
        }
        let status = self.read();
        let shown = &status.shown;
        match (&shown.leader, &shown.leader_url, &shown.replica) {
            (Some(leader), Some(url), Some(replica))
                if shown.role == Role::Follower && leader != replica =>
            {
                WriteRoute::Forward {
                    url: url.clone(),
                    leader: leader.clone(),
                    replica: replica.clone(),
                }
            }
            _ => {
                WriteRoute::Unavailable(format!("no leader can take writes now: {}", shown.detail))
            }
        }
    }

    /// Publishes a new role (`leading_until` for a leader).
    pub fn publish(&self, shown: Replication, leading_until: Option<Instant>) {
        if let Some(metrics) = &self.metrics {
            metrics.set_leader(matches!(shown.role, Role::Leader | Role::Single));
        }
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        *status = Status {
            shown,
            leading_until,
        };
    }

    /// Asks the follower's mirror to reload from storage now (after a
    /// forwarded write, so that reads here catch up at once).
    pub fn nudge_mirror(&self) {
        self.mirror.notify_one();
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the forwarding client: {e}"))?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// How this replica competes for the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// The lease's name (one per cluster of replicas).
    pub name: String,
    /// This replica's id, unique per process.
    pub replica: String,
    /// Where this replica serves the API.
    pub advertised_url: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How often it is renewed (or tried for).
    pub renew_every: Duration,
    /// How often a follower reloads the stored state.
    pub refresh_every: Duration,
}

/// The lease's name when not configured otherwise.
pub const DEFAULT_LEASE: &str = "octrix-leader";

/// The running election: the elector and the follower's mirror.
pub struct Elector {
    elector: tokio::task::JoinHandle<()>,
    mirror: tokio::task::JoinHandle<()>,
    storage: SqlStorage,
    settings: LeaseSettings,
}

impl Elector {
    /// Starts competing for the lease on `storage` for `state`, and waits
    /// for the first attempt (so that the server starts knowing its role).
    /// Returns what was restored when this replica leads at once (it has
    /// reloaded the stored state by then); a follower's caller reloads with
    /// [`Reload::Mirror`].
    pub async fn start(
        state: AppState,
        storage: SqlStorage,
        settings: LeaseSettings,
    ) -> (Self, Option<Restored>) {
        let mut candidate = Candidate {
            state: state.clone(),
            storage: storage.clone(),
            settings: settings.clone(),
            led_term: None,
            leading_until: None,
            restored: None,
        };
        let pause = candidate.attempt().await;
        let restored = candidate.restored.take();
        let elector = tokio::spawn(async move {
            let mut pause = pause;
            loop {
                tokio::time::sleep(pause).await;
                pause = candidate.attempt().await;
            }
        });
        let every = settings.refresh_every;
        let mirror = tokio::spawn(async move {
            let nudged = state.leadership().mirror.clone();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = nudged.notified() => {}
                }
                if state.leadership().follows()
                    && let Err(error) = state.reload(Reload::Mirror).await
                {
                    tracing::warn!(%error, "follower: cannot reload the stored state");
                }
            }
        });
        (
            Self {
                elector,
                mirror,
                storage,
                settings,
            },
            restored,
        )
    }

    /// Stops competing and releases the lease if held, so that a follower
    /// takes over at once instead of after expiry.
    pub async fn stop(self) {
        self.elector.abort();
        self.mirror.abort();
        match self
            .storage
            .release_lease(&self.settings.name, &self.settings.replica)
            .await
        {
            Ok(true) => tracing::info!("released the leader lease"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "could not release the leader lease; it expires by itself");
            }
        }
    }
}

struct Candidate {
    state: AppState,
    storage: SqlStorage,
    settings: LeaseSettings,
    /// The term whose state this replica restored (it leads in it).
    led_term: Option<i64>,
    leading_until: Option<Instant>,
    /// What the last take-over restored.
    restored: Option<Restored>,
}

impl Candidate {
    fn shown(
        &self,
        role: Role,
        lease: Option<&crate::storage::Lease>,
        detail: String,
    ) -> Replication {
        Replication {
            role,
            replica: Some(self.settings.replica.clone()),
            leader: lease.map(|l| l.holder.clone()),
            leader_url: lease.map(|l| l.url.clone()),
            term: lease.map(|l| l.term),
            detail,
        }
    }

    /// One try for the lease; returns how long to wait before the next.
    async fn attempt(&mut self) -> Duration {
        let settings = &self.settings;
        let asked = Instant::now();
        let attempt = tokio::time::timeout(
            settings.renew_every,
            self.storage.try_lease(
                &settings.name,
                &settings.replica,
                &settings.advertised_url,
                settings.duration,
            ),
        )
        .await;
        let leadership = self.state.leadership().clone();
        let lease = match attempt {
            Ok(Ok(lease)) => lease,
            Ok(Err(error)) => return self.unreadable(&error.to_string()),
            Err(_) => return self.unreadable("the database did not answer in time"),
        };
        if lease.held {
            let until = asked + settings.duration;
            if self.led_term != Some(lease.term) {
                leadership.publish(
                    self.shown(
                        Role::Follower,
                        None,
                        "taking over: reloading the stored state before leading".to_owned(),
                    ),
                    None,
                );
                match self.state.reload(Reload::Own).await {
                    Ok(restored) => {
                        tracing::info!(
                            term = lease.term,
                            incidents = restored.incidents,
                            "leading: restored the stored state"
                        );
                        self.led_term = Some(lease.term);
                        self.restored = Some(restored);
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot reload the stored state: giving the lease up");
                        if let Err(error) = self
                            .storage
                            .release_lease(&settings.name, &settings.replica)
                            .await
                        {
                            tracing::warn!(%error, "could not release the lease");
                        }
                        leadership.publish(
                            self.shown(
                                Role::Follower,
                                None,
                                format!(
                                    "could not take over (cannot reload the stored state: {error})"
                                ),
                            ),
                            None,
                        );
                        return settings.renew_every;
                    }
                }
            }
            self.leading_until = Some(until);
            leadership.publish(
                self.shown(
                    Role::Leader,
                    Some(&lease),
                    "leading: it runs the engine and takes writes".to_owned(),
                ),
                Some(until),
            );
            return settings.renew_every;
        }
        if self.led_term.take().is_some() {
            tracing::warn!(leader = %lease.holder, term = lease.term, "lost the leader lease");
            leadership.nudge_mirror();
        }
        self.leading_until = None;
        let valid = !lease.remaining.is_zero();
        let detail = if valid {
            format!(
                "following {} (writes are forwarded to {})",
                lease.holder, lease.url
            )
        } else {
            format!(
                "the lease of {} has expired; trying to take it",
                lease.holder
            )
        };
        leadership.publish(
            self.shown(Role::Follower, valid.then_some(&lease), detail),
            None,
        );
        if valid {
            // Try again soon after it would expire if not renewed.
            settings
                .renew_every
                .min(lease.remaining + Duration::from_millis(50))
        } else {
            Duration::from_millis(200)
        }
    }

    /// The lease could not be read: a leader keeps leading until its last
    /// renewal runs out, then steps down; a follower knows no leader.
    fn unreadable(&mut self, reason: &str) -> Duration {
        let leadership = self.state.leadership().clone();
        let now = Instant::now();
        if let Some(until) = self.leading_until
            && now < until
        {
            tracing::warn!(%reason, left = ?(until - now), "cannot renew the leader lease");
            return self.settings.renew_every.min(until - now);
        }
        if self.led_term.take().is_some() {
            tracing::error!(%reason, "stepping down: the leader lease could not be renewed in time");
        }
        self.leading_until = None;
        leadership.publish(
            self.shown(
                Role::Follower,
                None,
                format!("the leader lease cannot be read: {reason}"),
            ),
            None,
        );
        self.settings.renew_every
    }
}

/// A process-unique replica id: `base` plus the process id and start time,
/// so that a restarted replica starts a new term instead of renewing its
/// predecessor's lease.
pub fn replica_id(base: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!("{base}-{}-{nanos}", std::process::id())
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_stream(path: &str) -> bool {
    path.starts_with("/api/v1/events/")
}

fn unavailable(message: String) -> Response {
    let mut response = ApiError::Unavailable(message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Middleware: a follower forwards writes to the leader and refuses event
/// streams (they are the leader's); everything else is served here.
pub async fn forward_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if is_read(request.method()) && !is_stream(path) {
        return next.run(request).await;
    }
    let leadership = state.leadership().clone();
    match leadership.route() {
        WriteRoute::Here => next.run(request).await,
        WriteRoute::Unavailable(reason) => unavailable(reason),
        WriteRoute::Forward { url, leader, .. } if is_stream(path) => unavailable(format!(
            "live events are served by the leader {leader} at {url}; this replica follows it"
        )),
        WriteRoute::Forward {
            url,
            leader,
            replica,
        } => {
            if request.headers().contains_key(FORWARDED_BY) {
                return unavailable(format!(
                    "a forwarded write reached {replica}, which does not lead either (leadership is changing)"
                ));
            }
            let answer = forward(&leadership, &url, &replica, request).await;
            match answer {
                Ok(response) => {
                    if response.status().is_success() {
                        leadership.nudge_mirror();
                    }
                    response
                }
                Err(reason) => unavailable(format!(
                    "the leader {leader} at {url} cannot be reached: {reason}"
                )),
            }
        }
    }
}

/// Hop-by-hop headers (RFC 9110 7.6.1) and those the client recomputes.
fn passes(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

async fn forward(
    leadership: &Leadership,
    leader_url: &str,
    replica: &str,
    request: Request,
) -> Result<Response, String> {
    let client = leadership.client()?;
    let (parts, body) = request.into_parts();
    let target = format!(
        "{}{}",
        leader_url.trim_end_matches('/'),
        parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str())
    );
    // The body limit layer ran before this one: the body is bounded.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if passes(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()
        && let Ok(value) = HeaderValue::from_str(&peer.ip().to_string())
    {
        headers.append(HeaderName::from_static("x-forwarded-for"), value);
    }
    if let Ok(value) = HeaderValue::from_str(replica) {
        headers.insert(HeaderName::from_static(FORWARDED_BY), value);
    }
    let answer = client
        .request(parts.method, &target)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if passes(name) {
            response_headers.append(name.clone(), value.clone());
        }
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| format!("the answer was cut: {}", e.without_url()))?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(leader: Option<&str>) -> Replication {
        Replication {
            role: Role::Follower,
            replica: Some("b".to_owned()),
            leader: leader.map(str::to_owned),
            leader_url: leader.map(|l| format!("http://{l}:3001")),
            term: Some(1),
            detail: "test".to_owned(),
        }
    }

    #[test]
    fn a_single_replica_leads_and_takes_writes() {
        let leadership = Leadership::single(None);
        assert!(leadership.leads());
        assert_eq!(leadership.route(), WriteRoute::Here);
        assert_eq!(leadership.status().role, Role::Single);
    }

    #[test]
    fn a_follower_forwards_to_the_known_leader_or_says_none_is_known() {
        let leadership = Leadership::single(None);
        leadership.publish(follower(Some("a")), None);
        assert!(!leadership.leads());
        assert!(leadership.follows());
        assert_eq!(
            leadership.route(),
            WriteRoute::Forward {
                url: "http://a:3001".to_owned(),
                leader: "a".to_owned(),
                replica: "b".to_owned(),
            }
        );
        leadership.publish(follower(None), None);
        assert!(!leadership.follows());
        let WriteRoute::Unavailable(reason) = leadership.route() else {
            panic!("a write with no leader must be refused")
        };
        assert!(reason.contains("no leader"), "{reason}");
    }

    #[test]
    fn a_leader_stops_leading_when_its_lease_runs_out() {
        let metrics = octrix_prom::OctrixMetrics::new();
        let leadership = Leadership::single(Some(metrics.clone()));
        let mut shown = follower(Some("b"));
        shown.role = Role::Leader;
        leadership.publish(
            shown.clone(),
            Some(Instant::now() + Duration::from_secs(60)),
        );
        assert!(leadership.leads());
        assert!(metrics.encode().unwrap().contains("octrix_leader 1"));
        leadership.publish(shown, Some(Instant::now()));
        assert!(!leadership.leads());
        assert!(matches!(leadership.route(), WriteRoute::Unavailable(_)));
        leadership.publish(follower(Some("a")), None);
        assert!(metrics.encode().unwrap().contains("octrix_leader 0"));
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        assert!(passes(&header::AUTHORIZATION));
        assert!(passes(&header::CONTENT_TYPE));
        assert!(!passes(&header::HOST));
        assert!(!passes(&header::CONNECTION));
        assert!(!passes(&header::CONTENT_LENGTH));
    }
}
