//! What the book reads from an alert or a signal: a [`Draft`] of the
//! incident it would open.
//!
//! # From an Alertmanager alert
//!
//! | incident field | taken from |
//! |---|---|
//! | fingerprint | the alert's `fingerprint` |
//! | title | annotation `summary`, else label `alertname`, else `alert <fingerprint>` |
//! | description | annotation `description`, else `message` |
//! | severity | label `severity`, see [`severity_from_label`] |
//! | category | label `category` if it names a [`Category`], else [`Category::Alert`] |
//! | service | label `service`, else `job` |
//! | environment | label `environment`, else `env` |
//! | namespace | label `namespace` |
//! | resource | label `pod` (with `namespace`, `node`), else `node`, `deployment`, `statefulset`, `daemonset`, `instance` |
//! | runbook_url | annotation `runbook_url`, else `runbook` |
//! | occurrence start | `startsAt` |

use crate::alert::Alert;
use crate::classify::{Category, Fingerprint, ResourceKind, ResourceRef, Severity, Signal};
use crate::{Labels, Timestamp};

use super::model::IncidentSource;

/// The `severity` label's value (case-insensitive) as a [`Severity`]:
///
/// | label values | severity |
/// |---|---|
/// | `critical`, `crit`, `fatal`, `emergency`, `page`, `p1` | critical |
/// | `high`, `error`, `err`, `major`, `p2` | high |
/// | `warning`, `warn`, `medium`, `moderate`, `p3` | medium |
/// | `low`, `info`, `informational`, `minor`, `notice`, `none`, `p4`, `p5` | low |
///
/// Anything else is `None`, and the book uses its configured default.
///
/// ```
/// use octrix_core::Severity;
/// use octrix_core::incident::severity_from_label;
///
/// assert_eq!(severity_from_label("warning"), Some(Severity::Medium));
/// assert_eq!(severity_from_label("Critical"), Some(Severity::Critical));
/// assert_eq!(severity_from_label("info"), Some(Severity::Low));
/// assert_eq!(severity_from_label("whatever"), None);
/// ```
pub fn severity_from_label(value: &str) -> Option<Severity> {
    match value.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "emergency" | "page" | "p1" => Some(Severity::Critical),
        "high" | "error" | "err" | "major" | "p2" => Some(Severity::High),
        "warning" | "warn" | "medium" | "moderate" | "p3" => Some(Severity::Medium),
        "low" | "info" | "informational" | "minor" | "notice" | "none" | "p4" | "p5" => {
            Some(Severity::Low)
        }
        _ => None,
    }
}

/// Everything needed to open an incident, or to merge into an existing one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) category: Category,
    pub(crate) severity: Severity,
    pub(crate) service: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) resource: Option<ResourceRef>,
    pub(crate) labels: Labels,
    pub(crate) runbook_url: Option<String>,
    pub(crate) generator_url: Option<String>,
    pub(crate) source: IncidentSource,
    pub(crate) occurrence_started_at: Timestamp,
}

fn first_of(map: &Labels, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| map.get(*name).filter(|value| !value.is_empty()))
        .cloned()
}

impl Draft {
    pub(crate) fn from_alert(alert: &Alert, default_severity: Severity) -> Self {
        let labels = &alert.labels;
        let annotations = &alert.annotations;
        let title = first_of(annotations, &["summary"])
            .or_else(|| first_of(labels, &["alertname"]))
            .unwrap_or_else(|| format!("alert {}", alert.fingerprint));
        Self {
            fingerprint: Fingerprint::new(alert.fingerprint.clone()),
            title,
            description: first_of(annotations, &["description", "message"]),
            category: labels
                .get("category")
                .and_then(|name| name.parse().ok())
                .unwrap_or(Category::Alert),
            severity: labels
                .get("severity")
                .and_then(|value| severity_from_label(value))
                .unwrap_or(default_severity),
            service: first_of(labels, &["service", "job"]),
            environment: first_of(labels, &["environment", "env"]),
            namespace: first_of(labels, &["namespace"]),
            resource: resource_from_labels(labels),
            labels: labels.clone(),
            runbook_url: first_of(annotations, &["runbook_url", "runbook"]),
            generator_url: alert.generator_url.clone().filter(|url| !url.is_empty()),
            source: IncidentSource::Alert,
            occurrence_started_at: alert.starts_at,
        }
    }

    pub(crate) fn from_signal(signal: &Signal) -> Self {
        Self {
            fingerprint: signal.fingerprint(),
            title: signal.summary.clone(),
            description: None,
            category: signal.category,
            severity: signal.severity,
            service: signal.service.clone(),
            environment: first_of(&signal.labels, &["environment", "env"]),
            namespace: signal.resource.namespace.clone(),
            resource: Some(signal.resource.clone()),
            labels: signal.labels.clone(),
            runbook_url: None,
            generator_url: None,
            source: if signal.category == Category::Anomaly {
                IncidentSource::Detector
            } else {
                IncidentSource::Cluster
            },
            occurrence_started_at: signal.since,
        }
    }
}

/// The most specific object the labels name.
fn resource_from_labels(labels: &Labels) -> Option<ResourceRef> {
    let namespace = first_of(labels, &["namespace"]);
    let node = first_of(labels, &["node"]);
    let scoped = |kind, name: String| match &namespace {
        Some(namespace) => ResourceRef::namespaced(kind, namespace.clone(), name),
        None => ResourceRef::cluster_scoped(kind, name),
    };
    if let Some(pod) = first_of(labels, &["pod"]) {
        let pod = scoped(ResourceKind::Pod, pod);
        return Some(match node {
            Some(node) => pod.on_node(node),
            None => pod,
        });
    }
    if let Some(node) = node {
        return Some(ResourceRef::node(node));
    }
    let workloads = [
        ("deployment", ResourceKind::Deployment),
        ("statefulset", ResourceKind::StatefulSet),
        ("daemonset", ResourceKind::DaemonSet),
    ];
    for (label, kind) in workloads {
        if let Some(name) = first_of(labels, &[label]) {
            return Some(scoped(kind, name));
        }
    }
    first_of(labels, &["instance"])
        .map(|instance| ResourceRef::cluster_scoped(ResourceKind::Instance, instance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertStatus;
    use crate::labels::from_pairs;

    fn alert(labels: Labels, annotations: Labels) -> Alert {
        Alert {
            fingerprint: "413724370af55eb6".into(),
            status: AlertStatus::Firing,
            labels,
            annotations,
            starts_at: Timestamp::from_second(1000).unwrap(),
            ends_at: None,
            generator_url: Some(String::new()),
        }
    }

    #[test]
    fn the_fixture_alert_maps_field_by_field() {
        let draft = Draft::from_alert(
            &alert(
                from_pairs([
                    ("alertname", "NodeUp"),
                    ("env", "probe"),
                    ("instance", "127.0.0.1:19100"),
                    ("job", "node"),
                    ("service", "node"),
                    ("severity", "warning"),
                ]),
                from_pairs([("summary", "node exporter 127.0.0.1:19100 is up")]),
            ),
            Severity::Low,
        );
        assert_eq!(draft.fingerprint.as_str(), "413724370af55eb6");
        assert_eq!(draft.title, "node exporter 127.0.0.1:19100 is up");
        assert_eq!(draft.severity, Severity::Medium);
        assert_eq!(draft.category, Category::Alert);
        assert_eq!(draft.service.as_deref(), Some("node"));
        assert_eq!(draft.environment.as_deref(), Some("probe"));
        assert_eq!(
            draft.resource,
            Some(ResourceRef::cluster_scoped(
                ResourceKind::Instance,
                "127.0.0.1:19100"
            ))
        );
        assert_eq!(draft.generator_url, None, "an empty URL is no URL");
        assert_eq!(draft.occurrence_started_at.as_second(), 1000);
        assert_eq!(draft.source, IncidentSource::Alert);
    }

    #[test]
    fn fallbacks_apply_in_order() {
        let draft = Draft::from_alert(
            &alert(
                from_pairs([
                    ("alertname", "KubePodCrashLooping"),
                    ("job", "kube-state-metrics"),
                    ("environment", "production"),
                    ("namespace", "shop"),
                    ("pod", "cart-1"),
                    ("node", "worker-2"),
                    ("category", "pod-crash"),
                    ("severity", "nonsense"),
                ]),
                from_pairs([
                    ("description", "restarting"),
                    ("runbook_url", "https://runbooks.example/crash"),
                ]),
            ),
            Severity::High,
        );
        assert_eq!(draft.title, "KubePodCrashLooping");
        assert_eq!(draft.description.as_deref(), Some("restarting"));
        assert_eq!(draft.severity, Severity::High, "unknown label: the default");
        assert_eq!(draft.category, Category::PodCrash);
        assert_eq!(draft.service.as_deref(), Some("kube-state-metrics"));
        assert_eq!(draft.environment.as_deref(), Some("production"));
        assert_eq!(draft.namespace.as_deref(), Some("shop"));
        assert_eq!(
            draft.resource,
            Some(ResourceRef::pod("shop", "cart-1").on_node("worker-2"))
        );
        assert_eq!(
            draft.runbook_url.as_deref(),
            Some("https://runbooks.example/crash")
        );

        let bare = Draft::from_alert(&alert(Labels::new(), Labels::new()), Severity::Medium);
        assert_eq!(bare.title, "alert 413724370af55eb6");
        assert_eq!(bare.resource, None);
        assert_eq!(bare.service, None);
    }

    #[test]
    fn severity_labels_map_to_the_documented_levels() {
        for (label, expected) in [
            ("critical", Severity::Critical),
            ("page", Severity::Critical),
            ("error", Severity::High),
            ("high", Severity::High),
            ("warning", Severity::Medium),
            ("WARN", Severity::Medium),
            ("info", Severity::Low),
            ("none", Severity::Low),
        ] {
            assert_eq!(severity_from_label(label), Some(expected), "{label}");
        }
        assert_eq!(severity_from_label(""), None);
    }
}
