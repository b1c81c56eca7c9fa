//! `HealingRules`: which actions a healing rule set plans for an incident,
//! evaluated without acting.

use octrix_core::Timestamp;
use octrix_core::cluster::ClusterSnapshot;
use octrix_core::healing::{Decision, Denial, HealingConfig, Planner, Subject};
use octrix_core::time::SignedDuration;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::convert;
use crate::errors::Error;
use crate::incident::PyIncident;

/// Most decisions `dry_run` walks through; a rule set cannot need more
/// (each step counts an attempt, and attempts are bounded per rule).
const MAX_DRY_RUN_STEPS: usize = 1000;

/// A healing rule set (rules, seed-004 policies, protected namespaces, the
/// auto-heal severity limit), validated, for evaluation: `plan` says what
/// the planner would do first for an incident, `dry_run` the whole ladder of
/// actions it would try. Nothing is carried out.
#[pyclass(module = "octrix", name = "HealingRules", frozen)]
#[derive(Debug)]
pub struct PyHealingRules {
    config: HealingConfig,
}

impl PyHealingRules {
    fn build(config: HealingConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self { config })
    }
}

/// The planner's view of `incident`: an `Incident` from an `IncidentBook`,
/// or a mapping with `incident_id`, `category`, `severity`, `title` and
/// optionally `case` (the incident id when absent), `namespace`, `service`,
/// `pod`, `deployment`, `node`, `labels`.
fn subject(incident: &Bound<'_, PyAny>, cluster: &ClusterSnapshot) -> Result<Subject, Error> {
    if let Ok(incident) = incident.cast::<PyIncident>() {
        return Ok(Subject::from_incident(&incident.get().inner, cluster));
    }
    let mut value = convert::to_value(incident, "incident")?;
    if let Value::Object(fields) = &mut value
        && !fields.contains_key("case")
        && let Some(id) = fields.get("incident_id").cloned()
    {
        fields.insert("case".to_owned(), id);
    }
    convert::from_value(value, "incident")
}

/// A cluster snapshot from an optional mapping (`nodes`, `deployments`,
/// `pods`, `taken_at`); empty when None.
fn cluster(cluster: Option<&Bound<'_, PyAny>>) -> Result<ClusterSnapshot, Error> {
    match cluster {
        Some(cluster) if !cluster.is_none() => convert::from_py(cluster, "cluster"),
        _ => Ok(ClusterSnapshot::default()),
    }
}

/// A decision as a dict (`decision`: act, escalate, deny, no_matching_rule
/// or awaiting_human, and its fields); a cooldown's `until` as a datetime.
fn decision_dict<'py>(py: Python<'py>, decision: &Decision) -> PyResult<Bound<'py, PyAny>> {
    let dict = convert::to_py(py, decision)?;
    if let Decision::Deny(Denial::Cooldown { until, .. }) = decision {
        convert::set_time(dict.cast::<PyDict>()?, "until", Some(*until))?;
    }
    Ok(dict)
}

#[pymethods]
impl PyHealingRules {
    /// A rule set from a mapping of the YAML form (`rules`, `policies`,
    /// `dry_run`, `protected_namespaces`, `auto_heal_max_severity`,
    /// `escalation_channel`, `settle_seconds`, `budget`); ConfigError names
    /// the offending field, e.g. `rules[0].actions[1].channel`.
    #[new]
    #[pyo3(signature = (config = None))]
    fn new(config: Option<&Bound<'_, PyAny>>) -> Result<Self, Error> {
        let config = match config {
            Some(config) if !config.is_none() => convert::config_from_py(config, "")?,
            _ => HealingConfig::default(),
        };
        Self::build(config)
    }

    /// A rule set from a YAML document.
    #[staticmethod]
    fn from_yaml(text: &str) -> Result<Self, Error> {
        Self::build(convert::config_from_yaml(text)?)
    }

    /// A rule set from a TOML document.
    #[staticmethod]
    fn from_toml(text: &str) -> Result<Self, Error> {
        Self::build(convert::config_from_toml(text)?)
    }

    /// Names of the enabled rules that match `incident`, highest priority
    /// first (the first is the one the planner follows).
    #[pyo3(signature = (incident, cluster = None))]
    fn matching_rules(
        &self,
        incident: &Bound<'_, PyAny>,
        cluster: Option<&Bound<'_, PyAny>>,
    ) -> Result<Vec<String>, Error> {
        let cluster = self::cluster(cluster)?;
        let subject = subject(incident, &cluster)?;
        Ok(self
            .config
            .matching_rules(&subject)
            .into_iter()
            .map(|rule| rule.name.clone())
            .collect())
    }

    /// What a fresh planner decides first for `incident` (an `Incident` or a
    /// mapping), given `cluster` (a snapshot mapping, empty when None) at
    /// `now`: a dict whose `decision` is `act` (with `rule`, `step`,
    /// `action`, `remediation`, `dry_run`, `disruption`), `escalate` (with
    /// `reason`, `notification`), `deny`, `no_matching_rule` or
    /// `awaiting_human`.
    #[pyo3(signature = (incident, cluster = None, now = None))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        incident: &Bound<'_, PyAny>,
        cluster: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cluster = self::cluster(cluster)?;
        let subject = subject(incident, &cluster)?;
        let now = convert::timestamp_or_now(now, "now")?;
        let mut planner = Planner::new(self.config.clone());
        decision_dict(py, &planner.plan(&subject, &cluster, now))
    }

    /// Every decision the planner would take for `incident` if each planned
    /// action were carried out and did not help, each after the rule's
    /// cooldown: the `act` decisions in order (all marked `dry_run`), then
    /// the decision that ends the walk (usually `escalate` with
    /// `actions_exhausted`). Nothing is carried out.
    #[pyo3(signature = (incident, cluster = None, now = None))]
    fn dry_run<'py>(
        &self,
        py: Python<'py>,
        incident: &Bound<'_, PyAny>,
        cluster: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let cluster = self::cluster(cluster)?;
        let subject = subject(incident, &cluster)?;
        let mut now: Timestamp = convert::timestamp_or_now(now, "now")?;
        let mut planner = Planner::new(self.config.clone());
        planner.set_dry_run(true);
        let mut decisions = Vec::new();
        for _ in 0..MAX_DRY_RUN_STEPS {
            let decision = planner.plan(&subject, &cluster, now);
            let Decision::Act(planned) = &decision else {
                decisions.push(decision_dict(py, &decision)?);
                break;
            };
            planner.record_attempt(&subject.case, planned, now);
            planner.advance(&subject.case);
            let cooldown = self
                .config
                .rules
                .iter()
                .find(|rule| rule.name == planned.rule)
                .map_or(0, |rule| rule.cooldown_seconds);
            now = now
                .checked_add(SignedDuration::from_secs(i64::from(cooldown)))
                .unwrap_or(Timestamp::MAX);
            decisions.push(decision_dict(py, &decision)?);
        }
        Ok(decisions)
    }

    /// Names of the rules, in file order.
    #[getter]
    fn rule_names(&self) -> Vec<String> {
        self.config
            .rules
            .iter()
            .map(|rule| rule.name.clone())
            .collect()
    }

    /// The rule set as a dict (the YAML form, defaults filled in).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.config)
    }

    fn __repr__(&self) -> String {
        format!(
            "HealingRules(rules={:?}, dry_run={})",
            self.rule_names(),
            if self.config.dry_run { "True" } else { "False" }
        )
    }
}

/// Registers the healing classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyHealingRules>()?;
    Ok(())
}
