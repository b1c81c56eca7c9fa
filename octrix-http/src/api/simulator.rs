//! The chaos simulator: scenarios (the built-in catalog, read-only, and
//! custom ones validated by the core and persisted), runs started through
//! the engine's chaos controller within the safety budget healing shares,
//! and their statistics.
//!
//! Runs are persisted as [`DocumentKind::ChaosRun`] whenever they change: on
//! the requests here, and after every engine tick for the runs the tick
//! completed, started or aborted ([`RunLedger`]). Their events go out on the
//! live stream as `chaos:run` (published by the engine).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use octrix_core::chaos::{
    ChaosController, ChaosStats, RunId, RunStatus, Scenario, ScenarioId, ScenarioRun, ScenarioType,
    StartOptions,
};
use octrix_core::engine::Error as EngineError;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::api::parse_enum;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::state::AppState;
use crate::storage::{Document, DocumentKind, StorageError};

/// A scenario as the API shows it: the scenario and whether it is built in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioView {
    /// Built-in scenarios cannot be changed or deleted.
    pub builtin: bool,
    /// The scenario.
    #[serde(flatten)]
    pub scenario: Scenario,
}

fn view(chaos: &ChaosController, scenario: &Scenario) -> ScenarioView {
    ScenarioView {
        builtin: chaos.catalog().is_builtin(&scenario.id),
        scenario: scenario.clone(),
    }
}

/// Maps chaos errors, naming the field where the request is at fault.
fn chaos_error(error: EngineError) -> ApiError {
    use octrix_core::chaos::Error as C;
    match error {
        EngineError::Chaos(C::ProtectedNamespace { namespace }) => ApiError::bad_request(
            "target.namespace",
            format!("namespace {namespace} is protected from chaos"),
        ),
        EngineError::Chaos(C::BuiltinScenario(id)) => {
            ApiError::Conflict(format!("built-in scenario {id} is read-only"))
        }
        EngineError::Chaos(C::UnknownRun(id)) => ApiError::not_found(format!("chaos run {id}")),
        other => other.into(),
    }
}

fn parse_scenario_id(text: &str) -> Result<ScenarioId, ApiError> {
    ScenarioId::new(text).map_err(|e| ApiError::bad_request("id", e.to_string()))
}

fn parse_run_id(text: &str) -> Result<RunId, ApiError> {
    text.strip_prefix("run-")
        .unwrap_or(text)
        .parse::<u64>()
        .map(RunId)
        .map_err(|_| ApiError::bad_request("id", format!("{text:?} is not a run id such as run-3")))
}

fn controller(engine: &octrix_core::engine::Engine) -> Result<&ChaosController, ApiError> {
    engine
        .chaos()
        .ok_or_else(|| chaos_error(EngineError::ChaosUnavailable))
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.to_owned(),
        reason: error.to_string(),
    }
}

async fn save_runs(state: &AppState, runs: &[ScenarioRun]) -> Result<(), StorageError> {
    for run in runs {
        let body = serde_json::to_value(run).map_err(|e| corrupt("a chaos run", e))?;
        state
            .storage()
            .put_document(&Document {
                kind: DocumentKind::ChaosRun,
                id: run.id.to_string(),
                updated_at: state.now(),
                body,
            })
            .await?;
    }
    Ok(())
}

/// Remembers what was last persisted of each run, so that after an engine
/// tick only the runs it changed are written.
#[derive(Debug, Default)]
pub struct RunLedger {
    saved: Mutex<HashMap<RunId, (RunStatus, usize, bool)>>,
}

impl RunLedger {
    fn fingerprint(run: &ScenarioRun) -> (RunStatus, usize, bool) {
        (run.status, run.incidents.len(), run.reverted_at.is_some())
    }

    /// The runs of `chaos` that changed since they were last recorded here,
    /// recording them.
    pub fn changed(&self, chaos: Option<&ChaosController>) -> Vec<ScenarioRun> {
        let Some(chaos) = chaos else {
            return Vec::new();
        };
        let mut saved = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = Vec::new();
        for run in chaos.list() {
            let fingerprint = Self::fingerprint(run);
            if saved.insert(run.id, fingerprint) != Some(fingerprint) {
                changed.push(run.clone());
            }
        }
        changed
    }

    /// Forgets every run (the engine was rebuilt from storage).
    pub fn clear(&self) {
        self.saved.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Persists the runs the last engine tick changed.
pub async fn persist_changed_runs(state: &AppState, runs: &[ScenarioRun]) {
    if let Err(error) = save_runs(state, runs).await {
        tracing::warn!(%error, runs = runs.len(), "cannot persist chaos runs");
    }
}

/// Loads custom scenarios and past runs from the storage into the engine
/// (at start-up, or when a replica takes over or mirrors the leader). Runs
/// that were active when the server stopped are marked failed, and saved so
/// when `save_interrupted` (a follower mirrors the leader's runs and writes
/// nothing).
pub async fn restore(state: &AppState, save_interrupted: bool) -> Result<(), ApiError> {
    let scenarios = state
        .storage()
        .list_documents(DocumentKind::ChaosScenario, 100_000)
        .await?;
    let runs = state
        .storage()
        .list_documents(DocumentKind::ChaosRun, 100_000)
        .await?;
    let mut engine = state.engine().await;
    if engine.chaos().is_none() {
        return Ok(());
    }
    for document in scenarios {
        let scenario: Scenario = serde_json::from_value(document.body)
            .map_err(|e| corrupt(&format!("chaos scenario {}", document.id), e))?;
        engine.add_scenario(scenario).map_err(chaos_error)?;
    }
    let mut past = runs
        .into_iter()
        .map(|d| {
            serde_json::from_value::<ScenarioRun>(d.body)
                .map_err(|e| corrupt(&format!("chaos run {}", d.id), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    past.sort_by_key(|run| run.id);
    engine.restore_chaos_runs(past).map_err(chaos_error)?;
    let changed = state.run_ledger().changed(engine.chaos());
    drop(engine);
    if !save_interrupted {
        return Ok(());
    }
    let interrupted: Vec<ScenarioRun> = changed
        .into_iter()
        .filter(|run| run.status == RunStatus::Failed && run.permit.is_none())
        .collect();
    save_runs(state, &interrupted).await?;
    Ok(())
}

/// Every scenario: the built-ins (one per type) and the custom ones, by id.
#[utoipa::path(get, path = "/api/v1/simulator/scenarios", tag = "simulator",
    responses(
        (status = 200, description = "Scenarios: `{builtin, id, name, description, target, type, parameters, guards?}`", body = Vec<Object>),
        (status = 401, body = ErrorBody), (status = 501, description = "No chaos executor", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn list_scenarios(
    State(state): State<AppState>,
) -> Result<Json<Vec<ScenarioView>>, ApiError> {
    let engine = state.engine().await;
    let chaos = controller(&engine)?;
    Ok(Json(
        chaos
            .catalog()
            .list()
            .into_iter()
            .map(|s| view(chaos, s))
            .collect(),
    ))
}

/// One scenario.
#[utoipa::path(get, path = "/api/v1/simulator/scenarios/{id}", tag = "simulator",
    params(("id" = String, Path, description = "Scenario id, e.g. `builtin-pod-failure`")),
    responses(
        (status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn get_scenario(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScenarioView>, ApiError> {
    let id = parse_scenario_id(&id)?;
    let engine = state.engine().await;
    let chaos = controller(&engine)?;
    chaos
        .catalog()
        .get(&id)
        .map(|s| Json(view(chaos, s)))
        .ok_or_else(|| ApiError::not_found(format!("chaos scenario {id}")))
}

/// Adds a custom scenario (validated by the core; persisted).
#[utoipa::path(post, path = "/api/v1/simulator/scenarios", tag = "simulator",
    request_body(content = Object, description = "A scenario: `{id, name, description?, target?: {namespace?, labels?, mode?}, type, parameters, guards?}`"),
    responses(
        (status = 201, body = Object),
        (status = 400, description = "Invalid; `field` names it (e.g. `parameters.loss_percent`, `target.namespace` for a protected one)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The id is taken (or is a built-in's)", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn create_scenario(
    State(state): State<AppState>,
    ApiJson(scenario): ApiJson<Scenario>,
) -> Result<Response, ApiError> {
    scenario.validate().map_err(|e| chaos_error(e.into()))?;
    let body = serde_json::to_value(&scenario).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut engine = state.engine().await;
    engine.add_scenario(scenario.clone()).map_err(chaos_error)?;
    let saved = state
        .storage()
        .put_document(&Document {
            kind: DocumentKind::ChaosScenario,
            id: scenario.id.to_string(),
            updated_at: state.now(),
            body,
        })
        .await;
    if let Err(error) = saved {
        // Not durable, so not there: the engine forgets it too.
        let _ = engine.remove_scenario(&scenario.id);
        return Err(error.into());
    }
    let created = view(controller(&engine)?, &scenario);
    drop(engine);
    state
        .events()
        .publish_json("chaos:scenario-created", &created);
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Deletes a custom scenario; its past runs keep their copy.
#[utoipa::path(delete, path = "/api/v1/simulator/scenarios/{id}", tag = "simulator",
    params(("id" = String, Path, description = "Scenario id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "A built-in scenario", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn delete_scenario(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_scenario_id(&id)?;
    let mut engine = state.engine().await;
    let removed = engine.remove_scenario(&id).map_err(|e| match e {
        EngineError::Chaos(octrix_core::chaos::Error::UnknownScenario(id)) => {
            ApiError::not_found(format!("chaos scenario {id}"))
        }
        other => chaos_error(other),
    })?;
    if let Err(error) = state
        .storage()
        .delete_document(DocumentKind::ChaosScenario, id.as_str())
        .await
    {
        let _ = engine.add_scenario(removed);
        return Err(error.into());
    }
    drop(engine);
    state
        .events()
        .publish_json("chaos:scenario-deleted", &serde_json::json!({ "id": id }));
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a run of a scenario now (or at `start_at`), on the last observed
/// cluster, within the safety budget healing also draws on.
#[utoipa::path(post, path = "/api/v1/simulator/scenarios/{id}/start", tag = "simulator",
    params(("id" = String, Path, description = "Scenario id")),
    request_body(content = Object, description = "Optional: `{dry_run?, start_at?, target?: {namespace?, labels?, mode?}, guards?}`"),
    responses(
        (status = 201, description = "The run (running, pending, or completed for a dry run)", body = Object),
        (status = 400, description = "Invalid options; `field` names it (`target.namespace` for a protected namespace)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Refused: the safety budget, no eligible target or the executor; the run is recorded as failed and the message says why", body = ErrorBody),
        (status = 501, description = "No chaos executor", body = ErrorBody),
        (status = 503, description = "Storage down, or the cluster not observed yet", body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(options): OptionalJson<StartOptions>,
) -> Result<Response, ApiError> {
    let id = parse_scenario_id(&id)?;
    let mut engine = state.engine().await;
    if engine.snapshot().taken_at.is_none() {
        // Targets are chosen from the last observed cluster: there is none yet.
        return Err(ApiError::Unavailable(
            "the cluster has not been observed yet; retry after the engine's first tick".into(),
        ));
    }
    let result = engine.start_chaos(&id, options).await;
    let changed = state.run_ledger().changed(engine.chaos());
    let run = match &result {
        Ok(run) => engine.chaos().and_then(|c| c.get(*run)).cloned(),
        Err(_) => None,
    };
    engine.commit().await?;
    save_runs(&state, &changed).await?;
    result.map_err(|e| match e {
        EngineError::Chaos(octrix_core::chaos::Error::UnknownScenario(id)) => {
            ApiError::not_found(format!("chaos scenario {id}"))
        }
        other => chaos_error(other),
    })?;
    let run = run.ok_or_else(|| ApiError::Internal("the started run is missing".into()))?;
    Ok((StatusCode::CREATED, Json(run)).into_response())
}

/// Filters of the run list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Comma-separated statuses: pending, running, completed, stopped,
    /// cancelled, aborted, failed.
    pub status: Option<String>,
    /// Only runs of this scenario id.
    pub scenario: Option<String>,
    /// Only runs of this scenario type, e.g. `pod-failure`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub scenario_type: Option<String>,
    /// Most runs (default 100, at most 1000).
    pub limit: Option<usize>,
}

const STATUSES: &str = "pending, running, completed, stopped, cancelled, aborted, failed";

/// Runs, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/simulator/runs", tag = "simulator", params(RunsQuery),
    responses(
        (status = 200, description = "Runs: `{id, scenario, dry_run, status, created_at, start_at, started_at, deadline, ended_at, targets, blast_radius, injection, reverted_at, permit, message, incidents}`", body = Vec<Object>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn list_runs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<Vec<ScenarioRun>>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit", "must be within 1..=1000"));
    }
    let statuses = crate::extract::list(query.status.as_deref())
        .map(|s| parse_enum::<RunStatus>("status", s, STATUSES))
        .collect::<Result<Vec<_>, _>>()?;
    let scenario_type = query
        .scenario_type
        .as_deref()
        .map(|t| {
            let names: Vec<&str> = ScenarioType::ALL.iter().map(|t| t.as_str()).collect();
            parse_enum::<ScenarioType>("type", t, &names.join(", "))
        })
        .transpose()?;
    let engine = state.engine().await;
    let chaos = controller(&engine)?;
    let mut runs: Vec<ScenarioRun> = chaos
        .list()
        .into_iter()
        .rev()
        .filter(|r| statuses.is_empty() || statuses.contains(&r.status))
        .filter(|r| {
            query
                .scenario
                .as_deref()
                .is_none_or(|s| r.scenario.id.as_str() == s)
        })
        .filter(|r| scenario_type.is_none_or(|t| r.scenario_type() == t))
        .cloned()
        .collect();
    runs.truncate(limit);
    Ok(Json(runs))
}

/// Pending and running runs, oldest first.
#[utoipa::path(get, path = "/api/v1/simulator/runs/active", tag = "simulator",
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn active_runs(
    State(state): State<AppState>,
) -> Result<Json<Vec<ScenarioRun>>, ApiError> {
    let engine = state.engine().await;
    Ok(Json(
        controller(&engine)?.active().into_iter().cloned().collect(),
    ))
}

/// One run.
#[utoipa::path(get, path = "/api/v1/simulator/runs/{id}", tag = "simulator",
    params(("id" = String, Path, description = "Run id, `run-3` or `3`")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScenarioRun>, ApiError> {
    let id = parse_run_id(&id)?;
    let engine = state.engine().await;
    controller(&engine)?
        .get(id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("chaos run {id}")))
}

#[derive(Clone, Copy)]
enum Ending {
    Stop,
    Cancel,
}

async fn end_run(
    state: &AppState,
    id: &str,
    ending: Ending,
) -> Result<Json<ScenarioRun>, ApiError> {
    let id = parse_run_id(id)?;
    let mut engine = state.engine().await;
    let result = match ending {
        Ending::Stop => engine.stop_chaos(id).await,
        Ending::Cancel => engine.cancel_chaos(id).await,
    };
    let changed = state.run_ledger().changed(engine.chaos());
    let run = engine.chaos().and_then(|c| c.get(id)).cloned();
    engine.commit().await?;
    save_runs(state, &changed).await?;
    result.map_err(chaos_error)?;
    run.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("chaos run {id}")))
}

/// Stops a running run early and reverts what it changed.
#[utoipa::path(post, path = "/api/v1/simulator/runs/{id}/stop", tag = "simulator",
    params(("id" = String, Path, description = "Run id, `run-3` or `3`")),
    responses(
        (status = 200, description = "The stopped run", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The run is not running (or could not be reverted)", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScenarioRun>, ApiError> {
    end_run(&state, &id, Ending::Stop).await
}

/// Cancels a run that has not started.
#[utoipa::path(post, path = "/api/v1/simulator/runs/{id}/cancel", tag = "simulator",
    params(("id" = String, Path, description = "Run id, `run-3` or `3`")),
    responses(
        (status = 200, description = "The cancelled run", body = Object),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The run is not pending", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScenarioRun>, ApiError> {
    end_run(&state, &id, Ending::Cancel).await
}

/// Statistics over every run: counts per status and type, success rate,
/// mean duration.
#[utoipa::path(get, path = "/api/v1/simulator/stats", tag = "simulator",
    responses(
        (status = 200, description = "`{total, by_status, success_rate, active, dry_runs, by_type, mean_duration_seconds}`", body = Object),
        (status = 401, body = ErrorBody),
    ), security(("bearer" = [])))]
pub async fn stats(State(state): State<AppState>) -> Result<Json<ChaosStats>, ApiError> {
    let engine = state.engine().await;
    Ok(Json(controller(&engine)?.stats()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_with_or_without_prefix() {
        assert_eq!(parse_run_id("run-3").unwrap(), RunId(3));
        assert_eq!(parse_run_id("12").unwrap(), RunId(12));
        let error = parse_run_id("run-x").unwrap_err();
        assert_eq!(error.body().error.field.as_deref(), Some("id"));
    }
}
