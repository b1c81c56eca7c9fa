//! An Alertmanager delivery sequence through the incident book and store,
//! with alerts built like the real webhook fixture
//! (`alertmanager-webhook-firing.json`: NodeUp, fingerprint
//! 413724370af55eb6) and the API's AlwaysFiring alert, under a manual clock.

use std::sync::Arc;

use octrix_core::alert::{Alert, AlertStatus};
use octrix_core::classify::{ResourceKind, ResourceRef};
use octrix_core::incident::{
    IgnoreReason, InMemoryIncidentStore, IncidentBook, IncidentFilter, IncidentId, IncidentQuery,
    IncidentSource, IncidentStatus, IncidentStore, Ingested, TimeRange,
};
use octrix_core::labels::from_pairs;
use octrix_core::time::SignedDuration;
use octrix_core::{Category, Clock, ManualClock, Severity, Timestamp};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The alert of `alertmanager-webhook-firing.json`.
fn node_up() -> Alert {
    Alert {
        fingerprint: "413724370af55eb6".into(),
        status: AlertStatus::Firing,
        labels: from_pairs([
            ("alertname", "NodeUp"),
            ("env", "probe"),
            ("instance", "127.0.0.1:19100"),
            ("job", "node"),
            ("service", "node"),
            ("severity", "warning"),
        ]),
        annotations: from_pairs([("summary", "node exporter 127.0.0.1:19100 is up")]),
        starts_at: ts("2026-11-23T09:06:35.412Z"),
        // The webhook's "0001-01-01T00:00:00Z" means "not ended".
        ends_at: None,
        generator_url: Some(
            "http://127.0.0.1:19090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+1&g0.tab=1"
                .into(),
        ),
    }
}

/// AlwaysFiring from `alertmanager-api-v2-alerts.json`.
fn always_firing() -> Alert {
    Alert {
        fingerprint: "e03edacfec3d14cc".into(),
        status: AlertStatus::Firing,
        labels: from_pairs([
            ("alertname", "AlwaysFiring"),
            ("env", "probe"),
            ("service", "web"),
            ("severity", "critical"),
        ]),
        annotations: from_pairs([
            ("description", "vector(1) = 1"),
            ("summary", "Always firing test alert"),
        ]),
        starts_at: ts("2026-11-23T09:06:30.412Z"),
        ends_at: None,
        generator_url: Some("http://127.0.0.1:19090/graph?g0.expr=vector%281%29&g0.tab=1".into()),
    }
}

/// The alert of `alertmanager-webhook-resolved.json`, which never fired here.
fn manual_alert_resolved() -> Alert {
    Alert {
        fingerprint: "7e871ffd3ec70305".into(),
        status: AlertStatus::Resolved,
        labels: from_pairs([
            ("alertname", "ManualAlert"),
            ("service", "api"),
            ("severity", "critical"),
        ]),
        annotations: from_pairs([("summary", "posted by amtool")]),
        starts_at: ts("2026-11-23T09:07:35Z"),
        ends_at: Some(ts("2026-11-23T09:07:35Z")),
        generator_url: Some(String::new()),
    }
}

struct Scenario {
    clock: ManualClock,
    book: IncidentBook,
    store: Arc<dyn IncidentStore>,
}

impl Scenario {
    fn minutes(&self, minutes: i64) {
        self.clock.advance(SignedDuration::from_mins(minutes));
    }

    /// Ingests and persists what changed, as the HTTP layer will.
    async fn deliver(&mut self, alert: &Alert) -> Ingested {
        let ingested = self.book.ingest_alert(alert, self.clock.now());
        if let Some(id) = ingested.incident_id() {
            self.persist(id).await;
        }
        ingested
    }

    async fn persist(&self, id: &IncidentId) {
        let incident = self.book.get(id).unwrap().clone();
        self.store.put(incident).await.unwrap();
    }
}

#[tokio::test]
async fn alertmanager_deliveries_become_incidents_with_exact_mtta_and_mttr() {
    // The webhook arrives 30 s (group_wait) after NodeUp started.
    let received = ts("2026-11-23T09:07:05.412Z");
    let mut scenario = Scenario {
        clock: ManualClock::new(received),
        book: IncidentBook::default(),
        store: Arc::new(InMemoryIncidentStore::new()),
    };

    // First delivery: two alerts, two incidents.
    let node = match scenario.deliver(&node_up()).await {
        Ingested::Opened(id) => id,
        other => panic!("expected Opened, got {other:?}"),
    };
    let web = match scenario.deliver(&always_firing()).await {
        Ingested::Opened(id) => id,
        other => panic!("expected Opened, got {other:?}"),
    };
    assert_eq!(node.as_str(), "INC-000001");
    assert_eq!(web.as_str(), "INC-000002");

    let incident = scenario.store.get(&node).await.unwrap().unwrap();
    assert_eq!(incident.title, "node exporter 127.0.0.1:19100 is up");
    assert_eq!(incident.severity, Severity::Medium);
    assert_eq!(incident.category, Category::Alert);
    assert_eq!(incident.source, IncidentSource::Alert);
    assert_eq!(incident.service.as_deref(), Some("node"));
    assert_eq!(incident.environment.as_deref(), Some("probe"));
    assert_eq!(
        incident.resource,
        Some(ResourceRef::cluster_scoped(
            ResourceKind::Instance,
            "127.0.0.1:19100"
        ))
    );
    assert_eq!(incident.first_seen, received);
    assert_eq!(incident.occurrence_started_at, node_up().starts_at);
    let web_incident = scenario.book.get(&web).unwrap();
    assert_eq!(web_incident.severity, Severity::Critical);
    assert_eq!(web_incident.description.as_deref(), Some("vector(1) = 1"));
    // Different services: not correlated.
    assert_eq!(web_incident.correlation_group, web);

    // Alertmanager redelivers both a minute later: deduplicated.
    scenario.minutes(1);
    assert_eq!(
        scenario.deliver(&node_up()).await,
        Ingested::Duplicate(node.clone())
    );
    assert_eq!(
        scenario.deliver(&always_firing()).await,
        Ingested::Duplicate(web.clone())
    );
    let incident = scenario.store.get(&node).await.unwrap().unwrap();
    assert_eq!(incident.occurrences, 1);
    assert_eq!(incident.last_seen, ts("2026-11-23T09:08:05.412Z"));
    assert_eq!(scenario.book.incidents().len(), 2);

    // On-call acknowledges both: web at +2 min, node at +3 min.
    scenario.minutes(1);
    let now = scenario.clock.now();
    scenario
        .book
        .acknowledge(&web, "oncall@example.com", Some("paged"), now)
        .unwrap();
    scenario.persist(&web).await;
    scenario.minutes(1);
    let now = scenario.clock.now();
    scenario
        .book
        .acknowledge(&node, "oncall@example.com", None, now)
        .unwrap();
    scenario.persist(&node).await;

    // A resolution for an alert we never saw changes nothing.
    assert_eq!(
        scenario.deliver(&manual_alert_resolved()).await,
        Ingested::Ignored(IgnoreReason::UnknownFingerprint)
    );

    // NodeUp resolves at source at +12 min; web is resolved by hand at +20.
    scenario.minutes(9);
    let mut node_resolved = node_up();
    node_resolved.status = AlertStatus::Resolved;
    node_resolved.ends_at = Some(scenario.clock.now());
    assert_eq!(
        scenario.deliver(&node_resolved).await,
        Ingested::AutoResolved(node.clone())
    );
    scenario.minutes(8);
    let now = scenario.clock.now();
    scenario
        .book
        .resolve(&web, "oncall@example.com", Some("test alert silenced"), now)
        .unwrap();
    scenario.persist(&web).await;

    let node_incident = scenario.store.get(&node).await.unwrap().unwrap();
    assert_eq!(node_incident.status, IncidentStatus::Resolved);
    assert_eq!(
        node_incident.time_to_acknowledge(),
        Some(SignedDuration::from_mins(3))
    );
    assert_eq!(
        node_incident.time_to_resolve(),
        Some(SignedDuration::from_mins(12))
    );
    let web_incident = scenario.store.get(&web).await.unwrap().unwrap();
    assert_eq!(
        web_incident.time_to_acknowledge(),
        Some(SignedDuration::from_mins(2))
    );
    assert_eq!(
        web_incident.time_to_resolve(),
        Some(SignedDuration::from_mins(20))
    );

    let day = TimeRange::between(ts("2026-11-23T00:00:00Z"), ts("2026-11-24T00:00:00Z"));
    let stats = scenario.book.stats(&day);
    assert_eq!(stats.total, 2);
    assert_eq!(stats.by_status[&IncidentStatus::Resolved], 2);
    assert_eq!(stats.by_severity[&Severity::Critical], 1);
    assert_eq!(stats.by_severity[&Severity::Medium], 1);
    assert_eq!(stats.mtta.count, 2);
    assert_eq!(stats.mtta.mean, Some(SignedDuration::from_secs(150)));
    assert_eq!(stats.mtta.median, Some(SignedDuration::from_secs(150)));
    assert_eq!(stats.mttr.mean, Some(SignedDuration::from_mins(16)));
    assert_eq!(stats.mttr.median, Some(SignedDuration::from_mins(16)));

    // NodeUp fires again 10 minutes after it resolved: the incident is
    // reopened, and its first response times do not change.
    scenario.minutes(2);
    let mut again = node_up();
    again.starts_at = scenario.clock.now();
    assert_eq!(
        scenario.deliver(&again).await,
        Ingested::Reopened(node.clone())
    );
    let reopened = scenario.store.get(&node).await.unwrap().unwrap();
    assert_eq!(reopened.status, IncidentStatus::Open);
    assert_eq!(reopened.occurrences, 2);
    assert_eq!(reopened.reopen_count(), 1);
    assert_eq!(scenario.book.stats(&day).mtta, stats.mtta);
    assert_eq!(scenario.book.stats(&day).mttr, stats.mttr);
    assert_eq!(scenario.book.stats(&day).reopened, 1);

    // The store lists what the book holds.
    let active = IncidentQuery {
        filter: IncidentFilter {
            statuses: vec![IncidentStatus::Open, IncidentStatus::Acknowledged],
            ..IncidentFilter::default()
        },
        ..IncidentQuery::default()
    };
    let page = scenario.store.list(&active).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(&page.items[0], scenario.book.get(&node).unwrap());

    // The incident serialises with snake_case fields for the HTTP layer.
    let json = serde_json::to_value(&reopened).unwrap();
    assert_eq!(json["id"], "INC-000001");
    assert_eq!(json["status"], "open");
    assert_eq!(json["severity"], "medium");
    assert_eq!(json["fingerprint"], "413724370af55eb6");
    assert_eq!(json["first_seen"], "2026-11-23T09:07:05.412Z");
    assert_eq!(json["timeline"][0]["kind"], "opened");
    let back: octrix_core::incident::Incident = serde_json::from_value(json).unwrap();
    assert_eq!(back, reopened);
}

#[test]
fn classifier_results_open_escalate_and_auto_resolve_an_incident() {
    use octrix_core::classify::{
        Classifier, ContainerStatus, Observation, PodPhase, PodStatus, Reading, WaitingReason,
    };

    let clock = ManualClock::new(ts("2026-11-23T10:00:00Z"));
    let mut classifier = Classifier::default();
    let mut book = IncidentBook::default();
    let pod = ResourceRef::pod("shop", "cart-7d9f").on_node("worker-1");
    let status = |waiting: Option<WaitingReason>, restarts| {
        Reading::Pod(PodStatus {
            phase: PodPhase::Running,
            containers: vec![ContainerStatus {
                ready: waiting.is_none(),
                restart_count: restarts,
                waiting_reason: waiting,
                ..ContainerStatus::running("cart")
            }],
        })
    };

    // Eleven scrapes 15 s apart of a crash-looping pod: medium, then high
    // after ten samples, all one occurrence of one incident.
    let mut id = None;
    for scrape in 0..11 {
        let observation = Observation::new(
            clock.now(),
            pod.clone(),
            status(Some(WaitingReason::CrashLoopBackOff), 1),
        )
        .with_service("cart")
        .with_label("environment", "production");
        for result in classifier.observe(&observation) {
            let ingested = book.ingest(&result, clock.now());
            if scrape == 0 {
                assert!(matches!(ingested, Ingested::Opened(_)), "{ingested:?}");
            } else {
                assert!(matches!(ingested, Ingested::Duplicate(_)), "{ingested:?}");
            }
            id = ingested.incident_id().cloned();
        }
        clock.advance(SignedDuration::from_secs(15));
    }
    let id = id.unwrap();
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.category, Category::PodCrash);
    assert_eq!(incident.source, IncidentSource::Cluster);
    assert_eq!(incident.severity, Severity::High);
    assert_eq!(incident.occurrences, 1);
    assert_eq!(incident.environment.as_deref(), Some("production"));
    assert_eq!(incident.labels["reason"], "CrashLoopBackOff");

    // The pod recovers: the classifier clears, the book auto-resolves.
    let healthy = Observation::new(clock.now(), pod.clone(), status(None, 1));
    let results = classifier.observe(&healthy);
    assert_eq!(results.len(), 1);
    assert_eq!(
        book.ingest(&results[0], clock.now()),
        Ingested::AutoResolved(id.clone())
    );
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(
        incident.time_to_resolve(),
        Some(SignedDuration::from_secs(165))
    );
}
