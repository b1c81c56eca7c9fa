//! Live events: a broadcast hub behind the engine's [`EventSink`] port, and
//! the WebSocket and Server-Sent Events streams that fan it out.
//!
//! Every event is `{"event": "<name>", "data": {...}}` with seed 000's names
//! (`cluster:update`, `alert:new`, `healing:event`) plus `incident:*`,
//! `source:status`, `chaos:*`, `routing:*`, `resilience:*`, `circuit:changed`
//! and `notification:sent`. Its **topic**
//! is the part of the name before `:`; a client receives the topics it
//! subscribed to (all of them unless it says otherwise):
//!
//! * `GET /api/v1/events/sse?topics=cluster,incident` (SSE; topics fixed at
//!   connection);
//! * `GET /api/v1/events/ws?topics=cluster` (WebSocket), then messages
//!   `subscribe:incident` / `unsubscribe:cluster` (seed 000's Socket.IO
//!   names) or `{"action": "subscribe", "topics": ["incident"]}`; the server
//!   answers `{"event": "subscribed", "data": {"topics": [...]}}`.
//!
//! Publishing never waits: the hub is a bounded `tokio::sync::broadcast`
//! channel. A consumer that falls more than the channel's capacity behind
//! is dropped with a reason (a `dropped` SSE event, or a WebSocket close
//! frame `1008 lagged: missed N events`), and so is a WebSocket client that
//! does not take a message within the send timeout.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use octrix_core::engine::{EngineEvent, EventSink};
use octrix_core::incident::{HealingOutcome, Incident, IncidentStatus, TimelineEvent};
use octrix_prom::OctrixMetrics;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// The topics a client can subscribe to.
pub const TOPICS: [&str; 10] = [
    "cluster",
    "alert",
    "healing",
    "incident",
    "source",
    "chaos",
    "routing",
    "resilience",
    // The engine's `circuit:changed` and `notification:sent`: without
    // their topics here no stream would ever carry them.
    "circuit",
    "notification",
];

/// How long a WebSocket client may take to accept one message.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// One published event, serialised once for every consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEvent {
    /// The name, e.g. `incident:opened`.
    pub name: String,
    /// The topic, e.g. `incident`.
    pub topic: String,
    /// `{"event": name, "data": ...}`.
    pub json: String,
}

/// The broadcast hub. Cheap to clone; clones share the channel.
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<HubEvent>>,
    metrics: Option<OctrixMetrics>,
}

impl EventHub {
    /// A hub keeping up to `capacity` events for slow consumers.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx, metrics: None }
    }

    /// The same hub, also recording incident, healing and source events in
    /// `metrics`.
    pub fn with_metrics(mut self, metrics: OctrixMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// A new consumer, receiving what is published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.tx.subscribe()
    }

    /// How many consumers are connected.
    pub fn consumers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Publishes an event that is not the engine's (chaos runs, routes,
    /// resilience), named `topic:what`.
    pub fn publish_json(&self, name: &str, data: &impl Serialize) {
        let json = match serde_json::to_string(&Envelope { event: name, data }) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, event = name, "cannot serialise an event");
                return;
            }
        };
        let topic = name.split_once(':').map_or(name, |(t, _)| t).to_owned();
        self.send(HubEvent {
            name: name.to_owned(),
            topic,
            json,
        });
    }

    fn send(&self, event: HubEvent) {
        // No consumer is not an error: the event is simply not seen.
        let _ = self.tx.send(Arc::new(event));
    }

    fn record(&self, event: &EngineEvent) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let service = |i: &Incident| i.service.clone().unwrap_or_default();
        match event {
            EngineEvent::IncidentOpened(i) => {
                metrics.record_incident_opened(i.severity.as_str(), &service(i));
            }
            EngineEvent::IncidentResolved(i) => {
                let seconds = i
                    .time_to_resolve()
                    .map_or(0.0, |d| d.as_secs_f64().max(0.0));
                metrics.record_incident_resolved(i.severity.as_str(), &service(i), seconds);
            }
            EngineEvent::IncidentUpdated(i) => {
                let just_acknowledged = i.timeline.last().is_some_and(|entry| {
                    matches!(
                        entry.event,
                        TimelineEvent::StatusChanged {
                            to: IncidentStatus::Acknowledged,
                            ..
                        }
                    )
                });
                if just_acknowledged && let Some(tta) = i.time_to_acknowledge() {
                    metrics.record_acknowledged(i.severity.as_str(), tta.as_secs_f64());
                }
            }
            EngineEvent::Healing(h) => {
                let outcome = match h.outcome {
                    HealingOutcome::Executed { .. } => "executed",
                    HealingOutcome::DryRun { .. } => "dry_run",
                    HealingOutcome::Healed => "healed",
                    HealingOutcome::NotHealed => "not_healed",
                    HealingOutcome::Failed { .. } => "failed",
                    HealingOutcome::Denied { .. } => "denied",
                };
                metrics.record_healing_action(&h.action, outcome);
            }
            EngineEvent::SourceStatus(s) => metrics.set_source_up(&s.source.name, s.up),
            _ => {}
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    event: &'a str,
    data: &'a T,
}

impl EventSink for EventHub {
    fn publish(&self, event: EngineEvent) {
        self.record(&event);
        // Serialising an incident costs more than ingesting it, and the
        // engine publishes under its lock: with no consumer, skip it.
        if self.tx.receiver_count() == 0 {
            return;
        }
        let json = match serde_json::to_string(&event) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, event = event.name(), "cannot serialise an event");
                return;
            }
        };
        self.send(HubEvent {
            name: event.name().to_owned(),
            topic: event.topic().to_owned(),
            json,
        });
    }
}

/// Query parameters of the event streams.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Comma-separated topics (`cluster,alert,healing,incident,source,chaos,routing,resilience,circuit,notification`);
    /// all of them when absent.
    pub topics: Option<String>,
    /// The bearer token, for clients that cannot send an `Authorization`
    /// header (`EventSource`, browser `WebSocket`).
    pub access_token: Option<String>,
}

fn parse_topics(field: &str, text: Option<&str>) -> Result<BTreeSet<String>, ApiError> {
    let Some(text) = text else {
        return Ok(TOPICS.iter().map(|t| (*t).to_owned()).collect());
    };
    let mut topics = BTreeSet::new();
    for topic in crate::extract::list(Some(text)) {
        if !TOPICS.contains(&topic) {
            return Err(ApiError::bad_request(
                field,
                format!("unknown topic {topic:?}; topics are {}", TOPICS.join(", ")),
            ));
        }
        topics.insert(topic.to_owned());
    }
    Ok(topics)
}

/// Why a stream was dropped, sent as the last SSE event `dropped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dropped {
    /// `lagged`.
    pub reason: String,
    /// Events missed.
    pub missed: u64,
}

/// A server-sent events stream of live events.
#[utoipa::path(
    get, path = "/api/v1/events/sse", tag = "events",
    params(StreamQuery),
    responses(
        (status = 200, description = "`text/event-stream`: each SSE event is named after the event and carries `{\"event\", \"data\"}`; a lagging client gets a last `dropped` event (`Dropped`)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Unknown topic", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credentials", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn sse(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let topics = parse_topics("topics", query.topics.as_deref())?;
    let rx = state.events().subscribe();
    let stream = futures_util::stream::unfold(Some((rx, topics)), |state| async move {
        let (mut rx, topics) = state?;
        loop {
            match rx.recv().await {
                Ok(event) if topics.contains(&event.topic) => {
                    let sse = Event::default().event(&event.name).data(&event.json);
                    return Some((Ok::<_, Infallible>(sse), Some((rx, topics))));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "dropping a lagging SSE consumer");
                    let data = serde_json::to_string(&Dropped {
                        reason: "lagged".to_owned(),
                        missed,
                    })
                    .unwrap_or_default();
                    return Some((Ok(Event::default().event("dropped").data(data)), None));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A control message a WebSocket client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
pub struct Control {
    /// `subscribe` or `unsubscribe`.
    pub action: String,
    /// The topics.
    pub topics: Vec<String>,
}

/// A WebSocket stream of live events, with subscribe/unsubscribe messages.
#[utoipa::path(
    get, path = "/api/v1/events/ws", tag = "events",
    params(StreamQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; server messages are `{\"event\", \"data\"}`, client messages `subscribe:<topic>`, `unsubscribe:<topic>` or a `Control`"),
        (status = 400, description = "Unknown topic, or not a WebSocket upgrade", body = crate::error::ErrorBody),
        (status = 401, description = "No valid credentials", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ws(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let topics = parse_topics("topics", query.topics.as_deref())?;
    let upgrade = upgrade.map_err(|rejection| ApiError::bad_request(".", rejection.body_text()))?;
    let rx = state.events().subscribe();
    Ok(upgrade.on_upgrade(move |socket| session(socket, rx, topics)))
}

fn subscribed(topics: &BTreeSet<String>) -> Message {
    let json = serde_json::json!({"event": "subscribed", "data": {"topics": topics}});
    Message::Text(Utf8Bytes::from(json.to_string()))
}

fn control_error(message: &str) -> Message {
    let json = serde_json::json!({"event": "error", "data": {"message": message}});
    Message::Text(Utf8Bytes::from(json.to_string()))
}

/// Applies a client's control message; returns what to answer.
fn apply_control(text: &str, topics: &mut BTreeSet<String>) -> Message {
    let text = text.trim();
    let (action, wanted): (&str, Vec<String>) =
        if let Some((action, topic)) = text.split_once(':').filter(|_| !text.starts_with('{')) {
            (action, vec![topic.to_owned()])
        } else {
            match serde_json::from_str::<Control>(text) {
                Ok(control) => {
                    let action = match control.action.as_str() {
                        "subscribe" => "subscribe",
                        "unsubscribe" => "unsubscribe",
                        _ => "",
                    };
                    (action, control.topics)
                }
                Err(error) => return control_error(&format!("not a control message: {error}")),
            }
        };
    if let Some(unknown) = wanted.iter().find(|t| !TOPICS.contains(&t.as_str())) {
        return control_error(&format!(
            "unknown topic {unknown:?}; topics are {}",
            TOPICS.join(", ")
        ));
    }
    match action {
        "subscribe" => topics.extend(wanted),
        "unsubscribe" => {
            for topic in &wanted {
                topics.remove(topic);
            }
        }
        _ => return control_error("the action must be subscribe or unsubscribe"),
    }
    subscribed(topics)
}

async fn session(
    socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<HubEvent>>,
    mut topics: BTreeSet<String>,
) {
    let (mut sink, mut stream) = socket.split();
    if sink.send(subscribed(&topics)).await.is_err() {
        return;
    }
    loop {
        let outgoing = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => apply_control(text.as_str(), &mut topics),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            event = rx.recv() => match event {
                Ok(event) if topics.contains(&event.topic) => {
                    Message::Text(Utf8Bytes::from(event.json.as_str()))
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "dropping a lagging WebSocket consumer");
                    let frame = CloseFrame {
                        code: axum::extract::ws::close_code::POLICY,
                        reason: Utf8Bytes::from(format!("lagged: missed {missed} events")),
                    };
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(outgoing)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!("dropping a WebSocket consumer that stopped reading");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use octrix_core::engine::{EngineEvent, SourceStatus};
    use octrix_core::metrics::{SourceInfo, SourceKind};

    fn source_event(up: bool) -> EngineEvent {
        EngineEvent::SourceStatus(SourceStatus {
            source: SourceInfo {
                name: "sim(seed=1)".into(),
                kind: SourceKind::Simulated,
            },
            up,
            error: None,
            at: octrix_core::Timestamp::UNIX_EPOCH,
        })
    }

    #[tokio::test]
    async fn published_events_reach_subscribers_with_name_and_topic() {
        let metrics = OctrixMetrics::new();
        let hub = EventHub::new(8).with_metrics(metrics.clone());
        let mut rx = hub.subscribe();
        hub.publish(source_event(false));
        let event = rx.recv().await.unwrap();
        assert_eq!(event.name, "source:status");
        assert_eq!(event.topic, "source");
        let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
        assert_eq!(json["event"], "source:status");
        assert_eq!(json["data"]["up"], false);
        assert_eq!(metrics.source_up("sim(seed=1)"), Some(false));
    }

    #[tokio::test]
    async fn a_slow_consumer_lags_and_never_blocks_the_publisher() {
        let hub = EventHub::new(4);
        let mut rx = hub.subscribe();
        for _ in 0..100 {
            hub.publish(source_event(true));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(missed)) => assert_eq!(missed, 96),
            other => panic!("expected a lag, got {other:?}"),
        }
    }

    #[test]
    fn control_messages_change_the_topics() {
        let mut topics: BTreeSet<String> = ["cluster".to_owned()].into();
        apply_control("subscribe:incident", &mut topics);
        assert_eq!(topics.len(), 2);
        apply_control("unsubscribe:cluster", &mut topics);
        assert_eq!(topics, ["incident".to_owned()].into());
        apply_control(
            r#"{"action": "subscribe", "topics": ["chaos", "healing"]}"#,
            &mut topics,
        );
        assert_eq!(topics.len(), 3);
        let Message::Text(answer) = apply_control("subscribe:weather", &mut topics) else {
            panic!("a text answer");
        };
        assert!(
            answer.as_str().contains("unknown topic"),
            "{}",
            answer.as_str()
        );
        assert_eq!(topics.len(), 3);
    }

    #[test]
    fn topics_are_checked() {
        assert_eq!(parse_topics("topics", None).unwrap().len(), TOPICS.len());
        assert_eq!(
            parse_topics("topics", Some("cluster, alert"))
                .unwrap()
                .len(),
            2
        );
        let error = parse_topics("topics", Some("cluster,nope")).unwrap_err();
        assert_eq!(error.body().error.field.as_deref(), Some("topics"));
    }
}
