//! Integration tests against a real Prometheus, node-exporter and
//! Alertmanager, started by `scripts/prom-stack.sh start` (which
//! `scripts/test-prom` runs). They read the stack's addresses from the
//! environment (`OCTRIX_TEST_*`, written to `target/prom-stack.env`).

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use octrix_core::alert::AlertStatus;
use octrix_core::metrics::{MetricSource, ServiceSelector, SourceError};
use octrix_core::{Labels, Timestamp};
use octrix_prom::OctrixMetrics;
use octrix_prom::alertmanager::{
    AlertFilter, AlertmanagerAlertState, AlertmanagerClient, Matcher, PostableAlert, Silence,
    SilenceState, WebhookPayload,
};
use octrix_prom::prometheus::{Error, ErrorKind, PrometheusClient, QueryData, Range, Rule};
use octrix_prom::source::{PrometheusSource, PrometheusSourceConfig, SourceStatus};
use tokio::sync::mpsc;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set. These tests need the real Prometheus stack: run scripts/test-prom, \
             or scripts/prom-stack.sh start and then `set -a; . target/prom-stack.env; set +a`"
        )
    })
}

fn prometheus_url() -> String {
    env("OCTRIX_TEST_PROMETHEUS_URL")
}

fn alertmanager_url() -> String {
    env("OCTRIX_TEST_ALERTMANAGER_URL")
}

/// A name no other test run has used, for alerts and silences.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{nanos}")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    octrix_core::labels::from_pairs(pairs.iter().copied())
}

/// Polls `check` every 250 ms until it returns `Some`, or panics after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// MemAvailable / MemTotal of this machine, read directly from the kernel.
fn meminfo_utilisation() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let field = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    1.0 - field("MemAvailable:") / field("MemTotal:")
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn node_metrics_come_from_the_real_node_exporter() {
    let source = PrometheusSource::new(PrometheusSourceConfig::new(prometheus_url())).unwrap();
    let nodes = source.node_metrics().await.unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let node = &nodes[0];
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(node.node, hostname.trim());
    assert!((0.0..=1.0).contains(&node.cpu_utilisation), "{node:?}");
    assert!(
        node.memory_utilisation > 0.0 && node.memory_utilisation < 1.0,
        "{node:?}"
    );
    // The same machine, seen by the kernel a moment later (builds running
    // beside the tests may move it a little).
    assert!(
        (node.memory_utilisation - meminfo_utilisation()).abs() < 0.1,
        "{} vs /proc/meminfo {}",
        node.memory_utilisation,
        meminfo_utilisation()
    );
    // node-exporter skips some root filesystems (overlay, in containers):
    // then the measure is absent, and NaN says so.
    let root_fs = source
        .client()
        .query_vector(r#"node_filesystem_size_bytes{mountpoint="/"}"#, None)
        .await
        .unwrap();
    if root_fs.is_empty() {
        assert!(node.disk_utilisation.is_nan(), "{node:?}");
    } else {
        assert!(
            node.disk_utilisation > 0.0 && node.disk_utilisation < 1.0,
            "{node:?}"
        );
    }
    assert!(node.network_receive_bytes_per_second >= 0.0, "{node:?}");
    assert!(node.network_transmit_bytes_per_second >= 0.0, "{node:?}");
    assert_eq!(source.status(), SourceStatus::Up);
    assert_eq!(source.check().await, SourceStatus::Up);
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn queries_series_labels_targets_rules_and_alerts() {
    let client = PrometheusClient::from_url(&prometheus_url()).unwrap();
    assert!(client.ready().await.unwrap());
    assert!(client.healthy().await.unwrap());
    assert!(client.build_info().await.unwrap().version.starts_with("2."));

    let up = client
        .query_vector(r#"up{job="node"}"#, None)
        .await
        .unwrap();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value.value, 1.0);
    let evaluated = up[0].value.time().unwrap();
    let now = Timestamp::now();
    assert!(
        (now - evaluated).get_seconds().abs() < 60,
        "{evaluated} vs {now}"
    );

    let range = Range {
        start: now - Duration::from_secs(4),
        end: now,
        step: Duration::from_secs(1),
    };
    let series = client
        .query_range(r#"up{job="node"}"#, range)
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    assert!(series[0].values.len() >= 4, "{:?}", series[0].values);
    assert!(
        series[0]
            .values
            .windows(2)
            .all(|w| w[1].timestamp - w[0].timestamp == 1.0)
    );

    let QueryData::Scalar(two) = client.query("1 + 1", None).await.unwrap() else {
        panic!("1 + 1 is a scalar")
    };
    assert_eq!(two.value, 2.0);
    let QueryData::Scalar(nan) = client.query("0 / 0", None).await.unwrap() else {
        panic!()
    };
    assert!(nan.value.is_nan());
    let QueryData::Scalar(inf) = client.query("1 / 0", None).await.unwrap() else {
        panic!()
    };
    assert_eq!(inf.value, f64::INFINITY);
    let QueryData::String(s) = client.query(r#""octrix""#, None).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.value, "octrix");

    let node_series = client
        .series(&[r#"up{job="node"}"#], None, None)
        .await
        .unwrap();
    assert_eq!(node_series.len(), 1);
    assert_eq!(node_series[0]["__name__"], "up");
    let names = client.label_names(&[], None, None).await.unwrap();
    assert!(names.iter().any(|n| n == "nodename"), "{names:?}");
    let jobs = client.label_values("job", &[], None, None).await.unwrap();
    for job in ["node", "octrix", "prometheus"] {
        assert!(jobs.iter().any(|j| j == job), "{jobs:?}");
    }

    let targets = client.targets().await.unwrap();
    let pools: Vec<&str> = targets
        .active_targets
        .iter()
        .map(|t| t.scrape_pool.as_str())
        .collect();
    assert!(
        pools.contains(&"node") && pools.contains(&"prometheus"),
        "{pools:?}"
    );

    // Octrix's own rules are loaded by the stack and healthy.
    let groups = client.rules().await.unwrap();
    let octrix = groups
        .iter()
        .find(|g| g.name == "octrix-alerts")
        .expect("octrix rules loaded");
    let names: Vec<&str> = octrix.rules.iter().map(Rule::name).collect();
    assert!(
        names.contains(&"OctrixMetricSourceUnavailable"),
        "{names:?}"
    );
    assert!(octrix.rules.iter().all(|r| matches!(r, Rule::Alerting(_))));

    let probe = eventually(
        "the stack's probe alert to fire",
        Duration::from_secs(20),
        || async {
            let alerts = client.alerts().await.unwrap();
            alerts
                .into_iter()
                .find(|a| a.labels["alertname"] == "OctrixStackProbe")
        },
    )
    .await;
    assert_eq!(probe.labels["service"], "octrix-stack-probe");
    assert_eq!(probe.value, 1.0);
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn bad_promql_and_failed_evaluation_are_typed_errors() {
    let client = PrometheusClient::from_url(&prometheus_url()).unwrap();
    match client.query("sum(rate(up[5m])", None).await.unwrap_err() {
        Error::Api {
            status,
            kind,
            message,
        } => {
            assert_eq!(status, 400);
            assert_eq!(kind, ErrorKind::BadData);
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("expected bad_data, got {other:?}"),
    }
    // Two `up` series on each side and no label to match on: many-to-many.
    match client.query("up + on() up", None).await.unwrap_err() {
        Error::Api {
            status,
            kind,
            message,
        } => {
            assert_eq!(status, 422);
            assert_eq!(kind, ErrorKind::Execution);
            assert!(
                message.contains("many-to-many matching not allowed"),
                "{message}"
            );
        }
        other => panic!("expected execution, got {other:?}"),
    }
    let now = Timestamp::now();
    let backwards = Range {
        start: now,
        end: now - Duration::from_secs(60),
        step: Duration::from_secs(1),
    };
    let error = client.query_range("up", backwards).await.unwrap_err();
    assert_eq!(error.kind(), Some(&ErrorKind::BadData));

    // Through the source: rejected, but Prometheus is up.
    let metrics = OctrixMetrics::new();
    let source = PrometheusSource::new(PrometheusSourceConfig::new(prometheus_url()))
        .unwrap()
        .with_metrics(metrics.clone());
    match source.query("sum(up", None).await.unwrap_err() {
        SourceError::Rejected { reason, .. } => assert!(reason.contains("bad_data"), "{reason}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(source.status(), SourceStatus::Up);
    assert_eq!(metrics.source_up("prometheus"), Some(true));
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn closed_port_is_unavailable_and_says_so() {
    // A port of this stack's range where nothing listens.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let metrics = OctrixMetrics::new();
    let mut config = PrometheusSourceConfig::new(url);
    config.name = "closed".into();
    let source = PrometheusSource::new(config)
        .unwrap()
        .with_metrics(metrics.clone());
    assert!(matches!(
        source.node_metrics().await,
        Err(SourceError::Unavailable { .. })
    ));
    assert!(matches!(
        source.check().await,
        SourceStatus::Unavailable { .. }
    ));
    assert!(
        metrics
            .encode()
            .unwrap()
            .contains(r#"octrix_source_up{source="closed"} 0"#)
    );
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn scrape_returns_the_watched_series() {
    let source = PrometheusSource::new(PrometheusSourceConfig::new(prometheus_url())).unwrap();
    let samples = source.scrape().await.unwrap();
    let node_up = samples
        .iter()
        .find(|s| {
            s.metric == "target_up" && s.labels.get("job").map(String::as_str) == Some("node")
        })
        .expect("up of the node job");
    assert_eq!(node_up.value, 1.0);
    let cpu = samples
        .iter()
        .find(|s| s.metric == "node_cpu_utilisation")
        .expect("node CPU");
    assert!((0.0..=1.0).contains(&cpu.value));
    // No kube-state-metrics in this stack: its series are absent, not invented.
    assert!(
        !samples
            .iter()
            .any(|s| s.metric == "container_restarts" || s.metric == "pod_phase")
    );
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn cluster_metrics_are_not_found_without_kube_state_metrics_and_configurable() {
    let source = PrometheusSource::new(PrometheusSourceConfig::new(prometheus_url())).unwrap();
    match source.cluster_metrics().await {
        Err(SourceError::NotFound { what, .. }) => {
            assert!(what.contains("kube_node_info"), "{what}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    // The same port over node-exporter and target health, by configuration.
    let mut config = PrometheusSourceConfig::new(prometheus_url());
    config.queries.cluster_nodes = "count(node_uname_info)".into();
    config.queries.cluster_ready_nodes = r#"count(up{job="node"} == 1)"#.into();
    config.queries.cluster_pods = r#"count(up{job=~"node|prometheus"})"#.into();
    config.queries.cluster_running_pods = r#"count(up{job=~"node|prometheus"} == 1)"#.into();
    let cluster = PrometheusSource::new(config)
        .unwrap()
        .cluster_metrics()
        .await
        .unwrap();
    assert_eq!((cluster.nodes, cluster.ready_nodes), (1, 1));
    assert_eq!((cluster.pods, cluster.running_pods), (2, 2));
    assert!((0.0..=1.0).contains(&cluster.cpu_utilisation));
    assert!((cluster.memory_utilisation - meminfo_utilisation()).abs() < 0.1);
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn service_metrics_from_a_real_histogram() {
    // Prometheus's own HTTP handlers stand in for a service.
    let mut config = PrometheusSourceConfig::new(prometheus_url());
    let q = &mut config.queries;
    q.service_request_rate =
        r#"sum(rate(prometheus_http_requests_total{handler="$service"}[$window]))"#.into();
    q.service_error_rate = r#"(sum(rate(prometheus_http_requests_total{handler="$service", code=~"5.."}[$window])) or vector(0)) / sum(rate(prometheus_http_requests_total{handler="$service"}[$window]))"#.into();
    q.service_latency_p50 = r#"histogram_quantile(0.5, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket{handler="$service"}[$window])))"#.into();
    q.service_latency_p99 = r#"histogram_quantile(0.99, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket{handler="$service"}[$window])))"#.into();
    let source = PrometheusSource::new(config).unwrap();
    let selector = ServiceSelector {
        namespace: "monitoring".into(),
        service: "/api/v1/series".into(),
        version: None,
        window_seconds: 30,
    };
    let idle = ServiceSelector {
        service: "/no/such/handler".into(),
        ..selector.clone()
    };
    let none = source.service_metrics(&idle).await.unwrap();
    assert_eq!(none.request_rate, 0.0);
    assert_eq!((none.error_rate, none.latency_p50_seconds), (None, None));

    let client = source.client().clone();
    let metrics = eventually("traffic on /api/v1/series", Duration::from_secs(30), || {
        let client = client.clone();
        let source = source.clone();
        let selector = selector.clone();
        async move {
            for _ in 0..5 {
                client.series(&["up"], None, None).await.unwrap();
            }
            let m = source.service_metrics(&selector).await.unwrap();
            (m.request_rate > 0.0 && m.latency_p99_seconds.is_some()).then_some(m)
        }
    })
    .await;
    assert_eq!(metrics.error_rate, Some(0.0));
    let (p50, p99) = (
        metrics.latency_p50_seconds.unwrap(),
        metrics.latency_p99_seconds.unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "p50 {p50} p99 {p99}");
}

/// Listens on the stack's webhook address and forwards each body.
async fn webhook_receiver() -> mpsc::Receiver<Vec<u8>> {
    let listen = env("OCTRIX_TEST_WEBHOOK_LISTEN");
    let (tx, rx) = mpsc::channel(64);
    let app = Router::new().route(
        "/alerts",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.to_vec()).await;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    rx
}

/// Waits for a delivery about `alertname` with `status`.
async fn delivery(
    rx: &mut mpsc::Receiver<Vec<u8>>,
    alertname: &str,
    status: AlertStatus,
) -> WebhookPayload {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {status:?} delivery for {alertname} within 30 s"))
            .expect("receiver runs");
        let payload = WebhookPayload::from_json(&body).unwrap_or_else(|e| {
            panic!(
                "Alertmanager sent a payload we cannot parse: {e}\n{}",
                String::from_utf8_lossy(&body)
            )
        });
        if payload.group_labels.get("alertname").map(String::as_str) == Some(alertname)
            && payload.status == status
        {
            return payload;
        }
    }
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn alertmanager_delivers_a_webhook_we_parse() {
    let mut rx = webhook_receiver().await;
    let am = AlertmanagerClient::from_url(&alertmanager_url()).unwrap();
    assert!(am.ready().await.unwrap());
    let alertname = unique("OctrixWebhookTest");
    let started = Timestamp::now();
    let alert = PostableAlert {
        labels: labels(&[
            ("alertname", &alertname),
            ("severity", "critical"),
            ("service", "checkout"),
        ]),
        annotations: labels(&[
            ("summary", "checkout is down"),
            ("runbook_url", "https://runbooks/checkout"),
        ]),
        starts_at: Some(started),
        ends_at: None,
        generator_url: Some("http://octrix.test/incidents/1".into()),
    };
    am.post_alerts(std::slice::from_ref(&alert)).await.unwrap();

    let firing = delivery(&mut rx, &alertname, AlertStatus::Firing).await;
    assert_eq!(firing.version, "4");
    assert_eq!(firing.receiver, "octrix-test");
    assert_eq!(firing.external_url, alertmanager_url());
    assert_eq!(
        firing.group_key,
        format!(r#"{{}}:{{alertname="{alertname}"}}"#)
    );
    assert_eq!(firing.truncated_alerts, 0);
    assert_eq!(firing.common_labels["service"], "checkout");
    assert_eq!(firing.common_annotations["summary"], "checkout is down");
    let alerts = firing.to_alerts();
    assert_eq!(alerts.len(), 1);
    let core = &alerts[0];
    assert_eq!(core.name(), Some(alertname.as_str()));
    assert_eq!(core.status, AlertStatus::Firing);
    assert_eq!(core.starts_at, started);
    assert_eq!(core.ends_at, None);
    assert_eq!(
        core.generator_url.as_deref(),
        Some("http://octrix.test/incidents/1")
    );
    assert_eq!(core.annotations["runbook_url"], "https://runbooks/checkout");

    // The fingerprint is the one Alertmanager's API reports.
    let listed = am
        .alerts(&AlertFilter {
            matchers: vec![format!("alertname={alertname}")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].fingerprint, core.fingerprint);
    assert_eq!(listed[0].status.state, AlertmanagerAlertState::Active);

    // Resolve it: a past end time; the receiver has send_resolved.
    let ended = Timestamp::now() - Duration::from_secs(1);
    let resolve = PostableAlert {
        ends_at: Some(ended),
        ..alert
    };
    am.post_alerts(&[resolve]).await.unwrap();
    let resolved = delivery(&mut rx, &alertname, AlertStatus::Resolved).await;
    let core = &resolved.to_alerts()[0];
    assert_eq!(core.status, AlertStatus::Resolved);
    assert_eq!(core.ends_at, Some(ended));
    assert_eq!(core.starts_at, started);
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn silences_are_created_mute_alerts_and_expire() {
    let am = AlertmanagerClient::from_url(&alertmanager_url()).unwrap();
    let alertname = unique("OctrixSilenceTest");
    let alert = PostableAlert {
        labels: labels(&[("alertname", &alertname), ("service", "cart")]),
        ..Default::default()
    };
    am.post_alerts(std::slice::from_ref(&alert)).await.unwrap();

    let now = Timestamp::now();
    let silence = Silence {
        matchers: vec![
            Matcher::equal("alertname", &alertname),
            Matcher::regex("service", "cart|checkout"),
        ],
        starts_at: now,
        ends_at: now + Duration::from_secs(600),
        created_by: "octrix-test".into(),
        comment: "chaos run: pod-failure on cart".into(),
    };
    let id = am.create_silence(&silence).await.unwrap();
    let created = am.silence(&id).await.unwrap();
    assert_eq!(created.id, id);
    assert_eq!(created.status.state, SilenceState::Active);
    assert_eq!(created.silence.matchers, silence.matchers);
    assert_eq!(created.silence.created_by, "octrix-test");
    assert_eq!(created.silence.comment, silence.comment);
    // Alertmanager keeps silence times to the millisecond.
    assert_eq!(
        created.silence.ends_at.as_millisecond(),
        silence.ends_at.as_millisecond()
    );

    let filter = AlertFilter {
        matchers: vec![format!("alertname={alertname}")],
        ..Default::default()
    };
    let muted = eventually(
        "the alert to be silenced",
        Duration::from_secs(15),
        || async {
            let alerts = am.alerts(&filter).await.unwrap();
            alerts
                .into_iter()
                .find(|a| a.status.state == AlertmanagerAlertState::Suppressed)
        },
    )
    .await;
    assert_eq!(muted.status.silenced_by, std::slice::from_ref(&id));

    am.expire_silence(&id).await.unwrap();
    let expired = am.silence(&id).await.unwrap();
    assert_eq!(expired.status.state, SilenceState::Expired);
    let listed = am
        .silences(&[&format!("alertname={alertname}")])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    let unmuted = eventually(
        "the alert to be active again",
        Duration::from_secs(15),
        || async {
            let alerts = am.alerts(&filter).await.unwrap();
            alerts
                .into_iter()
                .find(|a| a.status.state == AlertmanagerAlertState::Active)
        },
    )
    .await;
    assert!(unmuted.status.silenced_by.is_empty());
    let status = am.status().await.unwrap();
    assert!(status.version_info.version.starts_with("0."), "{status:?}");

    // Alertmanager's refusals keep its message.
    match am
        .expire_silence("00000000-0000-0000-0000-000000000000")
        .await
    {
        Err(octrix_prom::alertmanager::Error::Api { message, .. }) => {
            assert_eq!(message, "silence not found")
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    match am.expire_silence("not-a-uuid").await {
        Err(octrix_prom::alertmanager::Error::Api {
            status, message, ..
        }) => {
            assert_eq!(status, 422);
            assert!(message.contains("must be of type uuid"), "{message}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let resolve = PostableAlert {
        ends_at: Some(Timestamp::now()),
        ..alert
    };
    am.post_alerts(&[resolve]).await.unwrap();
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn prometheus_scrapes_octrix_metrics() {
    let metrics = OctrixMetrics::new();
    let run = unique("run");
    metrics.set_source_up(&run, false);
    metrics.record_incident_opened("critical", &run);
    metrics.record_acknowledged("critical", 42.0);
    metrics.record_http_request("GET", "/metrics", 200, 0.002);
    let served = metrics.clone();
    let (accept_tx, mut accept_rx) = mpsc::channel::<String>(64);
    let app = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let served = served.clone();
            let accept_tx = accept_tx.clone();
            async move {
                let accept = headers
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = accept_tx.try_send(accept.clone().unwrap_or_default());
                let (content_type, body) = served.encode_for(accept.as_deref()).unwrap();
                ([("content-type", content_type)], body)
            }
        }),
    );
    let listen = env("OCTRIX_TEST_METRICS_LISTEN");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = PrometheusClient::from_url(&prometheus_url()).unwrap();
    let query = format!(r#"octrix_source_up{{source="{run}"}}"#);
    let up = eventually(
        "Prometheus to scrape Octrix's metrics",
        Duration::from_secs(30),
        || async {
            let v = client.query_vector(&query, None).await.unwrap();
            v.into_iter().next()
        },
    )
    .await;
    assert_eq!(up.value.value, 0.0);
    assert_eq!(up.metric["job"], "octrix");
    let opened = client
        .query_vector(
            &format!(r#"octrix_incident_opened_total{{service="{run}"}}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!(opened[0].value.value, 1.0);
    let ack = client
        .query_vector(
            r#"octrix_incident_ack_seconds_bucket{le="60.0",job="octrix"}"#,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ack[0].value.value, 1.0);
    // Prometheus asked for OpenMetrics, which is what it parsed here.
    let accept = accept_rx.recv().await.unwrap();
    assert!(accept.contains("application/openmetrics-text"), "{accept}");
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test"]
async fn the_engine_silencer_port_creates_and_expires_real_silences() {
    use octrix_core::engine::{SilenceRequest, Silencer};

    let am = AlertmanagerClient::from_url(&alertmanager_url()).unwrap();
    let pod = unique("chaos-target");
    let now = Timestamp::now();
    let request = SilenceRequest {
        matchers: octrix_core::labels::from_pairs([("namespace", "shop"), ("pod", pod.as_str())]),
        starts_at: now,
        ends_at: now + Duration::from_secs(300),
        comment: "octrix chaos run-1: expected effects".into(),
    };
    let id = Silencer::silence(&am, &request).await.unwrap();
    let created = am.silence(&id).await.unwrap();
    assert_eq!(created.status.state, SilenceState::Active);
    assert_eq!(created.silence.created_by, "octrix");
    assert_eq!(
        created.silence.matchers,
        [
            Matcher::equal("namespace", "shop"),
            Matcher::equal("pod", &pod)
        ]
    );
    Silencer::expire(&am, &id).await.unwrap();
    assert_eq!(
        am.silence(&id).await.unwrap().status.state,
        SilenceState::Expired
    );
    let err = Silencer::expire(&am, "00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(err.port, "alertmanager silencer");
}
