//! The [`IncidentStore`] port, its query types and an in-memory
//! implementation.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::model::{Incident, IncidentId, IncidentStatus, TimeRange};
use crate::classify::{Category, Severity};

/// The largest page a store must serve.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The query cannot be served (a zero or oversized page).
    #[error("invalid incident query: {0}")]
    InvalidQuery(String),
    /// The backend failed (connection, disk, serialisation).
    #[error("incident store backend failed: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The backend's own error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Where incidents are kept. Object-safe: adapters hold an
/// `Arc<dyn IncidentStore>`.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Inserts the incident, or replaces the one with the same id.
    async fn put(&self, incident: Incident) -> Result<(), StoreError>;

    /// The incident with this id.
    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError>;

    /// One page of the incidents matching the query's filter, in its order.
    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError>;
}

/// Which incidents to list. Empty lists and `None`s match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentFilter {
    /// Any of these statuses.
    pub statuses: Vec<IncidentStatus>,
    /// Any of these severities.
    pub severities: Vec<Severity>,
    /// Any of these categories.
    pub categories: Vec<Category>,
    /// Exactly this service.
    pub service: Option<String>,
    /// Exactly this environment.
    pub environment: Option<String>,
    /// Opened (`first_seen`) within this range.
    pub opened: TimeRange,
    /// Case-insensitive substring of the id, title, description, service,
    /// environment, namespace, resource name, fingerprint, assignee or a
    /// label value.
    pub text: Option<String>,
}

impl IncidentFilter {
    /// Whether `incident` passes every condition.
    pub fn matches(&self, incident: &Incident) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&incident.status))
            && (self.severities.is_empty() || self.severities.contains(&incident.severity))
            && (self.categories.is_empty() || self.categories.contains(&incident.category))
            && equal_if_set(&self.service, &incident.service)
            && equal_if_set(&self.environment, &incident.environment)
            && self.opened.contains(incident.first_seen)
            && self
                .text
                .as_deref()
                .is_none_or(|text| mentions(incident, &text.to_lowercase()))
    }
}

fn equal_if_set(wanted: &Option<String>, actual: &Option<String>) -> bool {
    wanted.is_none() || wanted == actual
}

fn mentions(incident: &Incident, needle: &str) -> bool {
    let optional = [
        incident.description.as_deref(),
        incident.service.as_deref(),
        incident.environment.as_deref(),
        incident.namespace.as_deref(),
        incident
            .resource
            .as_ref()
            .map(|resource| resource.name.as_str()),
        incident.assignee.as_deref(),
    ];
    [
        incident.id.as_str(),
        incident.title.as_str(),
        incident.fingerprint.as_str(),
    ]
    .into_iter()
    .chain(optional.into_iter().flatten())
    .chain(incident.labels.values().map(String::as_str))
    .any(|haystack| haystack.to_lowercase().contains(needle))
}

/// What to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Opening time.
    FirstSeen,
    /// Latest activity.
    #[default]
    LastSeen,
    /// Severity.
    Severity,
    /// Identifier.
    Id,
}

/// Which way to sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortDirection {
    /// Smallest first.
    Ascending,
    /// Largest first.
    #[default]
    Descending,
}

/// A filter, an order and a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentQuery {
    /// Which incidents.
    pub filter: IncidentFilter,
    /// Sort key; ties are broken by id, so pages are stable.
    pub sort: SortKey,
    /// Sort direction.
    pub direction: SortDirection,
    /// How many matching incidents to skip.
    pub offset: usize,
    /// Page size, 1 to [`MAX_PAGE_LIMIT`].
    pub limit: usize,
}

impl Default for IncidentQuery {
    /// Everything, most recently active first, 50 a page.
    fn default() -> Self {
        Self {
            filter: IncidentFilter::default(),
            sort: SortKey::default(),
            direction: SortDirection::default(),
            offset: 0,
            limit: 50,
        }
    }
}

impl IncidentQuery {
    /// Rejects a zero or oversized page.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.limit == 0 || self.limit > MAX_PAGE_LIMIT {
            return Err(StoreError::InvalidQuery(format!(
                "limit must be within 1..={MAX_PAGE_LIMIT}, got {}",
                self.limit
            )));
        }
        Ok(())
    }

    /// Filters, sorts and pages `incidents`: the reference semantics that
    /// every store must reproduce.
    pub fn apply<'a>(
        &self,
        incidents: impl IntoIterator<Item = &'a Incident>,
    ) -> Result<IncidentPage, StoreError> {
        self.validate()?;
        let mut matching: Vec<&Incident> = incidents
            .into_iter()
            .filter(|incident| self.filter.matches(incident))
            .collect();
        matching.sort_by(|a, b| {
            let order = match self.sort {
                SortKey::FirstSeen => a.first_seen.cmp(&b.first_seen),
                SortKey::LastSeen => a.last_seen.cmp(&b.last_seen),
                SortKey::Severity => a.severity.cmp(&b.severity),
                SortKey::Id => Ordering::Equal,
            }
            .then_with(|| a.id.cmp(&b.id));
            match self.direction {
                SortDirection::Ascending => order,
                SortDirection::Descending => order.reverse(),
            }
        });
        Ok(IncidentPage {
            total: matching.len(),
            items: matching
                .into_iter()
                .skip(self.offset)
                .take(self.limit)
                .cloned()
                .collect(),
            offset: self.offset,
            limit: self.limit,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentPage {
    /// The incidents on this page.
    pub items: Vec<Incident>,
    /// How many incidents matched in all.
    pub total: usize,
    /// The query's offset.
    pub offset: usize,
    /// The query's limit.
    pub limit: usize,
}

/// An [`IncidentStore`] in a mutex-guarded map, for tests and single-process
/// deployments.
#[derive(Debug, Default)]
pub struct InMemoryIncidentStore {
    incidents: Mutex<BTreeMap<IncidentId, Incident>>,
}

impl InMemoryIncidentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<IncidentId, Incident>> {
        // Every write is a single insert, so a panic elsewhere while the lock
        // was held cannot have left the map half-updated.
        self.incidents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl IncidentStore for InMemoryIncidentStore {
    async fn put(&self, incident: Incident) -> Result<(), StoreError> {
        self.lock().insert(incident.id.clone(), incident);
        Ok(())
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        Ok(self.lock().get(id).cloned())
    }

    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError> {
        query.apply(self.lock().values())
    }
}

#[cfg(test)]
mod tests;
