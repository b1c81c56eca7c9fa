//! The scenario catalog: one built-in scenario per type, plus custom ones.

use std::collections::{BTreeMap, BTreeSet};

use super::Error;
use super::{Intensity, Parameters, PartitionDirection, Scenario, ScenarioId, ScenarioType};

/// The built-in scenario of `scenario_type`, with id
/// [`ScenarioId::builtin`]. Each aims at one random target in any
/// unprotected namespace; narrow it with a target override when starting it,
/// or copy it into a custom scenario.
pub fn builtin_scenario(scenario_type: ScenarioType) -> Scenario {
    let (name, description, parameters) = match scenario_type {
        ScenarioType::PodFailure => (
            "Pod failure",
            "One pod stops serving for a minute (its containers crash-loop); its controller does not replace it. Expect the service to shed the pod and stay available.",
            Parameters::PodFailure {
                duration_seconds: 60,
            },
        ),
        ScenarioType::NodeFailure => (
            "Node failure",
            "One node stops reporting ready and is cordoned for two minutes. Expect its pods to turn unready and traffic to move to the other nodes.",
            Parameters::NodeFailure {
                duration_seconds: 120,
                cordon: true,
            },
        ),
        ScenarioType::CpuStress => (
            "CPU stress",
            "One pod burns 80 % of a core for two minutes. Expect higher latency from that pod and CPU alerts, not errors.",
            Parameters::CpuStress {
                duration_seconds: 120,
                workers: 1,
                load_percent: 80,
            },
        ),
        ScenarioType::MemoryStress => (
            "Memory stress",
            "One pod holds 256 MiB more for two minutes. Expect memory alerts; pods close to their limit are OOM-killed.",
            Parameters::MemoryStress {
                duration_seconds: 120,
                memory_mb: 256,
            },
        ),
        ScenarioType::LatencyInjection => (
            "Latency injection",
            "Requests to one service take 200 ms longer (jitter 20 ms) for two minutes. Expect its callers' p99 to rise and their timeouts to be tested.",
            Parameters::LatencyInjection {
                duration_seconds: 120,
                latency_ms: 200,
                jitter_ms: 20,
            },
        ),
        ScenarioType::PacketLoss => (
            "Packet loss",
            "One service drops 10 % of its packets for two minutes. Expect retries and a higher error rate.",
            Parameters::PacketLoss {
                duration_seconds: 120,
                loss_percent: 10.0,
            },
        ),
        ScenarioType::DiskStress => (
            "Disk stress",
            "One node's disk is filled to 95 % for two minutes. Expect DiskPressure on the node and evictions.",
            Parameters::DiskStress {
                duration_seconds: 120,
                fill_percent: 95.0,
            },
        ),
        ScenarioType::NetworkPartition => (
            "Network partition",
            "One service is cut off both ways for a minute. Expect its callers to fail fast (circuit breakers) rather than hang.",
            Parameters::NetworkPartition {
                duration_seconds: 60,
                direction: PartitionDirection::Both,
            },
        ),
        ScenarioType::ServiceFailure => (
            "Service failure",
            "One service fails every request for a minute (seed 003). Expect fallbacks and an incident on the service.",
            Parameters::ServiceFailure {
                duration_seconds: 60,
                error_percent: 100.0,
            },
        ),
        ScenarioType::DatabaseOverload => (
            "Database overload",
            "A medium overload for two minutes: queries 200 ms slower, CPU at 50 % (seed 003). Aim it at your database with a target override, e.g. labels app=postgres.",
            Parameters::DatabaseOverload {
                duration_seconds: 120,
                intensity: Intensity::Medium,
            },
        ),
        ScenarioType::MemoryLeak => (
            "Memory leak",
            "One pod's memory grows 2 MiB/s for two minutes (seed 003). Expect a rising memory trend and an anomaly before any OOM.",
            Parameters::MemoryLeak {
                duration_seconds: 120,
                rate_mb_per_second: 2.0,
            },
        ),
    };
    Scenario::new(ScenarioId::builtin(scenario_type), name, parameters)
        .with_description(description)
}

/// Built-in and custom scenarios by id. Built-ins cannot be removed or replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioCatalog {
    scenarios: BTreeMap<ScenarioId, Scenario>,
    builtin: BTreeSet<ScenarioId>,
}

impl Default for ScenarioCatalog {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl ScenarioCatalog {
    /// A catalog holding the built-in scenarios.
    pub fn with_builtins() -> Self {
        let scenarios: BTreeMap<ScenarioId, Scenario> = ScenarioType::ALL
            .into_iter()
            .map(builtin_scenario)
            .map(|s| (s.id.clone(), s))
            .collect();
        let builtin = scenarios.keys().cloned().collect();
        Self { scenarios, builtin }
    }

    /// Adds a custom scenario after validating it; its id must be new.
    pub fn add(&mut self, scenario: Scenario) -> Result<(), Error> {
        scenario.validate()?;
        if self.builtin.contains(&scenario.id) {
            return Err(Error::BuiltinScenario(scenario.id));
        }
        if self.scenarios.contains_key(&scenario.id) {
            return Err(Error::DuplicateScenario(scenario.id));
        }
        self.scenarios.insert(scenario.id.clone(), scenario);
        Ok(())
    }

    /// The scenario with this id.
    pub fn get(&self, id: &ScenarioId) -> Option<&Scenario> {
        self.scenarios.get(id)
    }

    /// Every scenario, by id.
    pub fn list(&self) -> Vec<&Scenario> {
        self.scenarios.values().collect()
    }

    /// Whether `id` is a built-in scenario.
    pub fn is_builtin(&self, id: &ScenarioId) -> bool {
        self.builtin.contains(id)
    }

    /// Removes a custom scenario, returning it.
    pub fn remove(&mut self, id: &ScenarioId) -> Result<Scenario, Error> {
        if self.is_builtin(id) {
            return Err(Error::BuiltinScenario(id.clone()));
        }
        self.scenarios
            .remove(id)
            .ok_or_else(|| Error::UnknownScenario(id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{SelectionMode, TargetSelector};

    fn custom(id: &str) -> Scenario {
        Scenario::new(
            ScenarioId::new(id).unwrap(),
            "Lossy checkout",
            Parameters::PacketLoss {
                duration_seconds: 30,
                loss_percent: 50.0,
            },
        )
        .with_target(TargetSelector {
            namespace: Some("shop".into()),
            mode: SelectionMode::All,
            ..TargetSelector::default()
        })
    }

    #[test]
    fn one_valid_builtin_per_type_with_stable_ids() {
        let catalog = ScenarioCatalog::with_builtins();
        assert_eq!(catalog.list().len(), ScenarioType::ALL.len());
        for t in ScenarioType::ALL {
            let id = ScenarioId::new(format!("builtin-{t}")).unwrap();
            let scenario = catalog.get(&id).unwrap();
            assert_eq!(scenario.scenario_type(), t);
            assert!(catalog.is_builtin(&id));
            scenario.validate().unwrap();
            assert!(!scenario.description.is_empty());
            assert_eq!(scenario.target.mode, SelectionMode::One);
        }
    }

    #[test]
    fn custom_scenarios_are_added_listed_and_removed_but_builtins_stay() {
        let mut catalog = ScenarioCatalog::default();
        catalog.add(custom("lossy-checkout")).unwrap();
        assert_eq!(catalog.list().len(), 12);
        assert!(!catalog.is_builtin(&custom("lossy-checkout").id));
        assert_eq!(
            catalog.add(custom("lossy-checkout")),
            Err(Error::DuplicateScenario(
                ScenarioId::new("lossy-checkout").unwrap()
            ))
        );
        let builtin = ScenarioId::builtin(ScenarioType::PodFailure);
        assert_eq!(
            catalog.add(custom("builtin-pod-failure")),
            Err(Error::BuiltinScenario(builtin.clone()))
        );
        assert_eq!(
            catalog.remove(&builtin).unwrap_err().to_string(),
            "built-in scenario builtin-pod-failure cannot be removed or replaced"
        );
        let removed = catalog
            .remove(&ScenarioId::new("lossy-checkout").unwrap())
            .unwrap();
        assert_eq!(removed.name, "Lossy checkout");
        assert_eq!(
            catalog.remove(&removed.id),
            Err(Error::UnknownScenario(removed.id))
        );
        assert_eq!(catalog.list().len(), 11);
    }

    #[test]
    fn invalid_custom_scenarios_are_refused() {
        let mut catalog = ScenarioCatalog::default();
        let mut bad = custom("bad");
        bad.parameters = Parameters::PacketLoss {
            duration_seconds: 30,
            loss_percent: 150.0,
        };
        assert_eq!(
            catalog.add(bad).unwrap_err().to_string(),
            "invalid chaos scenario: parameters.loss_percent must be within (0, 100]"
        );
        assert_eq!(catalog.list().len(), 11);
    }
}
