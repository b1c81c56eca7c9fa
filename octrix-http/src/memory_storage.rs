//! [`MemoryStorage`]: the [`Storage`] port in memory, for tests and for a
//! server that need not survive a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use octrix_core::Timestamp;
use octrix_core::incident::{
    Incident, IncidentId, IncidentPage, IncidentQuery, IncidentStore, StoreError,
};

use crate::storage::{Document, DocumentKind, Storage, StorageError};

#[derive(Debug, Default)]
struct Tables {
    incidents: BTreeMap<IncidentId, Incident>,
    documents: HashMap<(DocumentKind, String), Document>,
}

/// Everything in one mutex-guarded set of maps. Every operation is atomic,
/// and nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    tables: Mutex<Tables>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Every write is a complete insert or removal: a panic elsewhere
        // cannot leave the maps half-updated.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl IncidentStore for MemoryStorage {
    async fn put(&self, incident: Incident) -> Result<(), StoreError> {
        self.lock().incidents.insert(incident.id.clone(), incident);
        Ok(())
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        Ok(self.lock().incidents.get(id).cloned())
    }

    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError> {
        query.apply(self.lock().incidents.values())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StorageError> {
        let mut tables = self.lock();
        for incident in incidents {
            tables
                .incidents
                .insert(incident.id.clone(), incident.clone());
        }
        Ok(())
    }

    async fn active_incidents(&self) -> Result<Vec<Incident>, StorageError> {
        Ok(self
            .lock()
            .incidents
            .values()
            .filter(|i| i.is_active())
            .cloned()
            .collect())
    }

    async fn resolved_incidents_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<Incident>, StorageError> {
        Ok(self
            .lock()
            .incidents
            .values()
            .filter(|i| i.resolved_at.is_some_and(|at| at >= since) && !i.is_active())
            .cloned()
            .collect())
    }

    async fn highest_incident_id(&self) -> Result<Option<IncidentId>, StorageError> {
        Ok(self
            .lock()
            .incidents
            .keys()
            .max_by(|a, b| (a.as_str().len(), a.as_str()).cmp(&(b.as_str().len(), b.as_str())))
            .cloned())
    }

    async fn put_document(&self, document: &Document) -> Result<(), StorageError> {
        self.lock()
            .documents
            .insert((document.kind, document.id.clone()), document.clone());
        Ok(())
    }

    async fn get_document(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StorageError> {
        Ok(self.lock().documents.get(&(kind, id.to_owned())).cloned())
    }

    async fn list_documents(
        &self,
        kind: DocumentKind,
        limit: usize,
    ) -> Result<Vec<Document>, StorageError> {
        let tables = self.lock();
        let mut documents: Vec<Document> = tables
            .documents
            .values()
            .filter(|d| d.kind == kind)
            .cloned()
            .collect();
        documents.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        documents.truncate(limit);
        Ok(documents)
    }

    async fn delete_document(&self, kind: DocumentKind, id: &str) -> Result<bool, StorageError> {
        Ok(self
            .lock()
            .documents
            .remove(&(kind, id.to_owned()))
            .is_some())
    }

    async fn apply_retention(&self, cutoff: Timestamp) -> Result<u64, StorageError> {
        let mut tables = self.lock();
        let before = tables.incidents.len() + tables.documents.len();
        tables.incidents.retain(|_, incident| {
            incident.is_active() || incident.resolved_at.unwrap_or(incident.last_seen) >= cutoff
        });
        tables.documents.retain(|(kind, _), document| {
            !matches!(kind, DocumentKind::ChaosRun | DocumentKind::ActionRecord)
                || document.updated_at >= cutoff
        });
        Ok((before - tables.incidents.len() - tables.documents.len()) as u64)
    }

    async fn export_incidents_jsonl(&self) -> Result<String, StorageError> {
        let tables = self.lock();
        let mut incidents: Vec<&Incident> = tables.incidents.values().collect();
        incidents.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.id.cmp(&b.id)));
        let mut out = String::new();
        for incident in incidents {
            let line = serde_json::to_string(incident).map_err(|e| StorageError::Corrupt {
                what: format!("incident {}", incident.id),
                reason: e.to_string(),
            })?;
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
