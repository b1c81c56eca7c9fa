//! Routing: traffic rules (CRUD, validated field by field by the core) and
//! their deployment: Istio VirtualService and DestinationRule generated,
//! exported as GitOps files (written to the configured GitOps directory, the
//! server's routing port), and `deployed_at` recorded.

use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
}

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
    let files = export_rules(std::slice::from_ref(&stored.rule), IstioApiVersion::V1)
        .map_err(manifest_error)?;
    let mut applied = Vec::new();
    if let Some(routes) = state.routes() {
        let summary = routes.apply(&stored.rule).await.map_err(|e| match e {
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
    let applied = if applied.is_empty() {
        "not applied: no routing adapter or GitOps directory is configured; the manifests are returned only".to_owned()
    } else {
        applied.join("; ")
    };
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
