//! Typed responses of the Prometheus HTTP API (`/api/v1/...`).
//!
//! Every answer comes in an envelope, `{"status": "success", "data": ...}` or
//! `{"status": "error", "errorType": ..., "error": ...}`, read by
//! [`Envelope`]. Query results are a [`QueryData`]: an instant vector, a
//! range matrix, a scalar or a string.
//!
//! Sample values travel as strings (`"0.5"`, `"1e+00"`, `"NaN"`, `"+Inf"`)
//! and are parsed straight into `f64` by a visitor, without an intermediate
//! `String`; a [`Sample`] is just two `f64`s, so a large matrix parses with
//! one allocation per series for its samples.
//!
//! ```
//! use octrix_prom::prometheus::{Envelope, QueryData};
//!
//! let body = br#"{"status":"success","data":{"resultType":"vector","result":[
//!     {"metric":{"__name__":"up","job":"node"},"value":[1795424866.106,"1"]}]}}"#;
//! let envelope: Envelope<QueryData> = serde_json::from_slice(body).unwrap();
//! let QueryData::Vector(samples) = envelope.data.unwrap() else { panic!() };
//! assert_eq!(samples[0].metric["job"], "node");
//! assert_eq!(samples[0].value.value, 1.0);
//! assert_eq!(samples[0].value.timestamp, 1795424866.106);
//! ```

use std::fmt;

use octrix_core::{Labels, Timestamp};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The envelope around every Prometheus API answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// `success` or `error`.
    pub status: ResponseStatus,
    /// The payload, present on success.
    pub data: Option<T>,
    /// Prometheus's error class (`bad_data`, `execution`, ...), on error.
    #[serde(default)]
    pub error_type: Option<String>,
    /// Prometheus's error message, on error.
    #[serde(default)]
    pub error: Option<String>,
    /// Warnings that came with the answer (e.g. from remote reads).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The `status` field of an [`Envelope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseStatus {
    /// The request succeeded.
    Success,
    /// The request failed; `errorType` and `error` say why.
    Error,
}

/// One sample: an evaluation timestamp and a value.
///
/// On the wire it is `[1795424866.106, "1"]`: the timestamp in seconds as a
/// JSON number, the value as a string so that `NaN` and `±Inf` survive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the Unix epoch, with millisecond precision.
    pub timestamp: f64,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The timestamp as a [`Timestamp`], rounded to the millisecond;
    /// `None` if it is not finite or out of range.
    pub fn time(&self) -> Option<Timestamp> {
        seconds_to_timestamp(self.timestamp)
    }
}

/// Converts Unix seconds (as Prometheus writes them) to a [`Timestamp`].
fn seconds_to_timestamp(seconds: f64) -> Option<Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    let millis = (seconds * 1000.0).round();
    if millis.abs() > 9.0e15 {
        return None;
    }
    Timestamp::from_millisecond(millis as i64).ok()
}

/// Parses a sample value as Prometheus formats it: Go's `strconv.FormatFloat`
/// output, including `NaN`, `+Inf` and `-Inf`.
///
/// ```
/// use octrix_prom::prometheus::parse_value;
///
/// assert_eq!(parse_value("1e+00"), Some(1.0));
/// assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
/// assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
/// assert!(parse_value("NaN").unwrap().is_nan());
/// assert_eq!(parse_value("one"), None);
/// ```
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust's parser also accepts "inf" and "infinity" in any case, which
        // Prometheus never sends; finite numbers parse identically.
        _ => text.parse().ok(),
    }
}

/// Reads a sample value from a JSON string without allocating.
struct ValueVisitor;

impl Visitor<'_> for ValueVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sample value as a string, such as \"0.5\", \"NaN\" or \"+Inf\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse_value(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// Deserializes a sample value string into `f64`.
pub(crate) fn deserialize_value<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_str(ValueVisitor)
}

struct SampleVisitor;

impl<'de> Visitor<'de> for SampleVisitor {
    type Value = Sample;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sample [timestamp, \"value\"]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
        let timestamp: f64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let value = seq
            .next_element::<SampleValue>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?
            .0;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Sample { timestamp, value })
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(SampleVisitor)
    }
}

/// A sample value, deserialized from its string form.
struct SampleValue(f64);

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_value(d).map(SampleValue)
    }
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstantSample {
    /// The series' labels, `__name__` included when the result has one.
    pub metric: Labels,
    /// Its sample at the evaluation time.
    pub value: Sample,
}

/// One series of a range matrix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RangeSeries {
    /// The series' labels, `__name__` included when the result has one.
    pub metric: Labels,
    /// Its samples, oldest first.
    pub values: Vec<Sample>,
}

/// A string result, `[timestamp, "text"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringSample {
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    /// The string.
    pub value: String,
}

impl<'de> Deserialize<'de> for StringSample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (timestamp, value) = <(f64, String)>::deserialize(d)?;
        Ok(Self { timestamp, value })
    }
}

/// The `data` of a query answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryData {
    /// An instant vector: one sample per series.
    Vector(Vec<InstantSample>),
    /// A range matrix: many samples per series.
    Matrix(Vec<RangeSeries>),
    /// A single number.
    Scalar(Sample),
    /// A string literal.
    String(StringSample),
}

impl QueryData {
    /// The result type's name as Prometheus spells it.
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
            QueryData::Scalar(_) => "scalar",
            QueryData::String(_) => "string",
        }
    }
}

/// Version information from `/api/v1/status/buildinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// Prometheus version, e.g. `2.42.0+ds`.
    pub version: String,
    /// Source revision.
    #[serde(default)]
    pub revision: String,
    /// Source branch.
    #[serde(default)]
    pub branch: String,
    /// Who built it.
    #[serde(default)]
    pub build_user: String,
    /// When it was built.
    #[serde(default)]
    pub build_date: String,
    /// Go version used.
    #[serde(default)]
    pub go_version: String,
}

/// State of an alert in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's `for` duration.
    Pending,
    /// The alert is firing.
    Firing,
    /// The rule is not active (rules API only).
    Inactive,
}

/// An active alert from `/api/v1/alerts` or inside a rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    /// The alert's labels, `alertname` included.
    pub labels: Labels,
    /// Its rendered annotations.
    #[serde(default)]
    pub annotations: Labels,
    /// Pending or firing.
    pub state: AlertState,
    /// Since when the condition has held.
    #[serde(default)]
    pub active_at: Option<Timestamp>,
    /// The expression's value when last evaluated.
    #[serde(deserialize_with = "deserialize_value")]
    pub value: f64,
}

/// `data` of `/api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct AlertsData {
    pub(crate) alerts: Vec<ActiveAlert>,
}

/// `data` of `/api/v1/rules`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct RulesData {
    pub(crate) groups: Vec<RuleGroup>,
}

/// A group of rules from `/api/v1/rules`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// File it was loaded from.
    pub file: String,
    /// Its rules, in evaluation order.
    pub rules: Vec<Rule>,
    /// Evaluation interval, in seconds.
    pub interval: f64,
    /// Time of the last evaluation.
    #[serde(default)]
    pub last_evaluation: Option<Timestamp>,
    /// Duration of the last evaluation, in seconds.
    #[serde(default)]
    pub evaluation_time: f64,
}

/// A recording or alerting rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Rule {
    /// A recording rule.
    Recording(RecordingRule),
    /// An alerting rule.
    Alerting(AlertingRule),
}

impl Rule {
    /// The rule's name (the recorded metric or the alert name).
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    /// The rule's health: `ok`, `err` or `unknown`.
    pub fn health(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.health,
            Rule::Alerting(r) => &r.health,
        }
    }
}

/// A recording rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingRule {
    /// The recorded metric name.
    pub name: String,
    /// The PromQL expression.
    pub query: String,
    /// Labels added to the result.
    #[serde(default)]
    pub labels: Labels,
    /// `ok`, `err` or `unknown`.
    pub health: String,
    /// The last evaluation error, if any.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// An alerting rule and its active alerts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertingRule {
    /// The alert name.
    pub name: String,
    /// The PromQL expression.
    pub query: String,
    /// How long the condition must hold before firing, in seconds.
    #[serde(default)]
    pub duration: f64,
    /// Labels added to its alerts.
    #[serde(default)]
    pub labels: Labels,
    /// Annotation templates.
    #[serde(default)]
    pub annotations: Labels,
    /// Its active alerts.
    #[serde(default)]
    pub alerts: Vec<ActiveAlert>,
    /// `inactive`, `pending` or `firing`.
    pub state: AlertState,
    /// `ok`, `err` or `unknown`.
    pub health: String,
    /// The last evaluation error, if any.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// `data` of `/api/v1/targets`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// Targets being scraped.
    pub active_targets: Vec<ActiveTarget>,
    /// Targets dropped by relabelling.
    #[serde(default)]
    pub dropped_targets: Vec<DroppedTarget>,
}

/// Health of a scrape target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetHealth {
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
    /// Not scraped yet.
    Unknown,
}

/// A target being scraped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    /// Labels before relabelling.
    #[serde(default)]
    pub discovered_labels: Labels,
    /// Labels after relabelling (`job`, `instance`, ...).
    pub labels: Labels,
    /// The scrape pool (job).
    pub scrape_pool: String,
    /// The URL scraped.
    pub scrape_url: String,
    /// The last scrape error, empty when it succeeded.
    #[serde(default)]
    pub last_error: String,
    /// When it was last scraped.
    #[serde(default)]
    pub last_scrape: Option<Timestamp>,
    /// How long the last scrape took, in seconds.
    #[serde(default)]
    pub last_scrape_duration: f64,
    /// Health after the last scrape.
    pub health: TargetHealth,
}

/// A target dropped by relabelling.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTarget {
    /// Labels before relabelling.
    pub discovered_labels: Labels,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_prometheus_formats_them() {
        assert_eq!(parse_value("0.5"), Some(0.5));
        assert_eq!(parse_value("1e+00"), Some(1.0));
        assert_eq!(parse_value("-2.5e-03"), Some(-0.0025));
        assert_eq!(parse_value("Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("1,5"), None);
    }

    #[test]
    fn sample_rejects_wrong_shapes() {
        let ok: Sample = serde_json::from_str(r#"[1.5, "NaN"]"#).unwrap();
        assert_eq!(ok.timestamp, 1.5);
        assert!(ok.value.is_nan());
        for bad in [
            r#"[1.5]"#,
            r#"[1.5, "x"]"#,
            r#"[1.5, 2]"#,
            r#"[1.5, "1", 3]"#,
            r#"{"t": 1}"#,
        ] {
            assert!(serde_json::from_str::<Sample>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaped_values_parse_too() {
        // serde_json hands escaped strings to visit_str from a scratch buffer.
        let s: Sample = serde_json::from_str(r#"[1, "\u0031.5"]"#).unwrap();
        assert_eq!(s.value, 1.5);
    }

    #[test]
    fn sample_time_rounds_to_millis() {
        let s = Sample {
            timestamp: 1795424866.106,
            value: 1.0,
        };
        assert_eq!(s.time().unwrap().as_millisecond(), 1_795_424_866_106);
        let bad = Sample {
            timestamp: f64::NAN,
            value: 1.0,
        };
        assert_eq!(bad.time(), None);
    }

    #[test]
    fn result_type_may_follow_result() {
        let data: QueryData =
            serde_json::from_str(r#"{"result": [12.5, "3"], "resultType": "scalar"}"#).unwrap();
        assert_eq!(
            data,
            QueryData::Scalar(Sample {
                timestamp: 12.5,
                value: 3.0
            })
        );
        assert_eq!(data.result_type(), "scalar");
    }
}
