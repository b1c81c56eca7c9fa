//! Alert ingestion (the Alertmanager webhook) and the alerts view.
//!
//! `POST /api/v1/alerts` (and `/alerts`) takes Alertmanager's webhook
//! payload (version 4). It answers 200 only once the incidents the alerts
//! touched are durably committed, so that Alertmanager retries whatever was
//! not; a redelivery is deduplicated by fingerprint and opens nothing new.
//!
//! Alerts are not kept apart from incidents: an alert is the incident
//! opened from it (`source: alert`), keyed by the alert's fingerprint.

use axum::extract::{Path, Request, State};
use axum::{Extension, Json};
use octrix_core::alert::AlertStatus;
use octrix_core::incident::{
    Fingerprint, Incident, IncidentFilter, IncidentSource, IncidentStatus, Ingested,
};
use octrix_prom::alertmanager::WebhookError;
use octrix_prom::alertmanager::WebhookPayload;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::incidents::{ActionBody, all_matching};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, OptionalJson, read_body};
use crate::schemas::IncidentSchema;
use crate::state::AppState;

/// What a delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IngestSummary {
    /// Alerts in the delivery.
    pub received: usize,
    /// Incidents opened.
    pub opened: Vec<String>,
    /// Incidents reopened.
    pub reopened: Vec<String>,
    /// Incidents whose problem started again.
    pub recurred: Vec<String>,
    /// Incidents resolved because their alert resolved.
    pub resolved: Vec<String>,
    /// Redeliveries of what an incident already holds.
    pub duplicates: usize,
    /// Alerts that changed nothing (e.g. a resolution of an unknown alert).
    pub ignored: usize,
}

/// Receives an Alertmanager webhook delivery.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "alerts",
    request_body(content = Object, description = "Alertmanager's webhook payload, version 4", content_type = "application/json"),
    responses(
        (status = 200, description = "Durably committed", body = IngestSummary),
        (status = 400, description = "Malformed payload; `field` names the field (e.g. `alerts[0].startsAt`)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A viewer's token, or an address outside the allowlist", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "Not committed: Alertmanager should retry", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<IngestSummary>, ApiError> {
    let body = read_body(request, &()).await?;
    let payload = WebhookPayload::from_json(&body).map_err(|error| match error {
        WebhookError::Malformed { path, message } => ApiError::bad_request(path, message),
    })?;
    let alerts = payload.to_alerts();
    let mut engine = state.engine().await;
    let results = engine.ingest_alerts(&alerts).await?;
    engine.commit().await?;
    let mut summary = IngestSummary {
        received: alerts.len(),
        ..IngestSummary::default()
    };
    for (alert, ingested) in alerts.iter().zip(&results) {
        state.metrics().record_alert_received(match alert.status {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        });
        match ingested {
            Ingested::Opened(id) => summary.opened.push(id.to_string()),
            Ingested::Reopened(id) => summary.reopened.push(id.to_string()),
            Ingested::Recurred(id) => summary.recurred.push(id.to_string()),
            Ingested::AutoResolved(id) => summary.resolved.push(id.to_string()),
            Ingested::Duplicate(_) => summary.duplicates += 1,
            Ingested::Ignored(_) => summary.ignored += 1,
        }
    }
    tracing::info!(
        receiver = %payload.receiver,
        received = summary.received,
        opened = summary.opened.len(),
        resolved = summary.resolved.len(),
        duplicates = summary.duplicates,
        "alerts ingested"
    );
    Ok(Json(summary))
}

/// An alert, as the incident it opened shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// Alertmanager's fingerprint: the alert's id.
    pub fingerprint: String,
    /// The `alertname` label.
    pub name: Option<String>,
    /// `firing` while its incident is active, else `resolved`.
    pub status: String,
    /// Whether its incident is acknowledged.
    pub acknowledged: bool,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// When the current occurrence started (`startsAt`).
    pub starts_at: jiff::Timestamp,
    /// When it was last received.
    pub last_seen: jiff::Timestamp,
    /// The incident it went to.
    pub incident_id: String,
    /// The incident's status.
    #[schema(value_type = String)]
    pub incident_status: IncidentStatus,
}

impl AlertView {
    fn of(incident: &Incident) -> Self {
        Self {
            fingerprint: incident.fingerprint.as_str().to_owned(),
            name: incident.labels.get("alertname").cloned(),
            status: if incident.is_active() {
                "firing"
            } else {
                "resolved"
            }
            .to_owned(),
            acknowledged: incident.status == IncidentStatus::Acknowledged,
            labels: incident.labels.clone(),
            starts_at: incident.occurrence_started_at,
            last_seen: incident.last_seen,
            incident_id: incident.id.to_string(),
            incident_status: incident.status,
        }
    }
}

/// Query of the alert list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// `firing` or `resolved`.
    pub status: Option<String>,
    /// Alerts to skip.
    pub offset: Option<usize>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// A page of alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertPage {
    /// The alerts, most recently received first.
    pub items: Vec<AlertView>,
    /// How many matched.
    pub total: usize,
}

/// Lists the alerts received, most recently received first.
#[utoipa::path(get, path = "/api/v1/incidents/alerts", tag = "alerts", params(AlertsQuery),
    responses(
        (status = 200, body = AlertPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Json<AlertPage>, ApiError> {
    let statuses = match query.status.as_deref() {
        None | Some("") => Vec::new(),
        Some("firing") => vec![IncidentStatus::Open, IncidentStatus::Acknowledged],
        Some("resolved") => vec![IncidentStatus::Resolved],
        Some(other) => {
            return Err(ApiError::bad_request(
                "status",
                format!("{other:?} is not one of firing, resolved"),
            ));
        }
    };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > octrix_core::incident::MAX_PAGE_LIMIT {
        return Err(ApiError::bad_request("limit", "must be within 1..=1000"));
    }
    let filter = IncidentFilter {
        statuses,
        ..IncidentFilter::default()
    };
    let mut alerts: Vec<AlertView> = all_matching(&state, filter)
        .await?
        .iter()
        .filter(|i| i.source == IncidentSource::Alert)
        .map(AlertView::of)
        .collect();
    alerts.sort_by(|a, b| {
        b.last_seen
            .cmp(&a.last_seen)
            .then(a.fingerprint.cmp(&b.fingerprint))
    });
    let total = alerts.len();
    let items = alerts
        .into_iter()
        .skip(query.offset.unwrap_or(0))
        .take(limit)
        .collect();
    Ok(Json(AlertPage { items, total }))
}

/// Acknowledges an alert: the active incident it opened.
#[utoipa::path(post, path = "/api/v1/incidents/alerts/{fingerprint}/acknowledge", tag = "alerts",
    params(("fingerprint" = String, Path, description = "The alert's fingerprint")),
    request_body(content = ActionBody, description = "Optional"),
    responses(
        (status = 200, description = "The acknowledged incident", body = IncidentSchema),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No active incident for this fingerprint", body = ErrorBody),
        (status = 409, description = "Already acknowledged", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(fingerprint): Path<String>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> Result<Json<Incident>, ApiError> {
    let actor = body
        .actor
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| principal.name.clone());
    let mut engine = state.engine().await;
    let id = engine
        .book()
        .active_for(&Fingerprint::new(fingerprint.clone()))
        .map(|i| i.id.clone())
        .ok_or_else(|| ApiError::not_found(format!("firing alert {fingerprint}")))?;
    let incident = engine
        .acknowledge(&id, &actor, body.note.as_deref())
        .await?;
    engine.commit().await?;
    Ok(Json(incident))
}
