//! What a chaos scenario is: a type, a target selector and validated,
//! typed parameters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Error;
use super::guard::AbortGuard;
use crate::Labels;

/// The longest run a scenario may ask for: one day.
pub const MAX_DURATION_SECONDS: u32 = 86_400;

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

/// How many of the eligible targets a run takes (Chaos Mesh's `mode`).
///
/// Written `one`, `all`, `{fixed: 3}` or `{percent: 25}` in YAML and JSON alike.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "ModeRepr", into = "ModeRepr")]
pub enum SelectionMode {
    /// One, chosen at random.
    #[default]
    One,
    /// All of them.
    All,
    /// This many, chosen at random (all of them when fewer are eligible).
    Fixed(u32),
    /// This percentage, rounded down but at least one, chosen at random
    /// (Chaos Mesh's `fixed-percent`).
    Percent(f64),
}

/// The written form of a [`SelectionMode`]: a plain name for the modes
/// without a value, a one-key map for the others. (serde's own enum form
/// would need YAML tags such as `!fixed 3`.)
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ModeRepr {
    Name(String),
    Fixed(FixedRepr),
    Percent(PercentRepr),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedRepr {
    fixed: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PercentRepr {
    percent: f64,
}

impl TryFrom<ModeRepr> for SelectionMode {
    type Error = String;

    fn try_from(repr: ModeRepr) -> Result<Self, String> {
        match repr {
            ModeRepr::Name(name) if name == "one" => Ok(Self::One),
            ModeRepr::Name(name) if name == "all" => Ok(Self::All),
            ModeRepr::Name(name) => Err(format!(
                "unknown mode {name:?}: expected one, all, {{fixed: n}} or {{percent: p}}"
            )),
            ModeRepr::Fixed(FixedRepr { fixed }) => Ok(Self::Fixed(fixed)),
            ModeRepr::Percent(PercentRepr { percent }) => Ok(Self::Percent(percent)),
        }
    }
}

impl From<SelectionMode> for ModeRepr {
    fn from(mode: SelectionMode) -> Self {
        match mode {
            SelectionMode::One => Self::Name("one".to_owned()),
            SelectionMode::All => Self::Name("all".to_owned()),
            SelectionMode::Fixed(fixed) => Self::Fixed(FixedRepr { fixed }),
            SelectionMode::Percent(percent) => Self::Percent(PercentRepr { percent }),
        }
    }
}

/// Which objects a scenario aims at.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetSelector {
    /// Only this namespace; any namespace that is not protected when `None`.
    pub namespace: Option<String>,
    /// Labels the object must carry (all of them, with these values).
    pub labels: Labels,
    /// How many of the matching objects to take.
    pub mode: SelectionMode,
}

impl TargetSelector {
    /// Checks the selector; `field` is its path, e.g. `target`.
    pub fn validate(&self, field: &str) -> Result<(), Error> {
        if self.namespace.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid(
                format!("{field}.namespace"),
                "must not be empty (omit it for every namespace)",
            ));
        }
        if self.labels.keys().any(String::is_empty) {
            return Err(Error::invalid(
                format!("{field}.labels"),
                "must not have an empty label name",
            ));
        }
        match self.mode {
            SelectionMode::Fixed(0) => Err(Error::invalid(
                format!("{field}.mode.fixed"),
                "must be at least 1",
            )),
            SelectionMode::Percent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => Err(
                Error::invalid(format!("{field}.mode.percent"), "must be within (0, 100]"),
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for TargetSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "namespace={ns}")?,
            None => f.write_str("namespace=*")?,
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(f, " labels={{{}}}", labels.join(","))
    }
}

/// Direction of a network partition, as in Chaos Mesh's `NetworkChaos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionDirection {
    /// The service cannot reach others.
    To,
    /// Others cannot reach the service.
    From,
    /// Neither.
    #[default]
    Both,
}

impl fmt::Display for PartitionDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        })
    }
}

/// How hard a database overload hits (seed 003's `intensity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intensity {
    /// Slightly slower queries.
    Low,
    /// Clearly slower queries.
    #[default]
    Medium,
    /// Queries crawl and the CPU is nearly saturated.
    High,
}

impl Intensity {
    /// Latency added to every query, in milliseconds.
    pub fn added_latency_ms(self) -> u32 {
        match self {
            Self::Low => 50,
            Self::Medium => 200,
            Self::High => 1_000,
        }
    }

    /// The kebab-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// CPU load added to each database pod, in percent of one core.
    pub fn cpu_load_percent(self) -> u32 {
        match self {
            Self::Low => 25,
            Self::Medium => 50,
            Self::High => 90,
        }
    }
}

/// The parameters of each scenario type; the variant is the scenario's type.
///
/// In JSON/YAML it is written as `type: <kebab-case type>` next to
/// `parameters: {...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "parameters",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum Parameters {
    /// The chosen pods stop serving (their containers crash-loop) for the
    /// duration; their controller does not replace them.
    PodFailure {
        /// How long, in seconds.
        duration_seconds: u32,
    },
    /// The chosen nodes stop reporting ready.
    NodeFailure {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Also cordon the nodes so nothing new lands there (default: yes).
        #[serde(default = "default_true")]
        cordon: bool,
    },
    /// CPU burnt in the chosen pods, like Chaos Mesh's `StressChaos` CPU stressor.
    CpuStress {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Stress workers, each loading one core.
        workers: u32,
        /// Load of each worker, in percent of a core.
        load_percent: u32,
    },
    /// Memory held in the chosen pods.
    MemoryStress {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Memory held, in MiB (2^20 bytes, Kubernetes' `Mi`).
        memory_mb: u32,
    },
    /// Requests to the chosen services are delayed.
    LatencyInjection {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Added delay, in milliseconds.
        latency_ms: u32,
        /// Variation of the delay, in milliseconds (at most `latency_ms`).
        #[serde(default)]
        jitter_ms: u32,
    },
    /// Packets to the chosen services are dropped.
    PacketLoss {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Share of packets dropped, in percent, within (0, 100].
        loss_percent: f64,
    },
    /// The disks of the chosen nodes are filled.
    DiskStress {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Disk usage to reach, in percent of capacity, within (0, 100].
        fill_percent: f64,
    },
    /// The chosen services are cut off.
    NetworkPartition {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Which traffic is cut (default: both ways).
        #[serde(default)]
        direction: PartitionDirection,
    },
    /// The chosen services fail requests.
    ServiceFailure {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Share of requests that fail, in percent, within (0, 100] (default 100).
        #[serde(default = "default_hundred")]
        error_percent: f64,
    },
    /// The chosen (database) services are overloaded: slow and CPU-bound.
    DatabaseOverload {
        /// How long, in seconds.
        duration_seconds: u32,
        /// How hard (default: medium).
        #[serde(default)]
        intensity: Intensity,
    },
    /// Memory grows steadily in the chosen pods.
    MemoryLeak {
        /// How long, in seconds.
        duration_seconds: u32,
        /// Growth in MiB per second, within (0, 1024].
        rate_mb_per_second: f64,
    },
}

fn default_true() -> bool {
    true
}

fn default_hundred() -> f64 {
    100.0
}

/// `value` must lie in `[min, max]`.
fn check_range(field: &str, value: u32, min: u32, max: u32) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("parameters.{field}"),
            format!("must be within [{min}, {max}]"),
        ))
    }
}

/// `value` must be a number in `(0, max]`.
fn check_positive(field: &str, value: f64, max: f64) -> Result<(), Error> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("parameters.{field}"),
            format!("must be within (0, {max}]"),
        ))
    }
}

impl Parameters {
    /// The scenario type these parameters belong to.
    pub fn scenario_type(&self) -> ScenarioType {
        match self {
            Self::PodFailure { .. } => ScenarioType::PodFailure,
            Self::NodeFailure { .. } => ScenarioType::NodeFailure,
            Self::CpuStress { .. } => ScenarioType::CpuStress,
            Self::MemoryStress { .. } => ScenarioType::MemoryStress,
            Self::LatencyInjection { .. } => ScenarioType::LatencyInjection,
            Self::PacketLoss { .. } => ScenarioType::PacketLoss,
            Self::DiskStress { .. } => ScenarioType::DiskStress,
            Self::NetworkPartition { .. } => ScenarioType::NetworkPartition,
            Self::ServiceFailure { .. } => ScenarioType::ServiceFailure,
            Self::DatabaseOverload { .. } => ScenarioType::DatabaseOverload,
            Self::MemoryLeak { .. } => ScenarioType::MemoryLeak,
        }
    }

    /// How long a run lasts, in seconds.
    pub fn duration_seconds(&self) -> u32 {
        match *self {
            Self::PodFailure { duration_seconds }
            | Self::NodeFailure {
                duration_seconds, ..
            }
            | Self::CpuStress {
                duration_seconds, ..
            }
            | Self::MemoryStress {
                duration_seconds, ..
            }
            | Self::LatencyInjection {
                duration_seconds, ..
            }
            | Self::PacketLoss {
                duration_seconds, ..
            }
            | Self::DiskStress {
                duration_seconds, ..
            }
            | Self::NetworkPartition {
                duration_seconds, ..
            }
            | Self::ServiceFailure {
                duration_seconds, ..
            }
            | Self::DatabaseOverload {
                duration_seconds, ..
            }
            | Self::MemoryLeak {
                duration_seconds, ..
            } => duration_seconds,
        }
    }

    /// Checks every parameter, naming the first wrong one
    /// (`parameters.loss_percent must be within (0, 100]`).
    pub fn validate(&self) -> Result<(), Error> {
        check_range(
            "duration_seconds",
            self.duration_seconds(),
            1,
            MAX_DURATION_SECONDS,
        )?;
        match *self {
            Self::PodFailure { .. }
            | Self::NodeFailure { .. }
            | Self::NetworkPartition { .. }
            | Self::DatabaseOverload { .. } => Ok(()),
            Self::CpuStress {
                workers,
                load_percent,
                ..
            } => {
                check_range("workers", workers, 1, 64)?;
                check_range("load_percent", load_percent, 1, 100)
            }
            Self::MemoryStress { memory_mb, .. } => check_range("memory_mb", memory_mb, 1, 1 << 20),
            Self::LatencyInjection {
                latency_ms,
                jitter_ms,
                ..
            } => {
                check_range("latency_ms", latency_ms, 1, 60_000)?;
                if jitter_ms > latency_ms {
                    // netem would clamp the negative delays, skewing the distribution.
                    return Err(Error::invalid(
                        "parameters.jitter_ms",
                        "must not exceed parameters.latency_ms",
                    ));
                }
                Ok(())
            }
            Self::PacketLoss { loss_percent, .. } => {
                check_positive("loss_percent", loss_percent, 100.0)
            }
            Self::DiskStress { fill_percent, .. } => {
                check_positive("fill_percent", fill_percent, 100.0)
            }
            Self::ServiceFailure { error_percent, .. } => {
                check_positive("error_percent", error_percent, 100.0)
            }
            Self::MemoryLeak {
                rate_mb_per_second, ..
            } => check_positive("rate_mb_per_second", rate_mb_per_second, 1024.0),
        }
    }

    /// What a run does, in words, e.g. `+200 ms latency (jitter 20 ms)`.
    pub fn describe(&self) -> String {
        match *self {
            Self::PodFailure { .. } => "pods stop serving".to_owned(),
            Self::NodeFailure { cordon, .. } => {
                if cordon {
                    "nodes NotReady and cordoned".to_owned()
                } else {
                    "nodes NotReady".to_owned()
                }
            }
            Self::CpuStress {
                workers,
                load_percent,
                ..
            } => format!("{workers} CPU workers at {load_percent} %"),
            Self::MemoryStress { memory_mb, .. } => format!("{memory_mb} MiB held"),
            Self::LatencyInjection {
                latency_ms,
                jitter_ms,
                ..
            } => format!("+{latency_ms} ms latency (jitter {jitter_ms} ms)"),
            Self::PacketLoss { loss_percent, .. } => format!("{loss_percent} % packet loss"),
            Self::DiskStress { fill_percent, .. } => format!("disk filled to {fill_percent} %"),
            Self::NetworkPartition { direction, .. } => {
                format!("network partition (direction {direction})")
            }
            Self::ServiceFailure { error_percent, .. } => {
                format!("{error_percent} % of requests fail")
            }
            Self::DatabaseOverload { intensity, .. } => format!(
                "{} database overload: +{} ms per query, CPU at {} %",
                intensity.as_str(),
                intensity.added_latency_ms(),
                intensity.cpu_load_percent()
            ),
            Self::MemoryLeak {
                rate_mb_per_second, ..
            } => format!("memory leaking {rate_mb_per_second} MiB/s"),
        }
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
    use crate::labels;

    fn scenario(parameters: Parameters) -> Scenario {
        Scenario::new(ScenarioId::new("s").unwrap(), "s", parameters)
    }

    fn error_of(parameters: Parameters) -> String {
        scenario(parameters).validate().unwrap_err().to_string()
    }

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
    fn every_parameter_is_checked_and_named() {
        let cases = [
            (
                Parameters::PacketLoss {
                    duration_seconds: 60,
                    loss_percent: 0.0,
                },
                "parameters.loss_percent must be within (0, 100]",
            ),
            (
                Parameters::PacketLoss {
                    duration_seconds: 60,
                    loss_percent: f64::NAN,
                },
                "parameters.loss_percent must be within (0, 100]",
            ),
            (
                Parameters::PodFailure {
                    duration_seconds: 0,
                },
                "parameters.duration_seconds must be within [1, 86400]",
            ),
            (
                Parameters::CpuStress {
                    duration_seconds: 60,
                    workers: 0,
                    load_percent: 50,
                },
                "parameters.workers must be within [1, 64]",
            ),
            (
                Parameters::CpuStress {
                    duration_seconds: 60,
                    workers: 1,
                    load_percent: 101,
                },
                "parameters.load_percent must be within [1, 100]",
            ),
            (
                Parameters::MemoryStress {
                    duration_seconds: 60,
                    memory_mb: 0,
                },
                "parameters.memory_mb must be within [1, 1048576]",
            ),
            (
                Parameters::LatencyInjection {
                    duration_seconds: 60,
                    latency_ms: 100,
                    jitter_ms: 150,
                },
                "parameters.jitter_ms must not exceed parameters.latency_ms",
            ),
            (
                Parameters::DiskStress {
                    duration_seconds: 60,
                    fill_percent: 100.5,
                },
                "parameters.fill_percent must be within (0, 100]",
            ),
            (
                Parameters::ServiceFailure {
                    duration_seconds: 60,
                    error_percent: -1.0,
                },
                "parameters.error_percent must be within (0, 100]",
            ),
            (
                Parameters::MemoryLeak {
                    duration_seconds: 60,
                    rate_mb_per_second: 2048.0,
                },
                "parameters.rate_mb_per_second must be within (0, 1024]",
            ),
        ];
        for (parameters, message) in cases {
            assert_eq!(
                error_of(parameters),
                format!("invalid chaos scenario: {message}")
            );
        }
    }

    #[test]
    fn selectors_are_checked_and_named() {
        let with = |target: TargetSelector| {
            scenario(Parameters::PodFailure {
                duration_seconds: 10,
            })
            .with_target(target)
            .validate()
            .map_err(|e| e.to_string())
        };
        let mode = |mode| TargetSelector {
            mode,
            ..TargetSelector::default()
        };
        assert_eq!(
            with(mode(SelectionMode::Fixed(0))).unwrap_err(),
            "invalid chaos scenario: target.mode.fixed must be at least 1"
        );
        assert_eq!(
            with(mode(SelectionMode::Percent(0.0))).unwrap_err(),
            "invalid chaos scenario: target.mode.percent must be within (0, 100]"
        );
        assert!(with(mode(SelectionMode::Percent(100.0))).is_ok());
        let empty_ns = TargetSelector {
            namespace: Some(String::new()),
            ..TargetSelector::default()
        };
        assert!(with(empty_ns).unwrap_err().contains("target.namespace"));
        let empty_label = TargetSelector {
            labels: labels::from_pairs([("", "x")]),
            ..TargetSelector::default()
        };
        assert!(with(empty_label).unwrap_err().contains("target.labels"));
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

        for (text, mode) in [
            ("one", SelectionMode::One),
            ("all", SelectionMode::All),
            ("{percent: 25}", SelectionMode::Percent(25.0)),
        ] {
            let selector: TargetSelector =
                serde_norway::from_str(&format!("mode: {text}")).unwrap();
            assert_eq!(selector.mode, mode);
            let yaml = serde_norway::to_string(&selector).unwrap();
            assert_eq!(
                serde_norway::from_str::<TargetSelector>(&yaml).unwrap(),
                selector
            );
        }
        let bad: Result<TargetSelector, _> = serde_norway::from_str("mode: some");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown mode \"some\"")
        );

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

    #[test]
    fn database_intensity_scales_latency_and_cpu() {
        let levels = [Intensity::Low, Intensity::Medium, Intensity::High];
        let latency: Vec<u32> = levels.iter().map(|i| i.added_latency_ms()).collect();
        let cpu: Vec<u32> = levels.iter().map(|i| i.cpu_load_percent()).collect();
        assert_eq!(latency, [50, 200, 1_000]);
        assert_eq!(cpu, [25, 50, 90]);
        let p = Parameters::DatabaseOverload {
            duration_seconds: 1,
            intensity: Intensity::High,
        };
        assert_eq!(
            p.describe(),
            "high database overload: +1000 ms per query, CPU at 90 %"
        );
    }
}
