//! Property tests: the incident book against a simple model over random
//! sequences of fire / resolve / acknowledge / manual resolve / time
//! advance.

use std::collections::HashMap;

use octrix_core::alert::{Alert, AlertStatus};
use octrix_core::incident::{
    Error, IgnoreReason, IncidentBook, IncidentBookConfig, IncidentId, IncidentStatus, Ingested,
    TimeRange,
};
use octrix_core::labels::from_pairs;
use octrix_core::time::SignedDuration;
use octrix_core::{Category, Severity, Timestamp};
use proptest::prelude::*;

const FINGERPRINTS: usize = 3;
const SERVICES: [&str; 2] = ["cart", "web"];
const SEVERITY_LABELS: [(&str, Severity); 4] = [
    ("info", Severity::Low),
    ("warning", Severity::Medium),
    ("error", Severity::High),
    ("critical", Severity::Critical),
];

#[derive(Debug, Clone)]
enum Op {
    /// The alert of `fingerprint` fires; `new_episode` gives it a new
    /// `startsAt` (now), else it repeats the last one.
    Fire {
        fingerprint: usize,
        new_episode: bool,
        severity: usize,
    },
    /// Alertmanager reports it resolved.
    ResolveAlert { fingerprint: usize },
    /// A person acknowledges its latest incident.
    Acknowledge { fingerprint: usize },
    /// A person resolves its latest incident.
    Resolve { fingerprint: usize },
    /// Time passes.
    Advance { minutes: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let fingerprint = 0..FINGERPRINTS;
    prop_oneof![
        4 => (fingerprint.clone(), any::<bool>(), 0..SEVERITY_LABELS.len()).prop_map(
            |(fingerprint, new_episode, severity)| Op::Fire { fingerprint, new_episode, severity }
        ),
        2 => fingerprint.clone().prop_map(|fingerprint| Op::ResolveAlert { fingerprint }),
        2 => fingerprint.clone().prop_map(|fingerprint| Op::Acknowledge { fingerprint }),
        1 => fingerprint.prop_map(|fingerprint| Op::Resolve { fingerprint }),
        3 => (0i64..45).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

/// What the model knows of one incident.
#[derive(Debug, Clone)]
struct ModelIncident {
    fingerprint: usize,
    status: IncidentStatus,
    severity: Severity,
    occurrences: u32,
    started: Timestamp,
    first_seen: Timestamp,
    resolved_at: Option<Timestamp>,
    first_acknowledged: Option<Timestamp>,
    first_resolved: Option<Timestamp>,
}

/// The rules, restated as plainly as possible.
struct Model {
    config: IncidentBookConfig,
    incidents: Vec<ModelIncident>,
    now: Timestamp,
    last_started: HashMap<usize, Timestamp>,
}

impl Model {
    fn latest(&self, fingerprint: usize) -> Option<usize> {
        self.incidents
            .iter()
            .rposition(|incident| incident.fingerprint == fingerprint)
    }

    fn id(index: usize) -> IncidentId {
        IncidentId::new(format!("INC-{:06}", index + 1))
    }

    fn occur(&mut self, index: usize, started: Timestamp, severity: Severity) {
        let every = self.config.escalate_every_occurrences;
        let ceiling = self.config.escalation_ceiling;
        let incident = &mut self.incidents[index];
        incident.occurrences += 1;
        incident.started = started;
        incident.severity = incident.severity.max(severity);
        if every > 0 && incident.occurrences.is_multiple_of(every) && incident.severity < ceiling {
            incident.severity = Severity::ALL[incident.severity.rank() + 1];
        }
    }

    fn fire(&mut self, fingerprint: usize, started: Timestamp, severity: Severity) -> Ingested {
        let now = self.now;
        match self.latest(fingerprint) {
            Some(index) if self.incidents[index].status != IncidentStatus::Resolved => {
                if started <= self.incidents[index].started {
                    let incident = &mut self.incidents[index];
                    incident.severity = incident.severity.max(severity);
                    Ingested::Duplicate(Self::id(index))
                } else {
                    self.occur(index, started, severity);
                    Ingested::Recurred(Self::id(index))
                }
            }
            Some(index)
                if now.duration_since(self.incidents[index].resolved_at.unwrap())
                    < self.config.reopen_window =>
            {
                let incident = &mut self.incidents[index];
                incident.status = IncidentStatus::Open;
                incident.resolved_at = None;
                self.occur(index, started, severity);
                Ingested::Reopened(Self::id(index))
            }
            _ => {
                self.incidents.push(ModelIncident {
                    fingerprint,
                    status: IncidentStatus::Open,
                    severity,
                    occurrences: 1,
                    started,
                    first_seen: now,
                    resolved_at: None,
                    first_acknowledged: None,
                    first_resolved: None,
                });
                Ingested::Opened(Self::id(self.incidents.len() - 1))
            }
        }
    }

    fn mark_resolved(&mut self, index: usize) {
        let now = self.now;
        let incident = &mut self.incidents[index];
        incident.status = IncidentStatus::Resolved;
        incident.resolved_at = Some(now);
        incident.first_resolved.get_or_insert(now);
    }

    fn resolve_alert(&mut self, fingerprint: usize, started: Timestamp) -> Ingested {
        let Some(index) = self.latest(fingerprint) else {
            return Ingested::Ignored(IgnoreReason::UnknownFingerprint);
        };
        let incident = &self.incidents[index];
        if incident.status == IncidentStatus::Resolved {
            Ingested::Ignored(IgnoreReason::AlreadyResolved)
        } else if started < incident.started {
            Ingested::Ignored(IgnoreReason::StaleResolution)
        } else if !self.config.auto_resolve {
            Ingested::Ignored(IgnoreReason::AutoResolveDisabled)
        } else {
            self.mark_resolved(index);
            Ingested::AutoResolved(Self::id(index))
        }
    }

    /// `Ok(())` or the status that forbids the change.
    fn acknowledge(&mut self, index: usize) -> Result<(), IncidentStatus> {
        let now = self.now;
        let incident = &mut self.incidents[index];
        match incident.status {
            IncidentStatus::Open => {
                incident.status = IncidentStatus::Acknowledged;
                incident.first_acknowledged.get_or_insert(now);
                Ok(())
            }
            other => Err(other),
        }
    }

    fn resolve(&mut self, index: usize) -> Result<(), IncidentStatus> {
        match self.incidents[index].status {
            IncidentStatus::Resolved => Err(IncidentStatus::Resolved),
            _ => {
                self.mark_resolved(index);
                Ok(())
            }
        }
    }
}

fn alert(fingerprint: usize, status: AlertStatus, started: Timestamp, severity: usize) -> Alert {
    Alert {
        fingerprint: format!("fp{fingerprint}"),
        status,
        labels: from_pairs([
            ("alertname", "Synthetic"),
            ("service", SERVICES[fingerprint % SERVICES.len()]),
            ("severity", SEVERITY_LABELS[severity].0),
        ]),
        annotations: Default::default(),
        starts_at: started,
        ends_at: None,
        generator_url: None,
    }
}

fn manual_outcome(
    result: Result<IncidentId, Error>,
    index: usize,
    wanted: IncidentStatus,
) -> Result<(), IncidentStatus> {
    match result {
        Ok(id) => {
            assert_eq!(id, Model::id(index));
            Ok(())
        }
        Err(Error::IllegalTransition { id, from, to }) => {
            assert_eq!(id, Model::id(index));
            assert_eq!(to, wanted);
            Err(from)
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

fn run(config: IncidentBookConfig, ops: &[Op]) -> (IncidentBook, Model) {
    let start = Timestamp::from_second(1_800_000_000).unwrap();
    let mut book = IncidentBook::new(config.clone()).unwrap();
    let mut model = Model {
        config,
        incidents: Vec::new(),
        now: start,
        last_started: HashMap::new(),
    };
    for op in ops {
        let now = model.now;
        match *op {
            Op::Fire {
                fingerprint,
                new_episode,
                severity,
            } => {
                let started = match model.last_started.get(&fingerprint) {
                    Some(&last) if !new_episode => last,
                    _ => now,
                };
                model.last_started.insert(fingerprint, started);
                let expected = model.fire(fingerprint, started, SEVERITY_LABELS[severity].1);
                let actual = book.ingest_alert(
                    &alert(fingerprint, AlertStatus::Firing, started, severity),
                    now,
                );
                assert_eq!(actual, expected, "{op:?}");
            }
            Op::ResolveAlert { fingerprint } => {
                let started = model.last_started.get(&fingerprint).copied().unwrap_or(now);
                let expected = model.resolve_alert(fingerprint, started);
                let actual =
                    book.ingest_alert(&alert(fingerprint, AlertStatus::Resolved, started, 0), now);
                assert_eq!(actual, expected, "{op:?}");
            }
            Op::Acknowledge { fingerprint } | Op::Resolve { fingerprint } => {
                let acknowledging = matches!(op, Op::Acknowledge { .. });
                let Some(index) = model.latest(fingerprint) else {
                    let unknown = IncidentId::new("INC-999999");
                    let error = if acknowledging {
                        book.acknowledge(&unknown, "alice", None, now).unwrap_err()
                    } else {
                        book.resolve(&unknown, "alice", None, now).unwrap_err()
                    };
                    assert_eq!(error, Error::UnknownIncident(unknown));
                    continue;
                };
                let id = Model::id(index);
                let (actual, expected) = if acknowledging {
                    let actual = book
                        .acknowledge(&id, "alice", None, now)
                        .map(|i| i.id.clone());
                    (
                        manual_outcome(actual, index, IncidentStatus::Acknowledged),
                        model.acknowledge(index),
                    )
                } else {
                    let actual = book.resolve(&id, "bob", None, now).map(|i| i.id.clone());
                    (
                        manual_outcome(actual, index, IncidentStatus::Resolved),
                        model.resolve(index),
                    )
                };
                assert_eq!(actual, expected, "{op:?}");
            }
            Op::Advance { minutes } => {
                model.now = now + SignedDuration::from_mins(minutes);
            }
        }
        check_state(&book, &model);
    }
    (book, model)
}

/// The book holds exactly the model's incidents, and no fingerprint has two
/// active incidents.
fn check_state(book: &IncidentBook, model: &Model) {
    let incidents: Vec<_> = book.incidents().collect();
    assert_eq!(incidents.len(), model.incidents.len());
    for (index, (actual, expected)) in incidents.iter().zip(&model.incidents).enumerate() {
        assert_eq!(actual.id, Model::id(index));
        assert_eq!(actual.status, expected.status, "{}", actual.id);
        assert_eq!(actual.severity, expected.severity, "{}", actual.id);
        assert_eq!(actual.occurrences, expected.occurrences, "{}", actual.id);
        assert_eq!(actual.occurrence_started_at, expected.started);
        assert_eq!(actual.first_seen, expected.first_seen);
        assert_eq!(actual.resolved_at, expected.resolved_at);
        assert_eq!(
            actual.time_to_acknowledge(),
            expected
                .first_acknowledged
                .map(|at| at.duration_since(expected.first_seen))
        );
        assert_eq!(
            actual.time_to_resolve(),
            expected
                .first_resolved
                .map(|at| at.duration_since(expected.first_seen))
        );
    }
    let mut active_per_fingerprint: HashMap<&str, usize> = HashMap::new();
    for incident in &incidents {
        if incident.is_active() {
            *active_per_fingerprint
                .entry(incident.fingerprint.as_str())
                .or_default() += 1;
            assert_eq!(
                book.active_for(&incident.fingerprint).map(|i| &i.id),
                Some(&incident.id)
            );
        }
    }
    assert!(
        active_per_fingerprint.values().all(|&count| count == 1),
        "{active_per_fingerprint:?}"
    );
}

fn config() -> impl Strategy<Value = IncidentBookConfig> {
    (0u32..5, any::<bool>(), 0i64..60, 0..SEVERITY_LABELS.len()).prop_map(
        |(every, auto_resolve, reopen_minutes, ceiling)| IncidentBookConfig {
            escalate_every_occurrences: every,
            auto_resolve,
            reopen_window: SignedDuration::from_mins(reopen_minutes),
            escalation_ceiling: SEVERITY_LABELS[ceiling].1,
            ..IncidentBookConfig::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_book_follows_the_model(config in config(), ops in prop::collection::vec(op(), 1..80)) {
        run(config, &ops);
    }

    #[test]
    fn statistics_match_a_recount(
        config in config(),
        ops in prop::collection::vec(op(), 1..80),
        range_start in 0i64..600,
        range_minutes in 0i64..900,
    ) {
        let (book, model) = run(config, &ops);
        let start = Timestamp::from_second(1_800_000_000 + range_start * 60).unwrap();
        let range = TimeRange::between(start, start + SignedDuration::from_mins(range_minutes));
        let stats = book.stats(&range);

        let in_range: Vec<_> = model
            .incidents
            .iter()
            .filter(|incident| range.contains(incident.first_seen))
            .collect();
        prop_assert_eq!(stats.total, in_range.len());
        for status in IncidentStatus::ALL {
            let count = in_range.iter().filter(|i| i.status == status).count();
            prop_assert_eq!(stats.by_status[&status], count);
        }
        for severity in Severity::ALL {
            let count = in_range.iter().filter(|i| i.severity == severity).count();
            prop_assert_eq!(stats.by_severity[&severity], count);
        }
        prop_assert_eq!(stats.by_category[&Category::Alert], in_range.len());
        for (offset, service) in SERVICES.iter().enumerate() {
            let count = in_range
                .iter()
                .filter(|i| i.fingerprint % SERVICES.len() == offset)
                .count();
            prop_assert_eq!(stats.by_service.get(*service).copied().unwrap_or(0), count);
        }

        let mut acknowledge_nanos: Vec<i128> = in_range
            .iter()
            .filter_map(|i| i.first_acknowledged.map(|at| at.duration_since(i.first_seen).as_nanos()))
            .collect();
        prop_assert_eq!(stats.mtta.count, acknowledge_nanos.len());
        if !acknowledge_nanos.is_empty() {
            acknowledge_nanos.sort_unstable();
            let n = acknowledge_nanos.len();
            let mean = acknowledge_nanos.iter().sum::<i128>() / n as i128;
            let median = if n % 2 == 1 {
                acknowledge_nanos[n / 2]
            } else {
                (acknowledge_nanos[n / 2 - 1] + acknowledge_nanos[n / 2]) / 2
            };
            prop_assert_eq!(stats.mtta.mean, Some(SignedDuration::from_nanos_i128(mean)));
            prop_assert_eq!(stats.mtta.median, Some(SignedDuration::from_nanos_i128(median)));
        } else {
            prop_assert_eq!(stats.mtta.mean, None);
        }
        let resolved = in_range.iter().filter(|i| i.first_resolved.is_some()).count();
        prop_assert_eq!(stats.mttr.count, resolved);
    }
}

#[test]
fn the_model_catches_a_reopen_after_the_window() {
    // A fixed sequence, so that the model itself is known to work: fire,
    // resolve, wait past the 30 min window, fire again -> a second incident.
    let ops = [
        Op::Fire {
            fingerprint: 0,
            new_episode: true,
            severity: 1,
        },
        Op::ResolveAlert { fingerprint: 0 },
        Op::Advance { minutes: 30 },
        Op::Fire {
            fingerprint: 0,
            new_episode: true,
            severity: 1,
        },
    ];
    let (book, model) = run(IncidentBookConfig::default(), &ops);
    assert_eq!(book.incidents().len(), 2);
    assert_eq!(model.incidents[0].status, IncidentStatus::Resolved);
    assert_eq!(model.incidents[1].status, IncidentStatus::Open);
}
