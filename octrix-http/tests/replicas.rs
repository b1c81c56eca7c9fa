//! Two real `octrix serve` replicas on one real PostgreSQL database: one
//! leads, the other follows, forwards writes to it and takes over when it
//! dies or stops.
//!
//! Ignored unless `OCTRIX_TEST_DATABASE_URL` names a PostgreSQL server:
//! `scripts/test-storage` starts one and runs them.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::binary::{Server, drop_postgres_database, postgres_database};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "replicas-test-admin-token-0123456789";
/// Short leases so that the test runs in seconds.
const LEASE_SECONDS: u64 = 3;

fn start(data_dir: &Path, database_url: &str, replica: &str) -> Server {
    let lease = LEASE_SECONDS.to_string();
    let env = [
        ("OCTRIX_ADMIN_TOKEN", ADMIN),
        ("DATABASE_URL", database_url),
        ("OCTRIX_REPLICA_ID", replica),
        ("OCTRIX_LEASE_SECONDS", lease.as_str()),
        ("OCTRIX_LEASE_RENEW_SECONDS", "1"),
        ("OCTRIX_FOLLOWER_REFRESH_MS", "300"),
    ];
    let server = Server::start(data_dir, &env, ADMIN);
    assert!(server.banner.contains("replication:"), "{}", server.banner);
    server
}

fn alert(name: &str, starts_at: &str) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": name, "service": "checkout", "severity": "critical"},
        "annotations": {"summary": format!("{name} fired")},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
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

async fn role(server: &Server) -> Value {
    server.get("/health").await["replication"].clone()
}

/// The incidents of alert `name`, as `server` lists them.
async fn incidents_of(server: &Server, name: &str) -> Vec<Value> {
    let page = server.get("/api/v1/incidents?limit=100").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["labels"]["alertname"] == name)
        .cloned()
        .collect()
}

/// Waits until `check` holds, at most `limit`; returns how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {limit:?}");
}

async fn leader_metric(server: &Server) -> String {
    let text = server
        .raw(Method::GET, "/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| line.starts_with("octrix_leader "))
        .unwrap_or_else(|| panic!("no octrix_leader in /metrics:\n{text}"))
        .to_owned()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-storage"]
async fn two_replicas_on_postgres_storage_share_one_leader_and_fail_over() {
    let base = std::env::var("OCTRIX_TEST_DATABASE_URL")
        .expect("OCTRIX_TEST_DATABASE_URL names a PostgreSQL server (scripts/test-storage)");
    let name = format!("octrix_replicas_{}", std::process::id());
    let url = postgres_database(&base, &name).await;
    let (dir_a, dir_b, dir_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );

    // The first replica finds the lease free and leads; the second follows it.
    let a = start(dir_a.path(), &url, "a");
    let b = start(dir_b.path(), &url, "b");
    let (role_a, role_b) = (role(&a).await, role(&b).await);
    assert_eq!(role_a["role"], "leader", "{role_a}");
    assert_eq!(role_b["role"], "follower", "{role_b}");
    let leader_id = role_a["replica"].as_str().unwrap().to_owned();
    assert!(leader_id.starts_with("a-"), "{leader_id}");
    assert_eq!(role_b["leader"], leader_id.as_str());
    assert_eq!(role_b["leader_url"], a.base.as_str());
    assert_eq!(role_a["term"], role_b["term"]);
    // The role is also on /ready, /api/v1/metrics/status and /metrics.
    assert_eq!(b.get("/ready").await["replication"]["role"], "follower");
    assert_eq!(
        a.get("/api/v1/metrics/status").await["replication"]["role"],
        "leader"
    );
    assert_eq!(leader_metric(&a).await, "octrix_leader 1");
    assert_eq!(leader_metric(&b).await, "octrix_leader 0");
    // Live events are the leader's: the follower says where they are.
    let (status, body) = b.call(Method::GET, "/api/v1/events/sse", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_string().contains(a.base.as_str()),
        "names the leader's URL: {body}"
    );

    // A webhook delivered to the follower is committed once, by the leader,
    // and both list it; a redelivery through either changes nothing.
    let payload = delivery(vec![alert("ReplicaA", "2026-11-23T09:06:35Z")]);
    b.send(Method::POST, "/api/v1/alerts", payload.clone())
        .await;
    a.send(Method::POST, "/api/v1/alerts", payload.clone())
        .await;
    b.send(Method::POST, "/api/v1/alerts", payload).await;
    let on_a = incidents_of(&a, "ReplicaA").await;
    let on_b = incidents_of(&b, "ReplicaA").await;
    assert_eq!(on_a.len(), 1, "{on_a:?}");
    assert_eq!(on_a, on_b);
    assert_eq!(on_a[0]["occurrences"], 1);
    let id = on_a[0]["id"].as_str().unwrap().to_owned();

    // An acknowledgement through the follower, with its credentials.
    b.send(
        Method::POST,
        &format!("/api/v1/incidents/{id}/acknowledge"),
        json!({"note": "via the follower"}),
    )
    .await;
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "acknowledged"
    );
    // The caller's credentials are what the leader checks.
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents/{id}/resolve", b.base))
        .bearer_auth("not-a-valid-token-at-all-0123456789")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // A rule created through the follower is read back from it once its
    // mirror of the engine's state catches up.
    b.send(
        Method::POST,
        "/api/v1/healing/rules",
        json!({"name": "replica-rule", "match": {"categories": ["pod-crash"]},
               "actions": [{"type": "restart-pod"}], "cooldown_seconds": 60}),
    )
    .await;
    within(
        Duration::from_secs(3),
        "the follower mirrors the rule",
        || async {
            let rules = b.get("/api/v1/healing/rules").await;
            rules
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "replica-rule")
        },
    )
    .await;

    // The leader dies. Until the follower takes over, a write is refused
    // with 503 and Retry-After, naming the unreachable leader.
    a.kill();
    let refused = b
        .raw(
            Method::POST,
            "/api/v1/alerts",
            Some(delivery(vec![alert("ReplicaB", "2026-11-23T09:10:00Z")])),
        )
        .await;
    let status = refused.status();
    let retry = refused.headers().get("retry-after").cloned();
    let text = refused.text().await.unwrap();
    assert_eq!(status, 503, "{text}");
    assert_eq!(retry.unwrap(), "2");
    assert!(text.contains("cannot be reached"), "{text}");

    let took = within(
        Duration::from_secs(LEASE_SECONDS + 2),
        "the follower takes over",
        || async { role(&b).await["role"] == "leader" },
    )
    .await;
    eprintln!("the follower led {took:?} after the leader was killed (lease {LEASE_SECONDS} s)");
    assert!(
        took <= Duration::from_secs(LEASE_SECONDS) + Duration::from_millis(500),
        "took over after {took:?}"
    );
    let role_b = role(&b).await;
    assert!(role_b["term"].as_i64().unwrap() > role_a["term"].as_i64().unwrap());
    assert_eq!(leader_metric(&b).await, "octrix_leader 1");

    // Everything is still there, and the new leader goes on with it: the
    // redelivered alert deduplicates, a new one opens after the last id.
    let kept = incidents_of(&b, "ReplicaA").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["id"], id.as_str());
    assert_eq!(kept[0]["status"], "acknowledged");
    b.send(
        Method::POST,
        "/api/v1/alerts",
        delivery(vec![
            alert("ReplicaA", "2026-11-23T09:06:35Z"),
            alert("ReplicaB", "2026-11-23T09:10:00Z"),
        ]),
    )
    .await;
    assert_eq!(incidents_of(&b, "ReplicaA").await.len(), 1);
    let new = incidents_of(&b, "ReplicaB").await;
    assert_eq!(new.len(), 1);
    assert!(new[0]["id"].as_str().unwrap() > id.as_str(), "{new:?}");

    // A third replica follows the new leader; when that one stops
    // gracefully it releases the lease and the third leads at once.
    let c = start(dir_c.path(), &url, "c");
    assert_eq!(role(&c).await["role"], "follower");
    assert_eq!(role(&c).await["leader_url"], b.base.as_str());
    b.stop();
    let took = within(
        Duration::from_secs(LEASE_SECONDS),
        "the third replica takes over after a graceful stop",
        || async { role(&c).await["role"] == "leader" },
    )
    .await;
    eprintln!("after a graceful stop the follower led {took:?} later");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(incidents_of(&c, "ReplicaB").await.len(), 1);
    c.stop();

    drop_postgres_database(&base, &name).await;
}
