//! Routing: traffic rules (CRUD, validated field by field by the core) and
//! their deployment: Istio VirtualService and DestinationRule generated,
//! exported as GitOps files (written to the configured GitOps directory, the
//! server's routing port), and `deployed_at` recorded.

use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use octrix_core::routing::canary::{
    Canary, CanaryConfig, CanaryError, CanaryEvent, CanaryEventKind, CanaryState, CanaryStep,
    CanaryWeights, CheckOutcome,
};
use octrix_core::routing::gitops::{ExportedFile, export_rules};
use octrix_core::routing::istio::ManifestError;
use octrix_core::routing::{IstioApiVersion, RuleError, TrafficRule};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::route_applier::ApplyError;
use crate::state::AppState;
use crate::storage::{Document, DocumentKind};

/// A stored traffic rule (seed 002's `TrafficRule` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredRule {
    /// `<namespace>.<service>`: one rule per service.
    pub id: String,
    /// The rule: `{service, namespace, hosts?, gateways?, destinations: [{subset, labels?, weight}], kind?, traffic_policy?}`.
    #[schema(value_type = Object)]
    pub rule: TrafficRule,
    /// When it was created.
    pub created_at: jiff::Timestamp,
    /// When it was last changed.
    pub updated_at: jiff::Timestamp,
    /// When it was last deployed; `null` until then, and again after a change.
    pub deployed_at: Option<jiff::Timestamp>,
    /// Its canary, if one was started (see `/canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub canary: Option<CanaryRecord>,
}

/// A canary driving a traffic rule, and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryRecord {
    /// The state machine.
    pub canary: Canary,
    /// Its most recent events, oldest first (the last 100).
    pub events: Vec<CanaryEvent>,
}

const CANARY_EVENTS: usize = 100;

fn rule_error(error: RuleError) -> ApiError {
    match error.field_errors().first() {
        Some(first) => {
            let all: Vec<String> = error.field_errors().iter().map(|e| e.to_string()).collect();
            ApiError::bad_request(first.field.clone(), all.join("; "))
        }
        None => ApiError::bad_request(".", error.to_string()),
    }
}

fn manifest_error(error: ManifestError) -> ApiError {
    match error {
        ManifestError::InvalidRule(e) => rule_error(e),
        other => ApiError::Internal(other.to_string()),
    }
}

fn id_of(rule: &TrafficRule) -> String {
    format!("{}.{}", rule.namespace, rule.service)
}

async fn load(state: &AppState, id: &str) -> Result<StoredRule, ApiError> {
    let document = state
        .storage()
        .get_document(DocumentKind::TrafficRule, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("traffic rule {id}")))?;
    serde_json::from_value(document.body).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn save(state: &AppState, stored: &StoredRule) -> Result<(), ApiError> {
    let body = serde_json::to_value(stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .storage()
        .put_document(&Document {
            kind: DocumentKind::TrafficRule,
            id: stored.id.clone(),
            updated_at: stored.updated_at,
            body,
        })
        .await?;
    Ok(())
}

/// Lists the traffic rules, most recently changed first.
#[utoipa::path(get, path = "/api/v1/routing/rules", tag = "routing",
    responses((status = 200, body = Vec<StoredRule>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<StoredRule>>, ApiError> {
    let documents = state
        .storage()
        .list_documents(DocumentKind::TrafficRule, 10_000)
        .await?;
    documents
        .into_iter()
        .map(|d| serde_json::from_value(d.body).map_err(|e| ApiError::Internal(e.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}

/// One traffic rule.
#[utoipa::path(get, path = "/api/v1/routing/rules/{id}", tag = "routing",
    params(("id" = String, Path, description = "`<namespace>.<service>`")),
    responses((status = 200, body = StoredRule), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StoredRule>, ApiError> {
    load(&state, &id).await.map(Json)
}

/// Creates a traffic rule.
#[utoipa::path(post, path = "/api/v1/routing/rules", tag = "routing",
    request_body(content = Object, description = "A TrafficRule"),
    responses(
        (status = 201, body = StoredRule),
        (status = 400, description = "Invalid; `field` names the first bad field (e.g. `destinations[1].weight`), the message lists all", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The service has a rule", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(rule): ApiJson<TrafficRule>,
) -> Result<Response, ApiError> {
    rule.validate().map_err(rule_error)?;
    let id = id_of(&rule);
    if state
        .storage()
        .get_document(DocumentKind::TrafficRule, &id)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "service {}/{} has a traffic rule ({id})",
            rule.namespace, rule.service
        )));
    }
    let now = state.now();
    let stored = StoredRule {
        id,
        rule,
        created_at: now,
        updated_at: now,
        deployed_at: None,
        canary: None,
    };
    save(&state, &stored).await?;
    state.events().publish_json("routing:rule-created", &stored);
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// Replaces a traffic rule (same service and namespace).
#[utoipa::path(put, path = "/api/v1/routing/rules/{id}", tag = "routing",
    params(("id" = String, Path, description = "`<namespace>.<service>`")),
    request_body(content = Object, description = "A TrafficRule"),
    responses(
        (status = 200, body = StoredRule),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(rule): ApiJson<TrafficRule>,
) -> Result<Json<StoredRule>, ApiError> {
    rule.validate().map_err(rule_error)?;
    if id_of(&rule) != id {
        return Err(ApiError::bad_request(
            "service",
            format!("the rule is for {}, not {id}", id_of(&rule)),
        ));
    }
    let mut stored = load(&state, &id).await?;
    stored.rule = rule;
    stored.updated_at = state.now();
    stored.deployed_at = None;
    save(&state, &stored).await?;
    state.events().publish_json("routing:rule-updated", &stored);
    Ok(Json(stored))
}

/// Deletes a traffic rule.
#[utoipa::path(delete, path = "/api/v1/routing/rules/{id}", tag = "routing",
    params(("id" = String, Path, description = "`<namespace>.<service>`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .storage()
        .delete_document(DocumentKind::TrafficRule, &id)
        .await?
    {
        return Err(ApiError::not_found(format!("traffic rule {id}")));
    }
    state
        .events()
        .publish_json("routing:rule-deleted", &serde_json::json!({ "id": id }));
    Ok(StatusCode::NO_CONTENT)
}

/// One exported GitOps file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GitOpsFile {
    /// Path relative to the GitOps repository's root.
    pub path: String,
    /// The YAML.
    pub contents: String,
}

/// What a deployment did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    /// The rule, with its new `deployed_at`.
    pub rule: StoredRule,
    /// The generated manifests as GitOps files (VirtualService, DestinationRule).
    pub files: Vec<GitOpsFile>,
    /// Where they were applied: the GitOps directory written, or why nothing was.
    pub applied: String,
}

fn write_files(dir: &FsPath, files: &[ExportedFile]) -> std::io::Result<()> {
    for file in files {
        let path = dir.join(&file.relative_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temporary = path.with_extension("yaml.tmp");
        std::fs::write(&temporary, &file.contents)?;
        std::fs::rename(&temporary, &path)?;
    }
    Ok(())
}

/// Generates `rule`'s manifests, applies them to the cluster (with the
/// Kubernetes adapter) and writes them to the GitOps directory, where those
/// are configured; answers the files, where they went, and whether they went
/// anywhere.
async fn apply(
    state: &AppState,
    rule: &TrafficRule,
) -> Result<(Vec<ExportedFile>, String, bool), ApiError> {
    let files =
        export_rules(std::slice::from_ref(rule), IstioApiVersion::V1).map_err(manifest_error)?;
    let mut applied = Vec::new();
    if let Some(routes) = state.routes() {
        let summary = routes.apply(rule).await.map_err(|e| match e {
            ApplyError::Invalid(reason) => ApiError::bad_request("rule", reason),
            ApplyError::Unavailable(reason) => ApiError::Unavailable(format!(
                "{} cannot take the rule: {reason}",
                routes.target()
            )),
        })?;
        applied.push(summary);
    }
    if let Some(dir) = state.gitops_dir() {
        let dir = dir.to_owned();
        let target = dir.clone();
        let to_write = files.clone();
        tokio::task::spawn_blocking(move || write_files(&target, &to_write))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| {
                tracing::error!(error = %e, "cannot write the GitOps files");
                ApiError::Unavailable("the GitOps directory cannot be written".to_owned())
            })?;
        applied.push(format!("written to the GitOps directory {}", dir.display()));
    }
    let anywhere = !applied.is_empty();
    let applied = if anywhere {
        applied.join("; ")
    } else {
        "not applied: no routing adapter or GitOps directory is configured; the manifests are returned only".to_owned()
    };
    Ok((files, applied, anywhere))
}

/// Deploys a traffic rule: generates the Istio manifests, applies them to
/// the cluster (with the Kubernetes adapter), exports them to the GitOps
/// directory, and records `deployed_at`.
#[utoipa::path(post, path = "/api/v1/routing/rules/{id}/deploy", tag = "routing",
    params(("id" = String, Path, description = "`<namespace>.<service>`")),
    responses(
        (status = 200, body = Deployment),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn deploy(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    let mut stored = load(&state, &id).await?;
    let (files, applied, _) = apply(&state, &stored.rule).await?;
    stored.deployed_at = Some(state.now());
    save(&state, &stored).await?;
    let deployment = Deployment {
        rule: stored,
        files: files
            .into_iter()
            .map(|f| GitOpsFile {
                path: f.relative_path,
                contents: f.contents,
            })
            .collect(),
        applied,
    };
    state
        .events()
        .publish_json("routing:deployed", &deployment.rule);
    Ok(Json(deployment))
}

fn canary_error(error: CanaryError) -> ApiError {
    let all: Vec<String> = error.field_errors().iter().map(|e| e.to_string()).collect();
    match error.field_errors().first() {
        Some(first) => ApiError::bad_request(first.field.clone(), all.join("; ")),
        None => ApiError::bad_request(".", error.to_string()),
    }
}

/// A canary's progress: its stage, weights and gate results.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CanaryStatus {
    /// The traffic rule, `<namespace>.<service>`.
    pub rule: String,
    /// `initialized`, `progressing`, `paused`, `analysing`, `promoting`,
    /// `succeeded`, `rolled_back` or `failed`.
    #[schema(value_type = String)]
    pub state: CanaryState,
    /// Whether it is over.
    pub finished: bool,
    /// Position of the step being executed, if any.
    pub step_index: Option<usize>,
    /// That step, e.g. `{"set_weight": 20}` or `{"analysis": {"checks": 2}}`.
    #[schema(value_type = Option<Object>)]
    pub step: Option<CanaryStep>,
    /// Steps in the plan.
    pub steps_total: usize,
    /// The split wanted now (`{stable, canary}`, percent).
    #[schema(value_type = Object)]
    pub weights: CanaryWeights,
    /// Failed metric checks so far.
    pub failed_checks: u32,
    /// Failed checks tolerated; one more rolls back.
    pub failure_limit: u32,
    /// When it started.
    pub started_at: Option<jiff::Timestamp>,
    /// When the next metric check is due.
    pub next_check_at: Option<jiff::Timestamp>,
    /// Every gate result kept, oldest first: `{at, outcome, failed_checks}`.
    #[schema(value_type = Vec<Object>)]
    pub gate_results: Vec<GateResult>,
    /// The most recent events (state changes, steps, weights, checks).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<CanaryEvent>,
}

/// One metric check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// When.
    pub at: jiff::Timestamp,
    /// Passed, failed (with why) or skipped.
    pub outcome: CheckOutcome,
    /// Failed checks so far, this one included.
    pub failed_checks: u32,
}

fn canary_status(id: &str, record: &CanaryRecord) -> CanaryStatus {
    let canary = &record.canary;
    let step = canary.current_step();
    CanaryStatus {
        rule: id.to_owned(),
        state: canary.state(),
        finished: canary.state().is_terminal(),
        step_index: step.map(|(i, _)| i),
        step: step.map(|(_, s)| s.clone()),
        steps_total: canary.config().steps.len(),
        weights: canary.weights(),
        failed_checks: canary.failed_checks(),
        failure_limit: canary.config().analysis.failure_limit,
        started_at: canary.started_at(),
        next_check_at: canary.next_check_at(),
        gate_results: record
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                CanaryEventKind::Checked {
                    outcome,
                    failed_checks,
                } => Some(GateResult {
                    at: e.at,
                    outcome: outcome.clone(),
                    failed_checks: *failed_checks,
                }),
                _ => None,
            })
            .collect(),
        events: record.events.clone(),
    }
}

/// Records `events` on the rule's canary; when the weights changed, applies
/// the new rule (GitOps directory, if configured). Answers whether to save.
async fn absorb(state: &AppState, stored: &mut StoredRule, events: Vec<CanaryEvent>) -> bool {
    let Some(record) = stored.canary.as_mut() else {
        return false;
    };
    if events.is_empty() {
        return false;
    }
    let reweighted = events
        .iter()
        .any(|e| matches!(e.kind, CanaryEventKind::WeightChanged { .. }));
    record.events.extend(events.iter().cloned());
    let excess = record.events.len().saturating_sub(CANARY_EVENTS);
    record.events.drain(..excess);
    if reweighted {
        stored.rule = record.canary.traffic_rule();
        match apply(state, &stored.rule).await {
            Ok((_, _, true)) => stored.deployed_at = Some(state.now()),
            Ok(_) => stored.deployed_at = None,
            Err(error) => {
                tracing::warn!(%error, rule = %stored.id, "cannot apply the canary's weights");
                stored.deployed_at = None;
            }
        }
    }
    stored.updated_at = state.now();
    state.events().publish_json(
        "routing:canary",
        &serde_json::json!({ "rule": stored.id, "events": events }),
    );
    true
}

/// Starts a canary on a traffic rule: its destinations must be exactly the
/// stable and canary subsets. It advances with the engine's ticks, checking
/// the canary subset's metrics on the engine's metric source.
#[utoipa::path(post, path = "/api/v1/routing/rules/{id}/canary", tag = "routing",
    params(("id" = String, Path, description = "`<namespace>.<service>`")),
    request_body(content = Object, description = "A CanaryConfig: `{stable_subset, canary_subset, steps: [{set_weight: 10}, {pause: {duration: 5m}}, {analysis: {checks: 2}}], analysis: {interval, window_seconds, failure_limit, min_success_rate?, max_latency_p99_seconds?}, progress_deadline?}`"),
    responses(
        (status = 201, body = CanaryStatus),
        (status = 400, description = "Invalid; `field` names the first bad field (e.g. `steps[0].set_weight`)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "A canary is in progress on this rule", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn start_canary(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(config): ApiJson<CanaryConfig>,
) -> Result<Response, ApiError> {
    let mut stored = load(&state, &id).await?;
    if let Some(record) = &stored.canary
        && !record.canary.state().is_terminal()
    {
        return Err(ApiError::Conflict(format!(
            "a canary is in progress on {id} ({:?})",
            record.canary.state()
        )));
    }
    let mut canary = Canary::new(config, stored.rule.clone()).map_err(canary_error)?;
    let events = canary
        .step_with_source(state.now(), state.source().as_ref())
        .await;
    stored.canary = Some(CanaryRecord {
        canary,
        events: Vec::new(),
    });
    absorb(&state, &mut stored, events).await;
    save(&state, &stored).await?;
    let status = stored
        .canary
        .as_ref()
        .map(|record| canary_status(&id, record))
        .ok_or_else(|| ApiError::Internal("the canary is missing".into()))?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// A traffic rule's canary: its stage, weights and gate results.
#[utoipa::path(get, path = "/api/v1/routing/rules/{id}/canary", tag = "routing",
    params(("id" = String, Path, description = "`<namespace>.<service>`")),
    responses(
        (status = 200, body = CanaryStatus), (status = 401, body = ErrorBody),
        (status = 404, description = "No such rule, or no canary on it", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn canary(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CanaryStatus>, ApiError> {
    let stored = load(&state, &id).await?;
    stored
        .canary
        .as_ref()
        .map(|record| Json(canary_status(&id, record)))
        .ok_or_else(|| ApiError::not_found(format!("canary of traffic rule {id}")))
}

/// Advances every canary in progress to now (called on every engine tick).
pub async fn advance_canaries(state: &AppState) -> Result<(), ApiError> {
    let documents = state
        .storage()
        .list_documents(DocumentKind::TrafficRule, 10_000)
        .await?;
    for document in documents {
        let Ok(mut stored) = serde_json::from_value::<StoredRule>(document.body) else {
            continue;
        };
        let Some(record) = stored.canary.as_mut() else {
            continue;
        };
        if record.canary.state().is_terminal() {
            continue;
        }
        let events = record
            .canary
            .step_with_source(state.now(), state.source().as_ref())
            .await;
        if absorb(state, &mut stored, events).await {
            save(state, &stored).await?;
        }
    }
    Ok(())
}
