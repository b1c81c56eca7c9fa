//! Healing rules and their configuration (YAML or TOML).

use serde::{Deserialize, Serialize};

use super::action::HealingAction;
use super::budget::BudgetConfig;
use super::policy::Policy;
use super::{Error, Subject};
use crate::Labels;
use crate::classify::{Category, Severity};

/// Which incidents a rule applies to. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleMatch {
    /// Categories the rule heals.
    pub categories: Vec<Category>,
    /// Lowest severity the rule acts on.
    pub min_severity: Option<Severity>,
    /// Highest severity the rule acts on.
    pub max_severity: Option<Severity>,
    /// Namespaces the rule acts in.
    pub namespaces: Vec<String>,
    /// Services the rule acts on.
    pub services: Vec<String>,
    /// Labels the incident must carry, with these values (a label selector).
    pub labels: Labels,
}

impl RuleMatch {
    /// Whether `subject` is in scope.
    pub fn matches(&self, subject: &Subject) -> bool {
        let listed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        };
        (self.categories.is_empty() || self.categories.contains(&subject.category))
            && self.min_severity.is_none_or(|min| subject.severity >= min)
            && self.max_severity.is_none_or(|max| subject.severity <= max)
            && listed(&self.namespaces, subject.namespace.as_deref())
            && listed(&self.services, subject.service.as_deref())
            && self
                .labels
                .iter()
                .all(|(k, v)| subject.labels.get(k) == Some(v))
    }
}

/// A healing rule: what to do, in order, for the incidents it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealingRule {
    /// Unique name.
    pub name: String,
    /// Whether the rule is considered at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Higher priorities are considered first; ties keep file order.
    #[serde(default)]
    pub priority: i32,
    /// Plan and record, never act.
    #[serde(default)]
    pub dry_run: bool,
    /// Scope.
    #[serde(default, rename = "match")]
    pub matcher: RuleMatch,
    /// Actions tried in order: each failure or unhelpful outcome moves on.
    pub actions: Vec<HealingAction>,
    /// Minimum seconds between two actions of this rule on one target.
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: u32,
    /// Most actions this rule takes for one incident.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Allow acting above [`HealingConfig::auto_heal_max_severity`].
    #[serde(default)]
    pub act_above_auto_heal_severity: bool,
}

fn yes() -> bool {
    true
}
fn default_cooldown() -> u32 {
    300
}
fn default_max_attempts() -> u32 {
    3
}

/// How Octrix heals: global switches, rules, seed-004 policies and the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealingConfig {
    /// Plan and record every action without acting.
    pub dry_run: bool,
    /// Namespaces never acted on.
    pub protected_namespaces: Vec<String>,
    /// Incidents above this severity are escalated, not healed (seed 000:
    /// low and medium are healed, high and critical escalated).
    pub auto_heal_max_severity: Severity,
    /// Channel notified on escalation.
    pub escalation_channel: String,
    /// Seconds to wait after an action before checking whether it helped.
    pub settle_seconds: u32,
    /// The rules.
    pub rules: Vec<HealingRule>,
    /// Seed-004 style policies on metric values.
    pub policies: Vec<Policy>,
    /// The shared blast-radius budget.
    pub budget: BudgetConfig,
}

impl Default for HealingConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            protected_namespaces: vec!["kube-system".to_owned(), "octrix-system".to_owned()],
            auto_heal_max_severity: Severity::Medium,
            escalation_channel: "oncall".to_owned(),
            settle_seconds: 60,
            rules: Vec::new(),
            policies: Vec::new(),
            budget: BudgetConfig::default(),
        }
    }
}

impl HealingConfig {
    /// Parses YAML and validates it.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let config: Self = serde_norway::from_str(text).map_err(|e| Error::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML and validates it.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot, naming the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field: String, reason: &str| Error::InvalidField {
            field,
            reason: reason.to_owned(),
        };
        if self.escalation_channel.trim().is_empty() {
            return Err(invalid("escalation_channel".into(), "must not be empty"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let field = |name: &str| format!("rules[{i}].{name}");
            if rule.name.trim().is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(invalid(field("name"), "duplicates another rule's name"));
            }
            if rule.actions.is_empty() {
                return Err(invalid(field("actions"), "must list at least one action"));
            }
            if rule.max_attempts == 0 {
                return Err(invalid(field("max_attempts"), "must be at least 1"));
            }
            if let (Some(min), Some(max)) = (rule.matcher.min_severity, rule.matcher.max_severity)
                && min > max
            {
                return Err(invalid(
                    field("match.min_severity"),
                    "is above match.max_severity",
                ));
            }
            for (j, action) in rule.actions.iter().enumerate() {
                validate_action(action, &format!("rules[{i}].actions[{j}]"))?;
            }
        }
        for (i, policy) in self.policies.iter().enumerate() {
            policy.validate(&format!("policies[{i}]"))?;
        }
        self.budget.validate()
    }

    /// Enabled rules that match `subject`, highest priority first.
    pub fn matching_rules(&self, subject: &Subject) -> Vec<&HealingRule> {
        let mut rules: Vec<&HealingRule> = self
            .rules
            .iter()
            .filter(|r| r.enabled && r.matcher.matches(subject))
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        rules
    }
}

fn validate_action(action: &HealingAction, field: &str) -> Result<(), Error> {
    let invalid = |name: &str, reason: &str| Error::InvalidField {
        field: format!("{field}.{name}"),
        reason: reason.to_owned(),
    };
    match action {
        HealingAction::ScaleDeployment { to, by, min, max } => {
            if to.is_some() == by.is_some() {
                return Err(invalid("to", "set exactly one of `to` and `by`"));
            }
            if min > max {
                return Err(invalid("min", "is above max"));
            }
            if let Some(to) = to
                && !(min..=max).contains(&to)
            {
                return Err(invalid("to", "is outside [min, max]"));
            }
            if *by == Some(0) {
                return Err(invalid("by", "must not be 0"));
            }
        }
        HealingAction::DrainNode { timeout_seconds } if *timeout_seconds == 0 => {
            return Err(invalid("timeout_seconds", "must be at least 1"));
        }
        HealingAction::Notify { channel } if channel.trim().is_empty() => {
            return Err(invalid("channel", "must not be empty"));
        }
        HealingAction::CustomScript {
            program,
            timeout_seconds,
            ..
        } => {
            if program.trim().is_empty() {
                return Err(invalid("program", "must not be empty"));
            }
            if program.contains(char::is_whitespace) {
                return Err(invalid(
                    "program",
                    "is a program path, not a shell command: put arguments in `args`",
                ));
            }
            if *timeout_seconds == 0 {
                return Err(invalid("timeout_seconds", "must be at least 1"));
            }
        }
        _ => {}
    }
    Ok(())
}
