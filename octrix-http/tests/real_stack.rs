//! Against the real Prometheus and Alertmanager of `scripts/prom-stack.sh`
//! (run by `scripts/test-http`): Alertmanager delivers to a running
//! `octrix serve` binary, and the metrics API answers from the real
//! Prometheus.
//!
//! The stack's addresses come from the environment or from
//! `target/prom-stack.env`, which `scripts/prom-stack.sh start` writes.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::binary::Server;
use common::{ADMIN, VIEWER};
use octrix_core::engine::{EngineConfig, Ports, RecordingNotifier};
use octrix_http::auth::{AuthConfig, Role};
use octrix_http::unwired::UnwiredCluster;
use octrix_http::{AppState, Limits, MemoryStorage, ServerParts, SystemClock, app};
use octrix_prom::{OctrixMetrics, PrometheusSource, PrometheusSourceConfig};
use serde_json::Value;

fn stack_var(name: &str) -> String {
    if let Ok(value) = std::env::var(name) {
        return value;
    }
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/prom-stack.env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        panic!(
            "{name} is not set and {} is missing: run scripts/test-http",
            file.display()
        )
    });
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} is not in {}", file.display()))
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{nanos}")
}

async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
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

fn amtool(args: &[String]) {
    let url = stack_var("OCTRIX_TEST_ALERTMANAGER_URL");
    let output = Command::new("amtool")
        .arg("alert")
        .arg("add")
        .args(args)
        .arg(format!("--alertmanager.url={url}"))
        .output()
        .expect("amtool runs (installed by scripts/prom-stack.sh)");
    assert!(
        output.status.success(),
        "amtool {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

struct Served {
    address: SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("http://{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(state: AppState, address: &str) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {address} ({e}): is another test using it?"));
    let address = listener.local_addr().unwrap();
    let router = app(state);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Served {
        address,
        client: reqwest::Client::new(),
        task,
    }
}

fn auth() -> AuthConfig {
    AuthConfig::builder()
        .token("vera", Role::Viewer, VIEWER)
        .token("ada", Role::Admin, ADMIN)
        .webhook_token(&stack_var("OCTRIX_TEST_WEBHOOK_TOKEN"))
        .webhook_allowlist(vec!["127.0.0.0/8".parse().unwrap()])
        .build()
}

fn incidents_named(page: &Value, name: &str) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["labels"]["alertname"] == name)
        .cloned()
        .collect()
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test-http"]
async fn alertmanager_delivers_to_a_running_octrix_serve() {
    // The real binary, on its default durable SQLite store, listening where
    // the stack's Alertmanager delivers, with the stack's webhook token.
    let data = tempfile::tempdir().unwrap();
    let listen: SocketAddr = stack_var("OCTRIX_TEST_WEBHOOK_LISTEN").parse().unwrap();
    let port = listen.port().to_string();
    let webhook_token = stack_var("OCTRIX_TEST_WEBHOOK_TOKEN");
    let served = Server::start(
        data.path(),
        &[
            ("PORT", port.as_str()),
            ("OCTRIX_VIEWER_TOKEN", VIEWER),
            ("OCTRIX_ADMIN_TOKEN", ADMIN),
            ("OCTRIX_WEBHOOK_TOKEN", webhook_token.as_str()),
            ("OCTRIX_WEBHOOK_ALLOWLIST", "127.0.0.0/8"),
        ],
        VIEWER,
    );
    assert!(served.banner.contains("SQLite"), "{}", served.banner);

    let name = unique("OctrixHttpTest");
    let start = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    let first = vec![
        name.clone(),
        "service=checkout".to_owned(),
        "severity=warning".to_owned(),
        "instance=a".to_owned(),
        format!("--start={start}"),
        "--annotation=summary=checkout is slow".to_owned(),
    ];
    amtool(&first);

    let query = format!("/api/v1/incidents?q={name}");
    let opened = eventually(
        "Alertmanager's delivery to open an incident",
        Duration::from_secs(30),
        async || {
            let page = served.get(&query).await;
            incidents_named(&page, &name).into_iter().next()
        },
    )
    .await;
    assert_eq!(opened["status"], "open");
    assert_eq!(opened["severity"], "medium");
    assert_eq!(opened["service"], "checkout");
    assert_eq!(opened["title"], "checkout is slow");
    let id = opened["id"].as_str().unwrap().to_owned();

    // A second alert of the same group: Alertmanager redelivers the group,
    // the first alert included, which opens nothing new.
    let second = vec![
        name.clone(),
        "service=checkout".to_owned(),
        "severity=warning".to_owned(),
        "instance=b".to_owned(),
        format!("--start={start}"),
    ];
    amtool(&second);
    let both = eventually(
        "the group's redelivery",
        Duration::from_secs(30),
        async || {
            let page = served.get(&query).await;
            let found = incidents_named(&page, &name);
            (found.len() == 2).then_some(found)
        },
    )
    .await;
    let first_again = both.iter().find(|i| i["id"] == id.as_str()).unwrap();
    assert_eq!(first_again["occurrences"], 1);
    assert_eq!(first_again["status"], "open");
    let alerts = served.get("/api/v1/incidents/alerts?status=firing").await;
    let ours = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == name.as_str())
        .count();
    assert_eq!(ours, 2);

    // Resolving both: Alertmanager sends the resolved notification.
    let end = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    for alert in [first, second] {
        let mut args = alert;
        args.push(format!("--end={end}"));
        amtool(&args);
    }
    eventually(
        "the resolved notification",
        Duration::from_secs(30),
        async || {
            let page = served.get(&query).await;
            let found = incidents_named(&page, &name);
            found
                .iter()
                .all(|i| i["status"] == "resolved")
                .then_some(())
        },
    )
    .await;
    let incident = served.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "resolved");
    let last = incident["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["to"], "resolved");
    assert_eq!(last["note"], "alert resolved at source");
    served.stop();
}

#[tokio::test]
#[ignore = "needs the real Prometheus stack: run scripts/test-http"]
async fn the_metrics_api_answers_from_a_real_prometheus() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = stack_var("OCTRIX_TEST_PROMETHEUS_URL");
    let metrics = OctrixMetrics::new();
    let source = PrometheusSource::new(PrometheusSourceConfig::new(url.clone()))
        .unwrap()
        .with_metrics(metrics.clone());
    let cluster = Arc::new(UnwiredCluster::new("no cluster in this test"));
    let clock = Arc::new(SystemClock);
    let state = AppState::new(ServerParts {
        engine: EngineConfig::default(),
        ports: Ports {
            metrics: Arc::new(source.clone()),
            observer: cluster.clone(),
            actuator: cluster,
            store: Arc::new(MemoryStorage::new()),
            events: Arc::new(|_| {}),
            notifier: Arc::new(RecordingNotifier::default()),
            scripts: None,
            traffic: None,
            chaos: None,
            silencer: None,
            clock,
        },
        storage: Arc::new(MemoryStorage::new()),
        prometheus: Some(source),
        sim: None,
        auth: auth(),
        limits: Limits::default(),
        metrics,
        event_capacity: 64,
        cluster_note: Some("no cluster in this test".into()),
        gitops_dir: None,
        routes: None,
    })
    .unwrap();
    let served = serve(state, "127.0.0.1:0").await;

    let (status, body) = served.get("/api/v1/metrics/status", VIEWER).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["real"], true);
    assert_eq!(body["up"], true);
    assert_eq!(body["source"]["kind"], "prometheus");

    let (status, body) = served
        .get(
            "/api/v1/metrics/query?query=up%7Bjob%3D%22prometheus%22%7D",
            VIEWER,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resultType"], "vector");
    assert_eq!(body["result"][0]["metric"]["job"], "prometheus");
    assert_eq!(body["result"][0]["value"][1], "1");

    let now = jiff::Timestamp::now().as_second();
    let (status, body) = served
        .get(
            &format!(
                "/api/v1/metrics/query_range?query=up&start={}&end={now}&step=1s",
                now - 5
            ),
            VIEWER,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resultType"], "matrix");

    let (status, body) = served.get("/api/v1/metrics/query?query=sum(", VIEWER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "query");

    let (status, body) = served.get("/ready", VIEWER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
