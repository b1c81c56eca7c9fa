//! Healing: the rules (CRUD), the whole configuration, the action history
//! and the global dry-run switch. Every change is validated by the core
//! (400 naming the field) and persisted before it is answered.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use octrix_core::engine::ActionRecord;
use octrix_core::healing::{HealingConfig, HealingRule};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::schemas::{ActionRecordSchema, HealingConfigSchema, HealingRuleSchema};
use crate::state::AppState;

/// Applies `change` to the healing configuration, validates and persists it.
async fn change_config<T>(
    state: &AppState,
    change: impl FnOnce(&mut HealingConfig) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut engine = state.engine().await;
    let mut config = engine.planner().config().clone();
    let result = change(&mut config)?;
    config.validate()?;
    state.save_healing_config(&config).await?;
    engine.set_healing_config(config)?;
    Ok(result)
}

/// Lists the healing rules, in configuration order.
#[utoipa::path(get, path = "/api/v1/healing/rules", tag = "healing",
    responses((status = 200, body = Vec<HealingRuleSchema>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_rules(State(state): State<AppState>) -> Json<Vec<HealingRule>> {
    Json(state.engine().await.planner().config().rules.clone())
}

/// One healing rule.
#[utoipa::path(get, path = "/api/v1/healing/rules/{name}", tag = "healing",
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 200, body = HealingRuleSchema), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<HealingRule>, ApiError> {
    state
        .engine()
        .await
        .planner()
        .config()
        .rules
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("healing rule {name}")))
}

/// Adds a healing rule.
#[utoipa::path(post, path = "/api/v1/healing/rules", tag = "healing",
    request_body = HealingRuleSchema,
    responses(
        (status = 201, body = HealingRuleSchema),
        (status = 400, description = "Invalid rule; `field` names the field (e.g. `rules[2].actions`)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A rule has this name", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    ApiJson(rule): ApiJson<HealingRule>,
) -> Result<Response, ApiError> {
    let created = rule.clone();
    change_config(&state, |config| {
        if config.rules.iter().any(|r| r.name == rule.name) {
            return Err(ApiError::Conflict(format!(
                "a healing rule named {:?} exists",
                rule.name
            )));
        }
        config.rules.push(rule);
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Replaces a healing rule (its name comes from the path).
#[utoipa::path(put, path = "/api/v1/healing/rules/{name}", tag = "healing",
    params(("name" = String, Path, description = "Rule name")),
    request_body = HealingRuleSchema,
    responses(
        (status = 200, body = HealingRuleSchema),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn update_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(mut rule): ApiJson<HealingRule>,
) -> Result<Json<HealingRule>, ApiError> {
    if rule.name != name {
        return Err(ApiError::bad_request(
            "name",
            format!("{:?} differs from the path's {name:?}", rule.name),
        ));
    }
    rule.name = name.clone();
    let updated = rule.clone();
    change_config(&state, |config| {
        let slot = config
            .rules
            .iter_mut()
            .find(|r| r.name == name)
            .ok_or_else(|| ApiError::not_found(format!("healing rule {name}")))?;
        *slot = rule;
        Ok(())
    })
    .await?;
    Ok(Json(updated))
}

/// Deletes a healing rule.
#[utoipa::path(delete, path = "/api/v1/healing/rules/{name}", tag = "healing",
    params(("name" = String, Path, description = "Rule name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    change_config(&state, |config| {
        let before = config.rules.len();
        config.rules.retain(|r| r.name != name);
        if config.rules.len() == before {
            return Err(ApiError::not_found(format!("healing rule {name}")));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The whole healing configuration.
#[utoipa::path(get, path = "/api/v1/healing/config", tag = "healing",
    responses((status = 200, body = HealingConfigSchema), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_config(State(state): State<AppState>) -> Json<HealingConfig> {
    Json(state.engine().await.planner().config().clone())
}

/// Replaces the whole healing configuration.
#[utoipa::path(put, path = "/api/v1/healing/config", tag = "healing",
    request_body = HealingConfigSchema,
    responses(
        (status = 200, body = HealingConfigSchema),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn put_config(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<HealingConfig>,
) -> Result<Json<HealingConfig>, ApiError> {
    let answer = new.clone();
    change_config(&state, |config| {
        *config = new;
        Ok(())
    })
    .await?;
    Ok(Json(answer))
}

/// The global dry-run switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// Plan and record every action without acting.
    pub dry_run: bool,
}

/// Whether healing only plans (dry run).
#[utoipa::path(get, path = "/api/v1/healing/dry-run", tag = "healing",
    responses((status = 200, body = DryRun), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_dry_run(State(state): State<AppState>) -> Json<DryRun> {
    Json(DryRun {
        dry_run: state.engine().await.planner().config().dry_run,
    })
}

/// Switches healing's global dry run on or off.
#[utoipa::path(put, path = "/api/v1/healing/dry-run", tag = "healing",
    request_body = DryRun,
    responses(
        (status = 200, body = DryRun),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn put_dry_run(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DryRun>,
) -> Result<Json<DryRun>, ApiError> {
    change_config(&state, |config| {
        config.dry_run = body.dry_run;
        Ok(())
    })
    .await?;
    Ok(Json(body))
}

/// Query of the action history.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionsQuery {
    /// Only actions for this incident.
    pub incident: Option<String>,
    /// Only actions of this rule.
    pub rule: Option<String>,
    /// Only this action (e.g. `restart-pod`).
    pub action: Option<String>,
    /// Only dry runs (`true`) or only real actions (`false`).
    pub dry_run: Option<bool>,
    /// Most records (default 100, at most 10000).
    pub limit: Option<usize>,
    /// Records skipped first, for the next page (default 0).
    pub offset: Option<usize>,
}

/// Healing actions taken or denied, newest first, read from storage (so
/// they survive restarts; the newest 10,000 are searched).
#[utoipa::path(get, path = "/api/v1/healing/actions", tag = "healing", params(ActionsQuery),
    responses((status = 200, body = Vec<ActionRecordSchema>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn actions(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ActionsQuery>,
) -> Result<Json<Vec<ActionRecord>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request("limit", "must be within 1..=10000"));
    }
    let matches = |record: &ActionRecord| {
        query
            .incident
            .as_deref()
            .is_none_or(|id| record.incident_id == id)
            && query.rule.as_deref().is_none_or(|rule| record.rule == rule)
            && query
                .action
                .as_deref()
                .is_none_or(|action| record.action == action)
            && query
                .dry_run
                .is_none_or(|dry_run| record.dry_run == dry_run)
    };
    let records = state
        .stored_actions()
        .await?
        .into_iter()
        .filter(|record| matches(record))
        .skip(query.offset.unwrap_or(0))
        .take(limit)
        .collect();
    Ok(Json(records))
}
