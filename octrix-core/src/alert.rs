//! Alerts as they arrive from an external alerting system.
//!
//! Adapters (for example `octrix-prom`'s Alertmanager webhook types) convert
//! their payloads into [`Alert`]s; the [`crate::incident`] module turns alerts
//! into incidents.

use serde::{Deserialize, Serialize};

use crate::{Labels, Timestamp};

/// Whether an alert is currently firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

/// One alert from an external system, independent of its wire format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity of the alert's label set, stable across deliveries
    /// (Alertmanager's `fingerprint`).
    pub fingerprint: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Identifying labels (`alertname`, `severity`, `service`, ...).
    pub labels: Labels,
    /// Descriptive annotations (`summary`, `description`, `runbook_url`, ...).
    pub annotations: Labels,
    /// When the alert started firing.
    pub starts_at: Timestamp,
    /// When the alert resolved, if it has.
    pub ends_at: Option<Timestamp>,
    /// Link back to the expression that produced the alert.
    pub generator_url: Option<String>,
}

impl Alert {
    /// The alert's name (`alertname` label), if it has one.
    pub fn name(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str)
    }
}
