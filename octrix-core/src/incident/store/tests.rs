use std::sync::Arc;

use super::*;
use crate::Timestamp;
use crate::alert::{Alert, AlertStatus};
use crate::incident::{IncidentBook, Ingested};
use crate::labels::from_pairs;

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
}

/// Fingerprint, labels, summary.
type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// Five incidents from a book:
/// 1 cart/prod critical open (t0), 2 cart/prod warning acknowledged (t10),
/// 3 web/dev warning resolved (t20), 4 web/prod info open (t30),
/// 5 no service, critical, open (t40).
fn incidents() -> Vec<Incident> {
    let mut book = IncidentBook::default();
    let rows: [Row; 5] = [
        (
            "f1",
            &[
                ("service", "cart"),
                ("env", "prod"),
                ("severity", "critical"),
            ],
            "Cart down",
        ),
        (
            "f2",
            &[
                ("service", "cart"),
                ("env", "prod"),
                ("severity", "warning"),
            ],
            "Cart slow",
        ),
        (
            "f3",
            &[("service", "web"), ("env", "dev"), ("severity", "warning")],
            "Web 5xx",
        ),
        (
            "f4",
            &[
                ("service", "web"),
                ("env", "prod"),
                ("severity", "info"),
                ("team", "Frontend"),
            ],
            "Web deploy",
        ),
        ("f5", &[("severity", "critical")], "Disk full"),
    ];
    let mut ids = Vec::new();
    for (minute, (fingerprint, labels, title)) in (0..).step_by(10).zip(rows) {
        let alert = Alert {
            fingerprint: fingerprint.into(),
            status: AlertStatus::Firing,
            labels: from_pairs(labels.iter().copied()),
            annotations: from_pairs([("summary", title)]),
            starts_at: at(minute),
            ends_at: None,
            generator_url: None,
        };
        let Ingested::Opened(id) = book.ingest_alert(&alert, at(minute)) else {
            panic!("expected a new incident");
        };
        ids.push(id);
    }
    book.acknowledge(&ids[1], "alice", None, at(11)).unwrap();
    book.resolve(&ids[2], "bob", None, at(21)).unwrap();
    book.incidents().cloned().collect()
}

async fn filled() -> Arc<dyn IncidentStore> {
    let store: Arc<dyn IncidentStore> = Arc::new(InMemoryIncidentStore::new());
    for incident in incidents() {
        store.put(incident).await.unwrap();
    }
    store
}

async fn ids(store: &dyn IncidentStore, query: IncidentQuery) -> Vec<String> {
    let page = store.list(&query).await.unwrap();
    page.items
        .iter()
        .map(|i| i.id.as_str().to_owned())
        .collect()
}

fn filtered(filter: IncidentFilter) -> IncidentQuery {
    IncidentQuery {
        filter,
        sort: SortKey::Id,
        direction: SortDirection::Ascending,
        ..IncidentQuery::default()
    }
}

#[tokio::test]
async fn put_replaces_and_get_returns_copies() {
    let store = InMemoryIncidentStore::new();
    let mut incident = incidents().remove(0);
    store.put(incident.clone()).await.unwrap();
    incident.title = "renamed".into();
    store.put(incident.clone()).await.unwrap();
    assert_eq!(store.get(&incident.id).await.unwrap(), Some(incident));
    assert_eq!(store.get(&IncidentId::new("nope")).await.unwrap(), None);
    let page = store.list(&IncidentQuery::default()).await.unwrap();
    assert_eq!(page.total, 1);
}

#[tokio::test]
async fn filters_select_by_each_field() {
    let store = filled().await;
    let store = store.as_ref();
    let by = |filter| ids(store, filtered(filter));
    assert_eq!(
        by(IncidentFilter {
            statuses: vec![IncidentStatus::Open, IncidentStatus::Acknowledged],
            ..IncidentFilter::default()
        })
        .await,
        ["INC-000001", "INC-000002", "INC-000004", "INC-000005"]
    );
    assert_eq!(
        by(IncidentFilter {
            severities: vec![Severity::Critical],
            ..IncidentFilter::default()
        })
        .await,
        ["INC-000001", "INC-000005"]
    );
    assert_eq!(
        by(IncidentFilter {
            service: Some("web".into()),
            environment: Some("prod".into()),
            ..IncidentFilter::default()
        })
        .await,
        ["INC-000004"]
    );
    assert_eq!(
        by(IncidentFilter {
            categories: vec![Category::PodCrash],
            ..IncidentFilter::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        by(IncidentFilter {
            opened: TimeRange::between(at(10), at(30)),
            ..IncidentFilter::default()
        })
        .await,
        ["INC-000002", "INC-000003"]
    );
    // Text matches titles and label values, case-insensitively.
    assert_eq!(
        by(IncidentFilter {
            text: Some("CART".into()),
            ..IncidentFilter::default()
        })
        .await,
        ["INC-000001", "INC-000002"]
    );
    assert_eq!(
        by(IncidentFilter {
            text: Some("frontend".into()),
            ..IncidentFilter::default()
        })
        .await,
        ["INC-000004"]
    );
}

#[tokio::test]
async fn sorting_breaks_ties_by_id_and_pages_report_the_total() {
    let store = filled().await;
    let by_severity = IncidentQuery {
        sort: SortKey::Severity,
        direction: SortDirection::Descending,
        ..IncidentQuery::default()
    };
    assert_eq!(
        ids(store.as_ref(), by_severity.clone()).await,
        [
            "INC-000005",
            "INC-000001",
            "INC-000003",
            "INC-000002",
            "INC-000004"
        ]
    );
    let second_page = IncidentQuery {
        offset: 2,
        limit: 2,
        ..by_severity
    };
    let page = store.list(&second_page).await.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!((page.offset, page.limit), (2, 2));
    let titles: Vec<_> = page.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Web 5xx", "Cart slow"]);

    // Default: most recently active first. Incident 2 was acknowledged at
    // t11 but last *seen* at t10; incident 3 resolved by hand keeps t20.
    assert_eq!(
        ids(store.as_ref(), IncidentQuery::default()).await,
        [
            "INC-000005",
            "INC-000004",
            "INC-000003",
            "INC-000002",
            "INC-000001"
        ]
    );
}

#[tokio::test]
async fn a_zero_or_oversized_page_is_an_invalid_query() {
    let store = filled().await;
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        let query = IncidentQuery {
            limit,
            ..IncidentQuery::default()
        };
        let error = store.list(&query).await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidQuery(_)), "{error}");
        assert_eq!(
            error.to_string(),
            format!("invalid incident query: limit must be within 1..=1000, got {limit}")
        );
    }
}

#[test]
fn queries_deserialise_with_defaults() {
    let query: IncidentQuery = serde_json::from_str(
        r#"{"filter": {"statuses": ["open"], "service": "cart"}, "sort": "severity", "limit": 10}"#,
    )
    .unwrap();
    assert_eq!(query.filter.statuses, [IncidentStatus::Open]);
    assert_eq!(query.filter.service.as_deref(), Some("cart"));
    assert_eq!(query.sort, SortKey::Severity);
    assert_eq!(query.direction, SortDirection::Descending);
    assert_eq!((query.offset, query.limit), (0, 10));
}
