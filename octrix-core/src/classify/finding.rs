//! What one observation says about one category, before its streak decides
//! whether that is a signal.
//!
//! Nearly every observation is of a healthy resource: 10,000 pods and 1,000
//! nodes are judged on every engine tick, and writing each finding's summary
//! and labels up front was most of the classifier's time. A finding
//! therefore borrows what it describes and is only written out
//! ([`Description::render`]) when it becomes a signal.

use super::streak::Measure;
use super::{AnomalyReading, Category, ContainerStatus, NodeConditions, ResourceRef};

/// One category's verdict material for one observation.
pub(super) struct Finding<'a> {
    pub(super) category: Category,
    pub(super) measure: Measure,
    /// The metric, for anomalies.
    pub(super) metric: Option<&'a str>,
    pub(super) description: Description<'a>,
}

impl<'a> Finding<'a> {
    pub(super) fn new(category: Category, measure: Measure, description: Description<'a>) -> Self {
        Self {
            category,
            measure,
            metric: None,
            description,
        }
    }

    /// The measured value, for ladders.
    pub(super) fn observed(&self) -> Option<f64> {
        match self.measure {
            Measure::Value(_, value) => Some(value),
            Measure::Condition(..) => None,
        }
    }
}

/// What a finding is about, rendered into a summary and the details added to
/// the signal's labels only when it is raised.
pub(super) enum Description<'a> {
    /// A container waits for a failure reason (`CrashLoopBackOff`...).
    Crashing(&'a ContainerStatus),
    /// The pod's phase is `Failed` (or nothing crashes: the finding is healthy).
    PhaseFailed,
    /// A container was OOM-killed.
    OomKilled(&'a ContainerStatus),
    /// No container was OOM-killed (the finding is healthy).
    NoOomKill,
    /// Restarts per hour over the restart window.
    RestartRate(f64),
    /// The node's `Ready` condition, as Kubernetes writes it.
    NodeReady(&'static str),
    /// The node's pressure conditions.
    NodePressure(&'a NodeConditions),
    /// CPU or memory utilisation.
    Utilisation { what: &'static str, ratio: f64 },
    /// An anomalous metric sample.
    Anomaly(&'a AnomalyReading),
}

impl Description<'_> {
    /// The signal's one-line summary, and the details added to its labels.
    pub(super) fn render(self, resource: &ResourceRef) -> (String, Vec<(String, String)>) {
        let detail = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        match self {
            Description::Crashing(container) => {
                let reason = container
                    .waiting_reason
                    .as_ref()
                    .map_or("", |reason| reason.as_str());
                (
                    format!(
                        "{resource} is failing: container {} is in {reason} after {} restarts",
                        container.name, container.restart_count
                    ),
                    vec![
                        detail("container", &container.name),
                        detail("reason", reason),
                    ],
                )
            }
            Description::PhaseFailed => (
                format!("{resource} is in phase Failed"),
                vec![detail("reason", "Failed")],
            ),
            Description::OomKilled(container) => (
                format!(
                    "container {} of {resource} was OOMKilled ({} restarts)",
                    container.name, container.restart_count
                ),
                vec![detail("container", &container.name)],
            ),
            Description::NoOomKill => (String::new(), Vec::new()),
            Description::RestartRate(per_hour) => (
                format!("{resource} is restarting {per_hour:.1} times per hour"),
                Vec::new(),
            ),
            Description::NodeReady(ready) => (
                format!("{resource} is not ready (Ready={ready})"),
                vec![detail("ready", ready)],
            ),
            Description::NodePressure(conditions) => {
                let pressures = conditions.pressures().join(",");
                (
                    format!("{resource} reports {pressures}"),
                    vec![detail("conditions", &pressures)],
                )
            }
            Description::Utilisation { what, ratio } => (
                format!("{what} utilisation of {resource} at {:.1}%", ratio * 100.0),
                Vec::new(),
            ),
            Description::Anomaly(anomaly) => {
                let summary = format!(
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
                );
                let mut details: Vec<(String, String)> = anomaly
                    .labels
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                details.push(detail("direction", anomaly.direction.as_str()));
                details.push(detail("z", &format!("{:.2}", anomaly.z)));
                (summary, details)
            }
        }
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

/// The findings of one observation: at most three (a pod's crash, OOM kill
/// and restart rate), kept inline so that judging allocates nothing.
#[derive(Default)]
pub(super) struct Findings<'a>([Option<Finding<'a>>; 3]);

impl<'a> Findings<'a> {
    /// Adds `finding`.
    ///
    /// # Panics
    /// With a fourth finding: no reading yields more than three.
    pub(super) fn push(&mut self, finding: Finding<'a>) {
        let free = self
            .0
            .iter_mut()
            .find(|slot| slot.is_none())
            .expect("no reading yields more than three findings");
        *free = Some(finding);
    }

    /// One finding.
    pub(super) fn one(finding: Finding<'a>) -> Self {
        let mut findings = Self::default();
        findings.push(finding);
        findings
    }
}

impl<'a> IntoIterator for Findings<'a> {
    type Item = Finding<'a>;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Finding<'a>>, 3>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

impl<'a> Extend<Finding<'a>> for Findings<'a> {
    fn extend<I: IntoIterator<Item = Finding<'a>>>(&mut self, findings: I) {
        for finding in findings {
            self.push(finding);
        }
    }
}

impl<'a> FromIterator<Finding<'a>> for Findings<'a> {
    fn from_iter<I: IntoIterator<Item = Finding<'a>>>(findings: I) -> Self {
        let mut all = Self::default();
        all.extend(findings);
        all
    }
}
