//! The [`Classifier`]: observations in, signals and clears out.

use super::finding::{Description, Finding, Findings};
use super::restarts::RestartHistory;
use super::streak::{Grade, Measure, Streak};
use super::{
    AnomalyReading, Category, Classification, Cleared, ConditionStatus, Error, NodeConditions,
    Observation, PodPhase, PodStatus, Reading, ResourceKind, ResourceRef, SeverityPolicy, Signal,
};
use crate::Timestamp;

/// What one streak is about: a category on a resource (and a metric, for
/// anomalies). The node is left out, as in [`ResourceRef::identity`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StreakKey {
    category: Category,
    kind: ResourceKind,
    namespace: Option<String>,
    name: String,
    metric: Option<String>,
}

/// A `StreakKey` borrowed from an observation, to look streaks up without
/// allocating: nearly every observation is of a healthy resource with no
/// streak. Its fields hash exactly as `StreakKey`'s (a `String` hashes as
/// its `str`).
#[derive(Hash)]
struct StreakKeyRef<'a> {
    category: Category,
    kind: ResourceKind,
    namespace: Option<&'a str>,
    name: &'a str,
    metric: Option<&'a str>,
}

impl<'a> StreakKeyRef<'a> {
    fn new(category: Category, resource: &'a ResourceRef, metric: Option<&'a str>) -> Self {
        Self {
            category,
            kind: resource.kind,
            namespace: resource.namespace.as_deref(),
            name: &resource.name,
            metric,
        }
    }

    fn to_owned(&self) -> StreakKey {
        StreakKey {
            category: self.category,
            kind: self.kind,
            namespace: self.namespace.map(str::to_owned),
            name: self.name.to_owned(),
            metric: self.metric.map(str::to_owned),
        }
    }
}

impl hashbrown::Equivalent<StreakKey> for StreakKeyRef<'_> {
    fn equivalent(&self, key: &StreakKey) -> bool {
        self.category == key.category
            && self.kind == key.kind
            && self.namespace == key.namespace.as_deref()
            && self.name == key.name
            && self.metric == key.metric.as_deref()
    }
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
    streaks: hashbrown::HashMap<StreakKey, Streak>,
    restarts: hashbrown::HashMap<StreakKey, RestartHistory>,
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
            streaks: hashbrown::HashMap::new(),
            restarts: hashbrown::HashMap::new(),
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
        self.streaks.len()
    }

    /// Classifies one observation. A pod or node status can yield several
    /// results, in a fixed order (crash, OOM, restarts; not-ready, pressure).
    pub fn observe(&mut self, observation: &Observation) -> Vec<Classification> {
        let findings = match &observation.reading {
            Reading::Pod(status) => self.judge_pod(observation, status),
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
        findings
            .into_iter()
            .filter_map(|finding| self.track(observation, finding))
            .collect()
    }

    /// Forgets resources not observed since `cutoff` (deleted pods, removed
    /// nodes) without reporting them cleared. Returns how many streaks went.
    pub fn evict_idle(&mut self, cutoff: Timestamp) -> usize {
        let before = self.streaks.len();
        self.streaks.retain(|_, streak| streak.last_seen >= cutoff);
        self.restarts
            .retain(|_, history| history.last_seen.is_some_and(|seen| seen >= cutoff));
        before - self.streaks.len()
    }

    /// Grades `finding` in its streak and turns the grade into a result.
    fn track(&mut self, observation: &Observation, finding: Finding) -> Option<Classification> {
        let key = StreakKeyRef::new(finding.category, &observation.resource, finding.metric);
        let grade = match self.streaks.get_mut(&key) {
            Some(streak) => streak.grade(&finding.measure),
            None => {
                let mut fresh = Streak::starting(observation.at);
                let grade = fresh.grade(&finding.measure);
                if grade != Grade::Healthy {
                    self.streaks.insert(key.to_owned(), fresh);
                }
                grade
            }
        };
        match grade {
            Grade::Healthy => {
                let streak = self.streaks.remove(&key)?;
                streak.raised.then(|| {
                    Classification::Cleared(Cleared {
                        category: finding.category,
                        resource: observation.resource.clone(),
                        metric: finding.metric.map(str::to_owned),
                        service: observation.service.clone(),
                        at: observation.at,
                    })
                })
            }
            Grade::Pending => {
                if let Some(streak) = self.streaks.get_mut(&key) {
                    streak.last_seen = observation.at;
                }
                None
            }
            Grade::Raised {
                severity,
                threshold,
            } => {
                let streak = self.streaks.get_mut(&key)?;
                streak.last_seen = observation.at;
                streak.raised = true;
                let observed = finding.observed();
                let (summary, details) = finding.description.render(&observation.resource);
                let mut labels = observation.labels.clone();
                labels.extend(details);
                Some(Classification::Raised(Signal {
                    category: finding.category,
                    severity,
                    resource: observation.resource.clone(),
                    metric: finding.metric.map(str::to_owned),
                    service: observation.service.clone(),
                    labels,
                    summary,
                    observed,
                    threshold,
                    since: streak.since,
                    at: observation.at,
                }))
            }
        }
    }

    fn judge_pod<'a>(&mut self, observation: &Observation, status: &'a PodStatus) -> Findings<'a> {
        let resource = &observation.resource;
        // A pod that ran to completion has nothing wrong with it any more.
        let finished = status.phase == PodPhase::Succeeded;
        let key = StreakKeyRef::new(Category::PersistentRestarts, resource, None);
        let (at, restarts, window) = (
            observation.at,
            status.total_restarts(),
            self.policy.restart_window,
        );
        let restarts_in_window = match self.restarts.get_mut(&key) {
            Some(history) => history.record(at, restarts, window),
            None => {
                let mut history = RestartHistory::default();
                let in_window = history.record(at, restarts, window);
                self.restarts.insert(key.to_owned(), history);
                in_window
            }
        };

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
