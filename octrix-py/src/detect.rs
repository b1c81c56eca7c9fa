//! `WindowedZScore`, `DetectorBank`, `Detection` and `DetectionBatch`.

use std::collections::BTreeMap;

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use octrix_core::Labels;
use octrix_core::detect::{
    BatchDetections, Detection, Detector, DetectorBank, DetectorBankConfig, WindowedZScore,
    WindowedZScoreConfig,
};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;

use crate::convert::{self, enum_to_py};
use crate::errors::Error;

/// A detector's verdict on one sample.
#[pyclass(module = "octrix", name = "Detection", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct PyDetection {
    inner: Detection,
}

impl From<Detection> for PyDetection {
    fn from(inner: Detection) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PyDetection {
    /// How anomalous the sample is, in [0, 1]: `|z| / (|z| + sensitivity)`,
    /// 0.5 exactly at the threshold.
    #[getter]
    fn score(&self) -> f64 {
        self.inner.score
    }

    /// Signed distance from the window's mean in (population) standard
    /// deviations; ±inf for a sample that differs from a constant window.
    #[getter]
    fn z(&self) -> f64 {
        self.inner.z
    }

    /// Which side of the window's mean the sample lies on.
    #[getter]
    fn direction<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enum_to_py(py, "Direction", &self.inner.direction)
    }

    /// Whether `|z|` exceeds the detector's sensitivity.
    #[getter]
    fn is_anomaly(&self) -> bool {
        self.inner.is_anomaly
    }

    /// `min(0.5 + |z| / 10, 1)`; 0 while the detector warms up.
    #[getter]
    fn confidence(&self) -> f64 {
        self.inner.confidence
    }

    /// Whether the detector judged the sample (False during warm-up).
    #[getter]
    fn judged(&self) -> bool {
        self.inner != Detection::NOT_JUDGED
    }

    /// The detection as a dict (`direction` as its str value).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Detection(score={:?}, z={:?}, direction='{}', is_anomaly={}, confidence={:?})",
            self.inner.score,
            self.inner.z,
            self.inner.direction.as_str(),
            if self.inner.is_anomaly {
                "True"
            } else {
                "False"
            },
            self.inner.confidence,
        )
    }
}

/// The verdicts on a batch of samples: every sample's z-score, and the full
/// detection of each anomalous one.
#[pyclass(module = "octrix", name = "DetectionBatch", frozen)]
#[derive(Debug)]
pub struct DetectionBatch {
    z: ZScores,
    anomalies: Vec<(usize, Detection)>,
    rejected: Vec<usize>,
}

/// Where a batch's z-scores live: the numpy array they were written into,
/// or a vector when numpy is not loaded.
#[derive(Debug)]
enum ZScores {
    Array(Py<PyArray1<f64>>),
    Vec(Vec<f64>),
}

impl From<BatchDetections> for DetectionBatch {
    fn from(inner: BatchDetections) -> Self {
        Self {
            z: ZScores::Vec(inner.z),
            anomalies: inner.anomalies,
            rejected: inner.rejected,
        }
    }
}

impl DetectionBatch {
    /// Calls `read` with the z-scores.
    fn with_z<T>(&self, py: Python<'_>, read: impl FnOnce(&[f64]) -> T) -> PyResult<T> {
        match &self.z {
            ZScores::Vec(z) => Ok(read(z)),
            ZScores::Array(array) => {
                let array = array.bind(py).try_readonly()?;
                Ok(read(array.as_slice()?))
            }
        }
    }
}

#[pymethods]
impl DetectionBatch {
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_z(py, <[f64]>::len)
    }

    /// How many samples were judged (warm-up and rejected ones aside).
    #[getter]
    fn judged(&self, py: Python<'_>) -> PyResult<usize> {
        self.with_z(py, |z| z.iter().filter(|z| !z.is_nan()).count())
    }

    /// How many samples were anomalous.
    #[getter]
    fn anomaly_count(&self) -> usize {
        self.anomalies.len()
    }

    /// Positions of the anomalous samples, ascending.
    #[getter]
    fn anomaly_indices(&self) -> Vec<usize> {
        self.anomalies.iter().map(|(index, _)| *index).collect()
    }

    /// Positions of the anomalous samples, ascending, as a numpy int64
    /// array (no Python int per anomaly). Needs numpy.
    fn anomaly_index_array<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        py.import("numpy")?;
        let positions: Vec<i64> = self
            .anomalies
            .iter()
            .map(|(index, _)| i64::try_from(*index).unwrap_or(i64::MAX))
            .collect();
        Ok(positions.into_pyarray(py))
    }

    /// `(position, Detection)` of every anomalous sample, ascending.
    #[getter]
    fn anomalies(&self) -> Vec<(usize, PyDetection)> {
        self.anomalies
            .iter()
            .map(|&(index, detection)| (index, detection.into()))
            .collect()
    }

    /// Positions of the samples rejected as NaN, infinite or out of range.
    #[getter]
    fn rejected(&self) -> Vec<usize> {
        self.rejected.clone()
    }

    /// Every sample's z-score as a numpy float64 array (NaN where not
    /// judged or rejected). For `DetectorBank.observe_many` this is the
    /// buffer the core wrote the z-scores into, handed to numpy without a
    /// copy (every call returns the same array); otherwise a new array.
    /// Needs numpy.
    fn z_scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        // Import numpy first so that its absence is an ImportError.
        py.import("numpy")?;
        match &self.z {
            ZScores::Array(array) => Ok(array.bind(py).clone()),
            ZScores::Vec(z) => Ok(PyArray1::from_slice(py, z)),
        }
    }

    /// Every sample's z-score as a list of floats (NaN where not judged or
    /// rejected).
    fn z_list(&self, py: Python<'_>) -> PyResult<Vec<f64>> {
        self.with_z(py, <[f64]>::to_vec)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DetectionBatch(samples={}, anomalies={}, rejected={})",
            self.__len__(py)?,
            self.anomalies.len(),
            self.rejected.len()
        ))
    }
}

/// Samples handed over from Python: a numpy float64 array read in place, or
/// a copy of anything else.
enum Samples<'py> {
    Array(PyReadonlyArray1<'py, f64>),
    Owned(Vec<f64>),
}

impl Samples<'_> {
    fn as_slice(&self) -> Result<&[f64], Error> {
        match self {
            Samples::Array(array) => array
                .as_slice()
                .map_err(|error| Error::input("values", error.to_string())),
            Samples::Owned(values) => Ok(values),
        }
    }
}

/// Whether numpy was imported (the bindings never import it themselves).
fn numpy_loaded(py: Python<'_>) -> bool {
    py.import("sys")
        .and_then(|sys| sys.getattr("modules"))
        .and_then(|modules| modules.contains("numpy"))
        .unwrap_or(false)
}

/// `out`, checked: a 1-D numpy float64 array of `len` values.
fn output_array<'py>(
    out: &Bound<'py, PyAny>,
    len: usize,
) -> Result<Bound<'py, PyArray1<f64>>, Error> {
    let array = out.cast::<PyArray1<f64>>().map_err(|_| {
        Error::input(
            "out",
            format!(
                "expected a 1-D numpy float64 array, found {}",
                convert::type_name(out)
            ),
        )
    })?;
    if array.len() != len {
        return Err(Error::input(
            "out",
            format!(
                "must hold one value per sample ({len}), holds {}",
                array.len()
            ),
        ));
    }
    Ok(array.clone())
}

/// Reads `values`: a contiguous 1-D numpy float64 array without copying;
/// any other float64 buffer (`array.array('d')`, a memoryview) with one
/// copy; else any sequence of numbers.
fn samples<'py>(values: &Bound<'py, PyAny>) -> Result<Samples<'py>, Error> {
    let py = values.py();
    if numpy_loaded(py)
        && let Ok(array) = values.cast::<PyArray1<f64>>()
    {
        let array = array
            .try_readonly()
            .map_err(|error| Error::input("values", error.to_string()))?;
        if array.is_contiguous() {
            return Ok(Samples::Array(array));
        }
        return Ok(Samples::Owned(array.as_array().to_vec()));
    }
    if let Ok(buffer) = PyBuffer::<f64>::get(values) {
        let copy = buffer
            .to_vec(py)
            .map_err(|error| Error::input("values", error.to_string()))?;
        return Ok(Samples::Owned(copy));
    }
    values
        .extract::<Vec<f64>>()
        .map(Samples::Owned)
        .map_err(|_| {
            Error::input(
                "values",
                format!(
                    "expected a sequence of numbers or a float64 buffer, found {}",
                    convert::type_name(values)
                ),
            )
        })
}

/// Judges each sample by its z-score against the `window` samples before it
/// (seed 004: window 20, sensitivity 2.5).
///
/// `observe(value)` judges one sample; `observe_many(values)` a whole batch
/// (a list, a numpy array read in place, or any float64 buffer) with the
/// GIL released.
#[pyclass(module = "octrix", name = "WindowedZScore")]
#[derive(Debug)]
pub struct PyWindowedZScore {
    inner: WindowedZScore,
}

#[pymethods]
impl PyWindowedZScore {
    /// A detector with an empty window. `min_samples` (2 to `window`) is how
    /// many samples it needs before judging; a full window when None.
    #[new]
    #[pyo3(signature = (window = 20, sensitivity = 2.5, min_samples = None))]
    fn new(window: usize, sensitivity: f64, min_samples: Option<usize>) -> Result<Self, Error> {
        let config = WindowedZScoreConfig {
            window,
            sensitivity,
            min_samples,
        };
        Ok(Self {
            inner: WindowedZScore::new(&config)?,
        })
    }

    /// Judges `value`, then adds it to the window. Raises
    /// RejectedSampleError for NaN, infinite or out-of-range values (which
    /// are counted and do not touch the window).
    fn observe(&mut self, value: f64) -> Result<PyDetection, Error> {
        Ok(self.inner.observe(value)?.into())
    }

    /// Judges every sample of `values` in order, with the GIL released.
    /// Rejected samples are listed in the batch instead of raising.
    fn observe_many(
        &mut self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
    ) -> Result<DetectionBatch, Error> {
        let samples = samples(values)?;
        let slice = samples.as_slice()?;
        let detector = &mut self.inner;
        Ok(py
            .detach(|| BatchDetections::observe_all(detector, slice))
            .into())
    }

    /// How many samples were rejected so far.
    #[getter]
    fn rejected(&self) -> u64 {
        self.inner.rejected()
    }

    /// How many past samples each sample is judged against.
    #[getter]
    fn window(&self) -> usize {
        self.inner.config().window
    }

    /// How many standard deviations make a sample anomalous.
    #[getter]
    fn sensitivity(&self) -> f64 {
        self.inner.config().sensitivity
    }

    /// How many samples the window must hold before the detector judges.
    #[getter]
    fn min_samples(&self) -> usize {
        self.inner.config().min_samples()
    }

    /// Mean of the samples in the window, None while it is empty.
    #[getter]
    fn mean(&self) -> Option<f64> {
        self.inner.stats().mean()
    }

    /// Population standard deviation of the window, None while it is empty.
    #[getter]
    fn std(&self) -> Option<f64> {
        self.inner.stats().population_std_dev()
    }

    fn __repr__(&self) -> String {
        let config = self.inner.config();
        format!(
            "WindowedZScore(window={}, sensitivity={:?}, min_samples={})",
            config.window,
            config.sensitivity,
            config.min_samples()
        )
    }
}

/// One windowed z-score detector per series (metric name plus labels), for
/// many series at once; series are created on their first sample with the
/// configuration of their metric and evicted when idle.
///
/// `config` is a mapping like the YAML/TOML form: `default` and `metrics`
/// (detector settings: `window`, `sensitivity`, `min_samples`), `idle_ttl`
/// (a timedelta or `"15m"`), `max_series`.
#[pyclass(module = "octrix", name = "DetectorBank")]
#[derive(Debug)]
pub struct PyDetectorBank {
    inner: DetectorBank,
}

impl PyDetectorBank {
    fn build(config: DetectorBankConfig) -> Result<Self, Error> {
        Ok(Self {
            inner: DetectorBank::new(config)?,
        })
    }
}

#[pymethods]
impl PyDetectorBank {
    /// An empty bank; default settings when `config` is None.
    #[new]
    #[pyo3(signature = (config = None))]
    fn new(config: Option<&Bound<'_, PyAny>>) -> Result<Self, Error> {
        let config = match config {
            Some(config) if !config.is_none() => convert::config_from_py(config, "")?,
            _ => DetectorBankConfig::default(),
        };
        Self::build(config)
    }

    /// A bank configured by a YAML document.
    #[staticmethod]
    fn from_yaml(text: &str) -> Result<Self, Error> {
        Self::build(convert::config_from_yaml(text)?)
    }

    /// A bank configured by a TOML document.
    #[staticmethod]
    fn from_toml(text: &str) -> Result<Self, Error> {
        Self::build(convert::config_from_toml(text)?)
    }

    /// Judges `value` of series `metric{labels}` sampled at `at` (a
    /// timezone-aware datetime; now when None), then adds it to the
    /// series' window. The series is created on its first sample.
    #[pyo3(signature = (metric, labels, value, at = None))]
    fn observe(
        &mut self,
        metric: &str,
        labels: BTreeMap<String, String>,
        value: f64,
        at: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyDetection, Error> {
        let at = convert::timestamp_or_now(at, "at")?;
        Ok(self
            .inner
            .observe_series(metric, &labels, at, value)?
            .into())
    }

    /// Judges every sample of `values` for one series, in order, with the
    /// GIL released. `values` is a list, a numpy float64 array (read in
    /// place) or any float64 buffer; `at` is when the batch was sampled.
    /// Long batches are judged by the core's block kernel on up to
    /// `threads` threads (default: the machine's cores). The z-scores are
    /// written into `out` (a writeable, contiguous numpy float64 array as
    /// long as `values`) when given, else into a new numpy array (a list
    /// when numpy is not loaded); `z_scores()` returns that array, not a
    /// copy.
    #[pyo3(signature = (metric, labels, values, at = None, threads = None, out = None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn observe_many(
        &mut self,
        py: Python<'_>,
        metric: &str,
        labels: BTreeMap<String, String>,
        values: &Bound<'_, PyAny>,
        at: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<DetectionBatch> {
        let at = convert::timestamp_or_now(at, "at")?;
        let threads = match threads {
            Some(0) => return Err(Error::input("threads", "must be at least 1, got 0").into()),
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let samples = samples(values)?;
        let slice = samples.as_slice()?;
        let bank = &mut self.inner;
        let labels: Labels = labels;
        let mut observe = |z: &mut [f64]| {
            py.detach(|| {
                let id = bank.resolve(metric, &labels, at)?;
                bank.observe_many_into(id, at, slice, z, threads)
            })
            .map_err(Error::from)
        };
        let array = match out {
            Some(out) if !out.is_none() => Some(output_array(out, slice.len())?),
            // `numpy.empty`: no zeroing, the kernel writes every value.
            _ if numpy_loaded(py) => Some(
                py.import("numpy")?
                    .getattr("empty")?
                    .call1((slice.len(),))?
                    .cast_into::<PyArray1<f64>>()?,
            ),
            _ => None,
        };
        let (z, summary) = match array {
            Some(array) => {
                let summary = {
                    let mut writer = array
                        .try_readwrite()
                        .map_err(|error| Error::input("out", error.to_string()))?;
                    let z = writer
                        .as_slice_mut()
                        .map_err(|error| Error::input("out", error.to_string()))?;
                    observe(z)?
                };
                (ZScores::Array(array.unbind()), summary)
            }
            None => {
                let mut z = vec![0.0; slice.len()];
                let summary = observe(&mut z)?;
                (ZScores::Vec(z), summary)
            }
        };
        Ok(DetectionBatch {
            z,
            anomalies: summary.anomalies,
            rejected: summary.rejected,
        })
    }

    /// Whether the bank holds series `metric{labels}`.
    fn contains(&self, metric: &str, labels: BTreeMap<String, String>) -> bool {
        self.inner.find(metric, &labels).is_some()
    }

    /// Evicts every series idle for longer than `idle_ttl` before `now`
    /// (now when None); returns how many.
    #[pyo3(signature = (now = None))]
    fn evict_idle(&mut self, now: Option<&Bound<'_, PyAny>>) -> Result<usize, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        Ok(self.inner.evict_idle(now))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Series created and evicted, new series refused, samples rejected.
    #[getter]
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.counters())
    }

    /// The configuration, as a dict (`idle_ttl` as an ISO 8601 duration).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, self.inner.config())
    }

    /// Bytes one series of `metric` occupies, key aside.
    fn bytes_per_series(&self, metric: &str) -> usize {
        self.inner.bytes_per_series(metric)
    }

    fn __repr__(&self) -> String {
        format!("DetectorBank(series={})", self.inner.len())
    }
}

/// Registers the detection classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyDetection>()?;
    module.add_class::<DetectionBatch>()?;
    module.add_class::<PyWindowedZScore>()?;
    module.add_class::<PyDetectorBank>()?;
    Ok(())
}
