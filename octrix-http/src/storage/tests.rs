//! The storage test suite, run on both backends: SQLite on a temporary file
//! always, PostgreSQL when `OCTRIX_TEST_DATABASE_URL` names a server
//! (`scripts/test-storage` starts one and runs the ignored tests).
//!
//! Each test gets a database of its own: a new file, or a new PostgreSQL
//! database created through the URL's role (which needs `CREATEDB`) and
//! dropped when the test passes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use octrix_core::classify::{Category, Fingerprint, ResourceRef, Severity};
use octrix_core::incident::{
    Incident, IncidentFilter, IncidentId, IncidentPage, IncidentQuery, IncidentSource,
    IncidentStatus, IncidentStore, MAX_PAGE_LIMIT, SortDirection, SortKey, StoreError, TimeRange,
    TimelineEntry, TimelineEvent,
};
use octrix_core::labels::from_pairs;
use octrix_core::{Labels, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::*;

// ---------------------------------------------------------------------------
// Fixtures

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database and how to reach it again.
struct Fixture {
    backend: Backend,
    url: String,
    /// The SQLite file's directory, removed on drop.
    _dir: Option<TempDir>,
    /// The PostgreSQL server's URL and the test's database.
    postgres: Option<(String, String)>,
}

const DATABASE_URL_VAR: &str = "OCTRIX_TEST_DATABASE_URL";

fn postgres_base_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VAR} is not set. These tests need a real PostgreSQL: run \
             scripts/test-storage, or scripts/postgres.sh start and then \
             `set -a; . target/postgres.env; set +a`"
        )
    })
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").expect("a URL with a scheme") + 3;
    let (head, params) = url.split_at(url.find('?').unwrap_or(url.len()));
    let path = head[authority..]
        .find('/')
        .map_or(head.len(), |i| authority + i);
    format!("{}/{database}{params}", &head[..path])
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                // A directory that does not exist yet: connect creates it.
                let url = format!("sqlite://{}/data/octrix.db", dir.path().display());
                Self {
                    backend,
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let base = postgres_base_url();
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("a clock after 1970")
                    .subsec_nanos();
                let database = format!(
                    "octrix_t_{}_{}_{nanos}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                let mut admin = PgConnection::connect(&base)
                    .await
                    .unwrap_or_else(|error| panic!("cannot reach {DATABASE_URL_VAR}: {error}"));
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {database}")))
                    .execute(&mut admin)
                    .await
                    .expect("CREATE DATABASE (the role needs CREATEDB)");
                admin.close().await.expect("closing the admin connection");
                Self {
                    backend,
                    url: with_database(&base, &database),
                    _dir: None,
                    postgres: Some((base, database)),
                }
            }
        }
    }

    async fn connect(&self) -> SqlStorage {
        let storage = SqlStorage::connect_with(
            &self.url,
            SqlStorageOptions {
                max_connections: 4,
                ..SqlStorageOptions::default()
            },
        )
        .await
        .expect("connecting to the test database");
        let expected = match self.backend {
            Backend::Sqlite => SqlBackend::Sqlite,
            Backend::Postgres => SqlBackend::Postgres,
        };
        assert_eq!(storage.backend(), expected);
        storage
    }

    /// Drops the test's PostgreSQL database (a failed test leaves it for
    /// inspection; `scripts/postgres.sh start` begins with a new cluster).
    async fn finish(self) {
        if let Some((base, database)) = &self.postgres {
            let mut admin = PgConnection::connect(base).await.expect("admin connection");
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("DROP DATABASE");
            admin.close().await.expect("closing the admin connection");
        }
    }
}

/// Generates each test of the suite once per backend: `sqlite::name` and
/// `postgres::name` (ignored unless asked for). `async` tests take a
/// `&Fixture`; `sync` tests take the backend and run their own runtime.
macro_rules! suite {
    (async: [$($name:ident),* $(,)?], sync: [$($sync:ident),* $(,)?]) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = super::Fixture::new(super::Backend::Sqlite).await;
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
            $(
                #[test]
                fn $sync() {
                    super::$sync(super::Backend::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: run scripts/test-storage"]
                async fn $name() {
                    let fixture = super::Fixture::new(super::Backend::Postgres).await;
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
            $(
                #[test]
                #[ignore = "needs PostgreSQL: run scripts/test-storage"]
                fn $sync() {
                    super::$sync(super::Backend::Postgres);
                }
            )*
        }
    };
}

suite!(
    async: [
        round_trip,
        documents_round_trip,
        upsert_is_idempotent,
        a_batch_keeps_the_last_version_of_an_id,
        large_batches_span_several_statements,
        survives_a_restart,
        retention_deletes_only_old_resolved_incidents_and_history,
        export_is_json_lines_oldest_first,
        corrupt_rows_are_reported_not_panicked_on,
        ids_sort_byte_wise_whatever_the_collation,
        text_search_is_per_field_and_unicode_case_insensitive,
        invalid_pages_are_rejected,
        nul_characters_are_kept_on_sqlite_and_refused_on_postgres,
        group_commit_batches_waiting_submitters,
        group_commit_never_splits_a_submission,
        group_commit_reports_a_failed_commit_to_every_waiter,
        resolved_incidents_since_returns_only_the_recently_resolved,
        a_lease_is_renewed_by_its_holder_and_taken_only_after_expiry,
        a_released_lease_is_taken_at_once,
        racing_candidates_never_both_hold_a_lease,
    ],
    sync: [list_matches_the_reference_semantics]
);

// ---------------------------------------------------------------------------
// Data

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + minute * 60).expect("in range")
}

/// An open, high pod-crash incident of service `cart` in `prod`, opened at
/// `minute`.
fn incident(id: &str, minute: i64) -> Incident {
    Incident {
        id: IncidentId::new(id),
        title: format!("{id}: cart pods crash"),
        description: Some("CrashLoopBackOff".to_owned()),
        category: Category::PodCrash,
        severity: Severity::High,
        status: IncidentStatus::Open,
        service: Some("cart".to_owned()),
        environment: Some("prod".to_owned()),
        namespace: Some("shop".to_owned()),
        resource: Some(ResourceRef::pod("shop", format!("cart-{id}"))),
        labels: from_pairs([("team", "payments"), ("alertname", "PodCrash")]),
        assignee: None,
        runbook_url: Some("https://runbooks.example/pod-crash".to_owned()),
        generator_url: None,
        fingerprint: Fingerprint::new(format!("fp-{id}")),
        occurrences: 1,
        first_seen: at(minute),
        last_seen: at(minute),
        occurrence_started_at: at(minute),
        source: IncidentSource::Alert,
        correlation_group: IncidentId::new(id),
        acknowledged_at: None,
        resolved_at: None,
        resolved_by_healing: false,
        escalated: false,
        chaos_runs: Vec::new(),
        timeline: vec![TimelineEntry {
            at: at(minute),
            actor: "octrix".to_owned(),
            event: TimelineEvent::Opened {
                severity: Severity::High,
                source: IncidentSource::Alert,
            },
        }],
    }
}

fn acknowledged(mut incident: Incident, minute: i64) -> Incident {
    incident.status = IncidentStatus::Acknowledged;
    incident.acknowledged_at = Some(at(minute));
    incident.assignee = Some("alice".to_owned());
    incident.last_seen = at(minute);
    incident.timeline.push(TimelineEntry {
        at: at(minute),
        actor: "alice".to_owned(),
        event: TimelineEvent::StatusChanged {
            from: IncidentStatus::Open,
            to: IncidentStatus::Acknowledged,
            note: None,
        },
    });
    incident
}

fn resolved(mut incident: Incident, minute: i64) -> Incident {
    let from = incident.status;
    incident.status = IncidentStatus::Resolved;
    incident.resolved_at = Some(at(minute));
    incident.last_seen = at(minute);
    incident.timeline.push(TimelineEntry {
        at: at(minute),
        actor: "bob".to_owned(),
        event: TimelineEvent::StatusChanged {
            from,
            to: IncidentStatus::Resolved,
            note: Some("rolled back".to_owned()),
        },
    });
    incident
}

fn document(kind: DocumentKind, id: &str, minute: i64) -> Document {
    Document {
        kind,
        id: id.to_owned(),
        updated_at: at(minute),
        body: serde_json::json!({ "id": id, "minute": minute, "nested": { "list": [1, 2.5, null] } }),
    }
}

fn all(limit: usize) -> IncidentQuery {
    IncidentQuery {
        limit,
        ..IncidentQuery::default()
    }
}

fn ids(page: &IncidentPage) -> Vec<&str> {
    page.items
        .iter()
        .map(|incident| incident.id.as_str())
        .collect()
}

/// The [`StorageError`] inside a [`StoreError`].
fn storage_error(error: StoreError) -> StorageError {
    match error {
        StoreError::Backend {
            source: Some(source),
            ..
        } => *source
            .downcast::<StorageError>()
            .expect("the source is a StorageError"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The suite

async fn round_trip(fixture: &Fixture) {
    let storage = fixture.connect().await;
    storage.ping().await.expect("ping");
    assert_eq!(storage.list(&all(10)).await.unwrap().total, 0);
    assert_eq!(storage.export_incidents_jsonl().await.unwrap(), "");
    assert_eq!(storage.highest_incident_id().await.unwrap(), None);

    let a = incident("INC-000001", 0);
    let b = acknowledged(incident("INC-000002", 5), 7);
    let c = resolved(incident("INC-000003", 10), 12);
    let mut d = incident("INC-000004", 20);
    d.severity = Severity::Critical;
    d.service = None;
    d.environment = None;
    d.namespace = None;
    d.resource = None;
    d.labels = Labels::new();
    d.description = None;
    storage
        .put_incidents(&[a.clone(), b.clone(), c.clone()])
        .await
        .expect("put_incidents");
    storage.put(d.clone()).await.expect("put");

    for expected in [&a, &b, &c, &d] {
        assert_eq!(
            storage.get(&expected.id).await.unwrap().as_ref(),
            Some(expected)
        );
    }
    assert_eq!(
        storage.get(&IncidentId::new("INC-404")).await.unwrap(),
        None
    );

    // Default order: latest activity first.
    let page = storage.list(&IncidentQuery::default()).await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(
        ids(&page),
        ["INC-000004", "INC-000003", "INC-000002", "INC-000001"]
    );
    assert_eq!(page.items[0], d);

    let query = IncidentQuery {
        filter: IncidentFilter {
            statuses: vec![IncidentStatus::Open, IncidentStatus::Acknowledged],
            service: Some("cart".to_owned()),
            text: Some("ALICE".to_owned()),
            ..IncidentFilter::default()
        },
        ..IncidentQuery::default()
    };
    assert_eq!(ids(&storage.list(&query).await.unwrap()), ["INC-000002"]);

    // Open and acknowledged, oldest first.
    let active = storage.active_incidents().await.unwrap();
    assert_eq!(active, [a, b, d]);

    // The highest id orders by length first: a seventh digit is higher.
    assert_eq!(
        storage.highest_incident_id().await.unwrap(),
        Some(IncidentId::new("INC-000004"))
    );
    storage
        .put_incidents(&[incident("INC-1000000", 1)])
        .await
        .unwrap();
    assert_eq!(
        storage.highest_incident_id().await.unwrap(),
        Some(IncidentId::new("INC-1000000"))
    );
}

async fn documents_round_trip(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let rules = [
        document(DocumentKind::TrafficRule, "canary", 3),
        document(DocumentKind::TrafficRule, "blue-green", 9),
        document(DocumentKind::TrafficRule, "mirror", 6),
    ];
    for rule in &rules {
        storage.put_document(rule).await.expect("put_document");
    }
    let run = document(DocumentKind::ChaosRun, "canary", 1);
    storage.put_document(&run).await.unwrap();

    assert_eq!(
        storage
            .get_document(DocumentKind::TrafficRule, "canary")
            .await
            .unwrap(),
        Some(rules[0].clone())
    );
    // Same id, other kind: another document.
    assert_eq!(
        storage
            .get_document(DocumentKind::ChaosRun, "canary")
            .await
            .unwrap(),
        Some(run.clone())
    );
    assert_eq!(
        storage
            .get_document(DocumentKind::Service, "canary")
            .await
            .unwrap(),
        None
    );

    // Most recently updated first, at most `limit`.
    let listed = storage
        .list_documents(DocumentKind::TrafficRule, 10)
        .await
        .unwrap();
    assert_eq!(
        listed,
        [rules[1].clone(), rules[2].clone(), rules[0].clone()]
    );
    let first_two = storage
        .list_documents(DocumentKind::TrafficRule, 2)
        .await
        .unwrap();
    assert_eq!(first_two, [rules[1].clone(), rules[2].clone()]);
    assert!(
        storage
            .list_documents(DocumentKind::TrafficRule, 0)
            .await
            .unwrap()
            .is_empty()
    );

    // Replacing moves it to the front.
    let mut updated = rules[0].clone();
    updated.updated_at = at(20);
    updated.body = serde_json::json!({ "weight": 10, "text": "with \u{0} and \"quotes\"" });
    storage.put_document(&updated).await.unwrap();
    let listed = storage
        .list_documents(DocumentKind::TrafficRule, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], updated);

    assert!(
        storage
            .delete_document(DocumentKind::TrafficRule, "canary")
            .await
            .unwrap()
    );
    assert!(
        !storage
            .delete_document(DocumentKind::TrafficRule, "canary")
            .await
            .unwrap()
    );
    assert_eq!(
        storage
            .get_document(DocumentKind::TrafficRule, "canary")
            .await
            .unwrap(),
        None
    );
    // The chaos run of the same id is untouched.
    assert_eq!(
        storage
            .get_document(DocumentKind::ChaosRun, "canary")
            .await
            .unwrap(),
        Some(run)
    );
}

async fn upsert_is_idempotent(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let batch = [
        incident("INC-1", 0),
        acknowledged(incident("INC-2", 1), 2),
        resolved(incident("INC-3", 3), 4),
    ];
    storage.put_incidents(&batch).await.unwrap();
    let first_export = storage.export_incidents_jsonl().await.unwrap();
    let first_page = storage.list(&all(100)).await.unwrap();

    // A redelivery of the same payload changes nothing.
    storage.put_incidents(&batch).await.unwrap();
    storage.put(batch[0].clone()).await.unwrap();
    assert_eq!(
        storage.export_incidents_jsonl().await.unwrap(),
        first_export
    );
    let page = storage.list(&all(100)).await.unwrap();
    assert_eq!(page, first_page);
    assert_eq!(page.total, 3);
    for expected in &batch {
        assert_eq!(
            storage.get(&expected.id).await.unwrap().as_ref(),
            Some(expected)
        );
    }

    // A new version replaces the row, with its indexed columns.
    let changed = resolved(batch[0].clone(), 30);
    storage.put(changed.clone()).await.unwrap();
    assert_eq!(storage.get(&changed.id).await.unwrap(), Some(changed));
    assert_eq!(storage.list(&all(100)).await.unwrap().total, 3);
    let still_open = IncidentQuery {
        filter: IncidentFilter {
            statuses: vec![IncidentStatus::Open],
            ..IncidentFilter::default()
        },
        ..IncidentQuery::default()
    };
    assert_eq!(storage.list(&still_open).await.unwrap().total, 0);
    assert_eq!(
        storage.active_incidents().await.unwrap(),
        [batch[1].clone()]
    );
}

async fn a_batch_keeps_the_last_version_of_an_id(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let first = incident("INC-7", 0);
    let last = resolved(first.clone(), 9);
    let other = incident("INC-8", 1);
    storage
        .put_incidents(&[first, other.clone(), last.clone()])
        .await
        .unwrap();
    assert_eq!(storage.get(&last.id).await.unwrap(), Some(last));
    assert_eq!(storage.get(&other.id).await.unwrap(), Some(other));
    assert_eq!(storage.list(&all(10)).await.unwrap().total, 2);
}

async fn large_batches_span_several_statements(fixture: &Fixture) {
    let storage = fixture.connect().await;
    // More than two INSERT statements' worth, and more than one export page.
    let batch: Vec<Incident> = (0..1205)
        .map(|i| incident(&format!("INC-{i:05}"), i % 97))
        .collect();
    storage.put_incidents(&batch).await.unwrap();
    assert_eq!(storage.list(&all(1)).await.unwrap().total, 1205);
    let page = storage
        .list(&IncidentQuery {
            sort: SortKey::Id,
            direction: SortDirection::Ascending,
            offset: 1200,
            limit: MAX_PAGE_LIMIT,
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&page),
        [
            "INC-01200",
            "INC-01201",
            "INC-01202",
            "INC-01203",
            "INC-01204"
        ]
    );

    let export = storage.export_incidents_jsonl().await.unwrap();
    let exported: Vec<Incident> = export
        .lines()
        .map(|line| serde_json::from_str(line).expect("one incident per line"))
        .collect();
    let mut expected = batch.clone();
    expected.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
    assert_eq!(exported, expected);
}

async fn survives_a_restart(fixture: &Fixture) {
    let incidents = [incident("INC-1", 0), acknowledged(incident("INC-2", 1), 2)];
    let rule = document(DocumentKind::HealingConfig, "current", 5);
    {
        let storage = fixture.connect().await;
        storage.put_incidents(&incidents).await.unwrap();
        storage.put_document(&rule).await.unwrap();
        storage.close().await;
        assert!(matches!(
            storage.ping().await,
            Err(StorageError::Unavailable(_))
        ));
    }
    // A new pool on the same database (migrations run again: a no-op).
    let storage = fixture.connect().await;
    for expected in &incidents {
        assert_eq!(
            storage.get(&expected.id).await.unwrap().as_ref(),
            Some(expected)
        );
    }
    assert_eq!(storage.active_incidents().await.unwrap(), incidents);
    assert_eq!(
        storage
            .get_document(DocumentKind::HealingConfig, "current")
            .await
            .unwrap(),
        Some(rule)
    );
    // And it still writes.
    storage.put(incident("INC-3", 3)).await.unwrap();
    assert_eq!(storage.list(&all(10)).await.unwrap().total, 3);
}

async fn retention_deletes_only_old_resolved_incidents_and_history(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let cutoff = at(50);
    let old_resolved = resolved(incident("INC-old-resolved", 0), 10);
    let at_cutoff = resolved(incident("INC-at-cutoff", 1), 50);
    let recent_resolved = resolved(incident("INC-recent-resolved", 2), 60);
    let old_open = incident("INC-old-open", 0);
    let old_acknowledged = acknowledged(incident("INC-old-acknowledged", 0), 1);
    storage
        .put_incidents(&[
            old_resolved.clone(),
            at_cutoff.clone(),
            recent_resolved.clone(),
            old_open.clone(),
            old_acknowledged.clone(),
        ])
        .await
        .unwrap();
    let documents = [
        document(DocumentKind::ChaosRun, "old-run", 10),
        document(DocumentKind::ChaosRun, "new-run", 70),
        document(DocumentKind::ActionRecord, "old-action", 49),
        document(DocumentKind::ActionRecord, "cutoff-action", 50),
        document(DocumentKind::TrafficRule, "old-rule", 0),
        document(DocumentKind::HealingConfig, "current", 0),
        document(DocumentKind::ChaosScenario, "old-scenario", 0),
        document(DocumentKind::Service, "old-service", 0),
    ];
    for document in &documents {
        storage.put_document(document).await.unwrap();
    }

    assert_eq!(storage.apply_retention(cutoff).await.unwrap(), 3);

    assert_eq!(storage.get(&old_resolved.id).await.unwrap(), None);
    for kept in [&at_cutoff, &recent_resolved, &old_open, &old_acknowledged] {
        assert_eq!(storage.get(&kept.id).await.unwrap().as_ref(), Some(kept));
    }
    assert_eq!(
        storage
            .get_document(DocumentKind::ChaosRun, "old-run")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        storage
            .get_document(DocumentKind::ActionRecord, "old-action")
            .await
            .unwrap(),
        None
    );
    for kept in &documents[1..] {
        if kept.id == "old-action" {
            continue;
        }
        assert_eq!(
            storage
                .get_document(kept.kind, &kept.id)
                .await
                .unwrap()
                .as_ref(),
            Some(kept),
            "{} {} must stay",
            kept.kind.as_str(),
            kept.id
        );
    }
    // Nothing more to delete.
    assert_eq!(storage.apply_retention(cutoff).await.unwrap(), 0);
}

async fn export_is_json_lines_oldest_first(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let newest = incident("INC-A", 30);
    let tied_b = resolved(incident("INC-B", 10), 20);
    let tied_a = incident("INC-AA", 10);
    let mut before_epoch = incident("INC-Z", 0);
    before_epoch.first_seen = Timestamp::from_nanosecond(-1_500_000_000).unwrap();
    before_epoch.labels = from_pairs([("text", "line\nbreak \u{2028} \"quoted\"")]);
    storage
        .put_incidents(&[
            newest.clone(),
            tied_b.clone(),
            tied_a.clone(),
            before_epoch.clone(),
        ])
        .await
        .unwrap();

    let export = storage.export_incidents_jsonl().await.unwrap();
    assert!(export.ends_with('\n'));
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 4, "{export}");
    let exported: Vec<Incident> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("each line is an incident"))
        .collect();
    // first_seen, then id.
    assert_eq!(exported, [before_epoch, tied_a, tied_b, newest]);
}

async fn corrupt_rows_are_reported_not_panicked_on(fixture: &Fixture) {
    let storage = fixture.connect().await;
    storage
        .put_incidents(&[
            incident("INC-GOOD", 0),
            incident("INC-BAD", 1),
            incident("INC-SWAPPED", 2),
        ])
        .await
        .unwrap();
    assert_eq!(
        storage
            .execute_raw("UPDATE incidents SET body = '{\"id\": \"INC-BAD\", \"title\": 4' WHERE id = 'INC-BAD'")
            .await
            .unwrap(),
        1
    );

    let is_bad = |error: &StorageError| matches!(error, StorageError::Corrupt { what, .. } if what == "incident INC-BAD");
    let error = storage_error(storage.get(&IncidentId::new("INC-BAD")).await.unwrap_err());
    assert!(is_bad(&error), "{error:?}");
    assert!(error.to_string().contains("INC-BAD"), "{error}");
    let error = storage_error(storage.list(&all(10)).await.unwrap_err());
    assert!(is_bad(&error), "{error:?}");
    let error = storage.export_incidents_jsonl().await.unwrap_err();
    assert!(is_bad(&error), "{error:?}");
    let error = storage.active_incidents().await.unwrap_err();
    assert!(is_bad(&error), "{error:?}");
    // The other rows are still readable on their own.
    assert_eq!(
        storage.get(&IncidentId::new("INC-GOOD")).await.unwrap(),
        Some(incident("INC-GOOD", 0))
    );

    // A body holding another incident than its row says.
    storage
        .execute_raw(
            "UPDATE incidents SET body = (SELECT body FROM incidents WHERE id = 'INC-GOOD') \
             WHERE id = 'INC-SWAPPED'",
        )
        .await
        .unwrap();
    let error = storage_error(
        storage
            .get(&IncidentId::new("INC-SWAPPED"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        error,
        StorageError::Corrupt {
            what: "incident INC-SWAPPED".to_owned(),
            reason: "its body holds incident INC-GOOD".to_owned(),
        }
    );

    storage
        .put_document(&document(DocumentKind::TrafficRule, "r1", 0))
        .await
        .unwrap();
    storage
        .execute_raw("UPDATE documents SET body = 'not json' WHERE id = 'r1'")
        .await
        .unwrap();
    let error = storage
        .get_document(DocumentKind::TrafficRule, "r1")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { what, .. } if what == "document traffic_rule/r1"),
        "{error:?}"
    );
    let error = storage
        .list_documents(DocumentKind::TrafficRule, 10)
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error:?}");
}

async fn ids_sort_byte_wise_whatever_the_collation(fixture: &Fixture) {
    let storage = fixture.connect().await;
    // Byte order: uppercase before underscore before lowercase before
    // non-ASCII; a linguistic collation would interleave them.
    let names = ["b", "B", "_", "a", "A", "é", "a_b", "ab", "Z"];
    let batch: Vec<Incident> = names.iter().map(|id| incident(id, 0)).collect();
    storage.put_incidents(&batch).await.unwrap();
    let page = storage
        .list(&IncidentQuery {
            sort: SortKey::Id,
            direction: SortDirection::Ascending,
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page), ["A", "B", "Z", "_", "a", "a_b", "ab", "b", "é"]);
    // Equality is exact too: no case folding.
    let query = IncidentQuery {
        filter: IncidentFilter {
            service: Some("CART".to_owned()),
            ..IncidentFilter::default()
        },
        ..IncidentQuery::default()
    };
    assert_eq!(storage.list(&query).await.unwrap().total, 0);
}

async fn text_search_is_per_field_and_unicode_case_insensitive(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let mut greek = incident("INC-1", 0);
    greek.title = "ΣΑΣ".to_owned();
    greek.fingerprint = Fingerprint::new("Web");
    greek.labels = from_pairs([("a", "Kelvin \u{212A}"), ("b", "a_b")]);
    greek.description = None;
    greek.resource = None;
    greek.service = None;
    let mut plain = incident("INC-2", 1);
    plain.title = "cart".to_owned();
    plain.fingerprint = Fingerprint::new("web");
    plain.labels = Labels::new();
    plain.description = None;
    plain.resource = None;
    storage.put_incidents(&[greek, plain]).await.unwrap();

    let search = async |text: &str| {
        let query = IncidentQuery {
            filter: IncidentFilter {
                text: Some(text.to_owned()),
                ..IncidentFilter::default()
            },
            sort: SortKey::Id,
            direction: SortDirection::Ascending,
            ..IncidentQuery::default()
        };
        let page = storage.list(&query).await.unwrap();
        page.items
            .into_iter()
            .map(|incident| incident.id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    // Unicode lowercasing, as Rust does it (final sigma, Kelvin sign).
    assert_eq!(search("σας").await, ["INC-1"]);
    assert_eq!(search("ΣΑΣ").await, ["INC-1"]);
    assert_eq!(search("kelvin k").await, ["INC-1"]);
    assert_eq!(search("CART").await, ["INC-2"]);
    assert_eq!(search("WEB").await, ["INC-1", "INC-2"]);
    assert_eq!(search("").await, ["INC-1", "INC-2"]);
    // Never across two fields (title "cart", fingerprint "web").
    assert_eq!(search("cartweb").await, Vec::<String>::new());
    assert_eq!(search("tw").await, Vec::<String>::new());
    // SQL wildcards are plain characters.
    assert_eq!(search("_").await, ["INC-1"]);
    assert_eq!(search("%").await, Vec::<String>::new());
    assert_eq!(search("a%b").await, Vec::<String>::new());
    // The column's separator and its lowercase are plain characters too.
    assert_eq!(search("\u{2160}").await, Vec::<String>::new());
}

async fn invalid_pages_are_rejected(fixture: &Fixture) {
    let storage = fixture.connect().await;
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        let error = storage.list(&all(limit)).await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidQuery(_)), "{error:?}");
    }
    // An offset past the end is an empty page that still counts.
    storage.put(incident("INC-1", 0)).await.unwrap();
    let page = storage
        .list(&IncidentQuery {
            offset: usize::MAX,
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (page.items.len(), page.total, page.offset),
        (0, 1, usize::MAX)
    );
}

async fn nul_characters_are_kept_on_sqlite_and_refused_on_postgres(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let mut with_nul = incident("INC-NUL", 0);
    with_nul.title = "before\u{0}after".to_owned();
    let outcome = storage.put_incidents(&[with_nul.clone()]).await;
    match fixture.backend {
        Backend::Sqlite => {
            assert_eq!(outcome, Ok(()));
            assert_eq!(storage.get(&with_nul.id).await.unwrap(), Some(with_nul));
        }
        Backend::Postgres => {
            assert!(
                matches!(&outcome, Err(StorageError::Unavailable(_))),
                "{outcome:?}"
            );
            // Nothing of the batch was written, and the storage still works.
            assert_eq!(storage.get(&with_nul.id).await.unwrap(), None);
            storage.put(incident("INC-OK", 0)).await.unwrap();
            assert_eq!(storage.list(&all(10)).await.unwrap().total, 1);
        }
    }
}

// ---------------------------------------------------------------------------
// Group commit

/// A [`Storage`] that records the size of each `put_incidents` batch and
/// holds every batch until the test lets it through.
struct Gated {
    inner: SqlStorage,
    gate: Semaphore,
    started: AtomicUsize,
    batches: std::sync::Mutex<Vec<usize>>,
}

impl Gated {
    fn new(inner: SqlStorage) -> Arc<Self> {
        Arc::new(Self {
            inner,
            gate: Semaphore::new(0),
            started: AtomicUsize::new(0),
            batches: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn open(&self) {
        self.gate.add_permits(1);
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

#[async_trait]
impl IncidentStore for Gated {
    async fn put(&self, incident: Incident) -> Result<(), StoreError> {
        self.inner.put(incident).await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.inner.get(id).await
    }

    async fn list(&self, query: &IncidentQuery) -> Result<IncidentPage, StoreError> {
        self.inner.list(query).await
    }
}

#[async_trait]
impl Storage for Gated {
    async fn put_incidents(&self, incidents: &[Incident]) -> Result<(), StorageError> {
        self.batches.lock().unwrap().push(incidents.len());
        self.started.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await.expect("the gate stays open");
        self.inner.put_incidents(incidents).await
    }

    async fn active_incidents(&self) -> Result<Vec<Incident>, StorageError> {
        self.inner.active_incidents().await
    }

    async fn resolved_incidents_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<Incident>, StorageError> {
        self.inner.resolved_incidents_since(since).await
    }

    async fn highest_incident_id(&self) -> Result<Option<IncidentId>, StorageError> {
        self.inner.highest_incident_id().await
    }

    async fn put_document(&self, document: &Document) -> Result<(), StorageError> {
        self.inner.put_document(document).await
    }

    async fn get_document(
        &self,
        kind: DocumentKind,
        id: &str,
    ) -> Result<Option<Document>, StorageError> {
        self.inner.get_document(kind, id).await
    }

    async fn list_documents(
        &self,
        kind: DocumentKind,
        limit: usize,
    ) -> Result<Vec<Document>, StorageError> {
        self.inner.list_documents(kind, limit).await
    }

    async fn delete_document(&self, kind: DocumentKind, id: &str) -> Result<bool, StorageError> {
        self.inner.delete_document(kind, id).await
    }

    async fn apply_retention(&self, cutoff: Timestamp) -> Result<u64, StorageError> {
        self.inner.apply_retention(cutoff).await
    }

    async fn export_incidents_jsonl(&self) -> Result<String, StorageError> {
        self.inner.export_incidents_jsonl().await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.ping().await
    }
}

/// Yields until `condition` holds (other tasks run meanwhile); panics after
/// ten seconds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Submitter `i`'s incidents.
fn submission(i: usize) -> Vec<Incident> {
    vec![
        incident(&format!("INC-{i:03}-a"), i as i64),
        acknowledged(incident(&format!("INC-{i:03}-b"), i as i64), 100),
    ]
}

/// Submits `submission(i)` for `i` in `range` concurrently.
fn submit_all(
    committer: &GroupCommitter,
    range: std::ops::Range<usize>,
    tasks: &mut JoinSet<(usize, Result<(), StorageError>)>,
) {
    for i in range {
        let committer = committer.clone();
        tasks.spawn(async move { (i, committer.submit(submission(i)).await) });
    }
}

async fn group_commit_batches_waiting_submitters(fixture: &Fixture) {
    const SUBMITTERS: usize = 40;
    let storage = Gated::new(fixture.connect().await);
    let committer = GroupCommitter::spawn(storage.clone());
    assert_eq!(committer.submit(Vec::new()).await, Ok(()));

    // The first submission's transaction is held open ...
    let mut tasks = JoinSet::new();
    submit_all(&committer, 0..1, &mut tasks);
    until("the first batch is being committed", || {
        storage.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // ... while everyone else arrives and waits in the queue.
    submit_all(&committer, 1..SUBMITTERS, &mut tasks);
    until("every other submission is queued", || {
        committer.queued() == SUBMITTERS - 1
    })
    .await;
    assert!(
        tasks.try_join_next().is_none(),
        "nobody is answered before the commit"
    );
    storage.open();

    let mut answered = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.expect("a submitter task");
        assert_eq!(outcome, Ok(()), "submitter {i}");
        answered.push(i);
    }
    assert_eq!(answered.len(), SUBMITTERS);
    // Two transactions: the first submission, then all the others together.
    assert_eq!(storage.batches(), [2, 2 * (SUBMITTERS - 1)]);

    let page = storage.list(&all(MAX_PAGE_LIMIT)).await.unwrap();
    assert_eq!(page.total, 2 * SUBMITTERS);
    for i in 0..SUBMITTERS {
        for expected in submission(i) {
            assert_eq!(
                storage.get(&expected.id).await.unwrap().as_ref(),
                Some(&expected)
            );
        }
    }
}

async fn group_commit_never_splits_a_submission(fixture: &Fixture) {
    let storage = Gated::new(fixture.connect().await);
    storage.open();
    let committer = GroupCommitter::spawn_with(
        storage.clone(),
        GroupCommitConfig {
            queue_capacity: 4,
            max_batch_incidents: 5,
        },
    );
    let mut tasks = JoinSet::new();
    submit_all(&committer, 0..30, &mut tasks);
    let big: Vec<Incident> = (0..7)
        .map(|i| incident(&format!("INC-big-{i}"), i))
        .collect();
    assert_eq!(committer.submit(big).await, Ok(()));
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.expect("a submitter task");
        assert_eq!(outcome, Ok(()), "submitter {i}");
    }
    let batches = storage.batches();
    // Whole submissions of two, at most two of them per batch; the
    // oversized one alone.
    assert_eq!(batches.iter().sum::<usize>(), 67, "{batches:?}");
    assert!(batches.contains(&7), "{batches:?}");
    assert!(
        batches
            .iter()
            .all(|&size| size == 7 || (size % 2 == 0 && size <= 4)),
        "{batches:?}"
    );
    assert_eq!(storage.list(&all(10)).await.unwrap().total, 67);
}

async fn group_commit_reports_a_failed_commit_to_every_waiter(fixture: &Fixture) {
    const SUBMITTERS: usize = 12;
    let storage = Gated::new(fixture.connect().await);
    // The database refuses every write from now on.
    storage
        .inner
        .execute_raw("DROP TABLE incidents")
        .await
        .expect("dropping the table");
    let committer = GroupCommitter::spawn(storage.clone());
    let mut tasks = JoinSet::new();
    submit_all(&committer, 0..1, &mut tasks);
    until("the first batch is being committed", || {
        storage.started.load(Ordering::SeqCst) == 1
    })
    .await;
    submit_all(&committer, 1..SUBMITTERS, &mut tasks);
    until("every other submission is queued", || {
        committer.queued() == SUBMITTERS - 1
    })
    .await;
    storage.open();

    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.expect("a submitter task");
        match outcome {
            Err(StorageError::Unavailable(message)) => errors.push(message),
            other => panic!("submitter {i} got {other:?}"),
        }
    }
    assert_eq!(errors.len(), SUBMITTERS);
    assert!(
        errors.iter().all(|message| message.contains("incidents")),
        "{errors:?}"
    );
    assert_eq!(storage.batches(), [2, 2 * (SUBMITTERS - 1)]);
    // The committer carries on after a failure.
    assert!(committer.submit(submission(99)).await.is_err());
    assert_eq!(storage.batches().len(), 3);
}

// ---------------------------------------------------------------------------
// The listing against the core's reference semantics

/// Words with case, Unicode lowercasing corner cases (final sigma, dotted
/// capital I, sharp s, Kelvin sign, a titlecase digraph), SQL wildcard
/// characters, the search column's separator and its lowercase.
const WORDS: &[&str] = &[
    "cart", "Cart", "CART", "web", "Web-1", "ΣΑΣ", "σας", "straße", "STRASSE", "İx", "\u{212A}",
    "k", "ǅ", "_", "%", "a b", "\u{2160}", "\u{2170}", "",
];

/// Needles: words and word pairs, plus pieces that match inside or across
/// fields.
const NEEDLES: &[&str] = &[
    "cartcart",
    "cart web",
    "cartweb",
    "tc",
    "tw",
    "bc",
    "1c",
    "c-",
    "t",
    "s",
    "ss",
    "σ",
    "ς",
    "i\u{307}",
    "K",
    "-1",
    " ",
    "\u{2170}",
    "\u{2160}cart",
    "",
];

const IDS: &[&str] = &[
    "INC-1", "INC-2", "INC-3", "INC-10", "inc-1", "Inc-2", "_a", "a_", "é", "Z", "z", "ı", "İ",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

fn phrase() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 0..3).prop_map(|words| words.join(" "))
}

fn needle() -> impl Strategy<Value = String> {
    prop_oneof![
        phrase(),
        prop::sample::select(NEEDLES).prop_map(str::to_owned)
    ]
}

fn instant() -> impl Strategy<Value = Timestamp> {
    let special = vec![
        Timestamp::MIN,
        Timestamp::MAX,
        Timestamp::UNIX_EPOCH,
        Timestamp::from_nanosecond(-1).unwrap(),
        Timestamp::from_nanosecond(-1_500_000_000).unwrap(),
        Timestamp::from_nanosecond(-500_000_000).unwrap(),
        Timestamp::from_nanosecond(1_800_000_000_000_000_001).unwrap(),
    ];
    prop_oneof![
        2 => prop::sample::select(special),
        5 => (0i64..12).prop_map(at),
        2 => (Timestamp::MIN.as_nanosecond()..=Timestamp::MAX.as_nanosecond())
            .prop_map(|nanos| Timestamp::from_nanosecond(nanos).unwrap()),
    ]
}

fn sparse<T: std::fmt::Debug>(
    strategy: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.3, strategy)
}

/// Mostly no condition, sometimes one or two values.
fn any_of<T: Clone + std::fmt::Debug + 'static>(values: Vec<T>) -> impl Strategy<Value = Vec<T>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec(prop::sample::select(values), 1..3),
    ]
}

prop_compose! {
    fn arbitrary_incident()(
        (id, title, description, category, severity, status) in (
            prop::sample::select(IDS),
            phrase(),
            prop::option::of(phrase()),
            prop::sample::select(Category::ALL.to_vec()),
            prop::sample::select(Severity::ALL.to_vec()),
            prop::sample::select(IncidentStatus::ALL.to_vec()),
        ),
        (service, environment, namespace, resource, assignee) in (
            prop::option::of(word()),
            prop::option::of(word()),
            prop::option::of(word()),
            prop::option::of(word()),
            prop::option::of(word()),
        ),
        labels in prop::collection::btree_map(
            prop::sample::select(vec!["team", "app", "zone"]).prop_map(str::to_owned),
            phrase(),
            0..3,
        ),
        (fingerprint, first_seen, last_seen, resolved_at) in (
            word(),
            instant(),
            instant(),
            prop::option::of(instant()),
        ),
    ) -> Incident {
        let mut incident = incident(id, 0);
        incident.title = title;
        incident.description = description;
        incident.category = category;
        incident.severity = severity;
        incident.status = status;
        incident.service = service;
        incident.environment = environment;
        incident.namespace = namespace.clone();
        incident.resource = resource.map(|name| ResourceRef::pod(namespace.unwrap_or_default(), name));
        incident.assignee = assignee;
        incident.labels = labels;
        incident.fingerprint = Fingerprint::new(fingerprint);
        incident.first_seen = first_seen;
        incident.last_seen = last_seen;
        incident.occurrence_started_at = first_seen;
        incident.resolved_at = resolved_at;
        incident.timeline.clear();
        incident
    }
}

prop_compose! {
    fn arbitrary_query()(
        (statuses, severities, categories, service, environment) in (
            any_of(IncidentStatus::ALL.to_vec()),
            any_of(Severity::ALL.to_vec()),
            any_of(Category::ALL.to_vec()),
            sparse(word()),
            sparse(word()),
        ),
        (start, end, text) in (
            sparse(instant()),
            sparse(instant()),
            prop::option::weighted(0.6, needle()),
        ),
        (sort, direction, offset, limit) in (
            prop::sample::select(vec![SortKey::FirstSeen, SortKey::LastSeen, SortKey::Severity, SortKey::Id]),
            prop::sample::select(vec![SortDirection::Ascending, SortDirection::Descending]),
            prop_oneof![4 => 0usize..12, 1 => Just(usize::MAX)],
            prop_oneof![4 => 1usize..12, 1 => Just(MAX_PAGE_LIMIT)],
        ),
    ) -> IncidentQuery {
        IncidentQuery {
            filter: IncidentFilter {
                statuses,
                severities,
                categories,
                service,
                environment,
                opened: TimeRange { start, end },
                text,
            },
            sort,
            direction,
            offset,
            limit,
        }
    }
}

fn list_matches_the_reference_semantics(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let fixture = runtime.block_on(Fixture::new(backend));
    let storage = runtime.block_on(fixture.connect());

    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 128;
    }
    let mut runner = TestRunner::new(config);
    let case = (
        prop::collection::vec(arbitrary_incident(), 0..30),
        0usize..30,
        prop::collection::vec(arbitrary_query(), 1..10),
    );
    let outcome = runner.run(&case, |(incidents, split, queries)| {
        runtime.block_on(async {
            storage
                .execute_raw("DELETE FROM incidents")
                .await
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            // Two transactions, so that later versions of an id replace
            // stored rows as well as earlier ones in the same batch.
            let split = split.min(incidents.len());
            for part in [&incidents[..split], &incidents[split..]] {
                storage
                    .put_incidents(part)
                    .await
                    .map_err(|error| TestCaseError::fail(error.to_string()))?;
            }
            let mut reference = BTreeMap::new();
            for incident in &incidents {
                reference.insert(incident.id.clone(), incident.clone());
            }
            for query in &queries {
                let expected = query.apply(reference.values()).expect("a valid query");
                let actual = storage
                    .list(query)
                    .await
                    .map_err(|error| TestCaseError::fail(error.to_string()))?;
                prop_assert_eq!(&actual, &expected, "query {:?}", query);
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    runtime.block_on(fixture.finish());
}

// ---------------------------------------------------------------------------
// Backend-specific

#[tokio::test]
async fn sqlite_storage_runs_in_wal_mode_with_normal_sync() {
    let fixture = Fixture::new(Backend::Sqlite).await;
    let storage = fixture.connect().await;
    let (journal_mode, synchronous, foreign_keys, busy_timeout) =
        storage.sqlite_settings().await.expect("a SQLite storage");
    assert_eq!(journal_mode, "wal");
    assert_eq!(synchronous, 1, "NORMAL");
    assert_eq!(foreign_keys, 1);
    assert_eq!(busy_timeout, 5000);

    let dir = tempfile::tempdir().unwrap();
    let full = SqlStorage::open_sqlite(
        dir.path().join("a file name with spaces?.db"),
        SqlStorageOptions {
            sqlite_full_sync: true,
            sqlite_busy_timeout: Duration::from_millis(1500),
            ..SqlStorageOptions::default()
        },
    )
    .await
    .unwrap();
    let (_, synchronous, _, busy_timeout) = full.sqlite_settings().await.unwrap();
    assert_eq!((synchronous, busy_timeout), (2, 1500), "FULL");
    full.put(incident("INC-1", 0)).await.unwrap();
    assert!(dir.path().join("a file name with spaces?.db").exists());
}

#[tokio::test]
async fn sqlite_storage_works_in_memory() {
    let storage = SqlStorage::connect("sqlite::memory:").await.unwrap();
    let batch: Vec<Incident> = (0..20)
        .map(|i| incident(&format!("INC-{i:02}"), i))
        .collect();
    storage.put_incidents(&batch).await.unwrap();
    // Concurrent readers share the one connection, so they see the data.
    let mut readers = JoinSet::new();
    for incident in batch.clone() {
        let storage = storage.clone();
        readers.spawn(async move { storage.get(&incident.id).await.unwrap() == Some(incident) });
    }
    while let Some(found) = readers.join_next().await {
        assert!(found.unwrap());
    }
    assert_eq!(storage.list(&all(100)).await.unwrap().total, 20);
    // Another in-memory storage is another database.
    let other = SqlStorage::connect("sqlite::memory:").await.unwrap();
    assert_eq!(other.list(&all(100)).await.unwrap().total, 0);
}

#[tokio::test]
async fn storage_connect_failures_are_unavailable_without_secrets() {
    let error = SqlStorage::connect("redis://user:hunter2@localhost")
        .await
        .unwrap_err();
    assert!(matches!(&error, StorageError::Unavailable(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");

    // Nothing listens on port 1.
    let error = SqlStorage::connect_with(
        "postgres://octrix:hunter2@127.0.0.1:1/octrix",
        SqlStorageOptions {
            acquire_timeout: Duration::from_secs(2),
            ..SqlStorageOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(&error, StorageError::Unavailable(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");

    // A file where the database's directory should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taken"), "").unwrap();
    let url = format!("sqlite://{}/taken/octrix.db", dir.path().display());
    let error = SqlStorage::connect(&url).await.unwrap_err();
    assert!(matches!(&error, StorageError::Unavailable(_)), "{error:?}");
}

#[test]
fn storage_test_urls_swap_the_database() {
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:15432/octrix_test", "t1"),
        "postgres://u:p@127.0.0.1:15432/t1"
    );
    assert_eq!(
        with_database("postgres://u@h/db?sslmode=disable", "t2"),
        "postgres://u@h/t2?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://u@h:5432", "t3"),
        "postgres://u@h:5432/t3"
    );
}

// ---------------------------------------------------------------------------
// Recently resolved incidents and leadership leases

async fn resolved_incidents_since_returns_only_the_recently_resolved(fixture: &Fixture) {
    let storage = fixture.connect().await;
    storage
        .put_incidents(&[
            resolved(incident("INC-000001", 0), 10),
            resolved(incident("INC-000002", 1), 40),
            incident("INC-000003", 2),
            resolved(acknowledged(incident("INC-000004", 3), 5), 41),
        ])
        .await
        .unwrap();
    let since = |minute| {
        let storage = storage.clone();
        async move {
            let found = storage.resolved_incidents_since(at(minute)).await.unwrap();
            found
                .into_iter()
                .map(|i| i.id.as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // Oldest opened first; the open one never, the boundary included.
    assert_eq!(since(40).await, ["INC-000002", "INC-000004"]);
    assert_eq!(since(41).await, ["INC-000004"]);
    assert_eq!(since(0).await, ["INC-000001", "INC-000002", "INC-000004"]);
    assert!(since(42).await.is_empty());
}

const LEASE: &str = "octrix-test";

async fn a_lease_is_renewed_by_its_holder_and_taken_only_after_expiry(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let duration = Duration::from_millis(1500);
    let first = storage
        .try_lease(LEASE, "a", "http://a:3001", "token-a", duration)
        .await
        .unwrap();
    assert!(first.held);
    assert_eq!((first.holder.as_str(), first.term), ("a", 1));
    assert!(first.remaining > Duration::from_millis(1000), "{first:?}");

    // Another candidate is refused while it is valid, and told who leads.
    let refused = storage
        .try_lease(LEASE, "b", "http://b:3001", "token-b", duration)
        .await
        .unwrap();
    assert!(!refused.held);
    assert_eq!(refused.holder, "a");
    assert_eq!(refused.url, "http://a:3001");
    assert_eq!(refused.forward_token, "token-a");
    assert_eq!(refused.term, 1);

    // The holder renews within its term, which stays the same.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let renewed = storage
        .try_lease(LEASE, "a", "http://a:3001", "token-a", duration)
        .await
        .unwrap();
    assert!(renewed.held);
    assert_eq!(renewed.term, 1);
    // 800 ms after the first grant the first expiry would be near; the
    // renewal pushed it out again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let still = storage
        .try_lease(LEASE, "b", "http://b:3001", "token-b", duration)
        .await
        .unwrap();
    assert!(!still.held, "renewed lease stolen: {still:?}");
    assert_eq!(still.holder, "a");

    // Once it expires (no renewal), the other candidate takes it: a new term.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let taken = storage
        .try_lease(LEASE, "b", "http://b:3001", "token-b", duration)
        .await
        .unwrap();
    assert!(taken.held, "{taken:?}");
    assert_eq!((taken.holder.as_str(), taken.term), ("b", 2));
    assert_eq!(taken.url, "http://b:3001");
    assert_eq!(taken.forward_token, "token-b");
    // The old holder comes back and is told it lost.
    let lost = storage
        .try_lease(LEASE, "a", "http://a:3001", "token-a", duration)
        .await
        .unwrap();
    assert!(!lost.held);
    assert_eq!((lost.holder.as_str(), lost.term), ("b", 2));
    // A holder that lets its own lease expire and takes it back starts a new term.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let again = storage
        .try_lease(LEASE, "b", "http://b:3001", "token-b", duration)
        .await
        .unwrap();
    assert!(again.held);
    assert_eq!(again.term, 3);
    // Leases of other names are independent.
    let other = storage
        .try_lease("another", "a", "http://a:3001", "token-a", duration)
        .await
        .unwrap();
    assert!(other.held);
    assert_eq!(other.term, 1);
}

async fn a_released_lease_is_taken_at_once(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let minute = Duration::from_secs(60);
    assert!(
        storage
            .try_lease(LEASE, "a", "http://a", "token", minute)
            .await
            .unwrap()
            .held
    );
    // Only the holder can release it.
    assert!(!storage.release_lease(LEASE, "b").await.unwrap());
    assert!(
        !storage
            .try_lease(LEASE, "b", "http://b", "token", minute)
            .await
            .unwrap()
            .held
    );
    assert!(storage.release_lease(LEASE, "a").await.unwrap());
    let taken = storage
        .try_lease(LEASE, "b", "http://b", "token", minute)
        .await
        .unwrap();
    assert!(taken.held, "{taken:?}");
    assert_eq!(taken.term, 2);
    assert!((59..=60).contains(&taken.remaining.as_secs()), "{taken:?}");
}

async fn racing_candidates_never_both_hold_a_lease(fixture: &Fixture) {
    let storage = fixture.connect().await;
    let mut round = 0;
    while round < 5 {
        let name = format!("race-{round}");
        let mut attempts = JoinSet::new();
        for candidate in 0..8 {
            let storage = storage.clone();
            let name = name.clone();
            attempts.spawn(async move {
                storage
                    .try_lease(
                        &name,
                        &format!("c{candidate}"),
                        "http://c",
                        "token",
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap()
            });
        }
        let leases = attempts.join_all().await;
        let holders: Vec<&Lease> = leases.iter().filter(|lease| lease.held).collect();
        assert_eq!(holders.len(), 1, "{leases:?}");
        assert!(leases.iter().all(|lease| lease.holder == holders[0].holder));
        round += 1;
    }
}
