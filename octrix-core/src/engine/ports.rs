//! The engine's output ports: events, notifications, scripts and traffic.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::events::EngineEvent;
use crate::healing::{Notification, ScriptInvocation};
use crate::{Labels, Timestamp};

/// Where the engine publishes what happens (live event streams, logs).
///
/// Publishing never blocks the engine: an implementation that fans out to
/// consumers must drop a slow consumer rather than wait for it.
pub trait EventSink: Send + Sync {
    /// Publishes one event.
    fn publish(&self, event: EngineEvent);
}

impl<F> EventSink for F
where
    F: Fn(EngineEvent) + Send + Sync,
{
    fn publish(&self, event: EngineEvent) {
        self(event)
    }
}

/// Why a notification, script or traffic change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{port} failed: {reason}")]
pub struct PortError {
    /// Which port (`notifier`, `script runner`, ...).
    pub port: String,
    /// What went wrong.
    pub reason: String,
}

/// Sends notifications to named channels (Slack, e-mail, a pager...).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends `notification`.
    async fn notify(&self, notification: &Notification) -> Result<(), PortError>;
}

/// What a custom script did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptOutcome {
    /// Exit code (`None` when killed by a signal or the timeout).
    pub exit_code: Option<i32>,
    /// The end of its standard output and error, for the timeline.
    pub output_tail: String,
}

/// Runs `custom-script` actions (never through a shell).
#[async_trait]
pub trait ScriptRunner: Send + Sync {
    /// Runs the program and waits for it, up to its timeout.
    async fn run(&self, script: &ScriptInvocation) -> Result<ScriptOutcome, PortError>;
}

/// Sends a service's traffic back to its stable version (canary rollback).
#[async_trait]
pub trait TrafficControl: Send + Sync {
    /// Routes all of `service`'s traffic to its stable version; returns a summary.
    async fn rollback(&self, namespace: &str, service: &str) -> Result<String, PortError>;
}

/// A request to mute the alerts that an action of Octrix's own (a chaos run,
/// a remediation) is expected to cause, so that they do not page anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRequest {
    /// Alerts carrying all of these labels, with these values, are muted.
    pub matchers: Labels,
    /// From when.
    pub starts_at: Timestamp,
    /// Until when.
    pub ends_at: Timestamp,
    /// Why, for whoever looks at the silence.
    pub comment: String,
}

/// Mutes alerts in the alerting system (Alertmanager, in `octrix-prom`).
#[async_trait]
pub trait Silencer: Send + Sync {
    /// Creates a silence; returns its id.
    async fn silence(&self, request: &SilenceRequest) -> Result<String, PortError>;

    /// Ends a silence early.
    async fn expire(&self, id: &str) -> Result<(), PortError>;
}
