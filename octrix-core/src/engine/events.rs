//! Events the engine publishes, named as seed 000's Socket.IO events.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::chaos::ChaosEvent;
use crate::cluster::ClusterInfo;
use crate::incident::{HealingOutcome, Incident};
use crate::metrics::SourceInfo;

/// A summary of the cluster after a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// The cluster observed.
    pub cluster: ClusterInfo,
    /// When it was observed.
    pub at: Timestamp,
    /// Nodes.
    pub nodes: usize,
    /// Nodes that are ready.
    pub ready_nodes: usize,
    /// Pods.
    pub pods: usize,
    /// Pods that are ready.
    pub ready_pods: usize,
    /// Incidents open or acknowledged.
    pub active_incidents: usize,
}

/// A healing step, as published on `healing:event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealingEvent {
    /// The incident healed.
    pub incident_id: String,
    /// The rule.
    pub rule: String,
    /// The action.
    pub action: String,
    /// Its target.
    pub target: String,
    /// What came of it.
    pub outcome: HealingOutcome,
    /// When.
    pub at: Timestamp,
}

/// Whether a source of data is answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The source, real or simulated.
    pub source: SourceInfo,
    /// Whether it answered the last tick.
    pub up: bool,
    /// The error, when it did not.
    pub error: Option<String>,
    /// When this was established.
    pub at: Timestamp,
}

/// Everything the engine publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
pub enum EngineEvent {
    /// The cluster was observed (`cluster:update`).
    #[serde(rename = "cluster:update")]
    ClusterUpdate(ClusterSummary),
    /// An alert arrived and opened or updated an incident (`alert:new`).
    #[serde(rename = "alert:new")]
    AlertNew {
        /// The alert's fingerprint.
        fingerprint: String,
        /// Its name.
        alert_name: Option<String>,
        /// The incident it went to.
        incident_id: String,
    },
    /// A healing step (`healing:event`).
    #[serde(rename = "healing:event")]
    Healing(HealingEvent),
    /// An incident opened (or reopened).
    #[serde(rename = "incident:opened")]
    IncidentOpened(Box<Incident>),
    /// An incident changed (occurrence, severity, acknowledgement, note...).
    #[serde(rename = "incident:updated")]
    IncidentUpdated(Box<Incident>),
    /// An incident was escalated to a human.
    #[serde(rename = "incident:escalated")]
    IncidentEscalated(Box<Incident>),
    /// An incident resolved.
    #[serde(rename = "incident:resolved")]
    IncidentResolved(Box<Incident>),
    /// A source of data went up or down.
    #[serde(rename = "source:status")]
    SourceStatus(SourceStatus),
    /// A chaos run changed state.
    #[serde(rename = "chaos:run")]
    Chaos(ChaosEvent),
    /// A circuit breaker changed state.
    #[serde(rename = "circuit:changed")]
    CircuitBreaker(crate::resilience::BreakerTransition),
    /// A notification, delivered on the event stream by [`EventNotifier`](super::EventNotifier).
    #[serde(rename = "notification:sent")]
    Notification(crate::healing::Notification),
}

impl EngineEvent {
    /// The event's name on live streams (`cluster:update`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ClusterUpdate(_) => "cluster:update",
            Self::AlertNew { .. } => "alert:new",
            Self::Healing(_) => "healing:event",
            Self::IncidentOpened(_) => "incident:opened",
            Self::IncidentUpdated(_) => "incident:updated",
            Self::IncidentEscalated(_) => "incident:escalated",
            Self::IncidentResolved(_) => "incident:resolved",
            Self::SourceStatus(_) => "source:status",
            Self::Chaos(_) => "chaos:run",
            Self::CircuitBreaker(_) => "circuit:changed",
            Self::Notification(_) => "notification:sent",
        }
    }

    /// The topic a subscriber filters on: the part of the name before `:`.
    pub fn topic(&self) -> &'static str {
        let name = self.name();
        name.split_once(':').map_or(name, |(topic, _)| topic)
    }
}
