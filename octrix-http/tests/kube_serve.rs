//! `octrix serve` on a real kube-apiserver (with etcd, without kubelet or
//! controllers), started by `scripts/test` or `scripts/test-http`, which set
//! `KUBECONFIG`.
//!
//! The real binary runs with a `[kubernetes]` section narrowed to the test's
//! namespace: it observes a crash loop the test reports as a kubelet would,
//! opens an incident, restarts the pod through the API server, and applies a
//! deployed traffic rule as an Istio VirtualService.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{DynamicObject, ResourceExt};
use octrix_core::routing::IstioApiVersion;
use octrix_k8s::routing::virtual_service_resource;
use serde_json::{Value, json};

#[path = "../../octrix-k8s/tests/common/mod.rs"]
mod kubelet;

use kubelet::{
    LastTermination, SMALL_NODE, connect, crash_loop, create_namespace, create_node, create_pod,
    ensure_istio, eventually, kubeconfig, run_pod, unique, weights,
};

const TOKEN: &str = "kube-serve-admin-token-0123456789";

/// The `octrix` binary, killed when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `octrix serve` on `config` and waits for its URL.
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_octrix"))
            .args(["serve", "--config"])
            .arg(config)
            // Only what the test sets: the test scripts export the other
            // stacks' variables (PROMETHEUS_URL, DATABASE_URL).
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("OCTRIX_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("octrix starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        let base = loop {
            match lines_rx.recv_timeout(Duration::from_secs(90)) {
                Ok(line) => {
                    if let Some(url) = line.split("serving on ").nth(1) {
                        break url.trim().to_owned();
                    }
                    printed.push(line);
                }
                Err(e) => panic!("octrix serve printed no URL ({e}); it printed {printed:?}"),
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while lines_rx.recv().is_ok() {});
        Self {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test kube-apiserver: run scripts/test or scripts/test-http"]
async fn serve_heals_a_crash_loop_and_deploys_routes_on_kubernetes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connection = connect(None).await;
    let client = connection.client.clone();
    let ns = unique("serve");
    create_namespace(&client, &ns).await;
    let node = unique("node");
    create_node(&client, &node, &ns, true, SMALL_NODE).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for pod in ["web-1", "web-2"] {
        create_pod(&pods, pod, &node, &json!({})).await;
        run_pod(&pods, pod).await;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("octrix.toml");
    std::fs::write(
        &config,
        format!(
            r#"port = 0
scrape_interval_ms = 200
data_dir = {data:?}

[kubernetes]
kubeconfig = {kubeconfig:?}
namespace = {ns:?}
node_label_selector = "octrix-e2e={ns}"
restart_grace_period_seconds = 0
"#,
            data = dir.path().join("data").display().to_string(),
            kubeconfig = kubeconfig().display().to_string(),
        ),
    )
    .expect("config written");
    let server = Server::start(&config);

    let (status, ready) = server.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    let (status, sources) = server.get("/api/v1/metrics/status").await;
    assert_eq!(status, 200, "{sources}");
    assert!(
        sources.to_string().contains(&connection.cluster_name),
        "the status names the cluster {}: {sources}",
        connection.cluster_name
    );

    let (status, rule) = server
        .post(
            "/api/v1/healing/rules",
            json!({"name": "crashloops", "match": {"categories": ["pod-crash"]},
                   "actions": [{"type": "restart-pod"}]}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");

    crash_loop(&pods, "web-1", 4, LastTermination::OomKilled).await;
    eventually("web-1 to be restarted", Duration::from_secs(30), || async {
        pods.get_opt("web-1")
            .await
            .expect("get pod")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        pods.get_opt("web-2").await.expect("get pod").is_some(),
        "only the crash-looping pod is restarted"
    );

    // The pod is deleted inside a tick; the incident and its timeline are
    // committed when that tick ends.
    let page = eventually(
        "the healed incident to be committed",
        Duration::from_secs(10),
        || async {
            let (status, page) = server.get("/api/v1/incidents?category=pod-crash").await;
            assert_eq!(status, 200, "{page}");
            let healed = page["items"].as_array().is_some_and(|items| {
                items.iter().any(|incident| {
                    incident["timeline"].as_array().is_some_and(|timeline| {
                        timeline.iter().any(|entry| entry["kind"] == "healing")
                    })
                })
            });
            healed.then_some(page)
        },
    )
    .await;
    let incidents = page["items"].as_array().expect("items");
    assert_eq!(incidents.len(), 1, "{page}");
    assert_eq!(incidents[0]["namespace"], json!(ns), "{page}");
    assert_eq!(incidents[0]["resource"]["name"], json!("web-1"), "{page}");
    let healing = incidents[0]["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|entry| entry["kind"] == "healing")
        .unwrap_or_else(|| panic!("a healing entry on the timeline: {page}"));
    assert_eq!(healing["action"], json!("restart-pod"), "{page}");
    assert_eq!(healing["outcome"]["result"], json!("executed"), "{page}");
    let (status, actions) = server.get("/api/v1/healing/actions").await;
    assert_eq!(status, 200, "{actions}");
    let restarts: Vec<&Value> = actions
        .as_array()
        .expect("records")
        .iter()
        .filter(|a| a["action"] == "restart-pod")
        .collect();
    assert_eq!(restarts.len(), 1, "{actions}");
    assert_eq!(restarts[0]["dry_run"], json!(false), "{actions}");
    assert!(
        restarts[0]["target"]
            .as_str()
            .is_some_and(|t| t.contains("web-1")),
        "{actions}"
    );

    // A deployed traffic rule becomes a VirtualService in the cluster.
    ensure_istio(&client).await;
    let (status, stored) = server
        .post(
            "/api/v1/routing/rules",
            json!({"service": "web", "namespace": ns,
                   "destinations": [
                       {"subset": "stable", "labels": {"version": "v1"}, "weight": 90},
                       {"subset": "canary", "labels": {"version": "v2"}, "weight": 10}]}),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
    let (status, deployed) = server
        .post(&format!("/api/v1/routing/rules/{ns}.web/deploy"), json!({}))
        .await;
    assert_eq!(status, 200, "{deployed}");
    assert!(
        deployed["applied"]
            .as_str()
            .is_some_and(|a| a.contains("applied to the cluster")),
        "{deployed}"
    );
    let virtual_services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &virtual_service_resource(IstioApiVersion::V1),
    );
    let vs = virtual_services
        .get("web")
        .await
        .expect("VirtualService web");
    assert_eq!(
        weights(&vs),
        vec![("stable".to_owned(), 90), ("canary".to_owned(), 10)],
        "{}",
        vs.name_any()
    );

    drop(server);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &Default::default())
        .await
        .expect("delete namespace");
}
