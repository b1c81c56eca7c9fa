//! The [`Classifier`]: observations in, signals and clears out.

use super::finding::{Description, Finding, Findings};
use super::restarts::RestartHistory;
use super::streak::{Grade, Measure, Streak};
use super::{
    AnomalyReading, Category, Classification, Cleared, ConditionStatus, Error, NodeConditions,
    Observation, PodPhase, PodStatus, Reading, ResourceKind, ResourceRef, SeverityPolicy, Signal,
};
use std::hash::BuildHasher;

use crate::Timestamp;

/// What the classifier remembers of one resource: its streaks in progress
/// and, for a pod, its restart history. The node is left out of the key, as
/// in [`ResourceRef::identity`].
///
/// Kept per resource rather than per (category, resource) so that a pod's
/// three observations of a tick (status, CPU, memory) cost one hash of its
/// names each and its up to five findings a scan of a short list: looking
/// up every finding by category and names was a fifth of an engine tick.
#[derive(Debug, Clone)]
struct Tracked {
    /// The hash of (kind, namespace, name), kept for the table's growth.
    hash: u64,
    kind: ResourceKind,
    namespace: Option<String>,
    name: String,
    streaks: Vec<TrackedStreak>,
    restarts: Option<RestartHistory>,
}

impl Tracked {
    fn is(&self, resource: &ResourceRef) -> bool {
        self.kind == resource.kind
            && self.name == resource.name
            && self.namespace == resource.namespace
    }

    fn is_empty(&self) -> bool {
        self.streaks.is_empty() && self.restarts.is_none()
    }

    /// The position of the streak of `category` (and `metric`), if any.
    fn streak_of(&self, category: Category, metric: Option<&str>) -> Option<usize> {
        self.streaks
            .iter()
            .position(|s| s.category == category && s.metric.as_deref() == metric)
    }
}

/// A streak in progress: a category on a resource (and a metric, for
/// anomalies).
#[derive(Debug, Clone)]
struct TrackedStreak {
    category: Category,
    metric: Option<String>,
    streak: Streak,
}

/// Turns [`Observation`]s into [`Classification`]s under a
/// [`SeverityPolicy`], keeping per-resource duration counters.
///
/// Pure: time is the observation's `at`. While a problem holds (long
/// enough), every observation yields a [`Classification::Raised`] with the
/// same `since`; the first healthy observation afterwards yields one
/// [`Classification::Cleared`] and forgets the counters. Healthy resources
/// keep no counters (a pod keeps its last restart count, to derive a rate);
/// [`Classifier::evict_idle`] forgets resources that stopped reporting.
#[derive(Debug, Clone)]
pub struct Classifier {
    policy: SeverityPolicy,
    /// Resources with a streak in progress or a restart history, mostly in
    /// the order they were first observed: an observer that reports its
    /// objects in the same order every time then finds each record next to
    /// the previous one, in memory read in order, where a hash table's
    /// random reads of 10,000 pods missed the cache.
    records: Vec<Tracked>,
    /// Positions in `records`, by the records' hashes.
    index: hashbrown::HashTable<usize>,
    /// The position of the last record looked up.
    last: usize,
    hasher: foldhash::fast::RandomState,
    /// Streaks in progress, over every resource.
    streaks: usize,
    rejected_readings: u64,
}

impl Default for Classifier {
    /// A classifier under [`SeverityPolicy::default`], which is valid.
    fn default() -> Self {
        Self::with_valid_policy(SeverityPolicy::default())
    }
}

impl Classifier {
    /// A classifier under `policy`, once [validated](SeverityPolicy::validate).
    pub fn new(policy: SeverityPolicy) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self::with_valid_policy(policy))
    }

    fn with_valid_policy(policy: SeverityPolicy) -> Self {
        Self {
            policy,
            records: Vec::new(),
            index: hashbrown::HashTable::new(),
            last: 0,
            hasher: foldhash::fast::RandomState::default(),
            streaks: 0,
            rejected_readings: 0,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &SeverityPolicy {
        &self.policy
    }

    /// Readings rejected as not finite or out of range (a NaN utilisation, a
    /// score above 1); they change no counter.
    pub fn rejected_readings(&self) -> u64 {
        self.rejected_readings
    }

    /// How many category-resource pairs have a streak in progress.
    pub fn tracked(&self) -> usize {
        self.streaks
    }

    /// Classifies one observation. A pod or node status can yield several
    /// results, in a fixed order (crash, OOM, restarts; not-ready, pressure).
    pub fn observe(&mut self, observation: &Observation) -> Vec<Classification> {
        let resource = &observation.resource;
        let hash = self.hasher.hash_one((
            resource.kind,
            resource.namespace.as_deref(),
            resource.name.as_str(),
        ));
        let findings = match &observation.reading {
            Reading::Pod(status) => self.judge_pod(observation, hash, status),
            Reading::Node(conditions) => self.judge_node(conditions),
            Reading::CpuUtilisation { ratio } => self.judge_utilisation(Category::HighCpu, *ratio),
            Reading::MemoryUtilisation { ratio } => {
                self.judge_utilisation(Category::HighMemory, *ratio)
            }
            Reading::RestartRate { per_hour } => {
                self.judge_restart_rate(*per_hour).into_iter().collect()
            }
            Reading::Anomaly(anomaly) => self.judge_anomaly(anomaly),
        };
        self.track_all(observation, hash, findings)
    }

    /// Forgets resources not observed since `cutoff` (deleted pods, removed
    /// nodes) without reporting them cleared. Returns how many streaks went.
    pub fn evict_idle(&mut self, cutoff: Timestamp) -> usize {
        let mut evicted = 0;
        let before = self.records.len();
        self.records.retain_mut(|tracked| {
            let streaks = tracked.streaks.len();
            tracked.streaks.retain(|s| s.streak.last_seen >= cutoff);
            evicted += streaks - tracked.streaks.len();
            if tracked
                .restarts
                .as_ref()
                .is_some_and(|history| history.last_seen.is_none_or(|seen| seen < cutoff))
            {
                tracked.restarts = None;
            }
            !tracked.is_empty()
        });
        if self.records.len() != before {
            self.index.clear();
            let records = &self.records;
            for (position, tracked) in records.iter().enumerate() {
                self.index
                    .insert_unique(tracked.hash, position, |&p| records[p].hash);
            }
        }
        self.streaks -= evicted;
        evicted
    }

    /// The position of the record of `resource` (whose hash is `hash`), if
    /// it has one: the last one looked up, the one after it, or any.
    fn locate(&mut self, hash: u64, resource: &ResourceRef) -> Option<usize> {
        let records = &self.records;
        let is = |position: usize| {
            records
                .get(position)
                .is_some_and(|tracked| tracked.hash == hash && tracked.is(resource))
        };
        let position = if is(self.last) {
            self.last
        } else if is(self.last + 1) {
            self.last + 1
        } else {
            *self.index.find(hash, |&p| is(p))?
        };
        self.last = position;
        Some(position)
    }

    /// The position of the record of `resource`, made empty if it has none.
    fn locate_or_insert(&mut self, hash: u64, resource: &ResourceRef) -> usize {
        if let Some(position) = self.locate(hash, resource) {
            return position;
        }
        let position = self.records.len();
        self.records.push(Tracked {
            hash,
            kind: resource.kind,
            namespace: resource.namespace.clone(),
            name: resource.name.clone(),
            streaks: Vec::new(),
            restarts: None,
        });
        let records = &self.records;
        self.index
            .insert_unique(hash, position, |&p| records[p].hash);
        self.last = position;
        position
    }

    /// Forgets the record at `position`; the last record takes its place.
    fn remove(&mut self, position: usize) {
        let hash = self.records[position].hash;
        if let Ok(entry) = self.index.find_entry(hash, |&p| p == position) {
            entry.remove();
        }
        let moved = self.records.len() - 1;
        self.records.swap_remove(position);
        if position != moved {
            let moved_hash = self.records[position].hash;
            if let Some(p) = self.index.find_mut(moved_hash, |&p| p == moved) {
                *p = position;
            }
        }
    }

    /// Grades each finding in its streak and turns the grades into
    /// results, looking the resource up once.
    fn track_all(
        &mut self,
        observation: &Observation,
        hash: u64,
        findings: Findings,
    ) -> Vec<Classification> {
        let resource = &observation.resource;
        let mut results = Vec::new();
        let mut emptied = false;
        let mut record = self.locate(hash, resource);
        for finding in findings {
            let (category, metric) = (finding.category, finding.metric);
            let existing =
                record.and_then(|r| Some((r, self.records[r].streak_of(category, metric)?)));
            let (tracked, position, grade) = match existing {
                Some((r, position)) => {
                    let tracked = &mut self.records[r];
                    let grade = tracked.streaks[position].streak.grade(&finding.measure);
                    (tracked, position, grade)
                }
                None => {
                    let mut fresh = Streak::starting(observation.at);
                    let grade = fresh.grade(&finding.measure);
                    if grade == Grade::Healthy {
                        continue;
                    }
                    let r = match record {
                        Some(r) => r,
                        None => self.locate_or_insert(hash, resource),
                    };
                    record = Some(r);
                    let tracked = &mut self.records[r];
                    tracked.streaks.push(TrackedStreak {
                        category,
                        metric: metric.map(str::to_owned),
                        streak: fresh,
                    });
                    self.streaks += 1;
                    let position = tracked.streaks.len() - 1;
                    (tracked, position, grade)
                }
            };
            match grade {
                Grade::Healthy => {
                    let streak = tracked.streaks.swap_remove(position).streak;
                    self.streaks -= 1;
                    emptied = tracked.is_empty();
                    if streak.raised {
                        results.push(Classification::Cleared(Cleared {
                            category,
                            resource: resource.clone(),
                            metric: metric.map(str::to_owned),
                            service: observation.service.clone(),
                            at: observation.at,
                        }));
                    }
                }
                Grade::Pending => {
                    tracked.streaks[position].streak.last_seen = observation.at;
                }
                Grade::Raised {
                    severity,
                    threshold,
                } => {
                    let streak = &mut tracked.streaks[position].streak;
                    streak.last_seen = observation.at;
                    streak.raised = true;
                    let since = streak.since;
                    let observed = finding.observed();
                    let (summary, details) = finding.description.render(resource);
                    let mut labels = observation.labels.clone();
                    labels.extend(details);
                    results.push(Classification::Raised(Signal {
                        category,
                        severity,
                        resource: resource.clone(),
                        metric: metric.map(str::to_owned),
                        service: observation.service.clone(),
                        labels,
                        summary,
                        observed,
                        threshold,
                        since,
                        at: observation.at,
                    }));
                }
            }
        }
        // A resource with nothing left to remember is forgotten.
        if emptied
            && let Some(r) = record
            && self.records[r].is_empty()
        {
            self.remove(r);
        }
        results
    }

    fn judge_pod<'a>(
        &mut self,
        observation: &Observation,
        hash: u64,
        status: &'a PodStatus,
    ) -> Findings<'a> {
        // A pod that ran to completion has nothing wrong with it any more.
        let finished = status.phase == PodPhase::Succeeded;
        let (at, restarts, window) = (
            observation.at,
            status.total_restarts(),
            self.policy.restart_window,
        );
        let position = self.locate_or_insert(hash, &observation.resource);
        let restarts_in_window = self.records[position]
            .restarts
            .get_or_insert_default()
            .record(at, restarts, window);

        let crashing = status.containers.iter().find(|container| {
            container
                .waiting_reason
                .as_ref()
                .is_some_and(|reason| reason.is_failure())
        });
        let failed = status.phase == PodPhase::Failed;
        let crash_measure = Measure::Condition(
            self.policy.pod_crash,
            !finished && (failed || crashing.is_some()),
        );
        let crash = Finding::new(
            Category::PodCrash,
            crash_measure,
            crashing.map_or(Description::PhaseFailed, Description::Crashing),
        );

        // The last termination reason lingers after a container recovers, so
        // an OOM kill counts only while the container is not ready or the pod
        // restarted within the restart window.
        let oom_killed = status.containers.iter().find(|container| {
            container.was_oom_killed() && (!container.ready || restarts_in_window > 0)
        });
        let oom_measure =
            Measure::Condition(self.policy.oom_killed, !finished && oom_killed.is_some());
        let oom = Finding::new(
            Category::OomKilled,
            oom_measure,
            oom_killed.map_or(Description::NoOomKill, Description::OomKilled),
        );

        let window_hours = self.policy.restart_window.as_secs_f64() / 3600.0;
        let per_hour = if finished {
            0.0
        } else {
            restarts_in_window as f64 / window_hours
        };
        let mut findings = Findings::default();
        findings.push(crash);
        findings.push(oom);
        findings.extend(self.judge_restart_rate(per_hour));
        findings
    }

    fn judge_restart_rate(&mut self, per_hour: f64) -> Option<Finding<'static>> {
        if !(per_hour >= 0.0 && per_hour.is_finite()) {
            self.rejected_readings += 1;
            return None;
        }
        Some(Finding::new(
            Category::PersistentRestarts,
            Measure::Value(self.policy.persistent_restarts, per_hour),
            Description::RestartRate(per_hour),
        ))
    }

    fn judge_node<'a>(&self, conditions: &'a NodeConditions) -> Findings<'a> {
        let ready = match conditions.ready {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        };
        let not_ready = Finding::new(
            Category::NodeNotReady,
            Measure::Condition(
                self.policy.node_not_ready,
                conditions.ready != ConditionStatus::True,
            ),
            Description::NodeReady(ready),
        );
        let under_pressure =
            conditions.memory_pressure || conditions.disk_pressure || conditions.pid_pressure;
        let pressure = Finding::new(
            Category::NodePressure,
            Measure::Condition(self.policy.node_pressure, under_pressure),
            Description::NodePressure(conditions),
        );
        let mut findings = Findings::default();
        findings.push(not_ready);
        findings.push(pressure);
        findings
    }

    fn judge_utilisation(&mut self, category: Category, ratio: f64) -> Findings<'static> {
        if !(ratio >= 0.0 && ratio.is_finite()) {
            self.rejected_readings += 1;
            return Findings::default();
        }
        let (ladder, what) = if category == Category::HighCpu {
            (self.policy.high_cpu, "CPU")
        } else {
            (self.policy.high_memory, "memory")
        };
        Findings::one(Finding::new(
            category,
            Measure::Value(ladder, ratio),
            Description::Utilisation { what, ratio },
        ))
    }

    fn judge_anomaly<'a>(&mut self, anomaly: &'a AnomalyReading) -> Findings<'a> {
        let plausible = (0.0..=1.0).contains(&anomaly.score)
            && anomaly.value.is_finite()
            && anomaly.z.is_finite();
        if !plausible {
            self.rejected_readings += 1;
            return Findings::default();
        }
        let mut finding = Finding::new(
            Category::Anomaly,
            Measure::Value(self.policy.anomaly, anomaly.score),
            Description::Anomaly(anomaly),
        );
        finding.metric = Some(&anomaly.metric);
        Findings::one(finding)
    }
}

#[cfg(test)]
mod tests;
