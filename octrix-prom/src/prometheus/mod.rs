//! A client for the Prometheus HTTP API.
//!
//! [`PrometheusClient`] runs instant and range queries (GET, or a POSTed form
//! when the query is long), and reads series, label names and values,
//! alerts, rules, targets, build information, health and readiness. Answers
//! are typed ([`QueryData`], [`Targets`], ...) and failures keep what
//! Prometheus said: a bad query is [`Error::Api`] with
//! [`ErrorKind::BadData`] and Prometheus's message, a failed evaluation is
//! [`ErrorKind::Execution`] (HTTP 422), a refused connection or a timeout is
//! [`Error::Transport`].
//!
//! ```no_run
//! use octrix_prom::prometheus::{PrometheusClient, QueryData};
//!
//! # async fn demo() -> Result<(), octrix_prom::prometheus::Error> {
//! let client = PrometheusClient::from_url("http://localhost:9090")?;
//! if let QueryData::Vector(samples) = client.query("up", None).await? {
//!     for s in samples {
//!         println!("{:?} = {}", s.metric, s.value.value);
//!     }
//! }
//! # Ok(()) }
//! ```

mod response;

use std::time::Duration;

use octrix_core::{Labels, Timestamp};
use reqwest::{Client, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use response::{
    ActiveAlert, ActiveTarget, AlertState, AlertingRule, BuildInfo, DroppedTarget, Envelope,
    InstantSample, QueryData, RangeSeries, RecordingRule, ResponseStatus, Rule, RuleGroup, Sample,
    StringSample, TargetHealth, Targets, parse_value,
};

use crate::http::{self, HttpConfig};

/// Prometheus's class of an API error (`errorType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `bad_data` (HTTP 400): the request was malformed, e.g. bad PromQL.
    BadData,
    /// `execution` (HTTP 422): the query could not be evaluated.
    Execution,
    /// `timeout` (HTTP 503): the query ran out of time.
    Timeout,
    /// `canceled`: the query was cancelled.
    Canceled,
    /// `internal` (HTTP 500).
    Internal,
    /// `unavailable` (HTTP 503).
    Unavailable,
    /// `not_found` (HTTP 404).
    NotFound,
    /// Any other `errorType`, as sent.
    Other(String),
}

impl ErrorKind {
    /// Reads Prometheus's `errorType`.
    pub fn from_error_type(error_type: &str) -> Self {
        match error_type {
            "bad_data" => Self::BadData,
            "execution" => Self::Execution,
            "timeout" => Self::Timeout,
            "canceled" => Self::Canceled,
            "internal" => Self::Internal,
            "unavailable" => Self::Unavailable,
            "not_found" => Self::NotFound,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The `errorType` as Prometheus spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BadData => "bad_data",
            Self::Execution => "execution",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
            Self::Other(other) => other,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a Prometheus API call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: the connection failed or timed out, or the client could
    /// not be built.
    #[error(transparent)]
    Transport(#[from] http::Error),
    /// Prometheus answered with an API error; `message` is its `error`.
    #[error("Prometheus error {kind} (HTTP {status}): {message}")]
    Api {
        /// The HTTP status code (400, 422, 503, ...).
        status: u16,
        /// Prometheus's `errorType`.
        kind: ErrorKind,
        /// Prometheus's `error` message, verbatim.
        message: String,
    },
    /// A non-success HTTP status without an API error body (e.g. `503
    /// Service Unavailable` while starting, or a proxy's error page).
    #[error("Prometheus answered HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer was not what the API documents.
    #[error("cannot decode Prometheus's answer from {endpoint}: {source}")]
    Decode {
        /// The API path.
        endpoint: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The query returned another result type than the caller needs.
    #[error("expected a {expected} result, got a {found}")]
    UnexpectedResultType {
        /// What was needed.
        expected: &'static str,
        /// What came back.
        found: &'static str,
    },
}

impl Error {
    /// Whether the failure means Prometheus cannot serve now (no connection,
    /// timeout, 5xx, or an answer that is not Prometheus's), as opposed to a
    /// request it rejected.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Transport(e) => !matches!(
                e,
                http::Error::InvalidUrl { .. } | http::Error::InvalidHeader { .. }
            ),
            Error::Api { status, .. } | Error::Status { status, .. } => *status >= 500,
            Error::Decode { .. } => true,
            Error::UnexpectedResultType { .. } => false,
        }
    }

    /// Prometheus's error class, for API errors.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// When queries are sent as a POSTed form instead of GET parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMethod {
    /// Always GET.
    Get,
    /// Always POST (`application/x-www-form-urlencoded`).
    Post,
    /// GET, or POST when the encoded parameters exceed
    /// [`PrometheusConfig::post_threshold_bytes`].
    Auto,
}

/// Settings of a [`PrometheusClient`], as a user writes them.
///
/// ```
/// use octrix_prom::prometheus::{PrometheusConfig, QueryMethod};
///
/// let config: PrometheusConfig = serde_json::from_str(
///     r#"{"url": "http://prometheus:9090", "query_timeout_ms": 5000}"#,
/// ).unwrap();
/// assert_eq!(config.http.url, "http://prometheus:9090");
/// assert_eq!(config.query_method, QueryMethod::Auto);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrometheusConfig {
    /// URL, timeouts, authentication and headers.
    #[serde(flatten)]
    pub http: HttpConfig,
    /// GET, POST or automatic.
    pub query_method: QueryMethod,
    /// With [`QueryMethod::Auto`], queries whose encoded parameters are
    /// longer than this are POSTed.
    pub post_threshold_bytes: usize,
    /// Evaluation timeout sent with each query (Prometheus's `timeout`
    /// parameter); Prometheus's own default applies when unset.
    pub query_timeout_ms: Option<u64>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            query_method: QueryMethod::Auto,
            post_threshold_bytes: 2048,
            query_timeout_ms: None,
        }
    }
}

impl PrometheusConfig {
    /// Settings for the Prometheus at `url`, all else default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            http: HttpConfig::new(url),
            ..Self::default()
        }
    }
}

/// The time range and resolution of a range query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First evaluation time.
    pub start: Timestamp,
    /// Last evaluation time (inclusive).
    pub end: Timestamp,
    /// Time between evaluations.
    pub step: Duration,
}

/// A client for one Prometheus server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: Client,
    base: Url,
    config: PrometheusConfig,
}

/// Parameters of one API call.
type Params = Vec<(&'static str, String)>;

impl PrometheusClient {
    /// A client with these settings.
    pub fn new(config: PrometheusConfig) -> Result<Self, Error> {
        let (http, base) = config.http.build()?;
        Ok(Self { http, base, config })
    }

    /// A client for `url` with default settings.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Self::new(PrometheusConfig::new(url))
    }

    /// The base URL, ending with `/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The settings this client was built from.
    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// Evaluates `promql` at `time` (Prometheus's "now" when `None`).
    pub async fn query(&self, promql: &str, time: Option<Timestamp>) -> Result<QueryData, Error> {
        let mut params: Params = vec![("query", promql.to_owned())];
        if let Some(time) = time {
            params.push(("time", format_time(time)));
        }
        self.push_timeout(&mut params);
        self.call_query("api/v1/query", params).await
    }

    /// Evaluates `promql` and requires an instant vector (a scalar is
    /// returned as one sample without labels).
    pub async fn query_vector(
        &self,
        promql: &str,
        time: Option<Timestamp>,
    ) -> Result<Vec<InstantSample>, Error> {
        match self.query(promql, time).await? {
            QueryData::Vector(samples) => Ok(samples),
            QueryData::Scalar(sample) => Ok(vec![InstantSample {
                metric: Labels::new(),
                value: sample,
            }]),
            other => Err(Error::UnexpectedResultType {
                expected: "vector",
                found: other.result_type(),
            }),
        }
    }

    /// Evaluates `promql` over a range; the result is a matrix.
    pub async fn query_range(&self, promql: &str, range: Range) -> Result<Vec<RangeSeries>, Error> {
        let mut params: Params = vec![
            ("query", promql.to_owned()),
            ("start", format_time(range.start)),
            ("end", format_time(range.end)),
            ("step", format_seconds(range.step)),
        ];
        self.push_timeout(&mut params);
        match self.call_query("api/v1/query_range", params).await? {
            QueryData::Matrix(series) => Ok(series),
            other => Err(Error::UnexpectedResultType {
                expected: "matrix",
                found: other.result_type(),
            }),
        }
    }

    /// Label sets of the series matching any of the `matchers` (e.g.
    /// `up{job="node"}`), optionally within a time range.
    pub async fn series(
        &self,
        matchers: &[&str],
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<Vec<Labels>, Error> {
        let params = match_params(matchers, start, end);
        let post = self.use_post_for(&params);
        self.call("api/v1/series", params, post).await
    }

    /// Label names, optionally only those of series matching `matchers`.
    pub async fn label_names(
        &self,
        matchers: &[&str],
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<Vec<String>, Error> {
        let params = match_params(matchers, start, end);
        let post = self.use_post_for(&params);
        self.call("api/v1/labels", params, post).await
    }

    /// Values of label `name`, optionally only in series matching `matchers`.
    pub async fn label_values(
        &self,
        name: &str,
        matchers: &[&str],
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<Vec<String>, Error> {
        let params = match_params(matchers, start, end);
        let mut url = http::join(&self.base, "api/v1/label/");
        url.path_segments_mut()
            .map_err(|()| {
                Error::Transport(http::Error::InvalidUrl {
                    url: self.base.to_string(),
                    reason: "cannot be a base".to_owned(),
                })
            })?
            .pop_if_empty()
            .push(name)
            .push("values");
        self.call_url(url, params, false).await
    }

    /// Alerts that are pending or firing.
    pub async fn alerts(&self) -> Result<Vec<ActiveAlert>, Error> {
        let data: response::AlertsData = self.call("api/v1/alerts", Vec::new(), false).await?;
        Ok(data.alerts)
    }

    /// Rule groups with their recording and alerting rules.
    pub async fn rules(&self) -> Result<Vec<RuleGroup>, Error> {
        let data: response::RulesData = self.call("api/v1/rules", Vec::new(), false).await?;
        Ok(data.groups)
    }

    /// Scrape targets and their health.
    pub async fn targets(&self) -> Result<Targets, Error> {
        self.call("api/v1/targets", Vec::new(), false).await
    }

    /// Version information.
    pub async fn build_info(&self) -> Result<BuildInfo, Error> {
        self.call("api/v1/status/buildinfo", Vec::new(), false)
            .await
    }

    /// Whether Prometheus is healthy (`/-/healthy` answers 200).
    ///
    /// An answer with another status is `Ok(false)`; no answer is an error.
    pub async fn healthy(&self) -> Result<bool, Error> {
        self.probe("-/healthy").await
    }

    /// Whether Prometheus is ready to serve queries (`/-/ready` answers
    /// 200; it answers 503 while starting).
    pub async fn ready(&self) -> Result<bool, Error> {
        self.probe("-/ready").await
    }

    async fn probe(&self, path: &str) -> Result<bool, Error> {
        let url = http::join(&self.base, path);
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| http::classify(&url, e))?;
        Ok(response.status() == StatusCode::OK)
    }

    fn push_timeout(&self, params: &mut Params) {
        if let Some(ms) = self.config.query_timeout_ms {
            params.push(("timeout", format!("{ms}ms")));
        }
    }

    fn use_post_for(&self, params: &[(&'static str, String)]) -> bool {
        match self.config.query_method {
            QueryMethod::Get => false,
            QueryMethod::Post => true,
            QueryMethod::Auto => {
                let encoded: usize = params
                    .iter()
                    .map(|(k, v)| k.len() + 2 + encoded_len(v))
                    .sum();
                encoded > self.config.post_threshold_bytes
            }
        }
    }

    async fn call_query(&self, path: &str, params: Params) -> Result<QueryData, Error> {
        let post = self.use_post_for(&params);
        self.call(path, params, post).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        params: Params,
        post: bool,
    ) -> Result<T, Error> {
        self.call_url(http::join(&self.base, path), params, post)
            .await
    }

    async fn call_url<T: DeserializeOwned>(
        &self,
        url: Url,
        params: Params,
        post: bool,
    ) -> Result<T, Error> {
        let request = if post {
            self.http.post(url.clone()).form(&params)
        } else {
            self.http.get(url.clone()).query(&params)
        };
        let response = request.send().await.map_err(|e| http::classify(&url, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::classify(&url, e))?;
        decode_answer(url.path(), status.as_u16(), &body)
    }
}

/// Turns an HTTP answer of the API into its data or an [`Error`].
pub(crate) fn decode_answer<T: DeserializeOwned>(
    endpoint: &str,
    status: u16,
    body: &[u8],
) -> Result<T, Error> {
    let success = (200..300).contains(&status);
    let envelope: Envelope<T> = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(source) => {
            if !success {
                // Not an API error body: perhaps "Service Unavailable" text,
                // or an error page of a proxy in front of Prometheus. An
                // error body with unexpected `data` is still an API error.
                if let Ok(error) = serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(body)
                    && let Some(e) = api_error(status, &error)
                {
                    return Err(e);
                }
                return Err(Error::Status {
                    status,
                    body: body_excerpt(body),
                });
            }
            return Err(Error::Decode {
                endpoint: endpoint.to_owned(),
                source,
            });
        }
    };
    if let Some(error) = api_error(status, &envelope) {
        return Err(error);
    }
    if !success {
        return Err(Error::Status {
            status,
            body: body_excerpt(body),
        });
    }
    envelope.data.ok_or_else(|| Error::Decode {
        endpoint: endpoint.to_owned(),
        source: serde::de::Error::missing_field("data"),
    })
}

fn api_error<T>(status: u16, envelope: &Envelope<T>) -> Option<Error> {
    if envelope.status == ResponseStatus::Success {
        return None;
    }
    Some(Error::Api {
        status,
        kind: ErrorKind::from_error_type(envelope.error_type.as_deref().unwrap_or("")),
        message: envelope.error.clone().unwrap_or_default(),
    })
}

/// The first 512 bytes of a body, as text.
fn body_excerpt(body: &[u8]) -> String {
    let end = body.len().min(512);
    String::from_utf8_lossy(&body[..end]).trim().to_owned()
}

fn match_params(matchers: &[&str], start: Option<Timestamp>, end: Option<Timestamp>) -> Params {
    let mut params: Params = matchers
        .iter()
        .map(|m| ("match[]", (*m).to_owned()))
        .collect();
    if let Some(start) = start {
        params.push(("start", format_time(start)));
    }
    if let Some(end) = end {
        params.push(("end", format_time(end)));
    }
    params
}

/// Unix seconds with millisecond precision, as Prometheus accepts them.
fn format_time(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// A duration in seconds, as Prometheus accepts it for `step`.
fn format_seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// Length of `value` once form-encoded.
fn encoded_len(value: &str) -> usize {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*' | b' ') {
                1
            } else {
                3
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_steps_format_for_prometheus() {
        let t = Timestamp::from_millisecond(1_795_424_866_106).unwrap();
        assert_eq!(format_time(t), "1795424866.106");
        let before_epoch = Timestamp::from_millisecond(-1_500).unwrap();
        assert_eq!(format_time(before_epoch), "-2.500");
        assert_eq!(format_seconds(Duration::from_secs(15)), "15");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.500");
    }

    #[test]
    fn auto_method_posts_long_queries_only() {
        let client = PrometheusClient::new(PrometheusConfig {
            post_threshold_bytes: 40,
            ..PrometheusConfig::new("http://localhost:9090")
        })
        .unwrap();
        assert!(!client.use_post_for(&[("query", "up".to_owned())]));
        assert!(client.use_post_for(&[("query", "sum(rate(x{a=\"b\"}[5m]))".repeat(2))]));
    }

    #[test]
    fn errors_keep_prometheus_messages() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#;
        let error = decode_answer::<QueryData>("/api/v1/query", 400, body).unwrap_err();
        match &error {
            Error::Api {
                status,
                kind,
                message,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(*kind, ErrorKind::BadData);
                assert!(message.ends_with("unclosed left parenthesis"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!error.is_unavailable());
        let text =
            decode_answer::<QueryData>("/api/v1/query", 503, b"Service Unavailable").unwrap_err();
        assert!(
            matches!(&text, Error::Status { status: 503, body } if body == "Service Unavailable")
        );
        assert!(text.is_unavailable());
        let garbage = decode_answer::<QueryData>("/api/v1/query", 200, b"<html>").unwrap_err();
        assert!(matches!(garbage, Error::Decode { .. }));
    }
}
