//! `CircuitBreaker`, its `CallPermit`, and the `ManualClock` that drives
//! breakers in tests.

use std::sync::{Arc, Mutex, MutexGuard};

use octrix_core::resilience::{
    BreakerConfig, BreakerSnapshot, BreakerTransition, CallOutcome, CircuitBreaker, OwnedCallPermit,
};
use octrix_core::time::SignedDuration;
use octrix_core::{Clock, ManualClock, Timestamp};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;

use crate::convert::{self, enum_to_py};
use crate::errors::Error;

/// A clock that only moves when told to, for driving circuit breakers in
/// tests (`CircuitBreaker(..., clock=ManualClock(start))`).
#[pyclass(module = "octrix", name = "ManualClock", frozen)]
#[derive(Debug)]
pub struct PyManualClock {
    inner: Arc<ManualClock>,
}

#[pymethods]
impl PyManualClock {
    /// A clock stopped at `start` (a timezone-aware datetime; now when None).
    #[new]
    #[pyo3(signature = (start = None))]
    fn new(start: Option<&Bound<'_, PyAny>>) -> Result<Self, Error> {
        let start = convert::timestamp_or_now(start, "start")?;
        Ok(Self {
            inner: Arc::new(ManualClock::new(start)),
        })
    }

    /// The clock's time, a UTC datetime.
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    /// Moves the clock by `delta` (a timedelta; negative moves it back).
    fn advance(&self, delta: SignedDuration) -> Result<(), Error> {
        let now = self.inner.now();
        let moved = now
            .checked_add(delta)
            .map_err(|error| Error::input("delta", error.to_string()))?;
        self.inner.set(moved);
        Ok(())
    }

    /// Sets the clock to `to` (a timezone-aware datetime).
    fn set(&self, to: &Bound<'_, PyAny>) -> Result<(), Error> {
        self.inner.set(convert::timestamp(to, "to")?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("ManualClock('{}')", self.inner.now())
    }
}

/// A breaker's configuration: the defaults (5 failures in a row, or half of
/// the last 100 calls from 20 on, open for 30 s, then 3 trial calls) with
/// the fields of `overrides` replaced.
fn breaker_config(overrides: Option<&Bound<'_, PyAny>>) -> Result<BreakerConfig, Error> {
    let Some(overrides) = overrides.filter(|o| !o.is_none()) else {
        return Ok(BreakerConfig::default());
    };
    let mut config = serde_json::to_value(BreakerConfig::default())
        .map_err(|error| Error::input(".", error.to_string()))?;
    let given = convert::to_value(overrides, "").map_err(|error| match error {
        Error::Input { field, message } => Error::Config { field, message },
        other => other,
    })?;
    let (Value::Object(defaults), Value::Object(given)) = (&mut config, given) else {
        return Err(Error::Config {
            field: ".".into(),
            message: "expected a mapping".into(),
        });
    };
    defaults.extend(given);
    let config: BreakerConfig =
        serde_path_to_error::deserialize(config).map_err(|error| Error::Config {
            field: convert::join("", &error.path().to_string()),
            message: error.into_inner().to_string(),
        })?;
    config.validate()?;
    Ok(config)
}

/// A snapshot as a dict, `opened_at` as a datetime.
fn snapshot_dict<'py>(py: Python<'py>, snapshot: &BreakerSnapshot) -> PyResult<Bound<'py, PyAny>> {
    let dict = convert::to_py(py, snapshot)?;
    convert::set_time(dict.cast::<PyDict>()?, "opened_at", snapshot.opened_at)?;
    Ok(dict)
}

/// A transition as a dict, `at` as a datetime.
fn transition_dict<'py>(
    py: Python<'py>,
    transition: &BreakerTransition,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = convert::to_py(py, transition)?;
    convert::set_time(dict.cast::<PyDict>()?, "at", Some(transition.at))?;
    Ok(dict)
}

/// A circuit breaker for one service: closed while calls pass, open (every
/// call rejected with CircuitOpenError) after too many failures, half-open
/// after `open_timeout` to let trial calls decide.
///
/// `config` overrides the defaults: `consecutive_failures`,
/// `failure_rate_threshold`, `slow_call` (`duration_threshold`,
/// `rate_threshold`), `window` (`{"type": "count", "calls": 100}` or
/// `{"type": "time", "seconds": 60}`), `minimum_calls`, `open_timeout` (a
/// timedelta or `"30s"`), `half_open_trial_calls`. Time comes from the
/// system clock, or from `clock`.
///
/// Use `breaker.call(fn, *args)`, or `with breaker.acquire(): ...` (which
/// also works around `await`): an exception counts as a failure.
#[pyclass(module = "octrix", name = "CircuitBreaker", frozen)]
#[derive(Debug)]
pub struct PyCircuitBreaker {
    inner: Arc<CircuitBreaker>,
}

#[pymethods]
impl PyCircuitBreaker {
    /// A closed breaker for `service`.
    #[new]
    #[pyo3(signature = (service, config = None, clock = None))]
    fn new(
        service: &str,
        config: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyManualClock>>,
    ) -> Result<Self, Error> {
        let config = breaker_config(config)?;
        let clock: Arc<dyn Clock> = match clock {
            Some(clock) => clock.get().inner.clone(),
            None => Arc::new(Timestamp::now),
        };
        Ok(Self {
            inner: Arc::new(CircuitBreaker::new(service, config, clock)?),
        })
    }

    /// Asks to make one call; raises CircuitOpenError when the breaker
    /// rejects it. Record the outcome on the permit, or use it as a context
    /// manager.
    fn acquire(&self) -> Result<PyCallPermit, Error> {
        let permit = self.inner.try_acquire_owned()?;
        Ok(PyCallPermit {
            permit: Mutex::new(Some(permit)),
        })
    }

    /// Calls `function(*args, **kwargs)` through the breaker: raises
    /// CircuitOpenError without calling it when rejected; an exception it
    /// raises is recorded as a failure and propagates; else a success.
    #[pyo3(signature = (function, *args, **kwargs))]
    fn call<'py>(
        &self,
        function: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let permit = self.inner.try_acquire_owned().map_err(Error::from)?;
        let result = function.call(args, kwargs);
        permit.record(if result.is_ok() {
            CallOutcome::Success
        } else {
            CallOutcome::Failure
        });
        result
    }

    /// The current state: closed, open or half_open. An open breaker whose
    /// timeout has passed reads open until the next call.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enum_to_py(py, "BreakerState", &self.inner.state())
    }

    /// The protected service.
    #[getter]
    fn service(&self) -> &str {
        self.inner.service()
    }

    /// The configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, self.inner.config())
    }

    /// Closes the breaker and empties its window, as an operator would.
    fn reset(&self) {
        self.inner.reset();
    }

    /// Opens the breaker now; it half-opens after the open timeout.
    fn force_open(&self) {
        self.inner.force_open();
    }

    /// State and window now: `state`, `window_calls`, `window_failures`,
    /// `window_slow_calls`, `consecutive_failures`, `opened_at`,
    /// `dropped_transitions`.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        snapshot_dict(py, &self.inner.snapshot())
    }

    /// The state changes since the last drain, oldest first: dicts with
    /// `service`, `from`, `to`, `at` (a datetime) and `reason`.
    fn drain_transitions<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner
            .drain_transitions()
            .iter()
            .map(|transition| transition_dict(py, transition))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "CircuitBreaker(service='{}', state='{}')",
            self.inner.service(),
            convert::serde_name(&self.inner.state())
        )
    }
}

/// Leave to make one call through a CircuitBreaker. Record its outcome once
/// (`success()`, `failure()`, `ignore()` or `record(outcome)`); as a context
/// manager it records a failure when the block raises, else a success. A
/// permit dropped unrecorded counts as no call.
#[pyclass(module = "octrix", name = "CallPermit", frozen)]
#[derive(Debug)]
pub struct PyCallPermit {
    permit: Mutex<Option<OwnedCallPermit>>,
}

impl PyCallPermit {
    fn slot(&self) -> MutexGuard<'_, Option<OwnedCallPermit>> {
        self.permit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn settle(&self, outcome: CallOutcome) -> bool {
        match self.slot().take() {
            Some(permit) => {
                permit.record(outcome);
                true
            }
            None => false,
        }
    }
}

#[pymethods]
impl PyCallPermit {
    /// Records the outcome (success, failure or ignored); returns False if
    /// the permit was already recorded (nothing changes then).
    fn record(&self, outcome: &Bound<'_, PyAny>) -> Result<bool, Error> {
        let outcome: CallOutcome = convert::parse_enum(outcome, "outcome")?;
        Ok(self.settle(outcome))
    }

    /// Records a successful call.
    fn success(&self) -> bool {
        self.settle(CallOutcome::Success)
    }

    /// Records a failed call.
    fn failure(&self) -> bool {
        self.settle(CallOutcome::Failure)
    }

    /// Records a call that counts neither way (e.g. an HTTP 404).
    fn ignore(&self) -> bool {
        self.settle(CallOutcome::Ignored)
    }

    /// Whether this is a half-open trial call.
    #[getter]
    fn is_trial(&self) -> bool {
        self.slot().as_ref().is_some_and(OwnedCallPermit::is_trial)
    }

    /// Whether the outcome is still to be recorded.
    #[getter]
    fn pending(&self) -> bool {
        self.slot().is_some()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (exc_type, _exc_value, _traceback))]
    fn __exit__(
        &self,
        exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        self.settle(if exc_type.is_none() {
            CallOutcome::Success
        } else {
            CallOutcome::Failure
        });
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "CallPermit(pending={}, trial={})",
            if self.pending() { "True" } else { "False" },
            if self.is_trial() { "True" } else { "False" }
        )
    }
}

/// Registers the resilience classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyManualClock>()?;
    module.add_class::<PyCircuitBreaker>()?;
    module.add_class::<PyCallPermit>()?;
    Ok(())
}
