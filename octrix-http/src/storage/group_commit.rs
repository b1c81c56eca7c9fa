//! [`GroupCommitter`]: many concurrent writers, one transaction.

use std::sync::Arc;

use octrix_core::incident::Incident;
use tokio::sync::{mpsc, oneshot};

use super::{Storage, StorageError};

/// How a [`GroupCommitter`] batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Submissions that may wait for the task; beyond it
    /// [`GroupCommitter::submit`] waits for room (back-pressure).
    pub queue_capacity: usize,
    /// Most incidents in one transaction. A submission is never split, so a
    /// larger one is committed alone.
    pub max_batch_incidents: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_batch_incidents: 10_000,
        }
    }
}

/// A handle on a task that commits incidents in groups.
///
/// The webhook answers 2xx only once its incidents are committed. A commit
/// costs about the same for one incident as for a thousand (SQLite's write
/// lock and WAL append, PostgreSQL's round trips and WAL flush), so when
/// deliveries arrive together the committer writes them together: one task
/// owns a queue, takes everything waiting in it, writes it with one
/// [`Storage::put_incidents`] (one transaction), then answers every
/// submitter with that transaction's outcome. While one transaction runs
/// the next batch gathers, so throughput grows with concurrency instead of
/// being capped at one commit per request.
///
/// ```no_run
/// # async fn example(storage: std::sync::Arc<dyn octrix_http::storage::Storage>,
/// #                  incidents: Vec<octrix_core::incident::Incident>)
/// #     -> Result<(), octrix_http::storage::StorageError> {
/// use octrix_http::storage::GroupCommitter;
///
/// // Once, at start-up (inside the tokio runtime):
/// let committer = GroupCommitter::spawn(storage);
/// // In each webhook request (handles are cheap to clone):
/// committer.submit(incidents).await?; // committed: answer 2xx
/// # Ok(()) }
/// ```
///
/// The task stops once every handle is dropped, after committing what was
/// already submitted.
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<Submission>,
}

#[derive(Debug)]
struct Submission {
    incidents: Vec<Incident>,
    done: oneshot::Sender<Result<(), StorageError>>,
}

impl GroupCommitter {
    /// Starts the committing task on the current tokio runtime, with the
    /// default configuration.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(storage: Arc<dyn Storage>) -> Self {
        Self::spawn_with(storage, GroupCommitConfig::default())
    }

    /// [`GroupCommitter::spawn`] with a configuration.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_with(storage: Arc<dyn Storage>, config: GroupCommitConfig) -> Self {
        let (queue, submissions) = mpsc::channel(config.queue_capacity.max(1));
        tokio::spawn(run(storage, submissions, config.max_batch_incidents.max(1)));
        Self { queue }
    }

    /// Writes `incidents` (inserting or replacing by id) and returns once
    /// they are committed, with the error of the transaction that carried
    /// them if it failed. A transaction fails as a whole, so every
    /// submission in it gets that error, including one whose own incidents
    /// were fine (on PostgreSQL, a string holding U+0000 is refused): the
    /// sender retries, as Alertmanager does.
    ///
    /// Within a batch, later submissions win over earlier ones for the same
    /// incident id, as if each had been committed on its own. Dropping the
    /// future after the incidents were queued does not withdraw them.
    pub async fn submit(&self, incidents: Vec<Incident>) -> Result<(), StorageError> {
        if incidents.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Submission { incidents, done })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// How many submissions are waiting for the next transaction (not
    /// counting those being committed), e.g. for a queue-depth gauge.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

fn stopped() -> StorageError {
    StorageError::Unavailable("the group committer has stopped".to_owned())
}

async fn run(
    storage: Arc<dyn Storage>,
    mut submissions: mpsc::Receiver<Submission>,
    max_batch_incidents: usize,
) {
    // A submission that did not fit in the previous batch.
    let mut carried: Option<Submission> = None;
    loop {
        let first = match carried.take() {
            Some(submission) => submission,
            None => match submissions.recv().await {
                Some(submission) => submission,
                None => return,
            },
        };
        let mut size = first.incidents.len();
        let mut batch = vec![first];
        while size < max_batch_incidents {
            let Ok(next) = submissions.try_recv() else {
                break;
            };
            if size + next.incidents.len() > max_batch_incidents {
                carried = Some(next);
                break;
            }
            size += next.incidents.len();
            batch.push(next);
        }

        let mut incidents = Vec::with_capacity(size);
        let mut waiters = Vec::with_capacity(batch.len());
        for submission in batch {
            incidents.extend(submission.incidents);
            waiters.push(submission.done);
        }
        let outcome = storage.put_incidents(&incidents).await;
        for waiter in waiters {
            // A submitter that went away no longer needs the answer.
            let _ = waiter.send(outcome.clone());
        }
    }
}
