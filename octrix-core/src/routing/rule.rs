//! [`TrafficRule`]: how the traffic of one service is split between its
//! versions, what the user writes and what the API stores.

use std::collections::BTreeSet;
use std::fmt;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::names;
use crate::Labels;

/// How the traffic of one service is split between its versions (subsets).
///
/// One rule becomes one Istio VirtualService and one DestinationRule (see
/// [`super::istio`]). Build it with [`TrafficRule::weighted`] or as a struct
/// literal, then [`validate`](TrafficRule::validate) it: every generator
/// validates again, so an invalid rule never reaches a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficRule {
    /// The Kubernetes Service whose traffic is split (a DNS-1123 label).
    pub service: String,
    /// Namespace of the service and of the generated objects.
    pub namespace: String,
    /// Hosts the VirtualService applies to; the service name when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Istio gateways the route is bound to; the mesh sidecars when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// The versions of the service and their share of the traffic.
    pub destinations: Vec<Destination>,
    /// Plain weighted split, A/B split on headers, or weighted split plus a
    /// mirror.
    #[serde(default)]
    pub kind: RuleKind,
    /// Load balancing and outlier detection for the DestinationRule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// One version of a service and its share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// The DestinationRule subset name (a DNS-1123 label), e.g. `v2`.
    pub subset: String,
    /// Pod labels that select this version, e.g. `version: v2`.
    pub labels: Labels,
    /// Percentage of the traffic, 0 to 100; the weights of a rule sum to 100.
    pub weight: u32,
}

impl Destination {
    /// A destination whose pods carry the label `version: <subset>`, the
    /// convention of Istio's examples.
    pub fn for_version(subset: impl Into<String>, weight: u32) -> Self {
        let subset = subset.into();
        let labels = Labels::from([("version".to_owned(), subset.clone())]);
        Self {
            subset,
            labels,
            weight,
        }
    }
}

/// What a rule does besides splitting traffic by weight.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// Traffic is split by the destinations' weights.
    #[default]
    Weighted,
    /// A/B testing: requests whose headers all match go to `subset`; the rest
    /// are split by weight.
    HeaderMatch {
        /// Conditions that must all hold (at least one).
        headers: Vec<HeaderCondition>,
        /// The subset that matching requests go to; one of the destinations.
        subset: String,
    },
    /// Traffic is split by weight and a copy of `percentage` percent of it is
    /// sent to `subset`, whose answers are discarded (shadowing).
    Mirror {
        /// The subset that receives the copies; one of the destinations,
        /// usually with weight 0.
        subset: String,
        /// Share of requests mirrored, in (0, 100].
        percentage: f64,
    },
}

/// One header condition of an A/B rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    /// Header name, lowercase (Istio matches lowercase names).
    pub name: String,
    /// How the header's value must match.
    pub value: StringMatch,
}

/// How a string must match; serialises as Istio's `StringMatch`, a map with
/// exactly one key (`{exact: "..."}`, `{prefix: "..."}`, `{regex: "..."}`),
/// in YAML as in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "StringMatchFields", into = "StringMatchFields")]
pub enum StringMatch {
    /// The whole value equals this string.
    Exact(String),
    /// The value starts with this string.
    Prefix(String),
    /// The value matches this RE2 regular expression (checked by Istio).
    Regex(String),
}

/// The wire form of [`StringMatch`]: Istio's `oneof` as optional fields.
/// (A plain serde enum would become a YAML tag, `!exact 'true'`, which Istio
/// does not read.)
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StringMatchFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<StringMatchFields> for StringMatch {
    type Error = String;

    fn try_from(fields: StringMatchFields) -> Result<Self, Self::Error> {
        match (fields.exact, fields.prefix, fields.regex) {
            (Some(value), None, None) => Ok(StringMatch::Exact(value)),
            (None, Some(value), None) => Ok(StringMatch::Prefix(value)),
            (None, None, Some(value)) => Ok(StringMatch::Regex(value)),
            _ => Err("a string match needs exactly one of exact, prefix or regex".to_owned()),
        }
    }
}

impl From<StringMatch> for StringMatchFields {
    fn from(value: StringMatch) -> Self {
        let mut fields = StringMatchFields {
            exact: None,
            prefix: None,
            regex: None,
        };
        match value {
            StringMatch::Exact(value) => fields.exact = Some(value),
            StringMatch::Prefix(value) => fields.prefix = Some(value),
            StringMatch::Regex(value) => fields.regex = Some(value),
        }
        fields
    }
}

/// Connection-level policy for all versions, rendered into the
/// DestinationRule's `trafficPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficPolicy {
    /// Envoy's load-balancing algorithm between the pods of a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerAlgorithm>,
    /// Ejection of misbehaving pods: Envoy's passive circuit breaking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

/// Istio's `LoadBalancerSettings.simple` algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerAlgorithm {
    /// Each pod in turn.
    RoundRobin,
    /// Fewest outstanding requests (Envoy samples two pods and picks the less
    /// loaded).
    LeastRequest,
    /// A random pod.
    Random,
    /// The original destination of the connection.
    Passthrough,
}

/// Istio's `OutlierDetection`: eject a pod after consecutive server errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetection {
    /// Consecutive 5xx answers that eject a pod (at least 1).
    pub consecutive_5xx_errors: u32,
    /// How often pods are analysed.
    #[serde(serialize_with = "jiff::fmt::serde::duration::friendly::compact::required")]
    pub interval: SignedDuration,
    /// Minimum ejection time; Envoy multiplies it by the number of ejections.
    #[serde(serialize_with = "jiff::fmt::serde::duration::friendly::compact::required")]
    pub base_ejection_time: SignedDuration,
    /// Most pods of a version that may be ejected at once, in percent.
    pub max_ejection_percent: u32,
}

/// One problem with one field, named by its path in the rule
/// (`destinations[1].weight: must be at most 100, got 120`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Path of the field, e.g. `destinations[1].weight` or `kind.subset`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a [`TrafficRule`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// One or more fields are invalid; all of them are listed.
    #[error("traffic rule {namespace}/{service} is invalid: {}", FieldErrors(.errors))]
    Invalid {
        /// The rule's namespace, as given.
        namespace: String,
        /// The rule's service, as given.
        service: String,
        /// Every problem found, in field order.
        errors: Vec<FieldError>,
    },
}

impl RuleError {
    /// The field-level problems.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            RuleError::Invalid { errors, .. } => errors,
        }
    }
}

/// Displays field errors separated by "; ".
pub(crate) struct FieldErrors<'a>(pub(crate) &'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl TrafficRule {
    /// A plain weighted rule for `service` in `namespace`, with the service
    /// name as its only host.
    pub fn weighted(
        service: impl Into<String>,
        namespace: impl Into<String>,
        destinations: Vec<Destination>,
    ) -> Self {
        Self {
            service: service.into(),
            namespace: namespace.into(),
            hosts: Vec::new(),
            gateways: Vec::new(),
            destinations,
            kind: RuleKind::Weighted,
            traffic_policy: None,
        }
    }

    /// The hosts the VirtualService applies to: [`hosts`](Self::hosts), or
    /// the service name when none are given.
    pub fn effective_hosts(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            vec![self.service.clone()]
        } else {
            self.hosts.clone()
        }
    }

    /// The destination for `subset`, if the rule has one.
    pub fn destination(&self, subset: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.subset == subset)
    }

    /// Checks every field and reports all problems at once.
    pub fn validate(&self) -> Result<(), RuleError> {
        let errors = self.field_errors();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RuleError::Invalid {
                namespace: self.namespace.clone(),
                service: self.service.clone(),
                errors,
            })
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut check = |field: String, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError::new(field, message));
            }
        };
        check("service".into(), names::check_dns_label(&self.service));
        check("namespace".into(), names::check_dns_label(&self.namespace));
        for (i, host) in self.hosts.iter().enumerate() {
            check(format!("hosts[{i}]"), names::check_host(host));
        }
        for (i, gateway) in self.gateways.iter().enumerate() {
            check(format!("gateways[{i}]"), check_gateway(gateway));
        }
        self.destination_errors(&mut errors);
        self.kind_errors(&mut errors);
        if let Some(policy) = &self.traffic_policy {
            policy_errors(policy, &mut errors);
        }
        errors
    }

    fn destination_errors(&self, errors: &mut Vec<FieldError>) {
        if self.destinations.is_empty() {
            errors.push(FieldError::new(
                "destinations",
                "must list at least one destination",
            ));
            return;
        }
        let mut seen = BTreeSet::new();
        for (i, destination) in self.destinations.iter().enumerate() {
            let field = |name: &str| format!("destinations[{i}].{name}");
            if let Err(message) = names::check_dns_label(&destination.subset) {
                errors.push(FieldError::new(field("subset"), message));
            } else if !seen.insert(destination.subset.as_str()) {
                errors.push(FieldError::new(
                    field("subset"),
                    format!("subset {:?} is listed twice", destination.subset),
                ));
            }
            if destination.labels.is_empty() {
                // A subset without labels selects every pod of the service,
                // which silently defeats the split.
                errors.push(FieldError::new(
                    field("labels"),
                    "must select the version's pods with at least one label",
                ));
            }
            for (key, value) in &destination.labels {
                let result = names::check_label_key(key).and(names::check_label_value(value));
                if let Err(message) = result {
                    errors.push(FieldError::new(
                        format!("{}.{key}", field("labels")),
                        message,
                    ));
                }
            }
            if destination.weight > 100 {
                errors.push(FieldError::new(
                    field("weight"),
                    format!("must be at most 100, got {}", destination.weight),
                ));
            }
        }
        let total: u64 = self.destinations.iter().map(|d| u64::from(d.weight)).sum();
        if total != 100 {
            errors.push(FieldError::new(
                "destinations",
                format!("weights must sum to 100, they sum to {total}"),
            ));
        }
    }

    fn kind_errors(&self, errors: &mut Vec<FieldError>) {
        let mut check_subset = |field: &str, subset: &str| {
            if self.destination(subset).is_none() {
                errors.push(FieldError::new(
                    field,
                    format!("{subset:?} is not one of the destinations' subsets"),
                ));
            }
        };
        match &self.kind {
            RuleKind::Weighted => {}
            RuleKind::HeaderMatch { headers, subset } => {
                check_subset("kind.subset", subset);
                if headers.is_empty() {
                    errors.push(FieldError::new(
                        "kind.headers",
                        "must list at least one header condition",
                    ));
                }
                let mut seen = BTreeSet::new();
                for (i, condition) in headers.iter().enumerate() {
                    let field = |name: &str| format!("kind.headers[{i}].{name}");
                    if let Err(message) = names::check_header_name(&condition.name) {
                        errors.push(FieldError::new(field("name"), message));
                    } else if !seen.insert(condition.name.as_str()) {
                        // Istio keys header conditions by name: a second
                        // condition on the same header would be lost.
                        errors.push(FieldError::new(
                            field("name"),
                            format!("header {:?} has two conditions", condition.name),
                        ));
                    }
                    let pattern = match &condition.value {
                        StringMatch::Exact(s) | StringMatch::Prefix(s) | StringMatch::Regex(s) => s,
                    };
                    if pattern.is_empty() {
                        errors.push(FieldError::new(field("value"), "must not be empty"));
                    }
                }
            }
            RuleKind::Mirror { subset, percentage } => {
                check_subset("kind.subset", subset);
                if !(percentage.is_finite() && *percentage > 0.0 && *percentage <= 100.0) {
                    errors.push(FieldError::new(
                        "kind.percentage",
                        format!("must be in (0, 100], got {percentage}"),
                    ));
                }
            }
        }
    }
}

/// A gateway reference: `name` or `namespace/name`, or Istio's reserved `mesh`.
fn check_gateway(gateway: &str) -> Result<(), String> {
    match gateway.split_once('/') {
        Some((namespace, name)) => {
            names::check_dns_label(namespace).and(names::check_dns_label(name))
        }
        None => names::check_dns_label(gateway),
    }
}

fn policy_errors(policy: &TrafficPolicy, errors: &mut Vec<FieldError>) {
    let Some(outlier) = &policy.outlier_detection else {
        return;
    };
    let field = |name: &str| format!("traffic_policy.outlier_detection.{name}");
    if outlier.consecutive_5xx_errors == 0 {
        errors.push(FieldError::new(
            field("consecutive_5xx_errors"),
            "must be at least 1",
        ));
    }
    // Istio refuses durations under one millisecond.
    for (name, duration) in [
        ("interval", outlier.interval),
        ("base_ejection_time", outlier.base_ejection_time),
    ] {
        if duration < SignedDuration::from_millis(1) {
            errors.push(FieldError::new(
                field(name),
                format!("must be at least 1ms, got {duration:#}"),
            ));
        }
    }
    if outlier.max_ejection_percent > 100 {
        errors.push(FieldError::new(
            field("max_ejection_percent"),
            format!("must be at most 100, got {}", outlier.max_ejection_percent),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> TrafficRule {
        TrafficRule::weighted(
            "reviews",
            "bookinfo",
            vec![
                Destination::for_version("v1", 80),
                Destination::for_version("v2", 20),
            ],
        )
    }

    fn fields(rule: &TrafficRule) -> Vec<String> {
        match rule.validate() {
            Ok(()) => Vec::new(),
            Err(error) => error
                .field_errors()
                .iter()
                .map(|e| e.field.clone())
                .collect(),
        }
    }

    #[test]
    fn a_valid_rule_passes() {
        assert_eq!(rule().validate(), Ok(()));
        assert_eq!(rule().effective_hosts(), ["reviews"]);
    }

    #[test]
    fn weights_must_sum_to_100_and_each_be_at_most_100() {
        let mut rule = rule();
        rule.destinations[1].weight = 120;
        let error = rule.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "traffic rule bookinfo/reviews is invalid: destinations[1].weight: must be at most \
             100, got 120; destinations: weights must sum to 100, they sum to 200"
        );
    }

    #[test]
    fn names_subsets_and_labels_are_checked_per_field() {
        let mut rule = rule();
        rule.service = "Reviews".into();
        rule.hosts = vec!["reviews".into(), "bad host".into()];
        rule.gateways = vec!["istio-system/public".into(), "a/b/c".into()];
        rule.destinations[1].subset = "v1".into();
        rule.destinations[0].labels.clear();
        rule.destinations[1]
            .labels
            .insert("version".into(), "-bad".into());
        assert_eq!(
            fields(&rule),
            [
                "service",
                "hosts[1]",
                "gateways[1]",
                "destinations[0].labels",
                "destinations[1].subset",
                "destinations[1].labels.version",
            ]
        );
    }

    #[test]
    fn header_match_needs_known_subset_and_distinct_lowercase_headers() {
        let mut rule = rule();
        rule.kind = RuleKind::HeaderMatch {
            headers: vec![
                HeaderCondition {
                    name: "x-canary".into(),
                    value: StringMatch::Exact("true".into()),
                },
                HeaderCondition {
                    name: "x-canary".into(),
                    value: StringMatch::Prefix("t".into()),
                },
                HeaderCondition {
                    name: "User-Agent".into(),
                    value: StringMatch::Regex(String::new()),
                },
            ],
            subset: "v3".into(),
        };
        assert_eq!(
            fields(&rule),
            [
                "kind.subset",
                "kind.headers[1].name",
                "kind.headers[2].name",
                "kind.headers[2].value"
            ]
        );
    }

    #[test]
    fn mirror_percentage_must_be_in_range() {
        let mut rule = rule();
        for bad in [0.0, -1.0, 100.5, f64::NAN] {
            rule.kind = RuleKind::Mirror {
                subset: "v2".into(),
                percentage: bad,
            };
            assert_eq!(fields(&rule), ["kind.percentage"], "{bad}");
        }
        rule.kind = RuleKind::Mirror {
            subset: "v2".into(),
            percentage: 100.0,
        };
        assert_eq!(fields(&rule), Vec::<String>::new());
    }

    #[test]
    fn outlier_detection_is_checked() {
        let mut rule = rule();
        rule.traffic_policy = Some(TrafficPolicy {
            load_balancer: None,
            outlier_detection: Some(OutlierDetection {
                consecutive_5xx_errors: 0,
                interval: SignedDuration::ZERO,
                base_ejection_time: SignedDuration::from_secs(30),
                max_ejection_percent: 101,
            }),
        });
        assert_eq!(
            fields(&rule),
            [
                "traffic_policy.outlier_detection.consecutive_5xx_errors",
                "traffic_policy.outlier_detection.interval",
                "traffic_policy.outlier_detection.max_ejection_percent",
            ]
        );
    }

    #[test]
    fn no_destinations_is_one_error() {
        let mut rule = rule();
        rule.destinations.clear();
        assert_eq!(fields(&rule), ["destinations"]);
    }

    #[test]
    fn round_trips_through_yaml_with_a_friendly_shape() {
        let yaml = "\
service: reviews
namespace: bookinfo
destinations:
- subset: v1
  labels: {version: v1}
  weight: 90
- subset: v2
  labels: {version: v2}
  weight: 10
kind:
  type: header_match
  subset: v2
  headers:
  - name: x-canary
    value: {exact: 'true'}
traffic_policy:
  load_balancer: least_request
  outlier_detection:
    consecutive_5xx_errors: 5
    interval: 10s
    base_ejection_time: 30s
    max_ejection_percent: 50
";
        let parsed: TrafficRule = serde_norway::from_str(yaml).unwrap();
        assert_eq!(parsed.validate(), Ok(()));
        assert_eq!(parsed.destinations[1].weight, 10);
        assert_eq!(
            parsed.kind,
            RuleKind::HeaderMatch {
                headers: vec![HeaderCondition {
                    name: "x-canary".into(),
                    value: StringMatch::Exact("true".into())
                }],
                subset: "v2".into()
            }
        );
        let again: TrafficRule =
            serde_norway::from_str(&serde_norway::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
        let unknown = yaml.replace("namespace:", "namespaces:");
        assert!(serde_norway::from_str::<TrafficRule>(&unknown).is_err());
    }
}
