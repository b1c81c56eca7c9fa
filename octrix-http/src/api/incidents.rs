//! `/api/v1/incidents`: list, statistics, one incident, and what people do
//! to them (acknowledge, resolve, assign, notes).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use octrix_core::engine::{Engine, Error as EngineError};
use octrix_core::incident::{
    Incident, IncidentFilter, IncidentId, IncidentPage, IncidentQuery, IncidentStats,
    MAX_PAGE_LIMIT, SortDirection, SortKey, TimeRange, incident_stats,
};
use octrix_core::{Category, Severity};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_enum;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, OptionalJson, list, parse_time};
use crate::schemas::{DurationSummarySchema, IncidentPageSchema, IncidentSchema};
use crate::state::AppState;

/// Query of the incident list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated statuses: `open`, `acknowledged`, `resolved`.
    pub status: Option<String>,
    /// Comma-separated severities: `low`, `medium`, `high`, `critical`.
    pub severity: Option<String>,
    /// Comma-separated categories (`pod-crash`, `high-cpu`, `alert`, ...).
    pub category: Option<String>,
    /// Exactly this service.
    pub service: Option<String>,
    /// Exactly this environment.
    pub environment: Option<String>,
    /// Opened at or after (RFC 3339 or Unix seconds).
    pub from: Option<String>,
    /// Opened before (RFC 3339 or Unix seconds).
    pub to: Option<String>,
    /// Case-insensitive text in the id, title, description, service,
    /// environment, namespace, resource, fingerprint, assignee or a label.
    pub q: Option<String>,
    /// `last_seen` (default), `first_seen`, `severity` or `id`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    /// Incidents to skip (default 0).
    pub offset: Option<usize>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<usize>,
}

const STATUSES: &str = "open, acknowledged, resolved";
const SEVERITIES: &str = "low, medium, high, critical";
const CATEGORIES: &str = "pod-crash, high-cpu, high-memory, oom-killed, node-pressure, node-not-ready, persistent-restarts, anomaly, alert";

fn time_range(from: Option<&str>, to: Option<&str>) -> Result<TimeRange, ApiError> {
    let range = TimeRange {
        start: from.map(|t| parse_time("from", t)).transpose()?,
        end: to.map(|t| parse_time("to", t)).transpose()?,
    };
    if let (Some(start), Some(end)) = (range.start, range.end)
        && end < start
    {
        return Err(ApiError::bad_request("to", "is before from"));
    }
    Ok(range)
}

impl ListQuery {
    /// The store query this asks for.
    pub fn to_query(&self) -> Result<IncidentQuery, ApiError> {
        let mut filter = IncidentFilter::default();
        for s in list(self.status.as_deref()) {
            filter.statuses.push(parse_enum("status", s, STATUSES)?);
        }
        for s in list(self.severity.as_deref()) {
            filter
                .severities
                .push(parse_enum::<Severity>("severity", s, SEVERITIES)?);
        }
        for c in list(self.category.as_deref()) {
            filter
                .categories
                .push(parse_enum::<Category>("category", c, CATEGORIES)?);
        }
        filter.service = self.service.clone().filter(|s| !s.is_empty());
        filter.environment = self.environment.clone().filter(|s| !s.is_empty());
        filter.text = self.q.clone().filter(|s| !s.trim().is_empty());
        filter.opened = time_range(self.from.as_deref(), self.to.as_deref())?;
        let sort = match self.sort.as_deref() {
            None => SortKey::default(),
            Some(s) => parse_enum("sort", s, "last_seen, first_seen, severity, id")?,
        };
        let direction = match self.order.as_deref() {
            None | Some("desc") => SortDirection::Descending,
            Some("asc") => SortDirection::Ascending,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "order",
                    format!("{other:?} is not one of asc, desc"),
                ));
            }
        };
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(ApiError::bad_request(
                "limit",
                format!("must be within 1..={MAX_PAGE_LIMIT}"),
            ));
        }
        Ok(IncidentQuery {
            filter,
            sort,
            direction,
            offset: self.offset.unwrap_or(0),
            limit,
        })
    }
}

/// Lists incidents with filters, sort and pagination.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery),
    responses(
        (status = 200, body = IncidentPageSchema),
        (status = 400, description = "An invalid filter, sort or page; `field` names it", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn list_incidents(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<IncidentPage>, ApiError> {
    let query = query.to_query()?;
    Ok(Json(state.storage().list(&query).await?))
}

/// Every stored incident matching `filter`, page by page.
pub(crate) async fn all_matching(
    state: &AppState,
    filter: IncidentFilter,
) -> Result<Vec<Incident>, ApiError> {
    let mut query = IncidentQuery {
        filter,
        sort: SortKey::FirstSeen,
        direction: SortDirection::Ascending,
        offset: 0,
        limit: MAX_PAGE_LIMIT,
    };
    let mut all = Vec::new();
    loop {
        let page = state.storage().list(&query).await?;
        let got = page.items.len();
        all.extend(page.items);
        if got < MAX_PAGE_LIMIT || all.len() >= page.total {
            return Ok(all);
        }
        query.offset += got;
    }
}

/// Query of the statistics.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Incidents opened at or after (RFC 3339 or Unix seconds).
    pub from: Option<String>,
    /// Incidents opened before.
    pub to: Option<String>,
}

/// Counts, MTTA and MTTR of the incidents opened in a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    /// The range (`start`, `end`; absent bounds are open).
    #[schema(value_type = Object)]
    pub range: TimeRange,
    /// How many incidents.
    pub total: usize,
    /// By status (every status present).
    #[schema(value_type = std::collections::BTreeMap<String, usize>)]
    pub by_status: serde_json::Value,
    /// By severity (every severity present).
    #[schema(value_type = std::collections::BTreeMap<String, usize>)]
    pub by_severity: serde_json::Value,
    /// By category (every category present).
    #[schema(value_type = std::collections::BTreeMap<String, usize>)]
    pub by_category: serde_json::Value,
    /// By service.
    pub by_service: std::collections::BTreeMap<String, usize>,
    /// How many were reopened at least once.
    pub reopened: usize,
    /// Time to acknowledge (ISO 8601 durations).
    #[schema(value_type = DurationSummarySchema)]
    pub mtta: serde_json::Value,
    /// Time to resolve (ISO 8601 durations).
    #[schema(value_type = DurationSummarySchema)]
    pub mttr: serde_json::Value,
    /// Mean time to acknowledge, in seconds.
    pub mtta_seconds: Option<f64>,
    /// Mean time to resolve, in seconds.
    pub mttr_seconds: Option<f64>,
}

impl StatsResponse {
    fn of(stats: &IncidentStats) -> Result<Self, ApiError> {
        Ok(Self {
            range: stats.range,
            total: stats.total,
            by_status: json(&stats.by_status)?,
            by_severity: json(&stats.by_severity)?,
            by_category: json(&stats.by_category)?,
            by_service: stats.by_service.clone(),
            reopened: stats.reopened,
            mtta: json(&stats.mtta)?,
            mttr: json(&stats.mttr)?,
            mtta_seconds: stats.mtta.mean.map(|d| d.as_secs_f64()),
            mttr_seconds: stats.mttr.mean.map(|d| d.as_secs_f64()),
        })
    }
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Counts by status, severity, category and service, MTTA and MTTR.
#[utoipa::path(get, path = "/api/v1/incidents/stats", tag = "incidents", params(StatsQuery),
    responses(
        (status = 200, body = StatsResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<StatsResponse>, ApiError> {
    let range = time_range(query.from.as_deref(), query.to.as_deref())?;
    let filter = IncidentFilter {
        opened: range,
        ..IncidentFilter::default()
    };
    let incidents = all_matching(&state, filter).await?;
    let stats = incident_stats(&incidents, &range);
    Ok(Json(StatsResponse::of(&stats)?))
}

/// One incident with its timeline.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "Incident id, e.g. INC-000001")),
    responses(
        (status = 200, body = IncidentSchema),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Incident>, ApiError> {
    let id = IncidentId::new(id);
    state
        .storage()
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("incident {id}")))
}

/// Body of acknowledge and resolve.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Who does it; the caller's token name when absent.
    pub actor: Option<String>,
    /// Why, for the timeline.
    pub note: Option<String>,
}

/// Applies `change` through the engine and answers once the incident is
/// durably stored.
async fn change_incident(
    state: &AppState,
    change: impl AsyncFnOnce(&mut Engine) -> Result<Incident, EngineError>,
) -> Result<Json<Incident>, ApiError> {
    let mut engine = state.engine().await;
    let incident = change(&mut engine).await?;
    engine.commit().await?;
    Ok(Json(incident))
}

fn actor(principal: &Principal, body: &ActionBody) -> String {
    body.actor
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| principal.name.clone())
}

/// Acknowledges an open incident.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/acknowledge", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = ActionBody, description = "Optional"),
    responses(
        (status = 200, description = "The acknowledged incident, durably stored", body = IncidentSchema),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not open (already acknowledged, or resolved)", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> Result<Json<Incident>, ApiError> {
    let id = IncidentId::new(id);
    let actor = actor(&principal, &body);
    change_incident(&state, async |engine| {
        engine.acknowledge(&id, &actor, body.note.as_deref()).await
    })
    .await
}

/// Resolves an open or acknowledged incident.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = ActionBody, description = "Optional: actor and note"),
    responses(
        (status = 200, description = "The resolved incident, durably stored", body = IncidentSchema),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ActionBody>,
) -> Result<Json<Incident>, ApiError> {
    let id = IncidentId::new(id);
    let actor = actor(&principal, &body);
    change_incident(&state, async |engine| {
        engine.resolve(&id, &actor, body.note.as_deref()).await
    })
    .await
}

/// Body of assign.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The new owner.
    pub assignee: String,
}

/// Gives an incident to someone.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/assign", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    request_body = AssignBody,
    responses(
        (status = 200, body = IncidentSchema),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn assign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<Json<Incident>, ApiError> {
    let id = IncidentId::new(id);
    change_incident(&state, async |engine| {
        engine.assign(&id, &body.assignee, &principal.name).await
    })
    .await
}

/// Body of a note.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The text.
    pub text: String,
}

/// Adds a note to an incident's timeline.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    request_body = NoteBody,
    responses(
        (status = 200, body = IncidentSchema),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn add_note(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<Json<Incident>, ApiError> {
    if body.text.trim().is_empty() {
        return Err(ApiError::bad_request("text", "must not be empty"));
    }
    let id = IncidentId::new(id);
    change_incident(&state, async |engine| {
        engine.add_note(&id, &principal.name, &body.text).await
    })
    .await
}

/// Every stored incident as JSON lines, oldest first (backups).
#[utoipa::path(get, path = "/api/v1/incidents/export", tag = "incidents",
    responses(
        (status = 200, description = "One incident per line", content_type = "application/x-ndjson", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn export(State(state): State<AppState>) -> Result<Response, ApiError> {
    let lines = state.storage().export_incidents_jsonl().await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response())
}
