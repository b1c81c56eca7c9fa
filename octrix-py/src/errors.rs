//! The one exception hierarchy, and the one conversion of every core error
//! into it.
//!
//! ```text
//! OctrixError(Exception)
//! ├── ConfigError(OctrixError, ValueError)          a configuration field is out of range
//! ├── ValidationError(OctrixError, ValueError)      input data is malformed or invalid
//! ├── RejectedSampleError(OctrixError, ValueError)  a NaN, infinite or too large sample
//! ├── SeriesLimitError(OctrixError)                 a detector bank is full
//! ├── UnknownSeriesError(OctrixError, KeyError)     a detector bank does not hold the series
//! ├── UnknownIncidentError(OctrixError, KeyError)   no incident has the id
//! ├── IllegalTransitionError(OctrixError)           the incident's status forbids the change
//! ├── UnknownEndpointError(OctrixError, KeyError)   a load balancer has no such endpoint
//! ├── NoHealthyEndpointError(OctrixError)           every endpoint is unhealthy
//! ├── CircuitOpenError(OctrixError)                 a circuit breaker rejected the call
//! └── ChaosError(OctrixError)                       a chaos request the core refused
//! ```
//!
//! Every exception carries the attributes its kind has (`field` on
//! `ConfigError` and `ValidationError`, `errors` for all field problems of a
//! traffic rule, `service`/`state`/`retry_at` on `CircuitOpenError`, ...).

use octrix_core::chaos;
use octrix_core::classify;
use octrix_core::detect;
use octrix_core::healing;
use octrix_core::incident;
use octrix_core::resilience::{BreakerConfigError, Rejected};
use octrix_core::routing::RuleError;
use octrix_core::routing::balancer::BalancerError;
use octrix_core::routing::istio::ManifestError;
use pyo3::exceptions::{PyException, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

pyo3::create_exception!(
    octrix,
    OctrixError,
    PyException,
    "The base of every exception Octrix raises."
);

/// The kinds of error, one Python exception class each (below `OctrixError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ConfigError(OctrixError, ValueError)`.
    Config,
    /// `ValidationError(OctrixError, ValueError)`.
    Validation,
    /// `RejectedSampleError(OctrixError, ValueError)`.
    RejectedSample,
    /// `SeriesLimitError(OctrixError)`.
    SeriesLimit,
    /// `UnknownSeriesError(OctrixError, KeyError)`.
    UnknownSeries,
    /// `UnknownIncidentError(OctrixError, KeyError)`.
    UnknownIncident,
    /// `IllegalTransitionError(OctrixError)`.
    IllegalTransition,
    /// `UnknownEndpointError(OctrixError, KeyError)`.
    UnknownEndpoint,
    /// `NoHealthyEndpointError(OctrixError)`.
    NoHealthyEndpoint,
    /// `CircuitOpenError(OctrixError)`.
    CircuitOpen,
    /// `ChaosError(OctrixError)`.
    Chaos,
}

/// Which builtin a kind also derives from, besides `OctrixError`.
enum Builtin {
    None,
    ValueError,
    KeyError,
}

impl Kind {
    /// Every kind, in the order the module exports them.
    pub const ALL: [Kind; 11] = [
        Kind::Config,
        Kind::Validation,
        Kind::RejectedSample,
        Kind::SeriesLimit,
        Kind::UnknownSeries,
        Kind::UnknownIncident,
        Kind::IllegalTransition,
        Kind::UnknownEndpoint,
        Kind::NoHealthyEndpoint,
        Kind::CircuitOpen,
        Kind::Chaos,
    ];

    /// Class name, docstring and second base.
    fn spec(self) -> (&'static str, &'static str, Builtin) {
        match self {
            Kind::Config => (
                "ConfigError",
                "A configuration field is out of range or malformed; `field` names it.",
                Builtin::ValueError,
            ),
            Kind::Validation => (
                "ValidationError",
                "Input data is malformed or invalid; `field` names the (first) offending \
                 field and `errors` lists every (field, message) found.",
                Builtin::ValueError,
            ),
            Kind::RejectedSample => (
                "RejectedSampleError",
                "A sample was NaN, infinite or beyond ±1e150; it was counted and skipped. \
                 `value` is the sample.",
                Builtin::ValueError,
            ),
            Kind::SeriesLimit => (
                "SeriesLimitError",
                "A DetectorBank already holds `max_series` series and refused `series`.",
                Builtin::None,
            ),
            Kind::UnknownSeries => (
                "UnknownSeriesError",
                "A DetectorBank does not hold the series (it was evicted).",
                Builtin::KeyError,
            ),
            Kind::UnknownIncident => (
                "UnknownIncidentError",
                "No incident has this id; `incident_id` is the id asked for.",
                Builtin::KeyError,
            ),
            Kind::IllegalTransition => (
                "IllegalTransitionError",
                "The incident's status does not allow the change (e.g. acknowledging a \
                 resolved incident); `incident_id` names it.",
                Builtin::None,
            ),
            Kind::UnknownEndpoint => (
                "UnknownEndpointError",
                "The address is not one of the load balancer's endpoints.",
                Builtin::KeyError,
            ),
            Kind::NoHealthyEndpoint => (
                "NoHealthyEndpointError",
                "Every endpoint of the load balancer is unhealthy (or it has none).",
                Builtin::None,
            ),
            Kind::CircuitOpen => (
                "CircuitOpenError",
                "A circuit breaker rejected the call: `service`, `state` and `retry_at` \
                 (a UTC datetime, or None) say which, why and until when.",
                Builtin::None,
            ),
            Kind::Chaos => (
                "ChaosError",
                "A chaos request the core refused (protected namespace, no targets, \
                 safety budget, unknown run, illegal run transition, ...).",
                Builtin::None,
            ),
        }
    }

    /// The class name, e.g. `ConfigError`.
    pub fn name(self) -> &'static str {
        self.spec().0
    }

    fn cell(self) -> &'static PyOnceLock<Py<PyType>> {
        static CELLS: [PyOnceLock<Py<PyType>>; 11] = [
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
        ];
        &CELLS[self as usize]
    }

    /// The Python class, created on first use as
    /// `type(name, (OctrixError, builtin), {...})` in module `octrix`.
    pub fn type_object(self, py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
        let class = self.cell().get_or_try_init(py, || {
            let (name, doc, builtin) = self.spec();
            let root = py.get_type::<OctrixError>();
            let bases = match builtin {
                Builtin::None => PyTuple::new(py, [root])?,
                Builtin::ValueError => PyTuple::new(py, [root, py.get_type::<PyValueError>()])?,
                Builtin::KeyError => PyTuple::new(py, [root, py.get_type::<PyKeyError>()])?,
            };
            let namespace = PyDict::new(py);
            namespace.set_item("__doc__", doc)?;
            namespace.set_item("__module__", "octrix")?;
            let class = py
                .get_type::<PyType>()
                .call1((name, bases, namespace))?
                .cast_into::<PyType>()?;
            PyResult::Ok(class.unbind())
        })?;
        Ok(class.bind(py))
    }
}

/// Everything that can go wrong in the bindings: the core's errors, one
/// variant per core error type, plus malformed Python input.
#[derive(Debug)]
pub enum Error {
    /// Python input that cannot become the core type it stands for.
    Input {
        /// Path of the offending field (`alerts[0].startsAt`, `now`, ...).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration text (YAML/TOML) or mapping that does not parse.
    Config {
        /// Path of the offending field, or `.` for the document.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// From `octrix_core::detect`.
    Detect(detect::Error),
    /// From `octrix_core::classify`.
    Classify(classify::Error),
    /// From `octrix_core::incident`.
    Incident(incident::Error),
    /// From `octrix_core::incident`'s store queries.
    Query(incident::StoreError),
    /// From `octrix_core::healing`.
    Healing(healing::Error),
    /// A traffic rule that failed validation.
    Rule(RuleError),
    /// Manifests that could not be generated or rendered.
    Manifest(ManifestError),
    /// From a load balancer.
    Balancer(BalancerError),
    /// A circuit breaker configuration that does not validate.
    BreakerConfig(BreakerConfigError),
    /// A call a circuit breaker did not let through.
    Rejected(Rejected),
    /// From `octrix_core::chaos`.
    Chaos(chaos::Error),
}

impl Error {
    /// Malformed Python input at `field`.
    pub fn input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            field: field.into(),
            message: message.into(),
        }
    }
}

macro_rules! from_core {
    ($($variant:ident($type:ty)),* $(,)?) => {
        $(impl From<$type> for Error {
            fn from(error: $type) -> Self {
                Error::$variant(error)
            }
        })*
    };
}

from_core!(
    Detect(detect::Error),
    Classify(classify::Error),
    Incident(incident::Error),
    Query(incident::StoreError),
    Healing(healing::Error),
    Rule(RuleError),
    Manifest(ManifestError),
    Balancer(BalancerError),
    BreakerConfig(BreakerConfigError),
    Rejected(Rejected),
    Chaos(chaos::Error),
);

/// The class, message and attributes of the Python exception for an error.
struct Raised {
    kind: Kind,
    message: String,
    attributes: Vec<(&'static str, Attribute)>,
}

/// An exception attribute's value.
enum Attribute {
    Str(String),
    OptStr(Option<String>),
    Float(f64),
    Int(usize),
    Time(Option<octrix_core::Timestamp>),
    FieldErrors(Vec<(String, String)>),
}

impl Raised {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            attributes: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: Attribute) -> Self {
        self.attributes.push((name, value));
        self
    }
}

/// The one exhaustive mapping from errors to exceptions.
fn raised(error: Error) -> Raised {
    use Attribute::{Float, Int, OptStr, Str, Time};
    match error {
        Error::Input { field, message } => {
            let text = format!("{field}: {message}");
            field_error(Kind::Validation, field, message, text)
        }
        Error::Config { field, message } => {
            let text = format!("{field}: {message}");
            field_error(Kind::Config, field, message, text)
        }
        Error::Detect(error) => {
            let text = error.to_string();
            match error {
                detect::Error::InvalidConfig { field, reason } => {
                    field_error(Kind::Config, field, reason, text)
                }
                detect::Error::NonFiniteValue { value } => {
                    Raised::new(Kind::RejectedSample, text).with("value", Float(value))
                }
                detect::Error::ValueOutOfRange { value, .. } => {
                    Raised::new(Kind::RejectedSample, text).with("value", Float(value))
                }
                detect::Error::SeriesLimitReached { max_series, series } => {
                    Raised::new(Kind::SeriesLimit, text)
                        .with("max_series", Int(max_series))
                        .with("series", Str(series))
                }
                detect::Error::UnknownSeries { .. } => Raised::new(Kind::UnknownSeries, text),
                detect::Error::LengthMismatch { field, .. } => {
                    let message = text.clone();
                    field_error(Kind::Validation, field, message, text)
                }
                // `detect::Error` is non-exhaustive: a kind added later is
                // still an OctrixError with the core's message.
                _ => Raised::new(Kind::Validation, text).with("field", OptStr(None)),
            }
        }
        Error::Classify(error) => {
            let text = error.to_string();
            match error {
                classify::Error::InvalidPolicy { field, requirement } => {
                    field_error(Kind::Config, field, requirement, text)
                }
            }
        }
        Error::Incident(error) => {
            let text = error.to_string();
            match error {
                incident::Error::UnknownIncident(id) => Raised::new(Kind::UnknownIncident, text)
                    .with("incident_id", Str(id.as_str().to_owned())),
                incident::Error::IllegalTransition { id, from, to } => {
                    Raised::new(Kind::IllegalTransition, text)
                        .with("incident_id", Str(id.as_str().to_owned()))
                        .with("from_status", Str(from.as_str().to_owned()))
                        .with("to_status", Str(to.as_str().to_owned()))
                }
                incident::Error::Superseded { id, .. } | incident::Error::NotActive(id) => {
                    Raised::new(Kind::IllegalTransition, text)
                        .with("incident_id", Str(id.as_str().to_owned()))
                        .with("from_status", OptStr(None))
                        .with("to_status", OptStr(None))
                }
                incident::Error::MissingActor => field_error(
                    Kind::Validation,
                    "actor".into(),
                    "must not be empty".into(),
                    text,
                ),
                incident::Error::MissingAssignee => field_error(
                    Kind::Validation,
                    "assignee".into(),
                    "must not be empty".into(),
                    text,
                ),
                incident::Error::InvalidConfig { field, requirement } => {
                    field_error(Kind::Config, field, requirement, text)
                }
            }
        }
        Error::Query(error) => {
            let text = error.to_string();
            match error {
                incident::StoreError::InvalidQuery(message) => {
                    field_error(Kind::Validation, "limit".into(), message, text)
                }
                incident::StoreError::Backend { .. } => {
                    Raised::new(Kind::Validation, text).with("field", OptStr(None))
                }
            }
        }
        Error::Healing(error) => {
            let text = error.to_string();
            match error {
                healing::Error::Parse(message) => {
                    field_error(Kind::Config, ".".into(), message, text)
                }
                healing::Error::InvalidField { field, reason } => {
                    field_error(Kind::Config, field, reason, text)
                }
            }
        }
        Error::Rule(error) => {
            let text = error.to_string();
            let errors: Vec<(String, String)> = error
                .field_errors()
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect();
            let first = errors.first().map(|(field, _)| field.clone());
            Raised::new(Kind::Validation, text)
                .with("field", OptStr(first))
                .with("errors", Attribute::FieldErrors(errors))
        }
        Error::Manifest(error) => match error {
            ManifestError::InvalidRule(rule) => raised(Error::Rule(rule)),
            ManifestError::DuplicateRule { .. } => {
                let text = error.to_string();
                field_error(Kind::Validation, "rules".into(), text.clone(), text)
            }
            ManifestError::Yaml(_) | ManifestError::Json(_) => {
                let text = format!("{error}: {}", source_text(&error));
                Raised::new(Kind::Validation, text).with("field", OptStr(None))
            }
        },
        Error::Balancer(error) => {
            let text = error.to_string();
            match error {
                BalancerError::NoHealthyEndpoint { total } => {
                    Raised::new(Kind::NoHealthyEndpoint, text).with("total", Int(total))
                }
                BalancerError::UnknownEndpoint { address } => {
                    Raised::new(Kind::UnknownEndpoint, text).with("address", Str(address))
                }
                BalancerError::DuplicateEndpoint { index, .. } => field_error(
                    Kind::Config,
                    format!("endpoints[{index}].address"),
                    "is listed twice".into(),
                    text,
                ),
                BalancerError::ZeroWeight { index } => field_error(
                    Kind::Config,
                    format!("endpoints[{index}].weight"),
                    "must be at least 1".into(),
                    text,
                ),
            }
        }
        Error::BreakerConfig(error) => {
            let text = error.to_string();
            match error {
                BreakerConfigError::Invalid { field, message } => {
                    field_error(Kind::Config, field, message, text)
                }
                BreakerConfigError::NoTripCondition => field_error(
                    Kind::Config,
                    "consecutive_failures".into(),
                    "no trip condition is set".into(),
                    text,
                ),
            }
        }
        Error::Rejected(rejected) => Raised::new(Kind::CircuitOpen, rejected.to_string())
            .with("service", Str(rejected.service.to_string()))
            .with("state", Str(crate::convert::serde_name(&rejected.state)))
            .with("retry_at", Time(rejected.retry_at)),
        Error::Chaos(error) => {
            let text = error.to_string();
            match error {
                chaos::Error::Invalid { field, reason } => {
                    field_error(Kind::Validation, field, reason, text)
                }
                chaos::Error::Parse(message) => {
                    field_error(Kind::Validation, ".".into(), message, text)
                }
                chaos::Error::UnknownScenario(_)
                | chaos::Error::DuplicateScenario(_)
                | chaos::Error::BuiltinScenario(_)
                | chaos::Error::ProtectedNamespace { .. }
                | chaos::Error::NoTargets { .. }
                | chaos::Error::Budget(_)
                | chaos::Error::Executor(_)
                | chaos::Error::UnknownRun(_)
                | chaos::Error::IllegalTransition { .. }
                | chaos::Error::StartFailed { .. }
                | chaos::Error::RevertFailed { .. } => Raised::new(Kind::Chaos, text),
            }
        }
    }
}

/// A `ConfigError`/`ValidationError` for `field`, with message `text`.
fn field_error(kind: Kind, field: String, message: String, text: String) -> Raised {
    Raised::new(kind, text)
        .with("field", Attribute::OptStr(Some(field.clone())))
        .with("errors", Attribute::FieldErrors(vec![(field, message)]))
}

/// The message of an error's source, if any.
fn source_text(error: &dyn std::error::Error) -> String {
    error.source().map(ToString::to_string).unwrap_or_default()
}

impl Raised {
    fn into_pyerr(self, py: Python<'_>) -> PyResult<PyErr> {
        let class = self.kind.type_object(py)?;
        let exception = class.call1((self.message,))?;
        for (name, value) in self.attributes {
            match value {
                Attribute::Str(value) => exception.setattr(name, value)?,
                Attribute::OptStr(value) => exception.setattr(name, value)?,
                Attribute::Float(value) => exception.setattr(name, value)?,
                Attribute::Int(value) => exception.setattr(name, value)?,
                Attribute::Time(value) => exception.setattr(name, value)?,
                Attribute::FieldErrors(value) => exception.setattr(name, value)?,
            }
        }
        Ok(PyErr::from_value(exception))
    }
}

impl From<Error> for PyErr {
    fn from(error: Error) -> Self {
        Python::attach(|py| match raised(error).into_pyerr(py) {
            Ok(exception) | Err(exception) => exception,
        })
    }
}

/// Adds `OctrixError` and every subclass to the module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("OctrixError", py.get_type::<OctrixError>())?;
    for kind in Kind::ALL {
        module.add(kind.name(), kind.type_object(py)?)?;
    }
    Ok(())
}
