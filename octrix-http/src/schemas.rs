//! OpenAPI schemas of the core's types, which know nothing of OpenAPI.
//!
//! Each mirrors the JSON the core's serde implementation writes; the tests
//! serialise real values and compare their fields with these schemas, so
//! the document cannot drift from the wire.

#![allow(dead_code)]

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// How bad an incident is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Severity)]
pub(crate) enum SeveritySchema {
    /// Auto-healing recommended.
    Low,
    /// Auto-healing attempted.
    Medium,
    /// Escalation required.
    High,
    /// Immediate escalation.
    Critical,
}

/// What kind of problem an incident is.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = Category)]
pub(crate) enum CategorySchema {
    /// A pod in CrashLoopBackOff or Failed.
    PodCrash,
    /// CPU above thresholds.
    HighCpu,
    /// Memory above thresholds.
    HighMemory,
    /// A pod killed for lack of memory.
    OomKilled,
    /// A node under resource pressure.
    NodePressure,
    /// A node NotReady.
    NodeNotReady,
    /// A pod restarting again and again.
    PersistentRestarts,
    /// An anomaly in a metric.
    Anomaly,
    /// An external alert.
    Alert,
}

/// Where an incident is in its lifecycle.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = IncidentStatus)]
pub(crate) enum IncidentStatusSchema {
    /// Nobody has taken it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// It is over.
    Resolved,
}

/// An incident (seed 001's data model, extended).
#[derive(Serialize, ToSchema)]
#[schema(as = Incident)]
pub(crate) struct IncidentSchema {
    /// Identifier, e.g. `INC-000042`.
    id: String,
    /// One line for people.
    title: String,
    /// Longer text.
    description: Option<String>,
    /// What kind of problem.
    category: CategorySchema,
    /// How bad, now.
    severity: SeveritySchema,
    /// Lifecycle status.
    status: IncidentStatusSchema,
    /// The affected service.
    service: Option<String>,
    /// The environment.
    environment: Option<String>,
    /// The Kubernetes namespace.
    namespace: Option<String>,
    /// The affected object: `{kind, namespace?, name, node?}`.
    #[schema(value_type = Option<Object>)]
    resource: Option<serde_json::Value>,
    /// The source's labels.
    labels: BTreeMap<String, String>,
    /// Who owns it.
    assignee: Option<String>,
    /// Where the runbook is.
    runbook_url: Option<String>,
    /// Link back to what produced the alert.
    generator_url: Option<String>,
    /// Identity used for deduplication (Alertmanager's fingerprint for alerts).
    fingerprint: String,
    /// How many times the problem started.
    occurrences: u32,
    /// When it was opened.
    first_seen: Timestamp,
    /// When it was last heard of.
    last_seen: Timestamp,
    /// When the current occurrence began at the source.
    occurrence_started_at: Timestamp,
    /// `alert`, `detector` or `cluster`.
    source: String,
    /// The id of the first incident of its correlation group.
    correlation_group: String,
    /// The latest acknowledgement.
    acknowledged_at: Option<Timestamp>,
    /// The latest resolution.
    resolved_at: Option<Timestamp>,
    /// Whether a verified healing action resolved it.
    resolved_by_healing: bool,
    /// Whether healing handed it to a human.
    escalated: bool,
    /// Chaos runs it is an expected effect of.
    chaos_runs: Vec<String>,
    /// What happened, oldest first: `{at, actor, kind, ...}` with `kind` one
    /// of `opened`, `occurred`, `status_changed`, `severity_changed`,
    /// `assigned`, `note`, `healing`, `escalated`, `linked_to_chaos_run`,
    /// `correlated`.
    #[schema(value_type = Vec<Object>)]
    timeline: Vec<serde_json::Value>,
}

/// One page of incidents.
#[derive(Serialize, ToSchema)]
#[schema(as = IncidentPage)]
pub(crate) struct IncidentPageSchema {
    /// The incidents on this page.
    items: Vec<IncidentSchema>,
    /// How many matched in all.
    total: usize,
    /// The query's offset.
    offset: usize,
    /// The query's limit.
    limit: usize,
}

/// Mean and median of durations, as ISO 8601 durations (`PT2M30S`).
#[derive(Serialize, ToSchema)]
#[schema(as = DurationSummary)]
pub(crate) struct DurationSummarySchema {
    /// How many durations.
    count: usize,
    /// Their mean.
    mean: Option<String>,
    /// Their median.
    median: Option<String>,
}

/// The cluster the server observes and acts on, real or simulated.
#[derive(Serialize, ToSchema)]
#[schema(as = ClusterInfo)]
pub(crate) struct ClusterInfoSchema {
    /// The kube context (or API server URL), or `sim(seed=42)`.
    name: String,
    /// `kubernetes` (real) or `simulated`.
    kind: String,
}

/// A source of metrics, real or simulated.
#[derive(Serialize, ToSchema)]
#[schema(as = SourceInfo)]
pub(crate) struct SourceInfoSchema {
    /// e.g. the Prometheus URL, or `sim(seed=42)`.
    name: String,
    /// `prometheus` (real), `simulated`, or `none` (no metric source is
    /// configured).
    kind: String,
}

/// Resource usage of one node.
#[derive(Serialize, ToSchema)]
#[schema(as = NodeMetrics)]
pub(crate) struct NodeMetricsSchema {
    /// Node name.
    node: String,
    /// CPU utilisation in [0, 1].
    cpu_utilisation: f64,
    /// Memory utilisation in [0, 1].
    memory_utilisation: f64,
    /// Root filesystem utilisation in [0, 1].
    disk_utilisation: f64,
    /// Bytes received per second.
    network_receive_bytes_per_second: f64,
    /// Bytes transmitted per second.
    network_transmit_bytes_per_second: f64,
}

/// Resource usage of one pod.
#[derive(Serialize, ToSchema)]
#[schema(as = PodMetrics)]
pub(crate) struct PodMetricsSchema {
    /// Namespace.
    namespace: String,
    /// Pod name.
    pod: String,
    /// CPU used, in cores.
    cpu_cores: f64,
    /// Memory working set, in bytes.
    memory_working_set_bytes: f64,
    /// Container restarts.
    restarts: u64,
}

/// Cluster-wide aggregates.
#[derive(Serialize, ToSchema)]
#[schema(as = ClusterMetrics)]
pub(crate) struct ClusterMetricsSchema {
    /// Nodes.
    nodes: u64,
    /// Ready nodes.
    ready_nodes: u64,
    /// Pods.
    pods: u64,
    /// Running pods.
    running_pods: u64,
    /// Mean node CPU utilisation in [0, 1].
    cpu_utilisation: f64,
    /// Mean node memory utilisation in [0, 1].
    memory_utilisation: f64,
}

/// A healing rule (the YAML/TOML of the healing configuration, as JSON).
#[derive(Serialize, ToSchema)]
#[schema(as = HealingRule)]
pub(crate) struct HealingRuleSchema {
    /// Unique name.
    name: String,
    /// Whether it is considered (default true).
    enabled: Option<bool>,
    /// Higher first (default 0).
    priority: Option<i32>,
    /// Plan and record, never act (default false).
    dry_run: Option<bool>,
    /// Scope: `{categories, min_severity, max_severity, namespaces, services, labels}`.
    #[serde(rename = "match")]
    #[schema(value_type = Option<Object>)]
    matcher: Option<serde_json::Value>,
    /// Actions tried in order, each `{type: restart-pod | scale-deployment | cordon-node | drain-node | notify | custom-script | rollback-traffic, ...}`.
    #[schema(value_type = Vec<Object>)]
    actions: Vec<serde_json::Value>,
    /// Seconds between two actions on one target (default 300).
    cooldown_seconds: Option<u32>,
    /// Most actions per incident (default 3).
    max_attempts: Option<u32>,
    /// Allow acting above the auto-heal severity (default false).
    act_above_auto_heal_severity: Option<bool>,
}

/// The healing configuration.
#[derive(Serialize, ToSchema)]
#[schema(as = HealingConfig)]
pub(crate) struct HealingConfigSchema {
    /// Plan and record every action without acting.
    dry_run: bool,
    /// Namespaces never acted on.
    protected_namespaces: Vec<String>,
    /// Incidents above this severity are escalated, not healed.
    auto_heal_max_severity: SeveritySchema,
    /// Channel notified on escalation.
    escalation_channel: String,
    /// Seconds to wait after an action before verifying it.
    settle_seconds: u32,
    /// The rules.
    rules: Vec<HealingRuleSchema>,
    /// Seed-004 policies on metric values.
    #[schema(value_type = Vec<Object>)]
    policies: Vec<serde_json::Value>,
    /// The shared blast-radius budget.
    #[schema(value_type = Object)]
    budget: serde_json::Value,
}

/// One action the engine took or was denied.
#[derive(Serialize, ToSchema)]
#[schema(as = ActionRecord)]
pub(crate) struct ActionRecordSchema {
    /// When.
    at: Timestamp,
    /// For which incident.
    incident_id: String,
    /// The rule.
    rule: String,
    /// The action.
    action: String,
    /// Its target.
    target: String,
    /// Whether it was a dry run.
    dry_run: bool,
    /// `{result: executed | dry_run | healed | not_healed | failed | denied, ...}`.
    #[schema(value_type = Object)]
    outcome: serde_json::Value,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use utoipa::PartialSchema;

    /// The property names of a schema.
    pub(crate) fn properties<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect()
    }

    /// The keys of a serialised value.
    pub(crate) fn keys(value: &impl serde::Serialize) -> BTreeSet<String> {
        serde_json::to_value(value)
            .unwrap()
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    /// Every key the value has is in the schema, and every required
    /// property of the schema is in the value.
    pub(crate) fn assert_mirrors<T: PartialSchema>(value: &impl serde::Serialize) {
        let properties = properties::<T>();
        let keys = keys(value);
        let extra: Vec<_> = keys.difference(&properties).collect();
        assert!(
            extra.is_empty(),
            "fields missing from the schema: {extra:?}"
        );
        let schema = serde_json::to_value(T::schema()).unwrap();
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        let missing: Vec<_> = required.difference(&keys).collect();
        assert!(
            missing.is_empty(),
            "required but not serialised: {missing:?}"
        );
    }

    #[test]
    fn metric_schemas_mirror_the_core_types() {
        use octrix_core::metrics::{ClusterMetrics, NodeMetrics, PodMetrics};
        assert_mirrors::<super::NodeMetricsSchema>(&NodeMetrics {
            node: "n".into(),
            cpu_utilisation: 0.1,
            memory_utilisation: 0.2,
            disk_utilisation: 0.3,
            network_receive_bytes_per_second: 1.0,
            network_transmit_bytes_per_second: 2.0,
        });
        assert_mirrors::<super::PodMetricsSchema>(&PodMetrics {
            namespace: "ns".into(),
            pod: "p".into(),
            cpu_cores: 0.5,
            memory_working_set_bytes: 1e6,
            restarts: 2,
        });
        assert_mirrors::<super::ClusterMetricsSchema>(&ClusterMetrics {
            nodes: 3,
            ready_nodes: 3,
            pods: 7,
            running_pods: 7,
            cpu_utilisation: 0.4,
            memory_utilisation: 0.5,
        });
    }

    #[test]
    fn healing_schemas_mirror_the_core_types() {
        let config = octrix_core::healing::HealingConfig::from_yaml(
            "rules:\n  - name: r\n    actions:\n      - type: restart-pod\n",
        )
        .unwrap();
        assert_mirrors::<super::HealingConfigSchema>(&config);
        assert_mirrors::<super::HealingRuleSchema>(&config.rules[0]);
    }
}
