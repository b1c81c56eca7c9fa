//! `Classifier`: cluster observations graded into categorised, severity-rated
//! signals.

use octrix_core::classify::{Classification, Classifier, Observation, SeverityPolicy};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert;
use crate::errors::Error;

/// Grades observations (a pod's status, a node's conditions, CPU or memory
/// utilisation, a restart rate, a detector's anomaly) against a severity
/// policy, counting consecutive samples per resource and category.
///
/// `policy` is a mapping of the YAML form (`high_cpu: {medium: {threshold:
/// 0.8, for_samples: 3}, ...}`, `node_not_ready: {severity: critical,
/// for_samples: 1}`, `restart_window: "1h"`, ...); the defaults when None.
#[pyclass(module = "octrix", name = "Classifier")]
#[derive(Debug)]
pub struct PyClassifier {
    inner: Classifier,
}

impl PyClassifier {
    fn build(policy: SeverityPolicy) -> Result<Self, Error> {
        Ok(Self {
            inner: Classifier::new(policy)?,
        })
    }
}

/// A classification as a dict (`result`: raised or cleared, then the
/// signal's fields), its `since` and `at` as UTC datetimes.
fn classification_dict<'py>(
    py: Python<'py>,
    classification: &Classification,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = convert::to_py(py, classification)?;
    let map = dict.cast::<PyDict>()?;
    match classification {
        Classification::Raised(signal) => {
            convert::set_time(map, "since", Some(signal.since))?;
            convert::set_time(map, "at", Some(signal.at))?;
        }
        Classification::Cleared(cleared) => convert::set_time(map, "at", Some(cleared.at))?,
    }
    Ok(dict)
}

#[pymethods]
impl PyClassifier {
    /// A classifier with `policy` (validated; ConfigError names the field).
    #[new]
    #[pyo3(signature = (policy = None))]
    fn new(policy: Option<&Bound<'_, PyAny>>) -> Result<Self, Error> {
        let policy = match policy {
            Some(policy) if !policy.is_none() => convert::config_from_py(policy, "")?,
            _ => SeverityPolicy::default(),
        };
        Self::build(policy)
    }

    /// A classifier whose policy is a YAML document.
    #[staticmethod]
    fn from_yaml(text: &str) -> Result<Self, Error> {
        Self::build(convert::config_from_yaml(text)?)
    }

    /// Grades one observation, a mapping: `at` (a timezone-aware datetime),
    /// `resource` (`kind`, `namespace`, `name`, `node`), optionally
    /// `service` and `labels`, and `reading` tagged by `type`
    /// (`cpu_utilisation` with `ratio`, `memory_utilisation`, `restart_rate`
    /// with `per_hour`, `pod`, `node`, `anomaly`). Returns the resulting
    /// classifications as dicts: `result` `raised` (a signal with
    /// `category`, `severity`, `summary`, `since`, ...) or `cleared`.
    fn observe<'py>(
        &mut self,
        py: Python<'py>,
        observation: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let observation: Observation = convert::from_py(observation, "observation")?;
        self.inner
            .observe(&observation)
            .iter()
            .map(|classification| classification_dict(py, classification))
            .collect()
    }

    /// Readings rejected as non-finite or out of range so far.
    #[getter]
    fn rejected_readings(&self) -> u64 {
        self.inner.rejected_readings()
    }

    /// How many (resource, category) streaks are tracked.
    #[getter]
    fn tracked(&self) -> usize {
        self.inner.tracked()
    }

    /// The policy as a dict (the YAML form).
    #[getter]
    fn policy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, self.inner.policy())
    }

    fn __repr__(&self) -> String {
        format!("Classifier(tracked={})", self.inner.tracked())
    }
}

/// Registers the classification classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyClassifier>()?;
    Ok(())
}
