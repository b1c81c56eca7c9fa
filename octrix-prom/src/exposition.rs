//! Octrix's own metrics, for its `/metrics` endpoint.
//!
//! [`OctrixMetrics`] owns a `prometheus-client` registry (never a global one)
//! with every metric Octrix reports about itself, and methods that take plain
//! values so that the engine, the HTTP server and the sources can record
//! without knowing the metric types.
//!
//! [`OctrixMetrics::encode`] renders the Prometheus text format (version
//! 0.0.4, what `promtool check metrics` validates and every Prometheus
//! scrapes); [`OctrixMetrics::encode_openmetrics`] renders OpenMetrics, and
//! [`OctrixMetrics::encode_for`] picks one from a scrape's `Accept` header.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `octrix_incident_active` | gauge | severity, service |
//! | `octrix_incident_opened_total` | counter | severity, service |
//! | `octrix_incident_resolved_total` | counter | severity, service |
//! | `octrix_incident_duration_seconds` | histogram (MTTR) | severity |
//! | `octrix_incident_ack_seconds` | histogram (MTTA) | severity |
//! | `octrix_escalation_pending` | gauge | severity |
//! | `octrix_escalation_oldest_pending_seconds` | gauge | severity |
//! | `octrix_healing_actions_total` | counter | action, outcome |
//! | `octrix_detector_anomalies_total` | counter | detector |
//! | `octrix_detector_series` | gauge | |
//! | `octrix_chaos_runs_total` | counter | type, status |
//! | `octrix_circuit_breaker_state` | gauge (0 closed, 1 half-open, 2 open) | breaker |
//! | `octrix_alerts_received_total` | counter | status |
//! | `octrix_http_requests_total` | counter | method, route, status |
//! | `octrix_http_request_duration_seconds` | histogram | method, route |
//! | `octrix_source_up` | gauge (1 up, 0 unavailable) | source |
//! | `octrix_leader` | gauge (1 leads, 0 follows) | |
//!
//! ```
//! use octrix_prom::exposition::OctrixMetrics;
//!
//! let metrics = OctrixMetrics::new();
//! metrics.record_incident_opened("critical", "checkout");
//! metrics.record_healing_action("restart-pod", "success");
//! metrics.set_source_up("prometheus", false);
//! let text = metrics.encode().unwrap();
//! assert!(text.contains(
//!     r#"octrix_incident_active{severity="critical",service="checkout"} 1"#));
//! assert!(text.contains("# TYPE octrix_healing_actions_total counter"));
//! assert!(text.contains(r#"octrix_source_up{source="prometheus"} 0"#));
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Why the exposition could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A metric failed to encode.
    #[error("cannot encode the metrics exposition")]
    Encode(#[source] std::fmt::Error),
}

/// The `Content-Type` of [`OctrixMetrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of [`OctrixMetrics::encode_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets for incident durations (time to resolve), in seconds: 10 s to 1 day.
const RESOLVE_BUCKETS: [f64; 13] = [
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];
/// Buckets for time to acknowledge, in seconds: 5 s to 2 h.
const ACK_BUCKETS: [f64; 11] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
];
/// Buckets for HTTP request durations, in seconds: 1 ms to 10 s.
const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// State of a circuit breaker, as `octrix_circuit_breaker_state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass (0).
    Closed,
    /// Trial calls pass (1).
    HalfOpen,
    /// Calls are refused (2).
    Open,
}

impl BreakerState {
    fn value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct IncidentLabels {
    severity: String,
    service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SeverityLabels {
    severity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HealingLabels {
    action: String,
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DetectorLabels {
    detector: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChaosLabels {
    r#type: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BreakerLabels {
    breaker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug)]
struct Inner {
    registry: Registry,
    incident_active: Family<IncidentLabels, Gauge>,
    incident_opened: Family<IncidentLabels, Counter>,
    incident_resolved: Family<IncidentLabels, Counter>,
    incident_duration: Family<SeverityLabels, Histogram>,
    incident_ack: Family<SeverityLabels, Histogram>,
    escalation_pending: Family<SeverityLabels, Gauge>,
    escalation_oldest: Family<SeverityLabels, FloatGauge>,
    healing_actions: Family<HealingLabels, Counter>,
    detector_anomalies: Family<DetectorLabels, Counter>,
    detector_series: Gauge,
    chaos_runs: Family<ChaosLabels, Counter>,
    breaker_state: Family<BreakerLabels, Gauge>,
    alerts_received: Family<StatusLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    source_up: Family<SourceLabels, Gauge>,
    leader: Gauge,
}

/// Octrix's own metrics and their registry. Clones share the same metrics.
#[derive(Debug, Clone)]
pub struct OctrixMetrics {
    inner: Arc<Inner>,
}

impl Default for OctrixMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OctrixMetrics {
    /// A fresh registry with every metric registered and no samples yet.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("octrix");
        let incident_active = Family::<IncidentLabels, Gauge>::default();
        let incident_opened = Family::<IncidentLabels, Counter>::default();
        let incident_resolved = Family::<IncidentLabels, Counter>::default();
        let incident_duration = Family::<SeverityLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(RESOLVE_BUCKETS)
        });
        let incident_ack = Family::<SeverityLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(ACK_BUCKETS)
        });
        let escalation_pending = Family::<SeverityLabels, Gauge>::default();
        let escalation_oldest = Family::<SeverityLabels, FloatGauge>::default();
        let healing_actions = Family::<HealingLabels, Counter>::default();
        let detector_anomalies = Family::<DetectorLabels, Counter>::default();
        let detector_series = Gauge::default();
        let chaos_runs = Family::<ChaosLabels, Counter>::default();
        let breaker_state = Family::<BreakerLabels, Gauge>::default();
        let alerts_received = Family::<StatusLabels, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(HTTP_BUCKETS));
        let source_up = Family::<SourceLabels, Gauge>::default();
        let leader = Gauge::default();

        registry.register(
            "incident_active",
            "Incidents currently open (not resolved)",
            incident_active.clone(),
        );
        registry.register(
            "incident_opened",
            "Incidents opened",
            incident_opened.clone(),
        );
        registry.register(
            "incident_resolved",
            "Incidents resolved",
            incident_resolved.clone(),
        );
        registry.register_with_unit(
            "incident_duration",
            "Time from opening to resolution of resolved incidents (MTTR)",
            Unit::Seconds,
            incident_duration.clone(),
        );
        registry.register_with_unit(
            "incident_ack",
            "Time from opening to acknowledgement of incidents (MTTA)",
            Unit::Seconds,
            incident_ack.clone(),
        );
        registry.register(
            "escalation_pending",
            "Escalated incidents waiting for a human to acknowledge them",
            escalation_pending.clone(),
        );
        registry.register_with_unit(
            "escalation_oldest_pending",
            "Age of the oldest escalated incident not yet acknowledged (0 when none)",
            Unit::Seconds,
            escalation_oldest.clone(),
        );
        registry.register(
            "healing_actions",
            "Healing actions executed, by action and outcome",
            healing_actions.clone(),
        );
        registry.register(
            "detector_anomalies",
            "Anomalies reported by the detectors",
            detector_anomalies.clone(),
        );
        registry.register(
            "detector_series",
            "Series currently tracked by the anomaly detectors",
            detector_series.clone(),
        );
        registry.register(
            "chaos_runs",
            "Chaos experiment runs, by type and final status",
            chaos_runs.clone(),
        );
        registry.register(
            "circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            breaker_state.clone(),
        );
        registry.register(
            "alerts_received",
            "Alerts received from Alertmanager, by status",
            alerts_received.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route and status code",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to serve HTTP requests",
            Unit::Seconds,
            http_duration.clone(),
        );
        registry.register(
            "source_up",
            "Whether a metric source answered its last request (1) or was unavailable (0)",
            source_up.clone(),
        );
        registry.register(
            "leader",
            "Whether this replica leads (1: it runs the engine and takes writes) or follows (0)",
            leader.clone(),
        );

        Self {
            inner: Arc::new(Inner {
                registry,
                incident_active,
                incident_opened,
                incident_resolved,
                incident_duration,
                incident_ack,
                escalation_pending,
                escalation_oldest,
                healing_actions,
                detector_anomalies,
                detector_series,
                chaos_runs,
                breaker_state,
                alerts_received,
                http_requests,
                http_duration,
                source_up,
                leader,
            }),
        }
    }

    /// An incident was opened: counts it and adds it to the active ones.
    pub fn record_incident_opened(&self, severity: &str, service: &str) {
        let labels = incident_labels(severity, service);
        self.inner.incident_opened.get_or_create(&labels).inc();
        self.inner.incident_active.get_or_create(&labels).inc();
    }

    /// An incident was resolved after `duration_seconds`: counts it, removes
    /// it from the active ones and observes its duration (MTTR).
    pub fn record_incident_resolved(&self, severity: &str, service: &str, duration_seconds: f64) {
        let labels = incident_labels(severity, service);
        self.inner.incident_resolved.get_or_create(&labels).inc();
        let active = self.inner.incident_active.get_or_create(&labels);
        // Never below zero, e.g. for an incident opened before a restart.
        if active.get() > 0 {
            active.dec();
        }
        drop(active);
        self.inner
            .incident_duration
            .get_or_create(&severity_labels(severity))
            .observe(duration_seconds);
    }

    /// An incident was acknowledged `ack_seconds` after it opened (MTTA).
    pub fn record_acknowledged(&self, severity: &str, ack_seconds: f64) {
        self.inner
            .incident_ack
            .get_or_create(&severity_labels(severity))
            .observe(ack_seconds);
    }

    /// Sets the number of active incidents, e.g. after loading them from a
    /// store at start-up.
    pub fn set_incidents_active(&self, severity: &str, service: &str, count: u64) {
        self.inner
            .incident_active
            .get_or_create(&incident_labels(severity, service))
            .set(saturating_i64(count));
    }

    /// Sets the escalated incidents still waiting for acknowledgement and the
    /// age of the oldest of them (0 when there is none).
    pub fn set_escalations_pending(&self, severity: &str, count: u64, oldest_age_seconds: f64) {
        let labels = severity_labels(severity);
        self.inner
            .escalation_pending
            .get_or_create(&labels)
            .set(saturating_i64(count));
        self.inner
            .escalation_oldest
            .get_or_create(&labels)
            .set(if count == 0 { 0.0 } else { oldest_age_seconds });
    }

    /// A healing action (e.g. `restart-pod`) ended with `outcome` (e.g.
    /// `success`, `failure`, `skipped`).
    pub fn record_healing_action(&self, action: &str, outcome: &str) {
        self.inner
            .healing_actions
            .get_or_create(&HealingLabels {
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A detector reported an anomaly.
    pub fn record_anomaly(&self, detector: &str) {
        self.inner
            .detector_anomalies
            .get_or_create(&DetectorLabels {
                detector: detector.to_owned(),
            })
            .inc();
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leads: bool) {
        self.inner.leader.set(i64::from(leads));
    }

    /// Sets the number of series the detectors track.
    pub fn set_detector_series(&self, count: u64) {
        self.inner.detector_series.set(saturating_i64(count));
    }

    /// A chaos run of type `kind` (e.g. `pod-failure`) ended with `status`
    /// (e.g. `completed`, `aborted`, `failed`).
    pub fn record_chaos_run(&self, kind: &str, status: &str) {
        self.inner
            .chaos_runs
            .get_or_create(&ChaosLabels {
                r#type: kind.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    /// Sets the state of the circuit breaker named `breaker`.
    pub fn set_circuit_breaker_state(&self, breaker: &str, state: BreakerState) {
        self.inner
            .breaker_state
            .get_or_create(&BreakerLabels {
                breaker: breaker.to_owned(),
            })
            .set(state.value());
    }

    /// An alert with `status` (`firing` or `resolved`) arrived from
    /// Alertmanager.
    pub fn record_alert_received(&self, status: &str) {
        self.inner
            .alerts_received
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// An HTTP request to `route` (the route pattern, e.g.
    /// `/api/v1/incidents/{id}`, not the raw path) was served with `status`
    /// in `duration_seconds`.
    pub fn record_http_request(
        &self,
        method: &str,
        route: &str,
        status: u16,
        duration_seconds: f64,
    ) {
        self.inner
            .http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.inner
            .http_duration
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(duration_seconds);
    }

    /// Records whether the metric source named `source` answered (`true`) or
    /// was unavailable (`false`).
    pub fn set_source_up(&self, source: &str, up: bool) {
        self.inner
            .source_up
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .set(i64::from(up));
    }

    /// The current value of `octrix_source_up` for `source`, if recorded.
    pub fn source_up(&self, source: &str) -> Option<bool> {
        self.inner
            .source_up
            .get(&SourceLabels {
                source: source.to_owned(),
            })
            .map(|g| g.get() == 1)
    }

    /// Renders every metric in the Prometheus text format 0.0.4, served
    /// with [`CONTENT_TYPE`].
    pub fn encode(&self) -> Result<String, Error> {
        Ok(openmetrics_to_prometheus_text(&self.encode_openmetrics()?))
    }

    /// Renders every metric in the OpenMetrics text format, served with
    /// [`OPENMETRICS_CONTENT_TYPE`], ending with `# EOF`.
    pub fn encode_openmetrics(&self) -> Result<String, Error> {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .map_err(Error::Encode)?;
        Ok(out)
    }

    /// Renders the format a scraper asked for in its `Accept` header:
    /// OpenMetrics when it accepts `application/openmetrics-text`, the
    /// Prometheus text format otherwise. Returns the `Content-Type` and the
    /// body.
    ///
    /// ```
    /// use octrix_prom::exposition::{OctrixMetrics, OPENMETRICS_CONTENT_TYPE};
    ///
    /// let metrics = OctrixMetrics::new();
    /// let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    /// let (content_type, body) = metrics.encode_for(Some(accept)).unwrap();
    /// assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
    /// assert!(body.ends_with("# EOF\n"));
    /// ```
    pub fn encode_for(&self, accept: Option<&str>) -> Result<(&'static str, String), Error> {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or("");
                let refused = parts.any(|p| p.replace(' ', "") == "q=0");
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_openmetrics {
            Ok((OPENMETRICS_CONTENT_TYPE, self.encode_openmetrics()?))
        } else {
            Ok((CONTENT_TYPE, self.encode()?))
        }
    }
}

/// Rewrites `prometheus-client`'s OpenMetrics text as Prometheus text 0.0.4:
/// a counter family is named after its `_total` samples, and the `# UNIT`
/// and `# EOF` lines (unknown to 0.0.4 parsers) are dropped.
fn openmetrics_to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| line.strip_prefix(prefix).map(|rest| (prefix, rest)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let tail = if prefix == "# TYPE " && tail == "unknown" {
                    "untyped"
                } else {
                    tail
                };
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn incident_labels(severity: &str, service: &str) -> IncidentLabels {
    IncidentLabels {
        severity: severity.to_owned(),
        service: service.to_owned(),
    }
}

fn severity_labels(severity: &str) -> SeverityLabels {
    SeverityLabels {
        severity: severity.to_owned(),
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"))
    }

    #[test]
    fn incidents_open_resolve_and_ack() {
        let m = OctrixMetrics::new();
        m.record_incident_opened("high", "api");
        m.record_incident_opened("high", "api");
        m.record_incident_resolved("high", "api", 42.0);
        m.record_incident_resolved("high", "api", 600.0);
        m.record_incident_resolved("high", "api", 7.0); // opened before a restart
        m.record_acknowledged("high", 20.0);
        let text = m.encode().unwrap();
        assert_eq!(
            line(&text, "octrix_incident_active{"),
            r#"octrix_incident_active{severity="high",service="api"} 0"#
        );
        assert_eq!(
            line(&text, "octrix_incident_opened_total{"),
            r#"octrix_incident_opened_total{severity="high",service="api"} 2"#
        );
        assert_eq!(
            line(&text, "octrix_incident_resolved_total{"),
            r#"octrix_incident_resolved_total{severity="high",service="api"} 3"#
        );
        assert_eq!(
            line(&text, "octrix_incident_duration_seconds_sum{"),
            r#"octrix_incident_duration_seconds_sum{severity="high"} 649.0"#
        );
        assert_eq!(
            line(
                &text,
                r#"octrix_incident_duration_seconds_bucket{le="60.0""#
            ),
            r#"octrix_incident_duration_seconds_bucket{le="60.0",severity="high"} 2"#
        );
        assert_eq!(
            line(&text, "octrix_incident_ack_seconds_count{"),
            r#"octrix_incident_ack_seconds_count{severity="high"} 1"#
        );
    }

    #[test]
    fn other_metrics_render_with_their_labels() {
        let m = OctrixMetrics::new();
        m.record_healing_action("restart-pod", "success");
        m.record_anomaly("zscore");
        m.set_detector_series(12);
        m.record_chaos_run("pod-failure", "completed");
        m.set_circuit_breaker_state("payments", BreakerState::HalfOpen);
        m.record_alert_received("firing");
        m.record_http_request("GET", "/api/v1/incidents", 200, 0.003);
        m.set_escalations_pending("critical", 2, 1200.0);
        m.set_source_up("prometheus", true);
        let text = m.encode().unwrap();
        for expected in [
            r#"octrix_healing_actions_total{action="restart-pod",outcome="success"} 1"#,
            r#"octrix_detector_anomalies_total{detector="zscore"} 1"#,
            "octrix_detector_series 12",
            r#"octrix_chaos_runs_total{type="pod-failure",status="completed"} 1"#,
            r#"octrix_circuit_breaker_state{breaker="payments"} 1"#,
            r#"octrix_alerts_received_total{status="firing"} 1"#,
            r#"octrix_http_requests_total{method="GET",route="/api/v1/incidents",status="200"} 1"#,
            r#"octrix_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/incidents"} 1"#,
            r#"octrix_escalation_pending{severity="critical"} 2"#,
            r#"octrix_escalation_oldest_pending_seconds{severity="critical"} 1200.0"#,
            r#"octrix_source_up{source="prometheus"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "missing {expected}\n{text}"
            );
        }
        assert_eq!(m.source_up("prometheus"), Some(true));
        assert_eq!(m.source_up("other"), None);
    }

    #[test]
    fn prometheus_text_names_counter_families_after_their_samples() {
        let m = OctrixMetrics::new();
        m.record_anomaly("zscore");
        m.record_http_request("GET", "/", 200, 0.01);
        let om = m.encode_openmetrics().unwrap();
        assert!(om.contains("# TYPE octrix_detector_anomalies counter\n"));
        assert!(om.contains("# UNIT octrix_http_request_duration_seconds seconds\n"));
        let text = m.encode().unwrap();
        assert!(text.contains(
            "# HELP octrix_detector_anomalies_total Anomalies reported by the detectors.\n\
             # TYPE octrix_detector_anomalies_total counter\n\
             octrix_detector_anomalies_total{detector=\"zscore\"} 1\n"
        ));
        assert!(!text.contains("# UNIT") && !text.contains("# EOF"));
        assert!(text.contains("# TYPE octrix_http_request_duration_seconds histogram\n"));
        let (content_type, _) = m.encode_for(Some("text/plain;version=0.0.4")).unwrap();
        assert_eq!(content_type, CONTENT_TYPE);
        let (content_type, _) = m
            .encode_for(Some("application/openmetrics-text;q=0,text/plain"))
            .unwrap();
        assert_eq!(content_type, CONTENT_TYPE);
        assert_eq!(m.encode_for(None).unwrap().0, CONTENT_TYPE);
    }

    #[test]
    fn clones_share_metrics() {
        let m = OctrixMetrics::new();
        m.clone().set_source_up("p", false);
        assert_eq!(m.source_up("p"), Some(false));
    }
}
