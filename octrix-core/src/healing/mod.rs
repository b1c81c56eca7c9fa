//! Healing: rules, seed-004 policies, the shared safety budget and the
//! planner that decides what to do for an incident.
//!
//! * [`HealingConfig`] (YAML or TOML) holds [`HealingRule`]s: a scope
//!   ([`RuleMatch`]), an ordered list of [`HealingAction`]s, a cooldown per rule
//!   and target, a maximum number of attempts, dry-run and priority; plus
//!   seed-004 [`Policy`]s written as `metric op threshold`.
//! * The [`Planner`] follows seed 000: low and medium incidents are healed,
//!   high and critical escalated (configurable). When an action fails or does
//!   not help, the caller calls [`Planner::advance`] and the next action is
//!   planned; when none is left the incident is escalated.
//! * The [`SafetyBudget`] limits disruption across healing and chaos alike.
//!
//! ```
//! use octrix_core::cluster::{ClusterAction, ClusterSnapshot};
//! use octrix_core::healing::{Decision, HealingConfig, Planner, Remediation, Subject};
//! use octrix_core::{Category, Severity, Timestamp};
//!
//! let config = HealingConfig::from_yaml(r#"
//! rules:
//!   - name: crashloops
//!     match: { categories: [pod-crash] }
//!     actions:
//!       - type: restart-pod
//!       - type: notify
//!         channel: sre
//! "#).unwrap();
//! let mut planner = Planner::new(config);
//! let subject = Subject {
//!     namespace: Some("shop".into()),
//!     pod: Some("web-1".into()),
//!     ..Subject::new("inc-1", Category::PodCrash, Severity::Medium, "web-1 crash-looping")
//! };
//! let Decision::Act(planned) = planner.plan(&subject, &ClusterSnapshot::default(), Timestamp::UNIX_EPOCH) else {
//!     panic!("a medium pod crash is healed");
//! };
//! assert_eq!(
//!     planned.remediation,
//!     Remediation::Cluster(ClusterAction::RestartPod { namespace: "shop".into(), pod: "web-1".into() })
//! );
//! ```

mod action;
mod budget;
mod planner;
mod policy;
mod rule;

pub use action::{HealingAction, Notification, Remediation, ScriptInvocation};
pub use budget::{
    BudgetConfig, BudgetDenial, DisruptionRequest, Disruptor, Permit, SafetyBudget, WorkloadImpact,
};
pub use planner::{Decision, Denial, EscalationReason, PlannedAction, Planner};
pub use policy::{Comparison, Condition, ConditionError, Policy, PolicyAction};
pub use rule::{HealingConfig, HealingRule, RuleMatch};

use serde::{Deserialize, Serialize};

use crate::Labels;
use crate::classify::{Category, Severity};

/// Errors of healing configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not valid YAML/TOML for a configuration.
    #[error("cannot parse healing configuration: {0}")]
    Parse(String),
    /// A field has a value that is not allowed.
    #[error("invalid healing configuration: {field} {reason}")]
    InvalidField {
        /// Path of the field, e.g. `rules[0].actions[1].channel`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// What the planner needs to know of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// The incident's id.
    pub incident_id: String,
    /// What healing progress is tracked by: the incident id by default. The
    /// engine uses the category and workload, so that a replacement pod's
    /// incident continues down the rule where the replaced pod's left off.
    pub case: String,
    /// Its category.
    pub category: Category,
    /// Its current severity.
    pub severity: Severity,
    /// A one-line title.
    pub title: String,
    /// Namespace of the affected object.
    pub namespace: Option<String>,
    /// Affected service.
    pub service: Option<String>,
    /// Affected pod.
    pub pod: Option<String>,
    /// Deployment owning the affected pod.
    pub deployment: Option<String>,
    /// Affected node (or the node of the affected pod).
    pub node: Option<String>,
    /// The incident's labels.
    pub labels: Labels,
}

impl Subject {
    /// A subject with only the required fields set.
    pub fn new(
        incident_id: impl Into<String>,
        category: Category,
        severity: Severity,
        title: impl Into<String>,
    ) -> Self {
        let incident_id = incident_id.into();
        Self {
            case: incident_id.clone(),
            incident_id,
            category,
            severity,
            title: title.into(),
            namespace: None,
            service: None,
            pod: None,
            deployment: None,
            node: None,
            labels: Labels::new(),
        }
    }

    /// The most specific name of what is affected.
    pub fn resource_name(&self) -> String {
        let scoped = |name: &str| match &self.namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_owned(),
        };
        if let Some(pod) = &self.pod {
            scoped(pod)
        } else if let Some(deployment) = &self.deployment {
            scoped(deployment)
        } else if let Some(service) = &self.service {
            scoped(service)
        } else if let Some(node) = &self.node {
            node.clone()
        } else {
            "the cluster".to_owned()
        }
    }

    /// Environment variables describing the incident, for custom scripts.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("OCTRIX_INCIDENT_ID".to_owned(), self.incident_id.clone()),
            ("OCTRIX_CATEGORY".to_owned(), self.category.to_string()),
            ("OCTRIX_SEVERITY".to_owned(), self.severity.to_string()),
            ("OCTRIX_TITLE".to_owned(), self.title.clone()),
        ];
        for (name, value) in [
            ("OCTRIX_NAMESPACE", &self.namespace),
            ("OCTRIX_SERVICE", &self.service),
            ("OCTRIX_POD", &self.pod),
            ("OCTRIX_DEPLOYMENT", &self.deployment),
            ("OCTRIX_NODE", &self.node),
        ] {
            if let Some(value) = value {
                env.push((name.to_owned(), value.clone()));
            }
        }
        env
    }
}

#[cfg(test)]
mod tests;
