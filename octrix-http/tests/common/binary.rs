//! The real `octrix serve` binary, run as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

/// A running `octrix serve` binary.
pub struct Server {
    child: Child,
    /// `http://address:port`.
    pub base: String,
    /// What it printed at start-up.
    pub banner: String,
    client: reqwest::Client,
    token: String,
}

impl Server {
    /// Starts the binary on `data_dir` with the variables `env` (port 0
    /// unless `PORT` is among them; the caller's Prometheus, Kubernetes,
    /// JWT, webhook token and database settings are not inherited) and
    /// waits until it prints its banner; requests carry `token`.
    pub fn start(data_dir: &Path, env: &[(&str, &str)], token: &str) -> Self {
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
            // One tick a minute: the test drives everything through the API.
            .env("PROMETHEUS_SCRAPE_INTERVAL", "60000")
            .env_remove("PROMETHEUS_URL")
            .env_remove("KUBECONFIG_PATH")
            .env_remove("JWT_SECRET")
            .env_remove("OCTRIX_WEBHOOK_TOKEN")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
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
        let banner = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
                panic!("octrix serve did not print its banner; its log:\n{log}")
            });
        let base = banner
            .lines()
            .find_map(|line| line.split("is serving on ").nth(1))
            .expect("the banner names the address")
            .trim()
            .to_owned();
        Self {
            child,
            base,
            banner,
            client: reqwest::Client::new(),
            token: token.to_owned(),
        }
    }

    /// Calls the API; the body is JSON, `Null` when it is not.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let response = self.raw(method, path, body).await;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Calls the API and returns the whole answer (status, headers, body).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        request.send().await.unwrap()
    }

    /// Kills it at once (SIGKILL), as a crash or a lost node would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// GET, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A request with a JSON body, expecting 2xx.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// Stops it the way an operator does (SIGTERM) and checks it exits
    /// cleanly.
    pub fn stop(mut self) {
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

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave the server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates (or empties) the database `name` on the PostgreSQL server of
/// `base` and returns its URL.
pub async fn postgres_database(base: &str, name: &str) -> String {
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE (the role needs CREATEDB)");
    let authority = base.find("://").unwrap() + 3;
    let (head, params) = base.split_at(base.find('?').unwrap_or(base.len()));
    let path = head[authority..]
        .find('/')
        .map_or(head.len(), |i| authority + i);
    format!("{}/{name}{params}", &head[..path])
}

/// Drops the database `name` made by [`postgres_database`], closing the
/// connections a killed server left behind.
pub async fn drop_postgres_database(base: &str, name: &str) {
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}
