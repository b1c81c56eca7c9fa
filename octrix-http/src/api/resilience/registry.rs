//! The service registry and its health checks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use octrix_core::metrics::{MetricSource, ServiceSelector};
use octrix_core::resilience::BreakerRegistry;
use octrix_core::{Clock, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::events::EventHub;
use crate::state::AppState;

/// How long one health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

fn default_health_path() -> String {
    "/health".to_owned()
}

fn default_interval() -> u32 {
    10
}

fn default_weight() -> u32 {
    1
}

/// A service to register: reached by URL, or on the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name: 1 to 63 lowercase letters, digits or `-`. For a service
    /// on the cluster, its Kubernetes name.
    pub name: String,
    /// Base URL (`http://...` or `https://...`); health checks and load
    /// tests call it. Without one, the service is on the cluster and its
    /// health comes from the engine's metric source.
    #[serde(default)]
    pub url: Option<String>,
    /// Path of the health check below `url` (default `/health`).
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// Namespace on the cluster (required without `url`; with `deployment`,
    /// what scaling acts on).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deployment that scale-up and scale-down change.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Seconds between health checks, 1 to 3600 (default 10).
    #[serde(default = "default_interval")]
    pub check_interval_seconds: u32,
    /// Weight for the weighted balancing strategy, 1 to 1000 (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

impl ServiceSpec {
    /// Checks every field, naming the first wrong one.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !is_dns_label(&self.name) {
            return Err(ApiError::bad_request(
                "name",
                "must be 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'",
            ));
        }
        match &self.url {
            Some(url) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| ApiError::bad_request("url", format!("{url:?}: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ApiError::bad_request("url", "must be http:// or https://"));
                }
            }
            None if self.namespace.is_none() => {
                return Err(ApiError::bad_request(
                    "url",
                    "give a url, or a namespace for a service on the cluster",
                ));
            }
            None => {}
        }
        if !self.health_path.starts_with('/') {
            return Err(ApiError::bad_request("health_path", "must start with '/'"));
        }
        if let Some(namespace) = &self.namespace
            && !is_dns_label(namespace)
        {
            return Err(ApiError::bad_request("namespace", "must be a DNS label"));
        }
        if self.deployment.is_some() && self.namespace.is_none() {
            return Err(ApiError::bad_request(
                "namespace",
                "is required with a deployment",
            ));
        }
        if !(1..=3600).contains(&self.check_interval_seconds) {
            return Err(ApiError::bad_request(
                "check_interval_seconds",
                "must be within 1..=3600",
            ));
        }
        if !(1..=1000).contains(&self.weight) {
            return Err(ApiError::bad_request("weight", "must be within 1..=1000"));
        }
        Ok(())
    }
}

/// A service as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredService {
    pub(crate) spec: ServiceSpec,
    pub(crate) registered_at: Timestamp,
}

/// What the last health check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Not checked yet, or the check could not tell (its source is down, no traffic).
    Unknown,
    /// Answering well.
    Healthy,
    /// Answering, but not well (a non-2xx health check, some errors).
    Degraded,
    /// Not answering, or mostly failing.
    Unhealthy,
}

/// A service's health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceHealth {
    /// Current state.
    pub state: HealthState,
    /// When it was last checked.
    pub checked_at: Option<jiff::Timestamp>,
    /// How long the last HTTP check took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Status code of the last HTTP check.
    pub http_status: Option<u16>,
    /// Error rate measured by the metric source (cluster services).
    pub error_rate: Option<f64>,
    /// The most recent error, even if a later check passed.
    pub last_error: Option<String>,
    /// When that error happened.
    pub last_error_at: Option<jiff::Timestamp>,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Checks so far.
    pub checks: u64,
}

impl Default for ServiceHealth {
    fn default() -> Self {
        Self {
            state: HealthState::Unknown,
            checked_at: None,
            latency_ms: None,
            http_status: None,
            error_rate: None,
            last_error: None,
            last_error_at: None,
            consecutive_failures: 0,
            checks: 0,
        }
    }
}

/// A registered service as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceView {
    /// What was registered.
    #[serde(flatten)]
    pub spec: ServiceSpec,
    /// `url` (checked over HTTP) or `cluster` (checked on the metric source).
    pub backend: String,
    /// When it was registered.
    pub registered_at: jiff::Timestamp,
    /// Its health.
    pub health: ServiceHealth,
    /// Its circuit breaker's state (`closed`, `open`, `half_open`), once it was called.
    pub breaker: Option<String>,
}

pub(crate) struct Entry {
    pub(crate) stored: StoredService,
    health: Mutex<ServiceHealth>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Entry {
    pub(crate) fn health(&self) -> ServiceHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// The registered services.
#[derive(Default)]
pub(crate) struct Registry {
    services: RwLock<BTreeMap<String, Arc<Entry>>>,
}

impl Registry {
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.read().get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Entry>> {
        self.read().values().cloned().collect()
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        let removed = self
            .services
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some(entry) = &removed
            && let Some(task) = entry.task.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            task.abort();
        }
        removed.is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.services.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn view(&self, name: &str, breakers: &BreakerRegistry) -> Option<ServiceView> {
        self.get(name).map(|entry| view(&entry, breakers))
    }

    pub(crate) fn views(&self, breakers: &BreakerRegistry) -> Vec<ServiceView> {
        self.all().iter().map(|e| view(e, breakers)).collect()
    }
}

fn view(entry: &Entry, breakers: &BreakerRegistry) -> ServiceView {
    let spec = entry.stored.spec.clone();
    ServiceView {
        backend: if spec.url.is_some() { "url" } else { "cluster" }.to_owned(),
        breaker: breakers
            .get(&spec.name)
            .map(|b| super::BreakerView::from(b.snapshot()).state),
        spec,
        registered_at: entry.stored.registered_at,
        health: entry.health(),
    }
}

/// What a health check needs, without the whole state (the checking task
/// must not keep the server alive).
#[derive(Clone)]
pub(crate) struct Checker {
    http: reqwest::Client,
    source: Arc<dyn MetricSource>,
    clock: Arc<dyn Clock>,
    events: EventHub,
}

impl Checker {
    pub(crate) fn of(state: &AppState) -> Self {
        Self {
            http: state.resilience().http.clone(),
            source: state.source().clone(),
            clock: state.clock().clone(),
            events: state.events().clone(),
        }
    }
}

struct Probe {
    state: HealthState,
    latency_ms: Option<f64>,
    http_status: Option<u16>,
    error_rate: Option<f64>,
    error: Option<String>,
}

async fn probe(checker: &Checker, spec: &ServiceSpec) -> Probe {
    match &spec.url {
        Some(url) => {
            let target = format!("{}{}", url.trim_end_matches('/'), spec.health_path);
            let started = Instant::now();
            let answer = checker
                .http
                .get(&target)
                .timeout(CHECK_TIMEOUT)
                .send()
                .await;
            let latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            match answer {
                Ok(response) => {
                    let status = response.status();
                    let healthy = status.is_success();
                    Probe {
                        state: if healthy {
                            HealthState::Healthy
                        } else {
                            HealthState::Degraded
                        },
                        latency_ms,
                        http_status: Some(status.as_u16()),
                        error_rate: None,
                        error: (!healthy)
                            .then(|| format!("GET {}: HTTP {status}", spec.health_path)),
                    }
                }
                Err(error) => Probe {
                    state: HealthState::Unhealthy,
                    latency_ms,
                    http_status: None,
                    error_rate: None,
                    error: Some(format!("GET {}: {}", spec.health_path, error.without_url())),
                },
            }
        }
        None => {
            let selector = ServiceSelector {
                namespace: spec.namespace.clone().unwrap_or_default(),
                service: spec.name.clone(),
                version: None,
                window_seconds: 60,
            };
            match checker.source.service_metrics(&selector).await {
                Ok(metrics) => {
                    let (state, error) = match metrics.error_rate {
                        Some(rate) if rate >= 0.5 => (
                            HealthState::Unhealthy,
                            Some(format!("error rate {:.1} %", rate * 100.0)),
                        ),
                        Some(rate) if rate >= 0.05 => (
                            HealthState::Degraded,
                            Some(format!("error rate {:.1} %", rate * 100.0)),
                        ),
                        Some(_) => (HealthState::Healthy, None),
                        None => (
                            HealthState::Unknown,
                            Some("no traffic measured: the error rate is unknown".to_owned()),
                        ),
                    };
                    Probe {
                        state,
                        latency_ms: None,
                        http_status: None,
                        error_rate: metrics.error_rate,
                        error,
                    }
                }
                Err(error) => Probe {
                    state: HealthState::Unknown,
                    latency_ms: None,
                    http_status: None,
                    error_rate: None,
                    error: Some(format!("metric source: {error}")),
                },
            }
        }
    }
}

/// Checks `entry` once, records the result, and publishes
/// `resilience:health` when its state changed.
async fn check(checker: &Checker, entry: &Entry) {
    let probe = probe(checker, &entry.stored.spec).await;
    let now = checker.clock.now();
    let changed = {
        let mut health = entry.health.lock().unwrap_or_else(|p| p.into_inner());
        let changed = health.state != probe.state;
        health.state = probe.state;
        health.checked_at = Some(now);
        health.latency_ms = probe.latency_ms;
        health.http_status = probe.http_status;
        health.error_rate = probe.error_rate;
        health.checks += 1;
        if matches!(probe.state, HealthState::Degraded | HealthState::Unhealthy) {
            health.consecutive_failures += 1;
        } else {
            health.consecutive_failures = 0;
        }
        if let Some(error) = probe.error {
            health.last_error = Some(error);
            health.last_error_at = Some(now);
        }
        changed.then(|| health.clone())
    };
    if let Some(health) = changed {
        checker.events.publish_json(
            "resilience:health",
            &serde_json::json!({ "service": entry.stored.spec.name, "health": health }),
        );
    }
}

/// Checks `entry` now, on request.
pub(crate) async fn check_and_publish(state: &AppState, entry: &Entry) {
    check(&Checker::of(state), entry).await;
}

/// Registers `stored` and starts its scheduled health checks (when a tokio
/// runtime runs; the first check is immediate).
pub(crate) fn start(state: &AppState, stored: StoredService) {
    let every = Duration::from_secs(u64::from(stored.spec.check_interval_seconds));
    let name = stored.spec.name.clone();
    let entry = Arc::new(Entry {
        stored,
        health: Mutex::new(ServiceHealth::default()),
        task: Mutex::new(None),
    });
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let checker = Checker::of(state);
        let weak: Weak<Entry> = Arc::downgrade(&entry);
        let task = runtime.spawn(async move {
            let mut timer = tokio::time::interval(every);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                timer.tick().await;
                // The registry owns the entry; once it is gone, so is this task.
                let Some(entry) = weak.upgrade() else {
                    break;
                };
                check(&checker, &entry).await;
            }
        });
        *entry.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    }
    state
        .resilience()
        .services
        .services
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name, entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "payments".into(),
            url: Some("http://127.0.0.1:9/".into()),
            health_path: "/health".into(),
            namespace: None,
            deployment: None,
            check_interval_seconds: 10,
            weight: 1,
        }
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        assert!(spec().validate().is_ok());
        let field = |s: ServiceSpec| s.validate().unwrap_err().body().error.field.unwrap();
        assert_eq!(
            field(ServiceSpec {
                name: "Pay".into(),
                ..spec()
            }),
            "name"
        );
        assert_eq!(
            field(ServiceSpec {
                url: Some("ftp://x".into()),
                ..spec()
            }),
            "url"
        );
        assert_eq!(
            field(ServiceSpec {
                url: None,
                ..spec()
            }),
            "url"
        );
        assert_eq!(
            field(ServiceSpec {
                health_path: "health".into(),
                ..spec()
            }),
            "health_path"
        );
        assert_eq!(
            field(ServiceSpec {
                deployment: Some("pay".into()),
                ..spec()
            }),
            "namespace"
        );
        assert_eq!(
            field(ServiceSpec {
                check_interval_seconds: 0,
                ..spec()
            }),
            "check_interval_seconds"
        );
        assert_eq!(
            field(ServiceSpec {
                weight: 0,
                ..spec()
            }),
            "weight"
        );
        let on_cluster = ServiceSpec {
            url: None,
            namespace: Some("shop".into()),
            ..spec()
        };
        assert!(on_cluster.validate().is_ok());
    }
}
