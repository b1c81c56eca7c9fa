//! Abort guards: named signals that stop a run when they breach.
//!
//! A guard states the steady-state hypothesis of an experiment (LitmusChaos
//! calls them probes, Chaos Mesh status checks): "the frontend keeps its error
//! rate under 5 %", "no anomaly on checkout's p99". The caller observes the
//! signals (service metrics from a [`MetricSource`](crate::metrics::MetricSource),
//! anomalies from its detectors) and hands them in as [`GuardObservation`]s;
//! evaluation is pure. A signal that is not observed does not breach: feed
//! every guarded signal on each evaluation.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::Labels;
use crate::metrics::ServiceMetrics;

/// A named signal that aborts a run when it breaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortGuard {
    /// Name shown in the abort reason.
    pub name: String,
    /// What is watched.
    pub signal: GuardSignal,
}

impl AbortGuard {
    /// A guard called `name` watching `signal`.
    pub fn new(name: impl Into<String>, signal: GuardSignal) -> Self {
        Self {
            name: name.into(),
            signal,
        }
    }
}

/// A signal a guard watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GuardSignal {
    /// Breaches when a service's error rate goes above a threshold (an SLO).
    ErrorRateAbove {
        /// Namespace of the service.
        namespace: String,
        /// The service.
        service: String,
        /// Highest tolerated fraction of failed requests, in [0, 1].
        max_error_rate: f64,
    },
    /// Breaches when a service's 99th percentile latency goes above a threshold.
    LatencyP99Above {
        /// Namespace of the service.
        namespace: String,
        /// The service.
        service: String,
        /// Highest tolerated p99, in milliseconds.
        max_p99_ms: f64,
    },
    /// Breaches when a detector reports an anomaly on a series of `metric`
    /// carrying `labels`.
    Anomaly {
        /// Metric name.
        metric: String,
        /// Labels the anomalous series must carry (all of them).
        #[serde(default)]
        labels: Labels,
    },
}

/// Something the caller saw, fed to guard evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GuardObservation {
    /// Current traffic figures of a service.
    Service {
        /// Namespace of the service.
        namespace: String,
        /// The service.
        service: String,
        /// What the metric source reported.
        metrics: ServiceMetrics,
    },
    /// A detector flagged a series as anomalous.
    Anomaly {
        /// Metric name.
        metric: String,
        /// The series' labels.
        labels: Labels,
    },
}

/// A guard that breached, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardBreach {
    /// The guard's name.
    pub guard: String,
    /// What was observed, in words.
    pub reason: String,
}

impl fmt::Display for GuardBreach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guard {} breached: {}", self.guard, self.reason)
    }
}

impl GuardSignal {
    /// Why `observation` breaches this signal, or `None` when it does not
    /// (or is about something else).
    pub fn breach(&self, observation: &GuardObservation) -> Option<String> {
        match (self, observation) {
            (
                Self::ErrorRateAbove {
                    namespace,
                    service,
                    max_error_rate,
                },
                GuardObservation::Service {
                    namespace: ns,
                    service: svc,
                    metrics,
                },
            ) if ns == namespace && svc == service => {
                let rate = metrics.error_rate?;
                (rate > *max_error_rate)
                    .then(|| format!("{ns}/{svc} error rate {rate:.3} above {max_error_rate:.3}"))
            }
            (
                Self::LatencyP99Above {
                    namespace,
                    service,
                    max_p99_ms,
                },
                GuardObservation::Service {
                    namespace: ns,
                    service: svc,
                    metrics,
                },
            ) if ns == namespace && svc == service => {
                let p99_ms = metrics.latency_p99_seconds? * 1_000.0;
                (p99_ms > *max_p99_ms)
                    .then(|| format!("{ns}/{svc} p99 latency {p99_ms:.0} ms above {max_p99_ms} ms"))
            }
            (
                Self::Anomaly { metric, labels },
                GuardObservation::Anomaly {
                    metric: seen,
                    labels: seen_labels,
                },
            ) if metric == seen && labels.iter().all(|(k, v)| seen_labels.get(k) == Some(v)) => {
                let labels: Vec<String> = seen_labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                Some(format!("anomaly on {seen}{{{}}}", labels.join(",")))
            }
            _ => None,
        }
    }

    fn validate(&self, field: &str) -> Result<(), Error> {
        let non_empty = |name: &str, value: &str| {
            if value.is_empty() {
                Err(Error::invalid(
                    format!("{field}.{name}"),
                    "must not be empty",
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Self::ErrorRateAbove {
                namespace,
                service,
                max_error_rate,
            } => {
                non_empty("namespace", namespace)?;
                non_empty("service", service)?;
                if !(0.0..=1.0).contains(max_error_rate) {
                    return Err(Error::invalid(
                        format!("{field}.max_error_rate"),
                        "must be within [0, 1]",
                    ));
                }
                Ok(())
            }
            Self::LatencyP99Above {
                namespace,
                service,
                max_p99_ms,
            } => {
                non_empty("namespace", namespace)?;
                non_empty("service", service)?;
                if !(max_p99_ms.is_finite() && *max_p99_ms > 0.0) {
                    return Err(Error::invalid(
                        format!("{field}.max_p99_ms"),
                        "must be a positive number",
                    ));
                }
                Ok(())
            }
            Self::Anomaly { metric, .. } => non_empty("metric", metric),
        }
    }
}

/// The first guard, in order, that one of `observations` breaches.
pub fn first_breach(
    guards: &[AbortGuard],
    observations: &[GuardObservation],
) -> Option<GuardBreach> {
    guards.iter().find_map(|guard| {
        observations.iter().find_map(|o| {
            guard.signal.breach(o).map(|reason| GuardBreach {
                guard: guard.name.clone(),
                reason,
            })
        })
    })
}

/// Checks guards listed under `field` (e.g. `guards`): non-empty unique
/// names and sensible thresholds.
pub fn validate_guards(guards: &[AbortGuard], field: &str) -> Result<(), Error> {
    let mut names = BTreeSet::new();
    for (i, guard) in guards.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if guard.name.trim().is_empty() {
            return Err(Error::invalid(format!("{at}.name"), "must not be empty"));
        }
        if !names.insert(guard.name.as_str()) {
            return Err(Error::invalid(
                format!("{at}.name"),
                format!("{:?} is used by another guard", guard.name),
            ));
        }
        guard.signal.validate(&format!("{at}.signal"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn service(name: &str, error_rate: Option<f64>, p99_seconds: Option<f64>) -> GuardObservation {
        GuardObservation::Service {
            namespace: "shop".into(),
            service: name.into(),
            metrics: ServiceMetrics {
                request_rate: 100.0,
                error_rate,
                latency_p50_seconds: p99_seconds.map(|p| p / 3.0),
                latency_p99_seconds: p99_seconds,
            },
        }
    }

    fn guards() -> Vec<AbortGuard> {
        vec![
            AbortGuard::new(
                "frontend-errors",
                GuardSignal::ErrorRateAbove {
                    namespace: "shop".into(),
                    service: "frontend".into(),
                    max_error_rate: 0.05,
                },
            ),
            AbortGuard::new(
                "frontend-p99",
                GuardSignal::LatencyP99Above {
                    namespace: "shop".into(),
                    service: "frontend".into(),
                    max_p99_ms: 250.0,
                },
            ),
            AbortGuard::new(
                "checkout-anomaly",
                GuardSignal::Anomaly {
                    metric: "latency_p99".into(),
                    labels: labels::from_pairs([("service", "checkout")]),
                },
            ),
        ]
    }

    #[test]
    fn thresholds_breach_only_strictly_above_and_only_for_their_service() {
        let g = guards();
        assert_eq!(
            first_breach(&g, &[service("frontend", Some(0.05), Some(0.25))]),
            None
        );
        assert_eq!(
            first_breach(&g, &[service("checkout", Some(0.9), Some(9.0))]),
            None,
            "other services are not guarded"
        );
        assert_eq!(
            first_breach(&g, &[service("frontend", Some(0.2), Some(0.1))]),
            Some(GuardBreach {
                guard: "frontend-errors".into(),
                reason: "shop/frontend error rate 0.200 above 0.050".into()
            })
        );
        let slow = first_breach(&g, &[service("frontend", Some(0.0), Some(0.4))]).unwrap();
        assert_eq!(
            slow.to_string(),
            "guard frontend-p99 breached: shop/frontend p99 latency 400 ms above 250 ms"
        );
        assert_eq!(
            first_breach(&g, &[service("frontend", None, None)]),
            None,
            "no traffic, no data, no breach"
        );
    }

    #[test]
    fn anomalies_match_metric_and_label_subset() {
        let g = guards();
        let on = |metric: &str, service: &str| GuardObservation::Anomaly {
            metric: metric.into(),
            labels: labels::from_pairs([("service", service), ("pod", "checkout-1")]),
        };
        assert_eq!(first_breach(&g, &[on("latency_p99", "frontend")]), None);
        assert_eq!(first_breach(&g, &[on("error_rate", "checkout")]), None);
        let breach = first_breach(&g, &[on("latency_p99", "checkout")]).unwrap();
        assert_eq!(breach.guard, "checkout-anomaly");
        assert_eq!(
            breach.reason,
            "anomaly on latency_p99{pod=\"checkout-1\",service=\"checkout\"}"
        );
    }

    #[test]
    fn guards_are_validated_with_their_path() {
        assert!(validate_guards(&guards(), "guards").is_ok());
        let mut twice = guards();
        twice[2].name = "frontend-errors".into();
        assert_eq!(
            validate_guards(&twice, "guards").unwrap_err().to_string(),
            "invalid chaos scenario: guards[2].name \"frontend-errors\" is used by another guard"
        );
        let mut bad = guards();
        bad[0].signal = GuardSignal::ErrorRateAbove {
            namespace: "shop".into(),
            service: "frontend".into(),
            max_error_rate: 5.0,
        };
        assert_eq!(
            validate_guards(&bad, "guards").unwrap_err().to_string(),
            "invalid chaos scenario: guards[0].signal.max_error_rate must be within [0, 1]"
        );
        let mut empty = guards();
        empty[1].signal = GuardSignal::LatencyP99Above {
            namespace: "shop".into(),
            service: String::new(),
            max_p99_ms: 1.0,
        };
        assert!(
            validate_guards(&empty, "guards")
                .unwrap_err()
                .to_string()
                .contains("guards[1].signal.service must not be empty")
        );
    }

    #[test]
    fn yaml_form() {
        let guard: AbortGuard = serde_norway::from_str(
            "name: slo\nsignal: { kind: error-rate-above, namespace: shop, service: web, max_error_rate: 0.01 }",
        )
        .unwrap();
        assert_eq!(guard.name, "slo");
        assert!(
            matches!(guard.signal, GuardSignal::ErrorRateAbove { max_error_rate, .. } if max_error_rate == 0.01)
        );
    }
}
