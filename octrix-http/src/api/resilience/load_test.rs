//! Load tests: real HTTP requests to the registered URL services, at a
//! bounded rate and concurrency, each target chosen by the core's
//! [`LoadBalancer`] among healthy services and called through its circuit
//! breaker.
//!
//! On the simulated cluster, a service registered without a URL is load
//! tested against the simulator instead: each request waits a latency drawn
//! from the service's current median and 99th percentile (log-normal) and
//! fails with its current error rate. The status lists such services under
//! `simulated_services`: no request leaves the process for them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use octrix_core::metrics::{MetricSource, ServiceSelector};
use octrix_core::resilience::CallOutcome;
use octrix_core::routing::balancer::{BalancingStrategy, Endpoint, Health, LoadBalancer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use utoipa::ToSchema;

use super::Counts;
use super::registry::HealthState;
use crate::error::ApiError;
use crate::state::AppState;

/// Distinct error messages kept; the rest are counted under `other`.
const MAX_ERROR_KINDS: usize = 20;
/// Latencies kept for the percentiles; later ones are not (the counts are).
const MAX_LATENCIES: usize = 2_000_000;

fn default_path() -> String {
    "/".to_owned()
}

fn default_concurrency() -> u32 {
    10
}

fn default_timeout() -> u32 {
    5_000
}

/// A load test to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadTestRequest {
    /// Only this registered service; every service with a URL when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// Path requested below each service's URL (default `/`).
    #[serde(default = "default_path")]
    pub path: String,
    /// Requests started per second, 1 to 10000.
    pub requests_per_second: u32,
    /// Requests in flight at most, 1 to 1000 (default 10).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// How long, 1 to 3600 seconds.
    pub duration_seconds: u32,
    /// Timeout of each request, 1 to 60000 ms (default 5000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
}

impl LoadTestRequest {
    fn validate(&self) -> Result<(), ApiError> {
        let within = |field: &str, value: u32, max: u32| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(ApiError::bad_request(
                    field,
                    format!("must be within 1..={max}"),
                ))
            }
        };
        within("requests_per_second", self.requests_per_second, 10_000)?;
        within("concurrency", self.concurrency, 1_000)?;
        within("duration_seconds", self.duration_seconds, 3_600)?;
        within("timeout_ms", self.timeout_ms, 60_000)?;
        if !self.path.starts_with('/') {
            return Err(ApiError::bad_request("path", "must start with '/'"));
        }
        Ok(())
    }
}

/// Latency of completed requests, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LatencySummary {
    /// Requests measured.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Counts of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceCounts {
    /// Requests sent to it.
    pub sent: u64,
    /// Answered 2xx or 3xx.
    pub succeeded: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
    /// Not sent: its circuit breaker was open.
    pub rejected_by_breaker: u64,
}

/// A load test's configuration, progress and results.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LoadTestStatus {
    /// Increases with every test.
    pub id: u64,
    /// `running`, `completed` (ran its duration) or `stopped` (on request).
    pub status: String,
    /// What was asked.
    pub request: LoadTestRequest,
    /// The services it targets.
    pub services: Vec<String>,
    /// Those answered by the simulated cluster (latency and errors drawn
    /// from the service's current figures) rather than over HTTP.
    pub simulated_services: Vec<String>,
    /// The balancing strategy in use.
    #[schema(value_type = String)]
    pub algorithm: BalancingStrategy,
    /// When it started.
    pub started_at: jiff::Timestamp,
    /// When it ended.
    pub ended_at: Option<jiff::Timestamp>,
    /// Requests sent.
    pub sent: u64,
    /// Answered 2xx or 3xx.
    pub succeeded: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
    /// Not sent because the chosen service's breaker was open.
    pub rejected_by_breaker: u64,
    /// Not sent because no service was healthy.
    pub no_healthy_service: u64,
    /// Requests not answered yet.
    pub in_flight: u64,
    /// Answers per HTTP status code (`error` when there was none).
    pub status_codes: Counts,
    /// Latency of answered requests.
    pub latency_ms: Option<LatencySummary>,
    /// Counts per service.
    pub per_service: BTreeMap<String, ServiceCounts>,
    /// Transport errors by message.
    pub errors: Counts,
    /// Requests sent per second of wall time so far.
    pub achieved_rps: f64,
}

struct Tally {
    status: LoadTestStatus,
    latencies_us: Vec<u64>,
    started: Instant,
    ended: Option<Instant>,
}

impl Tally {
    fn snapshot(&self) -> LoadTestStatus {
        let mut status = self.status.clone();
        let elapsed = self
            .ended
            .unwrap_or_else(Instant::now)
            .duration_since(self.started)
            .as_secs_f64();
        status.achieved_rps = if elapsed > 0.0 {
            status.sent as f64 / elapsed
        } else {
            0.0
        };
        status.latency_ms = summarize(&self.latencies_us);
        status
    }

    fn error(&mut self, message: String) {
        let errors = &mut self.status.errors;
        let key = if errors.len() < MAX_ERROR_KINDS || errors.contains_key(&message) {
            message
        } else {
            "other".to_owned()
        };
        *errors.entry(key).or_default() += 1;
    }
}

/// Nearest-rank percentiles of `latencies_us`.
fn summarize(latencies_us: &[u64]) -> Option<LatencySummary> {
    if latencies_us.is_empty() {
        return None;
    }
    let mut sorted = latencies_us.to_vec();
    sorted.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let rank = |p: f64| {
        let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        ms(sorted[index])
    };
    Some(LatencySummary {
        count: sorted.len() as u64,
        mean: ms(sorted.iter().sum::<u64>()) / sorted.len() as f64,
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: ms(*sorted.last().unwrap_or(&0)),
    })
}

struct Active {
    tally: Mutex<Tally>,
    balancer: Mutex<LoadBalancer<SmallRng>>,
    stop: Notify,
    stopping: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Active {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The current or last load test.
#[derive(Default)]
pub(crate) struct Slot {
    current: Mutex<Option<Arc<Active>>>,
    runs: std::sync::atomic::AtomicU64,
}

impl Slot {
    fn current(&self) -> Option<Arc<Active>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn status(&self) -> Option<LoadTestStatus> {
        self.current().map(|a| a.tally().snapshot())
    }

    pub(crate) fn set_strategy(&self, strategy: BalancingStrategy) {
        if let Some(active) = self.current() {
            active
                .balancer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_strategy(strategy);
            active.tally().status.algorithm = strategy;
        }
    }
}

struct Target {
    name: String,
    call: TargetCall,
}

/// How a target is called.
enum TargetCall {
    /// A real HTTP GET of this URL.
    Http(String),
    /// An answer drawn from the simulated service's latency and error rate.
    Simulated(ServiceSelector),
}

/// One request's result.
struct Answer {
    ok: bool,
    code: String,
    error: Option<String>,
    outcome: CallOutcome,
}

async fn call_http(http: &reqwest::Client, url: &str, timeout: Duration) -> Answer {
    match http.get(url).timeout(timeout).send().await {
        Ok(response) => {
            let status = response.status();
            // Read the body so the connection can be reused.
            let _ = response.bytes().await;
            let outcome = if status.is_server_error() {
                CallOutcome::Failure
            } else if status.is_client_error() {
                CallOutcome::Ignored
            } else {
                CallOutcome::Success
            };
            Answer {
                ok: status.is_success() || status.is_redirection(),
                code: status.as_u16().to_string(),
                error: None,
                outcome,
            }
        }
        Err(error) => Answer {
            ok: false,
            code: "error".to_owned(),
            error: Some(error.without_url().to_string()),
            outcome: CallOutcome::Failure,
        },
    }
}

/// z of the 99th percentile of a standard normal.
const Z_P99: f64 = 2.326_347_874;

async fn call_simulated(
    source: &dyn MetricSource,
    selector: &ServiceSelector,
    timeout: Duration,
    rng: &mut SmallRng,
) -> Answer {
    let failed = |code: &str, error: String| Answer {
        ok: false,
        code: code.to_owned(),
        error: Some(error),
        outcome: CallOutcome::Failure,
    };
    let metrics = match source.service_metrics(selector).await {
        Ok(metrics) => metrics,
        Err(error) => return failed("error", error.to_string()),
    };
    let (Some(p50), Some(p99)) = (metrics.latency_p50_seconds, metrics.latency_p99_seconds) else {
        return failed(
            "error",
            format!(
                "the simulated service {}/{} has no traffic",
                selector.namespace, selector.service
            ),
        );
    };
    let p50 = p50.max(1e-6);
    let sigma = ((p99.max(p50) / p50).ln() / Z_P99).max(0.0);
    let z: f64 = rng.sample(StandardNormal);
    let latency = Duration::from_secs_f64((p50.ln() + sigma * z).exp().min(3600.0));
    if latency > timeout {
        tokio::time::sleep(timeout).await;
        return failed("error", "timed out (simulated)".to_owned());
    }
    tokio::time::sleep(latency).await;
    if rng.random::<f64>() < metrics.error_rate.unwrap_or(0.0) {
        Answer {
            ok: false,
            code: "503".to_owned(),
            error: None,
            outcome: CallOutcome::Failure,
        }
    } else {
        Answer {
            ok: true,
            code: "200".to_owned(),
            error: None,
            outcome: CallOutcome::Success,
        }
    }
}

/// Starts a load test; answers its first status.
pub(crate) fn start(
    state: &AppState,
    request: LoadTestRequest,
) -> Result<LoadTestStatus, ApiError> {
    request.validate()?;
    let resilience = state.resilience();
    let entries = match &request.service {
        Some(name) => vec![resilience.services.get(name).ok_or_else(|| {
            ApiError::bad_request("service", format!("no registered service {name:?}"))
        })?],
        None => resilience.services.all(),
    };
    let on_sim = state.sim().is_some();
    let targets: Vec<(Target, u32)> = entries
        .iter()
        .filter_map(|e| {
            let spec = &e.stored.spec;
            let call = match (&spec.url, &spec.namespace) {
                (Some(url), _) => {
                    TargetCall::Http(format!("{}{}", url.trim_end_matches('/'), request.path))
                }
                (None, Some(namespace)) if on_sim => TargetCall::Simulated(ServiceSelector {
                    namespace: namespace.clone(),
                    service: spec.name.clone(),
                    version: None,
                    window_seconds: 60,
                }),
                (None, _) => return None,
            };
            Some((
                Target {
                    name: spec.name.clone(),
                    call,
                },
                spec.weight,
            ))
        })
        .collect();
    if targets.is_empty() {
        return Err(ApiError::bad_request(
            "service",
            "no target can be load tested: a service needs a url (real HTTP requests), or the server must run on the simulated cluster",
        ));
    }
    let mut slot = resilience
        .load_test
        .current
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(active) = slot.as_ref()
        && active.tally().ended.is_none()
    {
        return Err(ApiError::Conflict(format!(
            "load test {} is running; stop it first",
            active.tally().status.id
        )));
    }
    let id = resilience.load_test.runs.fetch_add(1, Ordering::SeqCst) + 1;
    let strategy = resilience.strategy();
    let endpoints = targets
        .iter()
        .map(|(t, weight)| Endpoint::new(t.name.clone(), *weight))
        .collect();
    let seed = id ^ u64::from(std::process::id()) ^ state.now().as_nanosecond() as u64;
    let balancer = LoadBalancer::new(strategy, endpoints, SmallRng::seed_from_u64(seed))
        .map_err(|e| ApiError::bad_request("service", e.to_string()))?;
    let status = LoadTestStatus {
        id,
        status: "running".to_owned(),
        request: request.clone(),
        services: targets.iter().map(|(t, _)| t.name.clone()).collect(),
        simulated_services: targets
            .iter()
            .filter(|(t, _)| matches!(t.call, TargetCall::Simulated(_)))
            .map(|(t, _)| t.name.clone())
            .collect(),
        algorithm: strategy,
        started_at: state.now(),
        ended_at: None,
        sent: 0,
        succeeded: 0,
        failed: 0,
        rejected_by_breaker: 0,
        no_healthy_service: 0,
        in_flight: 0,
        status_codes: Counts::new(),
        latency_ms: None,
        per_service: targets
            .iter()
            .map(|(t, _)| (t.name.clone(), ServiceCounts::default()))
            .collect(),
        errors: Counts::new(),
        achieved_rps: 0.0,
    };
    let active = Arc::new(Active {
        tally: Mutex::new(Tally {
            status: status.clone(),
            latencies_us: Vec::new(),
            started: Instant::now(),
            ended: None,
        }),
        balancer: Mutex::new(balancer),
        stop: Notify::new(),
        stopping: AtomicBool::new(false),
        task: Mutex::new(None),
    });
    let targets = targets.into_iter().map(|(t, _)| t).collect();
    let task = tokio::spawn(run(state.clone(), active.clone(), targets, request));
    *active.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    *slot = Some(active);
    Ok(status)
}

/// Stops the running load test and waits for its requests in flight.
pub(crate) async fn stop(state: &AppState) -> Result<LoadTestStatus, ApiError> {
    let active = state
        .resilience()
        .load_test
        .current()
        .filter(|a| a.tally().ended.is_none())
        .ok_or_else(|| ApiError::Conflict("no load test is running".to_owned()))?;
    active.stopping.store(true, Ordering::SeqCst);
    active.stop.notify_one();
    let task = active.task.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(task) = task {
        let _ = task.await;
    }
    Ok(active.tally().snapshot())
}

/// Marks services that failed their health check unhealthy for the balancer.
fn sync_health(state: &AppState, balancer: &mut LoadBalancer<SmallRng>, targets: &[Target]) {
    for target in targets {
        let health = state
            .resilience()
            .services
            .get(&target.name)
            .map_or(HealthState::Unhealthy, |e| e.health().state);
        // Unknown (not checked yet) still receives traffic: the load test
        // itself, through the breaker, finds out.
        let routable = matches!(health, HealthState::Healthy | HealthState::Unknown);
        let _ = balancer.set_health(
            &target.name,
            if routable {
                Health::Healthy
            } else {
                Health::Unhealthy
            },
        );
    }
}

async fn run(state: AppState, active: Arc<Active>, targets: Vec<Target>, request: LoadTestRequest) {
    let targets = Arc::new(targets);
    let limit = Arc::new(Semaphore::new(request.concurrency as usize));
    let timeout = Duration::from_millis(u64::from(request.timeout_ms));
    let mut timer = tokio::time::interval(Duration::from_secs_f64(
        1.0 / f64::from(request.requests_per_second),
    ));
    // Catch up after a stall so the rate holds on average.
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(u64::from(request.duration_seconds));
    let mut last_recorded = Instant::now();
    let http = state.resilience().http.clone();
    let breakers = state.resilience().breakers().clone();
    // Simulated answers draw from a generator per request, seeded per test.
    let seed = active.tally().status.started_at.as_nanosecond() as u64;
    let mut sequence = 0_u64;
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            _ = active.stop.notified() => break,
            _ = tokio::time::sleep_until(deadline) => break,
        }
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = active.stop.notified() => break,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        if last_recorded.elapsed() >= Duration::from_secs(1) {
            super::record_transitions(&state).await;
            last_recorded = Instant::now();
        }
        let picked = {
            let mut balancer = active.balancer.lock().unwrap_or_else(|p| p.into_inner());
            sync_health(&state, &mut balancer, &targets);
            balancer.pick()
        };
        let Ok(endpoint) = picked else {
            active.tally().status.no_healthy_service += 1;
            continue;
        };
        let target = &targets[endpoint.index()];
        let breaker = breakers.breaker(&target.name);
        let call = match breaker.try_acquire_owned() {
            Ok(call) => call,
            Err(_) => {
                let mut tally = active.tally();
                tally.status.rejected_by_breaker += 1;
                if let Some(counts) = tally.status.per_service.get_mut(&target.name) {
                    counts.rejected_by_breaker += 1;
                }
                drop(tally);
                active
                    .balancer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .complete(endpoint);
                continue;
            }
        };
        {
            let mut tally = active.tally();
            tally.status.sent += 1;
            tally.status.in_flight += 1;
            if let Some(counts) = tally.status.per_service.get_mut(&target.name) {
                counts.sent += 1;
            }
        }
        let (active, targets, http) = (active.clone(), targets.clone(), http.clone());
        let source = state.source().clone();
        let mut rng = SmallRng::seed_from_u64(seed ^ sequence);
        sequence += 1;
        tokio::spawn(async move {
            let target = &targets[endpoint.index()];
            let started = Instant::now();
            let Answer {
                ok,
                code,
                error,
                outcome,
            } = match &target.call {
                TargetCall::Http(url) => call_http(&http, url, timeout).await,
                TargetCall::Simulated(selector) => {
                    call_simulated(source.as_ref(), selector, timeout, &mut rng).await
                }
            };
            let elapsed_us = started.elapsed().as_micros() as u64;
            call.record(outcome);
            active
                .balancer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .complete(endpoint);
            let mut tally = active.tally();
            tally.status.in_flight -= 1;
            *tally.status.status_codes.entry(code).or_default() += 1;
            if error.is_none() && tally.latencies_us.len() < MAX_LATENCIES {
                tally.latencies_us.push(elapsed_us);
            }
            if ok {
                tally.status.succeeded += 1;
            } else {
                tally.status.failed += 1;
            }
            if let Some(counts) = tally.status.per_service.get_mut(&target.name) {
                if ok {
                    counts.succeeded += 1;
                } else {
                    counts.failed += 1;
                }
            }
            if let Some(error) = error {
                tally.error(error);
            }
            drop(permit);
        });
    }
    // Wait for the requests in flight (each ends by its timeout).
    let _ = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        limit.acquire_many(request.concurrency),
    )
    .await;
    super::record_transitions(&state).await;
    let status = {
        let mut tally = active.tally();
        tally.ended = Some(Instant::now());
        tally.status.ended_at = Some(state.now());
        tally.status.status = if active.stopping.load(Ordering::SeqCst) {
            "stopped"
        } else {
            "completed"
        }
        .to_owned();
        tally.snapshot()
    };
    state.events().publish_json("resilience:load-test", &status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latencies: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        let summary = summarize(&latencies).unwrap();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, 50.0);
        assert_eq!(summary.p90, 90.0);
        assert_eq!(summary.p99, 99.0);
        assert_eq!(summary.max, 100.0);
        assert_eq!(summary.mean, 50.5);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let good = LoadTestRequest {
            service: None,
            path: "/".into(),
            requests_per_second: 100,
            concurrency: 10,
            duration_seconds: 5,
            timeout_ms: 1000,
        };
        assert!(good.validate().is_ok());
        let field = |r: LoadTestRequest| r.validate().unwrap_err().body().error.field.unwrap();
        assert_eq!(
            field(LoadTestRequest {
                requests_per_second: 0,
                ..good.clone()
            }),
            "requests_per_second"
        );
        assert_eq!(
            field(LoadTestRequest {
                concurrency: 5000,
                ..good.clone()
            }),
            "concurrency"
        );
        assert_eq!(
            field(LoadTestRequest {
                duration_seconds: 0,
                ..good.clone()
            }),
            "duration_seconds"
        );
        assert_eq!(
            field(LoadTestRequest {
                path: "x".into(),
                ..good
            }),
            "path"
        );
    }
}
