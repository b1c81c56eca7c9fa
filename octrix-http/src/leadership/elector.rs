//! The election: a [`Candidate`] tries for the lease every renewal period,
//! takes over (reload first, then lead) when it wins a new term, and steps
//! down when it loses the lease or cannot renew it in time; a follower's
//! mirror reloads the stored state.

use std::time::{Duration, Instant};

use super::{Replication, Role};
use crate::state::{AppState, Reload, Restored};
use crate::storage::{Lease, SqlStorage};

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
    /// A random token published in the lease while this replica holds it:
    /// followers present it with the writes they forward (see
    /// [`super::forward_writes`]).
    pub forward_token: String,
}

/// The name of the lease the replicas of one database compete for.
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
        state
            .leadership()
            .set_forward_token(settings.forward_token.clone());
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
    /// takes over at its next try instead of after expiry.
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
    fn shown(&self, role: Role, lease: Option<&Lease>, detail: String) -> Replication {
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
                &settings.forward_token,
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
                None,
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
            valid.then(|| lease.forward_token.clone()),
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
