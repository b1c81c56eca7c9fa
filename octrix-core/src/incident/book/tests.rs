use super::*;
use crate::classify::{Category, ResourceRef, Severity};
use crate::incident::{CorrelationKey, IncidentSource};
use crate::labels::from_pairs;
use crate::time::SignedDuration;
use crate::{Labels, classify};

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
}

fn alert(fingerprint: &str, starts_minute: i64, labels: &[(&str, &str)]) -> Alert {
    Alert {
        fingerprint: fingerprint.into(),
        status: AlertStatus::Firing,
        labels: from_pairs(labels.iter().copied()),
        annotations: from_pairs([
            ("summary", "checkout latency high"),
            ("runbook_url", "https://runbooks.example/latency"),
        ]),
        starts_at: at(starts_minute),
        ends_at: None,
        generator_url: Some("http://prometheus/graph".into()),
    }
}

fn checkout(starts_minute: i64) -> Alert {
    alert(
        "aaaa000000000001",
        starts_minute,
        &[
            ("alertname", "CheckoutLatency"),
            ("service", "checkout"),
            ("env", "production"),
            ("severity", "warning"),
        ],
    )
}

fn resolved(mut alert: Alert) -> Alert {
    alert.status = AlertStatus::Resolved;
    alert
}

fn opened(ingested: Ingested) -> IncidentId {
    match ingested {
        Ingested::Opened(id) => id,
        other => panic!("expected Opened, got {other:?}"),
    }
}

fn config(change: impl FnOnce(&mut IncidentBookConfig)) -> IncidentBookConfig {
    let mut config = IncidentBookConfig::default();
    change(&mut config);
    config
}

#[test]
fn a_firing_alert_opens_an_incident_from_its_labels_and_annotations() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(1)));
    let incident = book.get(&id).unwrap();
    assert_eq!(id.as_str(), "INC-000001");
    assert_eq!(incident.title, "checkout latency high");
    assert_eq!(incident.category, Category::Alert);
    assert_eq!(incident.severity, Severity::Medium);
    assert_eq!(incident.status, IncidentStatus::Open);
    assert_eq!(incident.service.as_deref(), Some("checkout"));
    assert_eq!(incident.environment.as_deref(), Some("production"));
    assert_eq!(
        incident.runbook_url.as_deref(),
        Some("https://runbooks.example/latency")
    );
    assert_eq!(incident.fingerprint.as_str(), "aaaa000000000001");
    assert_eq!(incident.occurrences, 1);
    assert_eq!(incident.first_seen, at(1));
    assert_eq!(incident.last_seen, at(1));
    assert_eq!(incident.occurrence_started_at, at(0));
    assert_eq!(incident.source, IncidentSource::Alert);
    assert_eq!(incident.correlation_group, id);
    assert_eq!(
        incident.timeline,
        [TimelineEntry {
            at: at(1),
            actor: SYSTEM_ACTOR.into(),
            event: TimelineEvent::Opened {
                severity: Severity::Medium,
                source: IncidentSource::Alert
            },
        }]
    );
    assert_eq!(book.active_for(&incident.fingerprint).unwrap().id, id);
}

#[test]
fn a_redelivery_is_a_duplicate_and_a_later_start_is_a_new_occurrence() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    assert_eq!(
        book.ingest_alert(&checkout(0), at(5)),
        Ingested::Duplicate(id.clone())
    );
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.occurrences, 1);
    assert_eq!(incident.last_seen, at(5));
    assert_eq!(incident.timeline.len(), 1);

    assert_eq!(
        book.ingest_alert(&checkout(7), at(7)),
        Ingested::Recurred(id.clone())
    );
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.occurrences, 2);
    assert_eq!(incident.occurrence_started_at, at(7));
    assert_eq!(
        incident.timeline.last().unwrap().event,
        TimelineEvent::Occurred { occurrences: 2 }
    );
    // An older start than the current occurrence is a late redelivery.
    assert_eq!(
        book.ingest_alert(&checkout(3), at(8)),
        Ingested::Duplicate(id.clone())
    );
    assert_eq!(book.get(&id).unwrap().occurrences, 2);
    assert_eq!(book.incidents().len(), 1);
}

#[test]
fn every_third_occurrence_raises_the_severity_up_to_the_ceiling() {
    let mut book = IncidentBook::new(config(|c| c.escalation_ceiling = Severity::High)).unwrap();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    book.ingest_alert(&checkout(1), at(1));
    assert_eq!(book.get(&id).unwrap().severity, Severity::Medium);
    book.ingest_alert(&checkout(2), at(2));
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.occurrences, 3);
    assert_eq!(incident.severity, Severity::High);
    assert_eq!(
        incident.timeline.last().unwrap().event,
        TimelineEvent::SeverityChanged {
            from: Severity::Medium,
            to: Severity::High,
            reason: SeverityChangeReason::RepeatedOccurrences
        }
    );
    for minute in 3..=6 {
        book.ingest_alert(&checkout(minute), at(minute));
    }
    assert_eq!(book.get(&id).unwrap().occurrences, 7);
    assert_eq!(book.get(&id).unwrap().severity, Severity::High, "ceiling");

    let mut never = IncidentBook::new(config(|c| c.escalate_every_occurrences = 0)).unwrap();
    let id = opened(never.ingest_alert(&checkout(0), at(0)));
    for minute in 1..=9 {
        never.ingest_alert(&checkout(minute), at(minute));
    }
    assert_eq!(never.get(&id).unwrap().severity, Severity::Medium);
}

#[test]
fn a_higher_source_severity_raises_and_a_lower_one_is_ignored() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    let mut critical = checkout(0);
    critical.labels.insert("severity".into(), "critical".into());
    assert_eq!(
        book.ingest_alert(&critical, at(1)),
        Ingested::Duplicate(id.clone())
    );
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(
        incident.timeline.last().unwrap().event,
        TimelineEvent::SeverityChanged {
            from: Severity::Medium,
            to: Severity::Critical,
            reason: SeverityChangeReason::Source
        }
    );
    book.ingest_alert(&checkout(0), at(2));
    assert_eq!(book.get(&id).unwrap().severity, Severity::Critical);
}

#[test]
fn a_resolved_alert_auto_resolves_unless_disabled_stale_or_unknown() {
    let mut book = IncidentBook::default();
    assert_eq!(
        book.ingest_alert(&resolved(checkout(0)), at(0)),
        Ingested::Ignored(IgnoreReason::UnknownFingerprint)
    );
    let id = opened(book.ingest_alert(&checkout(5), at(5)));
    assert_eq!(
        book.ingest_alert(&resolved(checkout(0)), at(6)),
        Ingested::Ignored(IgnoreReason::StaleResolution)
    );
    assert_eq!(
        book.ingest_alert(&resolved(checkout(5)), at(9)),
        Ingested::AutoResolved(id.clone())
    );
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(incident.resolved_at, Some(at(9)));
    assert_eq!(
        incident.timeline.last().unwrap(),
        &TimelineEntry {
            at: at(9),
            actor: SYSTEM_ACTOR.into(),
            event: TimelineEvent::StatusChanged {
                from: IncidentStatus::Open,
                to: IncidentStatus::Resolved,
                note: Some("alert resolved at source".into()),
            },
        }
    );
    assert_eq!(
        book.ingest_alert(&resolved(checkout(5)), at(10)),
        Ingested::Ignored(IgnoreReason::AlreadyResolved)
    );

    let mut manual = IncidentBook::new(config(|c| c.auto_resolve = false)).unwrap();
    let id = opened(manual.ingest_alert(&checkout(0), at(0)));
    assert_eq!(
        manual.ingest_alert(&resolved(checkout(0)), at(1)),
        Ingested::Ignored(IgnoreReason::AutoResolveDisabled)
    );
    assert_eq!(manual.get(&id).unwrap().status, IncidentStatus::Open);
}

#[test]
fn firing_within_the_reopen_window_reopens_and_later_opens_a_new_incident() {
    let mut book = IncidentBook::default();
    let first = opened(book.ingest_alert(&checkout(0), at(0)));
    book.acknowledge(&first, "alice", None, at(1)).unwrap();
    book.ingest_alert(&resolved(checkout(0)), at(10));

    // 29 minutes after resolution: reopened (window 30 min).
    assert_eq!(
        book.ingest_alert(&checkout(39), at(39)),
        Ingested::Reopened(first.clone())
    );
    let incident = book.get(&first).unwrap();
    assert_eq!(incident.status, IncidentStatus::Open);
    assert_eq!(incident.occurrences, 2);
    assert_eq!(incident.acknowledged_at, None);
    assert_eq!(incident.resolved_at, None);
    assert_eq!(incident.reopen_count(), 1);
    assert_eq!(incident.last_seen, at(39));
    // The first response times stay what they were.
    assert_eq!(
        incident.time_to_acknowledge(),
        Some(SignedDuration::from_mins(1))
    );
    assert_eq!(
        incident.time_to_resolve(),
        Some(SignedDuration::from_mins(10))
    );

    book.ingest_alert(&resolved(checkout(39)), at(40));
    // Exactly 30 minutes later is outside the window: a new incident.
    let second = opened(book.ingest_alert(&checkout(70), at(70)));
    assert_ne!(second, first);
    assert_eq!(book.get(&first).unwrap().status, IncidentStatus::Resolved);
    assert_eq!(book.get(&first).unwrap().last_seen, at(40));
    assert_eq!(
        book.active_for(&checkout(0).fingerprint()).unwrap().id,
        second
    );

    let mut never = IncidentBook::new(config(|c| c.reopen_window = SignedDuration::ZERO)).unwrap();
    let first = opened(never.ingest_alert(&checkout(0), at(0)));
    never.ingest_alert(&resolved(checkout(0)), at(1));
    assert_ne!(opened(never.ingest_alert(&checkout(1), at(1))), first);
}

trait AlertFingerprint {
    fn fingerprint(&self) -> Fingerprint;
}

impl AlertFingerprint for Alert {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::new(self.fingerprint.clone())
    }
}

#[test]
fn acknowledge_and_resolve_follow_the_lifecycle() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    let incident = book
        .acknowledge(&id, "alice", Some("looking"), at(3))
        .unwrap();
    assert_eq!(incident.status, IncidentStatus::Acknowledged);
    assert_eq!(incident.acknowledged_at, Some(at(3)));
    assert_eq!(
        incident.timeline.last().unwrap(),
        &TimelineEntry {
            at: at(3),
            actor: "alice".into(),
            event: TimelineEvent::StatusChanged {
                from: IncidentStatus::Open,
                to: IncidentStatus::Acknowledged,
                note: Some("looking".into()),
            },
        }
    );
    assert_eq!(
        book.acknowledge(&id, "bob", None, at(4)).unwrap_err(),
        Error::IllegalTransition {
            id: id.clone(),
            from: IncidentStatus::Acknowledged,
            to: IncidentStatus::Acknowledged
        }
    );
    let incident = book
        .resolve(&id, "bob", Some("rolled back"), at(20))
        .unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(
        incident.time_to_acknowledge(),
        Some(SignedDuration::from_mins(3))
    );
    assert_eq!(
        incident.time_to_resolve(),
        Some(SignedDuration::from_mins(20))
    );

    let error = book.acknowledge(&id, "carol", None, at(21)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "incident INC-000001 is resolved and cannot become acknowledged"
    );
    assert!(matches!(
        book.resolve(&id, "carol", None, at(21)),
        Err(Error::IllegalTransition {
            from: IncidentStatus::Resolved,
            to: IncidentStatus::Resolved,
            ..
        })
    ));
    let unknown = IncidentId::new("INC-999999");
    assert_eq!(
        book.acknowledge(&unknown, "alice", None, at(22))
            .unwrap_err(),
        Error::UnknownIncident(unknown.clone())
    );
    assert_eq!(
        book.resolve(&id, " ", None, at(22)).unwrap_err(),
        Error::MissingActor
    );
}

#[test]
fn an_open_incident_can_be_resolved_without_acknowledgement() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    let incident = book.resolve(&id, "alice", None, at(4)).unwrap();
    assert_eq!(incident.time_to_acknowledge(), None);
    assert_eq!(
        incident.time_to_resolve(),
        Some(SignedDuration::from_mins(4))
    );
}

#[test]
fn only_the_latest_resolved_incident_of_a_fingerprint_can_be_reopened() {
    let mut book = IncidentBook::default();
    let first = opened(book.ingest_alert(&checkout(0), at(0)));
    assert!(matches!(
        book.reopen(&first, "alice", None, at(1)),
        Err(Error::IllegalTransition {
            from: IncidentStatus::Open,
            to: IncidentStatus::Open,
            ..
        })
    ));
    book.resolve(&first, "alice", None, at(1)).unwrap();
    book.reopen(&first, "alice", Some("not fixed"), at(2))
        .unwrap();
    assert_eq!(book.get(&first).unwrap().status, IncidentStatus::Open);
    book.resolve(&first, "alice", None, at(3)).unwrap();
    let second = opened(book.ingest_alert(&checkout(100), at(100)));
    book.resolve(&second, "alice", None, at(101)).unwrap();
    assert_eq!(
        book.reopen(&first, "alice", None, at(102)).unwrap_err(),
        Error::Superseded {
            id: first,
            by: second
        }
    );
}

#[test]
fn assignment_and_notes_are_recorded() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    book.assign(&id, "alice@example.com", "lead", at(1))
        .unwrap();
    let incident = book.assign(&id, "bob@example.com", "lead", at(2)).unwrap();
    assert_eq!(incident.assignee.as_deref(), Some("bob@example.com"));
    assert_eq!(
        incident.timeline.last().unwrap().event,
        TimelineEvent::Assigned {
            assignee: "bob@example.com".into(),
            previous: Some("alice@example.com".into())
        }
    );
    let incident = book
        .add_note(&id, "bob@example.com", "cache cold", at(3))
        .unwrap();
    assert_eq!(
        incident.timeline.last().unwrap().event,
        TimelineEvent::Note {
            text: "cache cold".into()
        }
    );
    assert_eq!(
        book.assign(&id, "", "lead", at(4)).unwrap_err(),
        Error::MissingAssignee
    );
}

fn service_alert(fingerprint: &str, service: &str, env: &str, severity: &str) -> Alert {
    alert(
        fingerprint,
        0,
        &[("service", service), ("env", env), ("severity", severity)],
    )
}

#[test]
fn incidents_with_equal_keys_within_the_window_share_a_group() {
    let mut book = IncidentBook::default();
    let root = opened(book.ingest_alert(&service_alert("f1", "cart", "prod", "critical"), at(0)));
    let related =
        opened(book.ingest_alert(&service_alert("f2", "cart", "prod", "critical"), at(10)));
    let other_env =
        opened(book.ingest_alert(&service_alert("f3", "cart", "dev", "critical"), at(11)));
    let other_severity =
        opened(book.ingest_alert(&service_alert("f4", "cart", "prod", "warning"), at(12)));
    // 15 minutes after `related` was last seen is still within the window.
    let chained =
        opened(book.ingest_alert(&service_alert("f5", "cart", "prod", "critical"), at(25)));
    let late = opened(book.ingest_alert(&service_alert("f6", "cart", "prod", "critical"), at(41)));

    let group_of = |id: &IncidentId| book.get(id).unwrap().correlation_group.clone();
    assert_eq!(group_of(&root), root);
    assert_eq!(group_of(&related), root);
    assert_eq!(
        book.get(&related).unwrap().timeline.last().unwrap().event,
        TimelineEvent::Correlated {
            group: root.clone()
        }
    );
    assert_eq!(group_of(&other_env), other_env);
    assert_eq!(group_of(&other_severity), other_severity);
    assert_eq!(group_of(&chained), root);
    assert_eq!(group_of(&late), late);
    let members: Vec<_> = book.group(&related).iter().map(|i| i.id.clone()).collect();
    assert_eq!(members, [root, related, chained]);
}

#[test]
fn incidents_missing_a_key_are_not_correlated_and_keys_are_configurable() {
    let mut book = IncidentBook::default();
    let no_service = alert("g1", 0, &[("env", "prod"), ("severity", "critical")]);
    let a = opened(book.ingest_alert(&no_service, at(0)));
    let b = opened(book.ingest_alert(
        &alert("g2", 0, &[("env", "prod"), ("severity", "critical")]),
        at(1),
    ));
    assert_eq!(book.get(&b).unwrap().correlation_group, b);
    assert_ne!(a, b);

    let by_team = config(|c| {
        c.correlation.keys = vec![CorrelationKey::Label("team".into())];
    });
    let mut book = IncidentBook::new(by_team).unwrap();
    let a = opened(book.ingest_alert(
        &alert("h1", 0, &[("team", "payments"), ("service", "x")]),
        at(0),
    ));
    let b = opened(book.ingest_alert(
        &alert("h2", 0, &[("team", "payments"), ("service", "y")]),
        at(1),
    ));
    assert_eq!(book.get(&b).unwrap().correlation_group, a);
}

fn cpu_signal(severity: Severity, since_minute: i64, at_minute: i64) -> Signal {
    Signal {
        category: Category::HighCpu,
        severity,
        resource: ResourceRef::pod("shop", "cart-1").on_node("worker-1"),
        metric: None,
        service: Some("cart".into()),
        labels: from_pairs([("environment", "staging")]),
        summary: "CPU utilisation of pod shop/cart-1 at 96.0%".into(),
        observed: Some(0.96),
        threshold: Some(0.95),
        since: at(since_minute),
        at: at(at_minute),
    }
}

#[test]
fn classifier_signals_open_deduplicate_and_clear_incidents() {
    let mut book = IncidentBook::default();
    let signal = cpu_signal(Severity::Medium, 0, 1);
    let id = opened(book.ingest_signal(&signal, at(1)));
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.category, Category::HighCpu);
    assert_eq!(incident.source, IncidentSource::Cluster);
    assert_eq!(incident.title, signal.summary);
    assert_eq!(incident.namespace.as_deref(), Some("shop"));
    assert_eq!(incident.environment.as_deref(), Some("staging"));
    assert_eq!(incident.fingerprint, signal.fingerprint());
    assert_eq!(
        incident.resource,
        Some(ResourceRef::pod("shop", "cart-1").on_node("worker-1"))
    );
    // The same streak (same since) is the same occurrence.
    let again = Classification::Raised(cpu_signal(Severity::High, 0, 2));
    assert_eq!(book.ingest(&again, at(2)), Ingested::Duplicate(id.clone()));
    assert_eq!(book.get(&id).unwrap().severity, Severity::High);

    let cleared = Classification::Cleared(classify::Cleared {
        category: Category::HighCpu,
        resource: ResourceRef::pod("shop", "cart-1"),
        metric: None,
        service: Some("cart".into()),
        at: at(3),
    });
    assert_eq!(
        book.ingest(&cleared, at(3)),
        Ingested::AutoResolved(id.clone())
    );
    let incident = book.get(&id).unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(
        incident.timeline.last().unwrap().event,
        TimelineEvent::StatusChanged {
            from: IncidentStatus::Open,
            to: IncidentStatus::Resolved,
            note: Some("signal cleared".into())
        }
    );

    let anomaly = Signal {
        category: Category::Anomaly,
        metric: Some("http_latency_seconds".into()),
        labels: Labels::new(),
        ..cpu_signal(Severity::Low, 5, 5)
    };
    let id = opened(book.ingest_signal(&anomaly, at(5)));
    assert_eq!(book.get(&id).unwrap().source, IncidentSource::Detector);
}

#[test]
fn ids_come_from_the_generator() {
    let mut next = 41;
    let ids = move || {
        next += 1;
        IncidentId::new(format!("ops-{next}"))
    };
    let mut book =
        IncidentBook::with_id_generator(IncidentBookConfig::default(), Box::new(ids)).unwrap();
    assert_eq!(
        opened(book.ingest_alert(&checkout(0), at(0))).as_str(),
        "ops-42"
    );
    assert_eq!(
        opened(book.ingest_alert(&service_alert("z", "a", "b", "low"), at(0))).as_str(),
        "ops-43"
    );
}

#[test]
fn an_invalid_config_is_refused() {
    let negative = config(|c| c.correlation.window = SignedDuration::from_secs(-1));
    assert_eq!(
        IncidentBook::new(negative).unwrap_err(),
        Error::InvalidConfig {
            field: "correlation.window".into(),
            requirement: "must not be negative".into()
        }
    );
}

#[test]
fn pruning_drops_old_resolved_incidents_only() {
    let mut book = IncidentBook::default();
    let old = opened(book.ingest_alert(&service_alert("p1", "a", "b", "low"), at(0)));
    book.resolve(&old, "alice", None, at(1)).unwrap();
    let active = opened(book.ingest_alert(&service_alert("p2", "a", "b", "low"), at(2)));
    let recent = opened(book.ingest_alert(&service_alert("p3", "a", "b", "low"), at(3)));
    book.resolve(&recent, "alice", None, at(100)).unwrap();

    let pruned = book.prune_resolved(at(50));
    assert_eq!(pruned.len(), 1);
    assert_eq!(pruned[0].id, old);
    assert!(book.get(&old).is_none());
    assert_eq!(book.get(&active).unwrap().id, active);
    assert_eq!(book.get(&recent).unwrap().id, recent);
    // The pruned fingerprint fires again: a new incident, not a reopening.
    let again = opened(book.ingest_alert(&service_alert("p1", "a", "b", "low"), at(51)));
    assert_ne!(again, old);
}

#[test]
fn stats_count_by_dimension_and_measure_mtta_and_mttr() {
    let mut book = IncidentBook::default();
    let a = opened(book.ingest_alert(&service_alert("s1", "cart", "prod", "critical"), at(0)));
    let b = opened(book.ingest_alert(&service_alert("s2", "cart", "prod", "warning"), at(10)));
    let c = opened(book.ingest_alert(&service_alert("s3", "web", "prod", "warning"), at(20)));
    opened(book.ingest_alert(&alert("s4", 0, &[("severity", "info")]), at(30)));
    book.acknowledge(&a, "alice", None, at(2)).unwrap();
    book.resolve(&a, "alice", None, at(30)).unwrap();
    book.acknowledge(&b, "bob", None, at(16)).unwrap();
    book.resolve(&c, "carol", None, at(25)).unwrap();

    let stats = book.stats(&TimeRange::all());
    assert_eq!(stats.total, 4);
    assert_eq!(stats.by_status[&IncidentStatus::Open], 1);
    assert_eq!(stats.by_status[&IncidentStatus::Acknowledged], 1);
    assert_eq!(stats.by_status[&IncidentStatus::Resolved], 2);
    assert_eq!(stats.by_severity[&Severity::Critical], 1);
    assert_eq!(stats.by_severity[&Severity::Medium], 2);
    assert_eq!(stats.by_severity[&Severity::Low], 1);
    assert_eq!(stats.by_severity[&Severity::High], 0);
    assert_eq!(stats.by_category[&Category::Alert], 4);
    assert_eq!(stats.by_service.get("cart"), Some(&2));
    assert_eq!(stats.by_service.get("web"), Some(&1));
    assert_eq!(stats.by_service.len(), 2);
    // MTTA: a 2 min, b 6 min. MTTR: a 30 min, c 5 min.
    assert_eq!(stats.mtta.count, 2);
    assert_eq!(stats.mtta.mean, Some(SignedDuration::from_mins(4)));
    assert_eq!(stats.mtta.median, Some(SignedDuration::from_mins(4)));
    assert_eq!(stats.mttr.count, 2);
    assert_eq!(stats.mttr.mean, Some(SignedDuration::from_secs(35 * 30)));
    assert_eq!(stats.mttr.median, Some(SignedDuration::from_secs(35 * 30)));

    let later = book.stats(&TimeRange::between(at(10), at(30)));
    assert_eq!(later.total, 2);
    assert_eq!(later.mtta.mean, Some(SignedDuration::from_mins(6)));
    assert_eq!(later.mttr.mean, Some(SignedDuration::from_mins(5)));
}

#[test]
fn escalation_raises_severity_marks_the_incident_and_is_recorded() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    let before = book.get(&id).unwrap().severity;
    let incident = book
        .escalate_severity(
            &id,
            "restart-pod did not heal the incident",
            "oncall",
            at(5),
        )
        .unwrap();
    assert!(
        !incident.escalated,
        "healing goes on after a severity escalation"
    );
    assert_eq!(incident.severity, before.raised(1, Severity::Critical));
    let last = incident.timeline.last().unwrap();
    assert_eq!(last.actor, HEALER_ACTOR);
    assert_eq!(
        last.event,
        TimelineEvent::Escalated {
            reason: "restart-pod did not heal the incident".into(),
            channel: "oncall".into()
        }
    );
    let json = serde_json::to_value(last).unwrap();
    assert_eq!(json["kind"], "escalated");
    let severity = incident.severity;
    let incident = book
        .escalate(&id, "no action left", "oncall", at(6))
        .unwrap();
    assert!(incident.escalated);
    assert_eq!(
        incident.severity, severity,
        "handing over keeps the severity"
    );
    let severity = incident.severity;
    let incident = book
        .escalate(&id, "no action left", "oncall", at(6))
        .unwrap();
    assert!(incident.escalated);
    assert_eq!(
        incident.severity, severity,
        "handing over keeps the severity"
    );

    book.resolve(&id, "alice", None, at(6)).unwrap();
    book.mark_resolved_by_healing(&id).unwrap();
    assert!(book.get(&id).unwrap().resolved_by_healing);
    book.mark_resolved_by_healing(&id).unwrap();
    assert!(book.get(&id).unwrap().resolved_by_healing);
    assert_eq!(
        book.escalate(&id, "again", "oncall", at(7)).unwrap_err(),
        Error::NotActive(id.clone())
    );
}

#[test]
fn healing_steps_and_resolution_by_healing() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    let step = HealingStep {
        rule: "crashloops",
        action: "restart-pod",
        target: "pod/shop/web-1",
    };
    book.record_healing(
        &id,
        step,
        HealingOutcome::Executed {
            summary: "deleted".into(),
        },
        at(1),
    )
    .unwrap();
    book.record_healing(&id, step, HealingOutcome::Healed, at(2))
        .unwrap();
    let incident = book
        .resolve_by_healing(&id, "restart-pod healed it", at(2))
        .unwrap();
    assert!(incident.resolved_by_healing);
    assert_eq!(incident.status, IncidentStatus::Resolved);
    let json = serde_json::to_value(&incident.timeline[incident.timeline.len() - 3]).unwrap();
    assert_eq!(json["kind"], "healing");
    assert_eq!(json["outcome"]["result"], "executed");
    assert_eq!(json["target"], "pod/shop/web-1");

    // A reopened incident is no longer resolved by healing.
    let incident = book.reopen(&id, "bob", None, at(3)).unwrap();
    assert!(!incident.resolved_by_healing && !incident.escalated);
}

#[test]
fn chaos_runs_link_once_and_mark_the_incident_expected() {
    let mut book = IncidentBook::default();
    let id = opened(book.ingest_alert(&checkout(0), at(0)));
    assert!(!book.get(&id).unwrap().is_expected());
    book.link_chaos_run(&id, "run-1", at(1)).unwrap();
    let incident = book.link_chaos_run(&id, "run-1", at(2)).unwrap();
    assert!(incident.is_expected());
    assert_eq!(incident.chaos_runs, ["run-1"]);
    let links = incident
        .timeline
        .iter()
        .filter(|e| matches!(e.event, TimelineEvent::LinkedToChaosRun { .. }))
        .count();
    assert_eq!(links, 1);
}

#[test]
fn a_resolution_with_its_start_truncated_to_the_second_still_resolves() {
    let mut book = IncidentBook::default();
    let mut firing = checkout(0);
    firing.starts_at = at(0).checked_add(SignedDuration::from_millis(578)).unwrap();
    let id = opened(book.ingest_alert(&firing, at(1)));
    let mut resolution = resolved(checkout(0));
    resolution.ends_at = Some(at(2));
    assert_eq!(
        book.ingest_alert(&resolution, at(2)),
        Ingested::AutoResolved(id.clone())
    );
    // A resolution of an occurrence a second or more older is still stale.
    let reopened = book.ingest_alert(&checkout(10), at(10));
    assert_eq!(reopened, Ingested::Reopened(id.clone()));
    assert_eq!(
        book.ingest_alert(&resolved(checkout(9)), at(11)),
        Ingested::Ignored(IgnoreReason::StaleResolution)
    );
    assert!(book.get(&id).unwrap().is_active());
}
