//! What a chaos scenario is: a type, a target selector and validated,
//! typed parameters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Error;
use super::guard::AbortGuard;
use super::parameters::Parameters;
use super::selector::TargetSelector;

/// Identifies a scenario: 1 to 63 lowercase letters, digits and `-`, starting
/// and ending with a letter or digit (a DNS label, so it can name Kubernetes
/// objects an executor creates for the run).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScenarioId(String);

impl ScenarioId {
    /// Checks and wraps `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let valid = !id.is_empty()
            && id.len() <= 63
            && id.chars().all(valid_char)
            && !id.starts_with('-')
            && !id.ends_with('-');
        if valid {
            Ok(Self(id))
        } else {
            Err(Error::invalid(
                "id",
                format!(
                    "{id:?} must be 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'"
                ),
            ))
        }
    }

    /// The id of the built-in scenario of `scenario_type`: `builtin-<type>`.
    pub fn builtin(scenario_type: ScenarioType) -> Self {
        Self(format!("builtin-{scenario_type}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ScenarioId {
    type Error = Error;

    fn try_from(id: String) -> Result<Self, Error> {
        Self::new(id)
    }
}

impl From<ScenarioId> for String {
    fn from(id: ScenarioId) -> Self {
        id.0
    }
}

impl FromStr for ScenarioId {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self, Error> {
        Self::new(id)
    }
}

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of chaos: seed 000's simulator types and seed 003's failure
/// simulations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioType {
    /// Pods stop serving for a while (Chaos Mesh's `pod-failure`).
    PodFailure,
    /// Nodes stop reporting ready and are cordoned.
    NodeFailure,
    /// CPU burnt in pods.
    CpuStress,
    /// Memory held in pods.
    MemoryStress,
    /// Requests to a service are slowed down.
    LatencyInjection,
    /// Packets to a service are dropped.
    PacketLoss,
    /// Node disks are filled.
    DiskStress,
    /// A service is cut off from the network.
    NetworkPartition,
    /// A service fails its requests (seed 003).
    ServiceFailure,
    /// A database is overloaded: slow and CPU-bound (seed 003).
    DatabaseOverload,
    /// Memory grows steadily in pods (seed 003).
    MemoryLeak,
}

impl ScenarioType {
    /// Every type, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::PodFailure,
        Self::NodeFailure,
        Self::CpuStress,
        Self::MemoryStress,
        Self::LatencyInjection,
        Self::PacketLoss,
        Self::DiskStress,
        Self::NetworkPartition,
        Self::ServiceFailure,
        Self::DatabaseOverload,
        Self::MemoryLeak,
    ];

    /// The kebab-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PodFailure => "pod-failure",
            Self::NodeFailure => "node-failure",
            Self::CpuStress => "cpu-stress",
            Self::MemoryStress => "memory-stress",
            Self::LatencyInjection => "latency-injection",
            Self::PacketLoss => "packet-loss",
            Self::DiskStress => "disk-stress",
            Self::NetworkPartition => "network-partition",
            Self::ServiceFailure => "service-failure",
            Self::DatabaseOverload => "database-overload",
            Self::MemoryLeak => "memory-leak",
        }
    }

    /// What a scenario of this type selects and acts on.
    pub fn target_kind(self) -> TargetKind {
        match self {
            Self::PodFailure | Self::CpuStress | Self::MemoryStress | Self::MemoryLeak => {
                TargetKind::Pod
            }
            Self::NodeFailure | Self::DiskStress => TargetKind::Node,
            Self::LatencyInjection
            | Self::PacketLoss
            | Self::NetworkPartition
            | Self::ServiceFailure
            | Self::DatabaseOverload => TargetKind::Service,
        }
    }
}

impl fmt::Display for ScenarioType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScenarioType {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| Error::invalid("type", format!("{name:?} is not a scenario type")))
    }
}

/// What a scenario selects: pods, nodes or services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// Pods, by namespace and pod labels.
    Pod,
    /// Nodes, by node labels (and, with a namespace, only nodes running pods
    /// of that namespace).
    Node,
    /// Services, i.e. the deployments behind them, by namespace and pod
    /// template labels.
    Service,
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pod => "pod",
            Self::Node => "node",
            Self::Service => "service",
        })
    }
}

/// A chaos experiment that can be run: what, where, how hard and how long.
///
/// ```
/// use octrix_core::chaos::Scenario;
///
/// let scenario = Scenario::from_yaml(r#"
/// id: checkout-loss
/// name: Lossy checkout
/// target: { namespace: shop, labels: { app: checkout }, mode: all }
/// type: packet-loss
/// parameters: { loss_percent: 120, duration_seconds: 60 }
/// "#);
/// assert_eq!(
///     scenario.unwrap_err().to_string(),
///     "invalid chaos scenario: parameters.loss_percent must be within (0, 100]"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Stable id.
    pub id: ScenarioId,
    /// Short human name.
    pub name: String,
    /// What it tests and what to expect.
    #[serde(default)]
    pub description: String,
    /// What it aims at.
    #[serde(default)]
    pub target: TargetSelector,
    /// Its type and parameters.
    #[serde(flatten)]
    pub parameters: Parameters,
    /// Signals that abort a run of it when they breach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<AbortGuard>,
}

impl Scenario {
    /// A scenario aimed at one target in any unprotected namespace, with no
    /// description and no guards.
    pub fn new(id: ScenarioId, name: impl Into<String>, parameters: Parameters) -> Self {
        Self {
            id,
            name: name.into(),
            description: String::new(),
            target: TargetSelector::default(),
            parameters,
            guards: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the target selector.
    pub fn with_target(mut self, target: TargetSelector) -> Self {
        self.target = target;
        self
    }

    /// Adds an abort guard.
    pub fn with_guard(mut self, guard: AbortGuard) -> Self {
        self.guards.push(guard);
        self
    }

    /// The scenario's type.
    pub fn scenario_type(&self) -> ScenarioType {
        self.parameters.scenario_type()
    }

    /// Parses a scenario from YAML (JSON is YAML too) and validates it.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let scenario: Self =
            serde_norway::from_str(text).map_err(|e| Error::Parse(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks every field, naming the first wrong one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        self.target.validate("target")?;
        self.parameters.validate()?;
        super::guard::validate_guards(&self.guards, "guards")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::SelectionMode;

    #[test]
    fn ids_are_dns_labels() {
        assert!(ScenarioId::new("checkout-loss-2").is_ok());
        for bad in ["", "-a", "a-", "Checkout", "a_b", &"a".repeat(64)] {
            let err = ScenarioId::new(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid chaos scenario: id "),
                "{err}"
            );
        }
        assert_eq!(
            ScenarioId::builtin(ScenarioType::PacketLoss).as_str(),
            "builtin-packet-loss"
        );
        let parsed: Result<ScenarioId, _> = serde_json::from_str("\"Bad Id\"");
        assert!(parsed.is_err(), "deserialising validates too");
    }

    #[test]
    fn types_round_trip_through_their_kebab_case_names() {
        for t in ScenarioType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(t.as_str().parse::<ScenarioType>().unwrap(), t);
        }
        assert_eq!(
            "disk-fill".parse::<ScenarioType>().unwrap_err().to_string(),
            "invalid chaos scenario: type \"disk-fill\" is not a scenario type"
        );
        assert_eq!(ScenarioType::NodeFailure.target_kind(), TargetKind::Node);
        assert_eq!(ScenarioType::MemoryLeak.target_kind(), TargetKind::Pod);
        assert_eq!(
            ScenarioType::DatabaseOverload.target_kind(),
            TargetKind::Service
        );
    }

    #[test]
    fn yaml_and_json_forms_with_defaults() {
        let s = Scenario::from_yaml(
            r#"
id: slow-checkout
name: Slow checkout
target:
  namespace: shop
  labels: { app: checkout }
  mode: { fixed: 2 }
type: latency-injection
parameters: { latency_ms: 300, duration_seconds: 120 }
"#,
        )
        .unwrap();
        assert_eq!(s.scenario_type(), ScenarioType::LatencyInjection);
        assert_eq!(
            s.parameters,
            Parameters::LatencyInjection {
                duration_seconds: 120,
                latency_ms: 300,
                jitter_ms: 0
            }
        );
        assert_eq!(s.target.mode, SelectionMode::Fixed(2));
        assert_eq!(s.target.namespace.as_deref(), Some("shop"));

        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["type"], "latency-injection");
        assert_eq!(json["parameters"]["latency_ms"], 300);
        assert_eq!(json["target"]["mode"]["fixed"], 2);
        let back: Scenario = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);

        let defaults = Scenario::from_yaml(
            "{id: a, name: A, type: node-failure, parameters: {duration_seconds: 5}}",
        )
        .unwrap();
        assert_eq!(
            defaults.parameters,
            Parameters::NodeFailure {
                duration_seconds: 5,
                cordon: true
            }
        );
        assert_eq!(defaults.target, TargetSelector::default());

        let unknown = Scenario::from_yaml(
            "{id: a, name: A, type: packet-loss, parameters: {duration_seconds: 5, loss: 3}}",
        );
        assert!(
            matches!(&unknown, Err(Error::Parse(m)) if m.contains("unknown field `loss`")),
            "{unknown:?}"
        );
    }
}
