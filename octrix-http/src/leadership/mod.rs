//! Several replicas on one PostgreSQL database: one leads, the others
//! follow.
//!
//! * The leader holds a lease row in the database
//!   ([`crate::storage::SqlStorage::try_lease`]) and renews it; it alone runs
//!   the engine's ticks (detection, healing, chaos) and handles writes.
//! * A follower serves reads: incidents straight from storage, the rest
//!   (rules, runs, action history, healing configuration) from an engine it
//!   reloads from storage every `follower_refresh_ms` and after each write
//!   it forwarded. Writes (every method but `GET`, `HEAD`, `OPTIONS`) are
//!   forwarded to the leader's advertised URL with the caller's headers; when
//!   no leader is known or it does not answer, the answer is 503 with
//!   `Retry-After` saying so. Live event streams are the leader's: a
//!   follower answers them with 503 naming the leader. A forwarded write
//!   carries the client's address and the leader's forwarding token (from
//!   the lease row), so that the leader applies the webhook's allowlist and
//!   rate limit to the client ([`forward_writes`]).
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

mod elector;
mod forward;

pub use elector::{DEFAULT_LEASE, Elector, LeaseSettings, replica_id};
pub use forward::{FORWARD_TOKEN, forward_writes};

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use utoipa::ToSchema;

/// The header a follower adds to a request it forwards (its replica id):
/// a replica that is not the leader either answers 503 instead of
/// forwarding again.
pub const FORWARDED_BY: &str = "x-octrix-forwarded-by";

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
    /// The leader's forwarding token (followers of a known leader only).
    leader_token: Option<String>,
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
        /// The leader's forwarding token, presented with the write.
        token: String,
    },
    /// Nobody can take it now, and why.
    Unavailable(String),
}

/// This replica's role, shared by the elector, the ticker and the handlers.
/// Cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    status: Arc<RwLock<Status>>,
    /// This replica's forwarding token, published in the lease it holds.
    own_token: Arc<OnceLock<String>>,
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
                leader_token: None,
            })),
            own_token: Arc::new(OnceLock::new()),
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
        match (
            &shown.leader,
            &shown.leader_url,
            &shown.replica,
            &status.leader_token,
        ) {
            (Some(leader), Some(url), Some(replica), Some(token))
                if shown.role == Role::Follower && leader != replica =>
            {
                WriteRoute::Forward {
                    url: url.clone(),
                    leader: leader.clone(),
                    replica: replica.clone(),
                    token: token.clone(),
                }
            }
            _ => {
                WriteRoute::Unavailable(format!("no leader can take writes now: {}", shown.detail))
            }
        }
    }

    /// Publishes a new role: `leading_until` for a leader, the leader's
    /// forwarding token for a follower of a known leader.
    pub fn publish(
        &self,
        shown: Replication,
        leading_until: Option<Instant>,
        leader_token: Option<String>,
    ) {
        if let Some(metrics) = &self.metrics {
            metrics.set_leader(matches!(shown.role, Role::Leader | Role::Single));
        }
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        *status = Status {
            shown,
            leading_until,
            leader_token,
        };
    }

    /// Sets this replica's forwarding token (once, before it competes for
    /// the lease); later calls are ignored.
    pub fn set_forward_token(&self, token: String) {
        let _ = self.own_token.set(token);
    }

    /// This replica's forwarding token, when it competes for the lease.
    pub fn forward_token(&self) -> Option<&str> {
        self.own_token.get().map(String::as_str)
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
        leadership.publish(follower(Some("a")), None, Some("t".to_owned()));
        assert!(!leadership.leads());
        assert!(leadership.follows());
        assert_eq!(
            leadership.route(),
            WriteRoute::Forward {
                url: "http://a:3001".to_owned(),
                leader: "a".to_owned(),
                replica: "b".to_owned(),
                token: "t".to_owned(),
            }
        );
        leadership.publish(follower(None), None, None);
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
            None,
        );
        assert!(leadership.leads());
        assert!(metrics.encode().unwrap().contains("octrix_leader 1"));
        leadership.publish(shown, Some(Instant::now()), None);
        assert!(!leadership.leads());
        assert!(matches!(leadership.route(), WriteRoute::Unavailable(_)));
        leadership.publish(follower(Some("a")), None, Some("t".to_owned()));
        assert!(metrics.encode().unwrap().contains("octrix_leader 0"));
    }
}
