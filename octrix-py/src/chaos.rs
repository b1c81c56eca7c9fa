//! `ChaosScenario`: chaos experiment definitions, parsed and validated by
//! the core (the runs themselves belong to the server and the cluster
//! adapter).

use octrix_core::chaos::{Scenario, ScenarioType, builtin_scenario};
use pyo3::prelude::*;

use crate::convert;
use crate::errors::Error;

/// A validated chaos scenario: `id` (a DNS label), `name`, `description`,
/// `target` (`namespace`, `labels`, `mode`: one, all, fixed or percent),
/// `type` (pod-failure, node-failure, cpu-stress, memory-stress,
/// latency-injection, packet-loss, disk-stress, network-partition,
/// service-failure, database-overload, memory-leak), `parameters` for its
/// type, and abort `guards`. Invalid input raises ValidationError naming the
/// field, e.g. `parameters.loss_percent`.
#[pyclass(module = "octrix", name = "ChaosScenario", frozen)]
#[derive(Debug)]
pub struct PyChaosScenario {
    inner: Scenario,
}

impl PyChaosScenario {
    fn validated(inner: Scenario) -> Result<Self, Error> {
        inner.validate()?;
        Ok(Self { inner })
    }
}

#[pymethods]
impl PyChaosScenario {
    /// A scenario from a mapping of its YAML form, validated.
    #[new]
    fn new(scenario: &Bound<'_, PyAny>) -> Result<Self, Error> {
        Self::validated(convert::from_py(scenario, "")?)
    }

    /// A scenario from a YAML (or JSON) document, validated.
    #[staticmethod]
    fn from_yaml(text: &str) -> Result<Self, Error> {
        let scenario = convert::config_from_yaml(text).map_err(|error| match error {
            Error::Config { field, message } => Error::Input { field, message },
            other => other,
        })?;
        Self::validated(scenario)
    }

    /// The built-in scenario of a type (e.g. `"packet-loss"`).
    #[staticmethod]
    fn builtin(scenario_type: &str) -> Result<Self, Error> {
        let scenario_type: ScenarioType = convert::parse_name(scenario_type, "scenario_type")?;
        Ok(Self {
            inner: builtin_scenario(scenario_type),
        })
    }

    /// Every scenario type's name.
    #[staticmethod]
    fn scenario_types() -> Vec<&'static str> {
        ScenarioType::ALL.iter().map(|t| t.as_str()).collect()
    }

    /// The scenario's id.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id.as_str()
    }

    /// Its human name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// What it tests and what to expect.
    #[getter]
    fn description(&self) -> &str {
        &self.inner.description
    }

    /// Its type, e.g. `packet-loss`.
    #[getter]
    fn scenario_type(&self) -> &'static str {
        self.inner.scenario_type().as_str()
    }

    /// What it targets: pod, node or service.
    #[getter]
    fn target_kind(&self) -> String {
        convert::serde_name(&self.inner.scenario_type().target_kind())
    }

    /// The scenario as a dict (its YAML form, defaults filled in).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "ChaosScenario(id='{}', type='{}', name={:?})",
            self.inner.id.as_str(),
            self.inner.scenario_type().as_str(),
            self.inner.name
        )
    }
}

/// Registers the chaos classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyChaosScenario>()?;
    Ok(())
}
