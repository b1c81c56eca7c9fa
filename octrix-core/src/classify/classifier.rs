//! The [`Classifier`]: observations in, signals and clears out.

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

/// What a sample says about one category on the observed resource, before
/// the streak decides whether that is a signal.
struct Finding {
    category: Category,
    measure: Measure,
    metric: Option<String>,
    /// Category details added to the signal's labels.
    details: Vec<(String, String)>,
    summary: Summary,
}

/// A finding's one-line summary. Utilisation readings arrive for every pod
/// and node on every tick and are nearly all healthy, so their text is only
/// written when the finding becomes a signal.
enum Summary {
    Text(String),
    Utilisation { what: &'static str, ratio: f64 },
}

impl Summary {
    fn render(self, resource: &ResourceRef) -> String {
        match self {
            Summary::Text(text) => text,
            Summary::Utilisation { what, ratio } => {
                format!("{what} utilisation of {resource} at {:.1}%", ratio * 100.0)
            }
        }
    }
}

impl From<String> for Summary {
    fn from(text: String) -> Self {
        Summary::Text(text)
    }
}

impl Finding {
    fn new(category: Category, measure: Measure, summary: impl Into<Summary>) -> Self {
        Self {
            category,
            measure,
            metric: None,
            details: Vec::new(),
            summary: summary.into(),
        }
    }

    fn detail(mut self, name: &str, value: impl Into<String>) -> Self {
        self.details.push((name.to_owned(), value.into()));
        self
    }

    fn observed(&self) -> Option<f64> {
        match self.measure {
            Measure::Value(_, value) => Some(value),
            Measure::Condition(..) => None,
        }
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
            Reading::Node(conditions) => self.judge_node(&observation.resource, conditions),
            Reading::CpuUtilisation { ratio } => self.judge_utilisation(Category::HighCpu, *ratio),
            Reading::MemoryUtilisation { ratio } => {
                self.judge_utilisation(Category::HighMemory, *ratio)
            }
            Reading::RestartRate { per_hour } => {
                self.judge_restart_rate(&observation.resource, *per_hour)
            }
            Reading::Anomaly(anomaly) => self.judge_anomaly(&observation.resource, anomaly),
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
        let key = StreakKeyRef::new(
            finding.category,
            &observation.resource,
            finding.metric.as_deref(),
        );
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
                        metric: finding.metric,
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
                let mut labels = observation.labels.clone();
                labels.extend(finding.details);
                Some(Classification::Raised(Signal {
                    category: finding.category,
                    severity,
                    resource: observation.resource.clone(),
                    metric: finding.metric,
                    service: observation.service.clone(),
                    labels,
                    summary: finding.summary.render(&observation.resource),
                    observed,
                    threshold,
                    since: streak.since,
                    at: observation.at,
                }))
            }
        }
    }

    fn judge_pod(&mut self, observation: &Observation, status: &PodStatus) -> Vec<Finding> {
        let resource = &observation.resource;
        // A pod that ran to completion has nothing wrong with it any more.
        let finished = status.phase == PodPhase::Succeeded;
        let key = StreakKeyRef::new(Category::PersistentRestarts, resource, None);
        if !self.restarts.contains_key(&key) {
            self.restarts
                .insert(key.to_owned(), RestartHistory::default());
        }
        let restarts_in_window = self.restarts.get_mut(&key).expect("inserted above").record(
            observation.at,
            status.total_restarts(),
            self.policy.restart_window,
        );

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
        let crash = match crashing {
            Some(container) => {
                let reason = container
                    .waiting_reason
                    .as_ref()
                    .map_or("", |reason| reason.as_str());
                Finding::new(
                    Category::PodCrash,
                    crash_measure,
                    format!(
                        "{resource} is failing: container {} is in {reason} after {} restarts",
                        container.name, container.restart_count
                    ),
                )
                .detail("container", container.name.as_str())
                .detail("reason", reason)
            }
            None => Finding::new(
                Category::PodCrash,
                crash_measure,
                format!("{resource} is in phase Failed"),
            )
            .detail("reason", "Failed"),
        };

        // The last termination reason lingers after a container recovers, so
        // an OOM kill counts only while the container is not ready or the pod
        // restarted within the restart window.
        let oom_killed = status.containers.iter().find(|container| {
            container.was_oom_killed() && (!container.ready || restarts_in_window > 0)
        });
        let oom_measure =
            Measure::Condition(self.policy.oom_killed, !finished && oom_killed.is_some());
        let oom = match oom_killed {
            Some(container) => Finding::new(
                Category::OomKilled,
                oom_measure,
                format!(
                    "container {} of {resource} was OOMKilled ({} restarts)",
                    container.name, container.restart_count
                ),
            )
            .detail("container", container.name.as_str()),
            None => Finding::new(Category::OomKilled, oom_measure, String::new()),
        };

        let window_hours = self.policy.restart_window.as_secs_f64() / 3600.0;
        let per_hour = if finished {
            0.0
        } else {
            restarts_in_window as f64 / window_hours
        };
        let mut findings = vec![crash, oom];
        findings.extend(self.judge_restart_rate(resource, per_hour));
        findings
    }

    fn judge_restart_rate(&mut self, resource: &ResourceRef, per_hour: f64) -> Vec<Finding> {
        if !(per_hour >= 0.0 && per_hour.is_finite()) {
            self.rejected_readings += 1;
            return Vec::new();
        }
        vec![Finding::new(
            Category::PersistentRestarts,
            Measure::Value(self.policy.persistent_restarts, per_hour),
            format!("{resource} is restarting {per_hour:.1} times per hour"),
        )]
    }

    fn judge_node(&self, resource: &ResourceRef, conditions: &NodeConditions) -> Vec<Finding> {
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
            format!("{resource} is not ready (Ready={ready})"),
        )
        .detail("ready", ready);
        let pressures = conditions.pressures().join(",");
        let pressure = Finding::new(
            Category::NodePressure,
            Measure::Condition(self.policy.node_pressure, !pressures.is_empty()),
            format!("{resource} reports {pressures}"),
        )
        .detail("conditions", pressures);
        vec![not_ready, pressure]
    }

    fn judge_utilisation(&mut self, category: Category, ratio: f64) -> Vec<Finding> {
        if !(ratio >= 0.0 && ratio.is_finite()) {
            self.rejected_readings += 1;
            return Vec::new();
        }
        let (ladder, what) = if category == Category::HighCpu {
            (self.policy.high_cpu, "CPU")
        } else {
            (self.policy.high_memory, "memory")
        };
        vec![Finding::new(
            category,
            Measure::Value(ladder, ratio),
            Summary::Utilisation { what, ratio },
        )]
    }

    fn judge_anomaly(&mut self, resource: &ResourceRef, anomaly: &AnomalyReading) -> Vec<Finding> {
        let plausible = (0.0..=1.0).contains(&anomaly.score)
            && anomaly.value.is_finite()
            && anomaly.z.is_finite();
        if !plausible {
            self.rejected_readings += 1;
            return Vec::new();
        }
        let mut finding = Finding::new(
            Category::Anomaly,
            Measure::Value(self.policy.anomaly, anomaly.score),
            format!(
                "{} on {resource} is anomalous: {} is {:.1} standard deviations {} normal (score {:.2})",
                anomaly.metric,
                readable(anomaly.value),
                anomaly.z.abs(),
                match anomaly.direction {
                    super::Direction::Above => "above",
                    super::Direction::Below => "below",
                    super::Direction::AtMean => "at",
                },
                anomaly.score
            ),
        );
        finding.metric = Some(anomaly.metric.clone());
        finding.details = anomaly
            .labels
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        vec![
            finding
                .detail("direction", anomaly.direction.as_str())
                .detail("z", format!("{:.2}", anomaly.z)),
        ]
    }
}

/// A value for a title: whole numbers for large magnitudes, three decimals
/// otherwise, so that titles stay readable.
fn readable(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests;
