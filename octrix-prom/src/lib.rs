//! # octrix-prom
//!
//! Octrix's Prometheus adapter: how Octrix reads the world through
//! Prometheus and reports itself to Prometheus.
//!
//! * [`prometheus`]: a typed client for the Prometheus HTTP API (instant and
//!   range queries, series, labels, alerts, rules, targets, build info,
//!   health), with errors that keep Prometheus's `errorType` and message.
//! * [`source`]: [`PrometheusSource`], the core's
//!   [`MetricSource`](octrix_core::metrics::MetricSource) port answered by
//!   named, configurable PromQL templates; it reports an outage instead of
//!   inventing data.
//! * [`alertmanager`]: Alertmanager's webhook payload (version 4), converted
//!   to the core's [`Alert`](octrix_core::alert::Alert)s, and an API v2
//!   client for alerts and silences.
//! * [`exposition`]: [`OctrixMetrics`], Octrix's own metrics on a
//!   `prometheus-client` registry, rendered for `/metrics`.
//! * [`http`]: connection settings shared by the clients (timeouts, bearer
//!   or basic authentication, extra headers).
//! * [`template`]: `$name` placeholders in PromQL.
//!
//! Prometheus recording and alerting rules for Octrix itself are in
//! `docs/prometheus/octrix-rules.yml`.

pub mod alertmanager;
pub mod exposition;
pub mod http;
pub mod prometheus;
pub mod source;
pub mod template;

pub use alertmanager::{AlertmanagerClient, WebhookPayload};
pub use exposition::OctrixMetrics;
pub use prometheus::PrometheusClient;
pub use source::{PrometheusSource, PrometheusSourceConfig};
