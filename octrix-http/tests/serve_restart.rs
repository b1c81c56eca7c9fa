//! The real `octrix serve` binary, stopped and started again on the same
//! database: everything it stored is still there, incident ids continue,
//! and a redelivered alert deduplicates into the restored incident.
//!
//! On SQLite (a file in a temporary data directory) always; on PostgreSQL
//! when `OCTRIX_TEST_DATABASE_URL` names a server (`scripts/test-storage`
//! starts one and runs the ignored tests).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const ADMIN: &str = "restart-test-admin-token-0123456789";

/// A running `octrix serve`.
struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Server {
    /// Starts the binary on `data_dir` (and `database_url`, if any) and
    /// waits until it prints its address.
    fn start(data_dir: &Path, database_url: Option<&str>) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("serve.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_octrix"));
        command
            .arg("serve")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("OCTRIX_DATA_DIR", data_dir)
            .env("OCTRIX_ADMIN_TOKEN", ADMIN)
            // One tick a minute: the test drives everything through the API.
            .env("PROMETHEUS_SCRAPE_INTERVAL", "60000")
            .env_remove("PROMETHEUS_URL")
            .env_remove("KUBECONFIG_PATH")
            .env_remove("JWT_SECRET")
            .env_remove("OCTRIX_WEBHOOK_TOKEN")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = command.spawn().expect("the octrix binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut banner = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                banner.push_str(&line);
                banner.push('\n');
                if line.contains("API document:") {
                    let _ = tx.send(std::mem::take(&mut banner));
                }
            }
        });
        let banner = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
            panic!("octrix serve did not print its banner; its log:\n{log}")
        });
        let base = banner
            .lines()
            .find_map(|line| line.split("is serving on ").nth(1))
            .expect("the banner names the address")
            .trim()
            .to_owned();
        let store = if database_url.is_some() {
            "storage:        PostgreSQL"
        } else {
            "storage:        SQLite"
        };
        assert!(banner.contains(store), "{banner}");
        assert!(banner.contains("restored:"), "{banner}");
        Self {
            child,
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// Stops it the way an operator does (SIGTERM) and checks it exits
    /// cleanly.
    fn stop(mut self) {
        drop(self.client);
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "octrix serve exited with {status}");
    }
}

fn alert(name: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "service": "checkout", "severity": "critical"},
        "annotations": {"summary": format!("{name} fired")},
        "startsAt": "2026-11-23T09:06:35Z",
        "endsAt": if status == "resolved" { "2026-11-23T09:16:35Z" } else { "0001-01-01T00:00:00Z" },
        "fingerprint": format!("fp-{name}"),
    })
}

fn delivery(alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "octrix", "status": "firing", "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager", "version": "4", "groupKey": "{}:{}",
        "truncatedAlerts": 0
    })
}

/// Incident ids by alert name.
async fn incidents(server: &Server) -> Vec<(String, Value)> {
    let page = server.get("/api/v1/incidents?limit=100").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| {
            let name = i["labels"]["alertname"].as_str()?;
            name.starts_with("Restart").then(|| (name.to_owned(), i.clone()))
        })
        .collect()
}

fn by_name<'a>(found: &'a [(String, Value)], name: &str) -> &'a Value {
    &found.iter().find(|(n, _)| n == name).unwrap().1
}

fn number(id: &Value) -> u64 {
    id.as_str()
        .and_then(|id| id.strip_prefix("INC-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an INC- id: {id}"))
}

async fn restart_keeps_everything(data_dir: &Path, database_url: Option<&str>) {
    use reqwest::Method;
    let first = Server::start(data_dir, database_url);
    first
        .send(
            Method::POST,
            "/api/v1/alerts",
            delivery(vec![
                alert("RestartA", "firing"),
                alert("RestartB", "firing"),
                alert("RestartC", "firing"),
            ]),
        )
        .await;
    // C resolves at the source: the highest id is then a resolved incident,
    // which is not part of the restored working set.
    first
        .send(
            Method::POST,
            "/api/v1/alerts",
            delivery(vec![alert("RestartC", "resolved")]),
        )
        .await;
    let before = incidents(&first).await;
    assert_eq!(before.len(), 3, "{before:?}");
    let b_id = by_name(&before, "RestartB")["id"].as_str().unwrap().to_owned();
    first
        .send(
            Method::POST,
            &format!("/api/v1/incidents/{b_id}/acknowledge"),
            json!({"note": "on it"}),
        )
        .await;
    first
        .send(
            Method::POST,
            "/api/v1/healing/rules",
            json!({"name": "restart-crashloops", "match": {"categories": ["pod-crash"]},
                   "actions": [{"type": "restart-pod"}], "cooldown_seconds": 60}),
        )
        .await;
    first
        .send(
            Method::PUT,
            "/api/v1/healing/dry-run",
            json!({"dry_run": true}),
        )
        .await;
    first
        .send(
            Method::POST,
            "/api/v1/routing/rules",
            json!({"service": "reviews", "namespace": "bookinfo",
                   "destinations": [{"subset": "v1", "labels": {"version": "v1"}, "weight": 90},
                                    {"subset": "v2", "labels": {"version": "v2"}, "weight": 10}]}),
        )
        .await;
    let highest_before = before
        .iter()
        .map(|(_, i)| number(&i["id"]))
        .max()
        .unwrap();
    first.stop();

    let second = Server::start(data_dir, database_url);
    let after = incidents(&second).await;
    assert_eq!(after.len(), 3, "{after:?}");
    for (name, incident) in &before {
        assert_eq!(by_name(&after, name)["id"], incident["id"], "{name}");
    }
    assert_eq!(by_name(&after, "RestartA")["status"], "open");
    assert_eq!(by_name(&after, "RestartB")["status"], "acknowledged");
    assert_eq!(by_name(&after, "RestartC")["status"], "resolved");
    let rules = second.get("/api/v1/healing/rules").await;
    assert_eq!(rules[0]["name"], "restart-crashloops", "{rules}");
    assert_eq!(
        second.get("/api/v1/healing/dry-run").await,
        json!({"dry_run": true})
    );
    let routes = second.get("/api/v1/routing/rules").await;
    assert_eq!(routes[0]["id"], "bookinfo.reviews", "{routes}");

    // Alertmanager redelivers A and B, and a new alert D fires.
    second
        .send(
            Method::POST,
            "/api/v1/alerts",
            delivery(vec![
                alert("RestartA", "firing"),
                alert("RestartB", "firing"),
                alert("RestartD", "firing"),
            ]),
        )
        .await;
    let redelivered = incidents(&second).await;
    assert_eq!(redelivered.len(), 4, "{redelivered:?}");
    for name in ["RestartA", "RestartB"] {
        let incident = by_name(&redelivered, name);
        assert_eq!(incident["id"], by_name(&before, name)["id"], "{name}");
        assert_eq!(incident["occurrences"], 1, "{name}");
    }
    assert_eq!(by_name(&redelivered, "RestartB")["status"], "acknowledged");
    let d = number(&by_name(&redelivered, "RestartD")["id"]);
    assert!(
        d > highest_before,
        "the new id {d} continues after {highest_before}"
    );
    // The acknowledged incident can still be resolved by a person.
    second
        .send(
            Method::POST,
            &format!("/api/v1/incidents/{b_id}/resolve"),
            json!({"note": "fixed"}),
        )
        .await;
    second.stop();
}

#[tokio::test]
async fn serve_restarts_on_sqlite_storage_with_everything_kept() {
    let dir = tempfile::tempdir().unwrap();
    restart_keeps_everything(dir.path(), None).await;
    assert!(dir.path().join("octrix.db").exists());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-storage"]
async fn serve_restarts_on_postgres_storage_with_everything_kept() {
    let base = std::env::var("OCTRIX_TEST_DATABASE_URL")
        .expect("OCTRIX_TEST_DATABASE_URL names a PostgreSQL server (scripts/test-storage)");
    let database = format!("octrix_restart_{}", std::process::id());
    let mut admin = PgConnection::connect(&base).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE (the role needs CREATEDB)");
    let authority = base.find("://").unwrap() + 3;
    let (head, params) = base.split_at(base.find('?').unwrap_or(base.len()));
    let path = head[authority..]
        .find('/')
        .map_or(head.len(), |i| authority + i);
    let url = format!("{}/{database}{params}", &head[..path]);

    let dir = tempfile::tempdir().unwrap();
    restart_keeps_everything(dir.path(), Some(&url)).await;
    assert!(
        !dir.path().join("octrix.db").exists(),
        "no SQLite file when DATABASE_URL names PostgreSQL"
    );
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
}
