//! The typed, validated parameters of each scenario type.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Error;
use super::ScenarioType;

/// The longest run a scenario may ask for: one day.
pub const MAX_DURATION_SECONDS: u32 = 86_400;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(parameters: Parameters) -> String {
        parameters.validate().unwrap_err().to_string()
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
