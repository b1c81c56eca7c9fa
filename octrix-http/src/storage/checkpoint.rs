//! WAL checkpoints off the commit path.
//!
//! By default SQLite checkpoints its write-ahead log from the connection
//! that commits, once the log passes 1,000 pages: the webhook delivery whose
//! commit crossed the line (and every delivery queued behind it on the
//! single commit task) then waits for pages to be copied into the database
//! and for the `fsync` that follows. The server's connections therefore
//! open with `wal_autocheckpoint=0`, and this task checkpoints instead, on
//! its own pooled connection:
//!
//! * every [`INTERVAL`], a `PASSIVE` checkpoint, which copies what it can
//!   without taking the write lock: commits go on meanwhile;
//! * when the log still holds more than [`RESTART_ABOVE_PAGES`] pages
//!   after it (commits kept appending while it ran, so the log never got
//!   fully copied and could not start over), a `RESTART` checkpoint, which
//!   waits for the current writer and holds new ones back while it copies
//!   the little the passive ones left, so that the log starts over and
//!   its file stops growing.
//!
//! Durability is unchanged: a commit is in the log (and, with
//! `synchronous=FULL`, on disk) before it returns; checkpoints only move
//! committed pages into the database file.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;

/// How often the log is checkpointed.
pub(super) const INTERVAL: Duration = Duration::from_millis(500);

/// Log pages above which a `RESTART` checkpoint brings the log back to its
/// start (about 64 MiB with 4 KiB pages).
pub(super) const RESTART_ABOVE_PAGES: i64 = 16_384;

/// The connection option that turns the committing connection's own
/// checkpoints off.
pub(super) const AUTOCHECKPOINT_OFF: (&str, &str) = ("wal_autocheckpoint", "0");

/// Stops the checkpoint task when the last handle on the storage goes.
#[derive(Debug)]
pub(super) struct Checkpointer {
    task: tokio::task::AbortHandle,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Checkpointer {
    /// Starts checkpointing `pool`'s database on the current tokio runtime.
    pub(super) fn start(pool: SqlitePool) -> Arc<Self> {
        let task = tokio::spawn(async move {
            let mut timer = tokio::time::interval(INTERVAL);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                timer.tick().await;
                if let Err(error) = checkpoint(&pool).await {
                    // The next round tries again; the log only grows meanwhile.
                    tracing::warn!(%error, "SQLite WAL checkpoint");
                }
            }
        });
        Arc::new(Self {
            task: task.abort_handle(),
        })
    }
}

/// One round: a passive checkpoint, and a restart if the log stayed long.
/// Returns the log's pages after it.
pub(super) async fn checkpoint(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    if log <= RESTART_ABOVE_PAGES {
        return Ok(log);
    }
    let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(pool)
        .await?;
    Ok(log)
}
