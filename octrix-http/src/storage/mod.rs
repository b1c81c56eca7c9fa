//! What the server persists, behind one port: [`Storage`].
//!
//! Incidents go through the core's [`IncidentStore`] with typed, indexed
//! columns for the list filters. Everything else the server keeps (healing
//! rules, chaos scenarios and runs, traffic rules, the action history) is a
//! JSON document of a [`DocumentKind`], keyed by id, so that the storage
//! does not have to change when those types grow fields.
//!
//! * [`SqlStorage`] implements the port on SQLite (embedded, the default)
//!   or PostgreSQL (for several replicas), chosen by the database URL.
//! * [`GroupCommitter`] batches concurrent writers (webhook deliveries) into
//!   one transaction, answering each only once its incidents are committed.
//!
//! ```no_run
//! # async fn example() -> Result<(), octrix_http::storage::StorageError> {
//! use std::sync::Arc;
//! use octrix_http::storage::{GroupCommitter, SqlStorage, Storage};
//!
//! let storage = Arc::new(SqlStorage::connect("sqlite://data/octrix.db").await?);
//! let committer = GroupCommitter::spawn(storage.clone());
//! storage.ping().await?;
//! # drop(committer);
//! # Ok(()) }
//! ```

mod checkpoint;
mod group_commit;
mod sql;

pub use group_commit::{GroupCommitConfig, GroupCommitter};
pub use sql::{Lease, SqlBackend, SqlStorage, SqlStorageOptions};

use async_trait::async_trait;
use octrix_core::Timestamp;
use octrix_core::incident::{Incident, IncidentId, IncidentStore};
use serde::{Deserialize, Serialize};

/// The kinds of documents the server keeps besides incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// The healing configuration (one document, id `current`).
    HealingConfig,
    /// Custom chaos scenarios.
    ChaosScenario,
    /// Chaos runs.
    ChaosRun,
    /// Traffic rules.
    TrafficRule,
    /// Healing action history records.
    ActionRecord,
    /// Registered services (resilience API).
    Service,
}

impl DocumentKind {
    /// The stored name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HealingConfig => "healing_config",
            Self::ChaosScenario => "chaos_scenario",
            Self::ChaosRun => "chaos_run",
            Self::TrafficRule => "traffic_rule",
            Self::ActionRecord => "action_record",
            Self::Service => "service",
        }
    }
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Its kind.
    pub kind: DocumentKind,
    /// Its id, unique within the kind.
    pub id: String,
    /// When it was last written (the caller's clock).
    pub updated_at: Timestamp,
    /// The document.
    pub body: serde_json::Value,
}

/// Why storage failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached or refused the operation.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value {what}: {reason}")]
    Corrupt {
        /// What was read.
        what: String,
        /// Why it is not valid.
        reason: String,
    },
}

/// Everything the server persists.
///
/// `put_incidents` writes a batch in one transaction: the webhook answers
/// 2xx only after it returns `Ok`, and writing the same incident twice
/// leaves one row (redelivery changes nothing).
#[async_trait]
pub trait Storage: IncidentStore {
    /// Writes incidents in one transaction.
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StorageError>;

    /// Every stored incident that is open or acknowledged, to rebuild the
    /// engine's working set after a restart.
    async fn active_incidents(&self) -> Result<Vec<Incident>, StorageError>;

    /// Every stored incident resolved at or after `since`, so that an
    /// alert firing again within the reopen window after a restart (or a
    /// change of leader) reopens it instead of opening a new one.
    async fn resolved_incidents_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<Incident>, StorageError>;

    /// The highest incident id ever stored (the longest, then the greatest:
    /// `INC-1000000` is above `INC-999999`), so that new ids continue after
    /// it; `None` when there is no incident.
    async fn highest_incident_id(&self) -> Result<Option<IncidentId>, StorageError>;

    /// Writes (inserts or replaces) a document.
    async fn put_document(&self, document: &Document) -> Result<(), StorageError>;

    /// One document.
    async fn get_document(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StorageError>;

    /// Documents of a kind, most recently updated first, at most `limit`.
    async fn list_documents(
        &self,
        kind: DocumentKind,
        limit: usize,
    ) -> Result<Vec<Document>, StorageError>;

    /// Deletes a document; `Ok(false)` when there was none.
    async fn delete_document(&self, kind: DocumentKind, id: &str) -> Result<bool, StorageError>;

    /// Deletes resolved incidents resolved before `cutoff` and documents of
    /// kinds `ChaosRun` and `ActionRecord` updated before it (retention);
    /// returns how many rows went.
    async fn apply_retention(&self, cutoff: Timestamp) -> Result<u64, StorageError>;

    /// Every incident, oldest first, as JSON lines (backup export).
    async fn export_incidents_jsonl(&self) -> Result<String, StorageError>;

    /// Checks the database answers (for `/ready`).
    async fn ping(&self) -> Result<(), StorageError>;
}

#[cfg(test)]
mod tests;
