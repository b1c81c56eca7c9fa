//! Durable acknowledgement with group commit.
//!
//! The engine persists through its [`IncidentStore`] port while a caller
//! holds the engine's lock. Writing to the database there would make every
//! webhook delivery wait for the previous one's commit. Instead the engine
//! is given a [`WriteBehind`] store, which only collects the incidents it
//! writes; before releasing the lock, the caller hands the collected batch
//! to the [`Committer`], then waits for it outside the lock. The committer
//! task takes every batch queued meanwhile, keeps the last version of each
//! incident, and writes them in **one** transaction
//! ([`Storage::put_incidents`]): concurrent deliveries share a commit, and
//! each is answered only once its incidents are durable.
//!
//! Batches are queued under the engine's lock, so they reach the database
//! in the order the engine produced them: an older version of an incident
//! never overwrites a newer one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use octrix_core::incident::{
    Incident, IncidentId, IncidentPage, IncidentQuery, IncidentStore, StoreError,
};
use tokio::sync::{mpsc, oneshot};

use crate::storage::{Storage, StorageError};

/// Most batches merged into one transaction.
const MAX_BATCHES_PER_COMMIT: usize = 1024;

/// The engine's store port: collects writes for the [`Committer`]; reads go
/// to the storage (pending writes first).
pub struct WriteBehind {
    pending: Mutex<Vec<Incident>>,
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind").finish_non_exhaustive()
    }
}

impl WriteBehind {
    /// Collects writes meant for `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            storage,
        }
    }

    /// Takes the collected writes, oldest first.
    pub fn take(&self) -> Vec<Incident> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl IncidentStore for WriteBehind {
    async fn put(&self, incident: Incident) -> Result<(), StoreError> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(incident);
        Ok(())
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|i| &i.id == id)
            .cloned();
        match pending {
            Some(incident) => Ok(Some(incident)),
            None => self.storage.get(id).await,
        }
    }

    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError> {
        self.storage.list(query).await
    }
}

type Reply = oneshot::Sender<Result<(), StorageError>>;

/// Hands batches to the commit task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<(Vec<Incident>, Reply)>,
}

/// A batch's place in the commit queue; await [`Ticket::durable`].
#[derive(Debug)]
pub struct Ticket {
    rx: Option<oneshot::Receiver<Result<(), StorageError>>>,
}

impl Ticket {
    /// Waits until the batch is committed.
    pub async fn durable(self) -> Result<(), StorageError> {
        match self.rx {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or_else(|_| {
                Err(StorageError::Unavailable(
                    "the commit task has stopped".to_owned(),
                ))
            }),
        }
    }
}

impl Committer {
    /// Starts the commit task on the current tokio runtime.
    pub fn start(storage: Arc<dyn Storage>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(storage, rx));
        Self { tx }
    }

    /// Queues a batch; an empty one is durable at once.
    pub fn submit(&self, batch: Vec<Incident>) -> Ticket {
        if batch.is_empty() {
            return Ticket { rx: None };
        }
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, reply))) = self.tx.send((batch, reply)) {
            let _ = reply.send(Err(StorageError::Unavailable(
                "the commit task has stopped".to_owned(),
            )));
        }
        Ticket { rx: Some(rx) }
    }

    /// Whether the commit task is running.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

async fn run(storage: Arc<dyn Storage>, mut rx: mpsc::UnboundedReceiver<(Vec<Incident>, Reply)>) {
    let mut batches = Vec::new();
    while rx.recv_many(&mut batches, MAX_BATCHES_PER_COMMIT).await > 0 {
        let mut replies = Vec::with_capacity(batches.len());
        let mut order: Vec<IncidentId> = Vec::new();
        let mut latest: HashMap<IncidentId, Incident> = HashMap::new();
        for (batch, reply) in batches.drain(..) {
            replies.push(reply);
            for incident in batch {
                if !latest.contains_key(&incident.id) {
                    order.push(incident.id.clone());
                }
                latest.insert(incident.id.clone(), incident);
            }
        }
        let merged: Vec<Incident> = order.iter().filter_map(|id| latest.remove(id)).collect();
        let result = storage.put_incidents(&merged).await;
        if let Err(error) = &result {
            tracing::error!(%error, incidents = merged.len(), "commit failed");
        }
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_storage::MemoryStorage;

    fn incident(id: &str, title: &str) -> Incident {
        let json = serde_json::json!({
            "id": id, "title": title, "category": "alert", "severity": "low",
            "status": "open", "fingerprint": id, "occurrences": 1,
            "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z",
            "occurrence_started_at": "2026-01-01T00:00:00Z", "source": "alert",
            "correlation_group": id, "timeline": []
        });
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn batches_commit_in_order_and_the_last_version_wins() {
        let storage = Arc::new(MemoryStorage::new());
        let committer = Committer::start(storage.clone());
        let first = committer.submit(vec![incident("INC-1", "v1"), incident("INC-2", "a")]);
        let second = committer.submit(vec![incident("INC-1", "v2")]);
        first.durable().await.unwrap();
        second.durable().await.unwrap();
        let stored = storage
            .get(&IncidentId::new("INC-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.title, "v2");
        assert!(
            storage
                .get(&IncidentId::new("INC-2"))
                .await
                .unwrap()
                .is_some()
        );
        committer.submit(Vec::new()).durable().await.unwrap();
    }

    #[tokio::test]
    async fn write_behind_reads_its_pending_writes_first() {
        let storage = Arc::new(MemoryStorage::new());
        storage.put(incident("INC-1", "stored")).await.unwrap();
        let store = WriteBehind::new(storage.clone());
        store.put(incident("INC-1", "pending")).await.unwrap();
        let read = store.get(&IncidentId::new("INC-1")).await.unwrap().unwrap();
        assert_eq!(read.title, "pending");
        assert_eq!(store.take().len(), 1);
        let read = store.get(&IncidentId::new("INC-1")).await.unwrap().unwrap();
        assert_eq!(read.title, "stored");
    }
}
