//! The real `octrix serve` binary, stopped and started again on the same
//! database: everything it stored is still there, incident ids continue,
//! and a redelivered alert deduplicates into the restored incident.
//!
//! On SQLite (a file in a temporary data directory) always; on PostgreSQL
//! when `OCTRIX_TEST_DATABASE_URL` names a server (`scripts/test-storage`
//! starts one and runs the ignored tests).

mod common;

use std::path::Path;

use common::binary::{Server, drop_postgres_database, postgres_database};
use serde_json::{Value, json};

const ADMIN: &str = "restart-test-admin-token-0123456789";

/// Starts `octrix serve` on `data_dir` and the database, and checks it
/// says which store it runs on.
fn start(data_dir: &Path, database_url: Option<&str>) -> Server {
    let mut env = vec![("OCTRIX_ADMIN_TOKEN", ADMIN)];
    env.extend(database_url.map(|url| ("DATABASE_URL", url)));
    let server = Server::start(data_dir, &env, ADMIN);
    let store = if database_url.is_some() {
        "storage:        PostgreSQL"
    } else {
        "storage:        SQLite"
    };
    assert!(server.banner.contains(store), "{}", server.banner);
    assert!(server.banner.contains("restored:"), "{}", server.banner);
    server
}

fn alert(name: &str, status: &str) -> Value {
    alert_from(name, status, "2026-11-23T09:06:35Z")
}

fn alert_from(name: &str, status: &str, starts_at: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "service": "checkout", "severity": "critical"},
        "annotations": {"summary": format!("{name} fired")},
        "startsAt": starts_at,
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
            name.starts_with("Restart")
                .then(|| (name.to_owned(), i.clone()))
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
    let first = start(data_dir, database_url);
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
    let b_id = by_name(&before, "RestartB")["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let highest_before = before.iter().map(|(_, i)| number(&i["id"])).max().unwrap();
    first.stop();

    let second = start(data_dir, database_url);
    assert!(
        second
            .banner
            .contains("2 open or acknowledged incidents, 1 resolved within the reopen window"),
        "{}",
        second.banner
    );
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
    // C was resolved minutes ago, before the restart: firing again within
    // the reopen window reopens the same incident instead of opening one.
    second
        .send(
            Method::POST,
            "/api/v1/alerts",
            delivery(vec![alert_from(
                "RestartC",
                "firing",
                "2026-11-23T09:40:00Z",
            )]),
        )
        .await;
    let refired = incidents(&second).await;
    assert_eq!(refired.len(), 4, "{refired:?}");
    let c = by_name(&refired, "RestartC");
    assert_eq!(c["id"], by_name(&before, "RestartC")["id"]);
    assert_eq!(c["status"], "open");
    assert!(
        c["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry.to_string().contains("fired again")),
        "{c}"
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
    let url = postgres_database(&base, &database).await;

    let dir = tempfile::tempdir().unwrap();
    restart_keeps_everything(dir.path(), Some(&url)).await;
    assert!(
        !dir.path().join("octrix.db").exists(),
        "no SQLite file when DATABASE_URL names PostgreSQL"
    );
    drop_postgres_database(&base, &database).await;
}
