//! The clients over real HTTP, against a local server that replays the
//! answers captured from a real Prometheus and Alertmanager (with their
//! status codes), so that error mapping, timeouts, authentication and the
//! GET/POST choice are tested without the stack.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use octrix_core::metrics::{MetricSource, SourceError};
use octrix_prom::http::{self, Auth, HttpConfig};
use octrix_prom::prometheus::{
    Error, ErrorKind, PrometheusClient, PrometheusConfig, QueryData, QueryMethod, Range, Rule,
    TargetHealth,
};
use octrix_prom::{AlertmanagerClient, OctrixMetrics, PrometheusSource, PrometheusSourceConfig};

fn data(path: &str) -> String {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}

/// A captured `.raw` answer: the JSON body, then a line `HTTP <status>`.
fn raw(path: &str) -> Response {
    let text = data(path);
    let (body, status) = text
        .trim_end()
        .rsplit_once('\n')
        .expect("body and status line");
    let status: u16 = status
        .trim_start_matches("HTTP ")
        .parse()
        .expect("status code");
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_owned(),
    )
        .into_response()
}

fn json(path: &str) -> Response {
    ([("content-type", "application/json")], data(path)).into_response()
}

/// Answers `/api/v1/query` by the query text.
async fn answer_query(
    method: &str,
    params: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let query = params.get("query").map(String::as_str).unwrap_or("");
    match query {
        "up" => json("prometheus/query-vector-up.json"),
        "up[5s]" => json("prometheus/query-matrix-range-vector.json"),
        "scalar(count(up)) * 2" => json("prometheus/query-scalar.json"),
        r#""hello""# => json("prometheus/query-string.json"),
        "sum(up" => raw("prometheus/query-error-bad-promql.raw"),
        "up + on() up" => raw("prometheus/query-error-execution-422.raw"),
        "" => raw("prometheus/query-error-missing-param.raw"),
        "starting" => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json("prometheus/query-vector-up.json")
        }
        literal if literal.starts_with("json:") => {
            // The test wrote the result itself: a vector of these series.
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":{}}}}}"#,
                &literal[5..]
            );
            ([("content-type", "application/json")], body).into_response()
        }
        _ => {
            // Echo what arrived, as a vector with one series.
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let labels = serde_json::json!({
                "method": method,
                "authorization": header("authorization"),
                "tenant": header("x-scope-orgid"),
                "query_len": query.len().to_string(),
                "timeout": params.get("timeout").cloned().unwrap_or_default(),
                "time": params.get("time").cloned().unwrap_or_default(),
            });
            let body = serde_json::json!({
                "status": "success",
                "data": {"resultType": "vector", "result": [
                    {"metric": labels, "value": [1.0, "+Inf"]}
                ]}
            });
            ([("content-type", "application/json")], body.to_string()).into_response()
        }
    }
}

async fn answer_range(Query(params): Query<HashMap<String, String>>) -> Response {
    let start: f64 = params["start"].parse().unwrap();
    let end: f64 = params["end"].parse().unwrap();
    if end < start {
        raw("prometheus/query_range-error-end-before-start.raw")
    } else {
        json("prometheus/query_range-matrix.json")
    }
}

/// Starts the replaying server on an ephemeral loopback port.
async fn serve() -> String {
    let app = Router::new()
        .route(
            "/api/v1/query",
            get(|Query(p): Query<HashMap<String, String>>, h: HeaderMap| answer_query("GET", p, h))
                .post(|h: HeaderMap, Form(p): Form<HashMap<String, String>>| {
                    answer_query("POST", p, h)
                }),
        )
        .route("/api/v1/query_range", get(answer_range))
        .route(
            "/api/v1/alerts",
            get(|| async { json("prometheus/alerts.json") }),
        )
        .route(
            "/api/v1/rules",
            get(|| async { json("prometheus/rules.json") }),
        )
        .route(
            "/api/v1/targets",
            get(|| async { json("prometheus/targets.json") }),
        )
        .route(
            "/api/v1/status/buildinfo",
            get(|| async { json("prometheus/buildinfo.json") }),
        )
        .route(
            "/api/v2/alerts",
            get(|| async { json("alertmanager/alertmanager-api-v2-alerts.json") }),
        )
        .route(
            "/api/v2/status",
            get(|| async { json("alertmanager/alertmanager-api-v2-status.json") }),
        )
        .route(
            "/api/v2/silence/{id}",
            get(|| async { (StatusCode::NOT_FOUND, "\"silence not found\"\n") }),
        )
        .route(
            "/-/ready",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable") }),
        )
        .route(
            "/-/healthy",
            get(|| async { "Prometheus Server is Healthy.\n" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A loopback URL where nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn typed_results_of_every_kind() {
    let client = PrometheusClient::from_url(&serve().await).unwrap();
    let QueryData::Vector(v) = client.query("up", None).await.unwrap() else {
        panic!()
    };
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].metric["job"], "node");
    let QueryData::Matrix(m) = client.query("up[5s]", None).await.unwrap() else {
        panic!()
    };
    assert_eq!(m[0].values.len(), 5);
    let QueryData::Scalar(s) = client.query("scalar(count(up)) * 2", None).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.value, 4.0);
    let QueryData::String(s) = client.query(r#""hello""#, None).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.value, "hello");
    // query_vector accepts scalars as one unlabelled sample, refuses the rest.
    let scalar = client
        .query_vector("scalar(count(up)) * 2", None)
        .await
        .unwrap();
    assert!(scalar[0].metric.is_empty());
    assert!(matches!(
        client.query_vector(r#""hello""#, None).await,
        Err(Error::UnexpectedResultType {
            expected: "vector",
            found: "string"
        })
    ));
}

#[tokio::test]
async fn prometheus_errors_keep_type_status_and_message() {
    let client = PrometheusClient::from_url(&serve().await).unwrap();
    match client.query("sum(up", None).await.unwrap_err() {
        Error::Api {
            status,
            kind,
            message,
        } => {
            assert_eq!((status, kind), (400, ErrorKind::BadData));
            assert_eq!(
                message,
                "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let error = client.query("up + on() up", None).await.unwrap_err();
    assert_eq!(error.kind(), Some(&ErrorKind::Execution));
    assert!(matches!(&error, Error::Api { status: 422, message, .. }
        if message.starts_with("found duplicate series for the match group {}")));
    assert!(!error.is_unavailable());
    let error = client.query("", None).await.unwrap_err();
    assert!(
        error.to_string().contains("no expression found in input"),
        "{error}"
    );

    let error = client.query("starting", None).await.unwrap_err();
    assert!(matches!(&error, Error::Status { status: 503, body } if body == "Service Unavailable"));
    assert!(error.is_unavailable());

    let now = octrix_core::Timestamp::from_second(1_795_424_866).unwrap();
    let backwards = Range {
        start: now,
        end: now - Duration::from_secs(60),
        step: Duration::from_secs(2),
    };
    let error = client.query_range("up", backwards).await.unwrap_err();
    assert_eq!(error.kind(), Some(&ErrorKind::BadData));
    assert!(
        error
            .to_string()
            .contains("end timestamp must not be before start time")
    );
    let forwards = Range {
        start: now - Duration::from_secs(10),
        end: now,
        step: Duration::from_secs(2),
    };
    let series = client.query_range("up", forwards).await.unwrap();
    assert_eq!(series[0].values.len(), 6);
}

#[tokio::test]
async fn timeout_and_refused_connection_are_transport_errors() {
    let config = PrometheusConfig {
        http: HttpConfig::new(serve().await).with_timeout(Duration::from_millis(300)),
        ..PrometheusConfig::default()
    };
    let client = PrometheusClient::new(config).unwrap();
    let started = std::time::Instant::now();
    let error = client.query("slow", None).await.unwrap_err();
    assert!(
        matches!(error, Error::Transport(http::Error::Timeout { .. })),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(error.is_unavailable());

    let closed = PrometheusClient::from_url(&closed_port_url().await).unwrap();
    let error = closed.query("up", None).await.unwrap_err();
    assert!(
        matches!(error, Error::Transport(http::Error::Connect { .. })),
        "{error:?}"
    );
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn auth_headers_timeout_param_and_long_queries_by_post() {
    let url = serve().await;
    let config = PrometheusConfig {
        http: HttpConfig::new(&url)
            .with_auth(Auth::Basic {
                username: "octrix".into(),
                password: Some("pw".into()),
            })
            .with_header("X-Scope-OrgID", "team-a"),
        query_timeout_ms: Some(1500),
        post_threshold_bytes: 100,
        ..PrometheusConfig::default()
    };
    let client = PrometheusClient::new(config).unwrap();
    let t = octrix_core::Timestamp::from_millisecond(1_795_424_866_106).unwrap();
    let short = client.query_vector("vector(1)", Some(t)).await.unwrap();
    let labels = &short[0].metric;
    assert_eq!(labels["method"], "GET");
    assert_eq!(labels["authorization"], "Basic b2N0cml4OnB3");
    assert_eq!(labels["tenant"], "team-a");
    assert_eq!(labels["timeout"], "1500ms");
    assert_eq!(labels["time"], "1795424866.106");
    assert_eq!(short[0].value.value, f64::INFINITY);

    let long_query = format!("vector(1) + {}", "0 * vector(1) + ".repeat(20)) + "0";
    let long = client.query_vector(&long_query, None).await.unwrap();
    assert_eq!(long[0].metric["method"], "POST");
    assert_eq!(long[0].metric["query_len"], long_query.len().to_string());
    assert_eq!(long[0].metric["authorization"], "Basic b2N0cml4OnB3");

    let bearer = PrometheusClient::new(PrometheusConfig {
        http: HttpConfig::new(&url).with_auth(Auth::Bearer {
            token: "t0k".into(),
        }),
        query_method: QueryMethod::Post,
        ..PrometheusConfig::default()
    })
    .unwrap();
    let answer = bearer.query_vector("vector(2)", None).await.unwrap();
    assert_eq!(answer[0].metric["authorization"], "Bearer t0k");
    assert_eq!(answer[0].metric["method"], "POST");
}

#[tokio::test]
async fn alerts_rules_targets_build_info_and_probes() {
    let client = PrometheusClient::from_url(&serve().await).unwrap();
    let alerts = client.alerts().await.unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].labels["alertname"], "AlwaysFiring");
    assert_eq!(alerts[0].value, 1.0);
    assert_eq!(
        alerts[1].active_at.unwrap().to_string(),
        "2026-11-23T09:06:35.412813415Z"
    );

    let groups = client.rules().await.unwrap();
    assert_eq!(groups[0].name, "probe");
    assert_eq!(groups[0].interval, 1.0);
    let names: Vec<&str> = groups[0].rules.iter().map(Rule::name).collect();
    assert_eq!(names, ["job:up:sum", "AlwaysFiring", "NodeUp"]);
    let Rule::Alerting(node_up) = &groups[0].rules[2] else {
        panic!("NodeUp is an alert")
    };
    assert_eq!(node_up.query, r#"up{job="node"} == 1"#);
    assert_eq!(node_up.alerts[0].labels["instance"], "127.0.0.1:19100");
    assert!(groups[0].rules.iter().all(|r| r.health() == "ok"));

    let targets = client.targets().await.unwrap();
    assert!(
        targets
            .active_targets
            .iter()
            .all(|t| t.health == TargetHealth::Up)
    );
    assert_eq!(client.build_info().await.unwrap().version, "2.42.0+ds");
    assert!(client.healthy().await.unwrap());
    assert!(
        !client.ready().await.unwrap(),
        "this server answers 503 on /-/ready"
    );
}

#[tokio::test]
async fn alertmanager_client_reads_and_reports_errors() {
    let am = AlertmanagerClient::from_url(&serve().await).unwrap();
    let alerts = am.alerts(&Default::default()).await.unwrap();
    assert_eq!(alerts[1].fingerprint, "e03edacfec3d14cc");
    assert_eq!(am.status().await.unwrap().version_info.version, "0.25.0");
    match am.silence("0000").await.unwrap_err() {
        octrix_prom::alertmanager::Error::Api {
            status, message, ..
        } => {
            assert_eq!((status, message.as_str()), (404, "silence not found"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let closed = AlertmanagerClient::from_url(&closed_port_url().await).unwrap();
    assert!(matches!(
        closed.status().await,
        Err(octrix_prom::alertmanager::Error::Transport(
            http::Error::Connect { .. }
        ))
    ));
}

#[tokio::test]
async fn source_reports_unavailable_and_never_invents_data() {
    let metrics = OctrixMetrics::new();
    let source = PrometheusSource::new(PrometheusSourceConfig::new(closed_port_url().await))
        .unwrap()
        .with_metrics(metrics.clone());
    for result in [
        source.node_metrics().await.map(|_| ()),
        source.pod_metrics(Some("shop")).await.map(|_| ()),
        source.cluster_metrics().await.map(|_| ()),
        source.scrape().await.map(|_| ()),
    ] {
        match result {
            Err(SourceError::Unavailable {
                source_name,
                reason,
            }) => {
                assert_eq!(source_name, source.info().name);
                assert!(reason.contains("cannot connect"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(matches!(
        source.status(),
        octrix_prom::source::SourceStatus::Unavailable { .. }
    ));
    assert_eq!(metrics.source_up("prometheus"), Some(false));
    assert!(
        metrics
            .encode()
            .unwrap()
            .lines()
            .any(|l| l == r#"octrix_source_up{source="prometheus"} 0"#)
    );
}

/// A vector result for the replay server: `json:[...]`.
fn vector(series: &[(&[(&str, &str)], &str)]) -> String {
    let items: Vec<String> = series
        .iter()
        .map(|(labels, value)| {
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            serde_json::json!({"metric": labels, "value": [1795424866.5, value]}).to_string()
        })
        .collect();
    format!("json:[{}]", items.join(","))
}

#[tokio::test]
async fn source_merges_series_by_pod_and_node_without_inventing() {
    let mut config = PrometheusSourceConfig::new(serve().await);
    let q = &mut config.queries;
    let cart = [("namespace", "shop"), ("pod", "cart-1")];
    let web = [("namespace", "shop"), ("pod", "web-1")];
    q.pod_cpu_cores = vector(&[(&cart, "0.25")]);
    q.pod_memory_working_set = vector(&[(&cart, "1048576"), (&web, "2097152")]);
    q.pod_restarts = vector(&[(&web, "3")]);
    let node = [("nodename", "node-a")];
    q.node_cpu_utilisation = vector(&[(&node, "0.5")]);
    q.node_memory_utilisation = vector(&[(&node, "0.75")]);
    q.node_disk_utilisation = vector(&[]);
    q.node_network_receive = vector(&[(&node, "1000")]);
    q.node_network_transmit = vector(&[(&node, "NaN")]);
    let source = PrometheusSource::new(config).unwrap();

    let pods = source.pod_metrics(Some("shop")).await.unwrap();
    assert_eq!(pods.len(), 2);
    assert_eq!((pods[0].pod.as_str(), pods[0].cpu_cores), ("cart-1", 0.25));
    assert_eq!(pods[0].memory_working_set_bytes, 1_048_576.0);
    assert_eq!(pods[0].restarts, 0, "no restarts reported for cart-1");
    assert_eq!(pods[1].pod, "web-1");
    assert!(
        pods[1].cpu_cores.is_nan(),
        "no CPU series for web-1: NaN, not 0"
    );
    assert_eq!(pods[1].restarts, 3);

    let nodes = source.node_metrics().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node, "node-a");
    assert_eq!(
        (nodes[0].cpu_utilisation, nodes[0].memory_utilisation),
        (0.5, 0.75)
    );
    assert!(nodes[0].disk_utilisation.is_nan());
    assert_eq!(nodes[0].network_receive_bytes_per_second, 1000.0);
    assert!(nodes[0].network_transmit_bytes_per_second.is_nan());

    // A template whose series lack the node label is a configuration error.
    let mut config = PrometheusSourceConfig::new(source.config().prometheus.http.url.clone());
    config.queries.node_cpu_utilisation = vector(&[(&[("instance", "10.0.0.1:9100")], "0.5")]);
    let source = PrometheusSource::new(config).unwrap();
    match source.node_metrics().await {
        Err(SourceError::Rejected { reason, .. }) => {
            assert!(
                reason.contains(r#"without the label "nodename""#),
                "{reason}"
            )
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn service_and_cluster_metrics_need_one_series() {
    let mut config = PrometheusSourceConfig::new(serve().await);
    let q = &mut config.queries;
    q.service_request_rate = vector(&[]);
    q.service_error_rate = vector(&[]);
    q.service_latency_p50 = vector(&[(&[], "NaN")]);
    q.service_latency_p99 = vector(&[(&[], "NaN")]);
    q.cluster_nodes = vector(&[(&[("zone", "a")], "2"), (&[("zone", "b")], "1")]);
    let source = PrometheusSource::new(config).unwrap();
    let selector = octrix_core::metrics::ServiceSelector {
        namespace: "shop".into(),
        service: "cart".into(),
        version: Some("v2".into()),
        window_seconds: 60,
    };
    let idle = source.service_metrics(&selector).await.unwrap();
    assert_eq!(idle.request_rate, 0.0);
    assert_eq!(idle.error_rate, None);
    assert_eq!(idle.latency_p50_seconds, None);
    assert_eq!(idle.latency_p99_seconds, None);
    match source.cluster_metrics().await {
        Err(SourceError::Rejected { reason, .. }) => {
            assert!(
                reason.contains("cluster_nodes must return one series, returned 2"),
                "{reason}"
            )
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}
