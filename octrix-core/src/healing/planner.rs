//! Decides, for one incident at a time, what to do next.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Subject;
use super::action::{HealingAction, Notification, Remediation, ScriptInvocation};
use super::budget::{BudgetDenial, DisruptionRequest, Disruptor, WorkloadImpact};
use super::rule::{HealingConfig, HealingRule};
use crate::Timestamp;
use crate::cluster::{ClusterAction, ClusterSnapshot};
use crate::time::SignedDuration;

/// An action the planner wants carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// The rule it comes from.
    pub rule: String,
    /// Index of the action in the rule's list.
    pub step: usize,
    /// The action as configured.
    pub action: HealingAction,
    /// The action made concrete for this incident.
    pub remediation: Remediation,
    /// Only plan and validate, do not change anything.
    pub dry_run: bool,
    /// What to ask of the safety budget, for disruptive actions.
    pub disruption: Option<DisruptionRequest>,
}

/// Why an action was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Denial {
    /// The namespace is protected.
    #[error("namespace {namespace} is protected")]
    Protected {
        /// The namespace.
        namespace: String,
    },
    /// The rule acted on this target too recently.
    #[error("rule {rule} is cooling down on {target} until {until}")]
    Cooldown {
        /// The rule.
        rule: String,
        /// The action that waits.
        action: String,
        /// The target.
        target: String,
        /// When it may act again.
        until: Timestamp,
    },
    /// The safety budget refused.
    #[error("safety budget: {0}")]
    Budget(BudgetDenial),
    /// Dry run: the action was planned and validated only.
    #[error("dry run: {0} was planned but not carried out")]
    DryRun(String),
}

/// Why an incident goes to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EscalationReason {
    /// Its severity is above what is healed automatically.
    SeverityAboveAutoHeal,
    /// Every action of the rule was tried, or its attempts ran out.
    ActionsExhausted {
        /// The rule.
        rule: String,
    },
    /// An action failed.
    ActionFailed {
        /// The action.
        action: String,
        /// The error.
        error: String,
    },
    /// An action ran but the incident is still there after the settle time.
    NotHealed {
        /// The action.
        action: String,
    },
}

impl std::fmt::Display for EscalationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SeverityAboveAutoHeal => f.write_str("severity is above the auto-heal limit"),
            Self::ActionsExhausted { rule } => write!(f, "rule {rule} has no action left to try"),
            Self::ActionFailed { action, error } => write!(f, "{action} failed: {error}"),
            Self::NotHealed { action } => write!(f, "{action} did not heal the incident"),
        }
    }
}

/// What the planner decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Carry out an action.
    Act(PlannedAction),
    /// Hand the incident to a human.
    Escalate {
        /// Why.
        reason: EscalationReason,
        /// The message to send.
        notification: Notification,
    },
    /// An action was due but is not allowed now.
    Deny(Denial),
    /// No enabled rule matches the incident.
    NoMatchingRule,
    /// The incident was already escalated and waits for a human.
    AwaitingHuman,
}

#[derive(Debug, Clone)]
struct Progress {
    rule: String,
    next_action: usize,
    attempts: u32,
    escalated: bool,
}

/// The healing planner: rules, per-incident progress and cooldowns. Pure.
#[derive(Debug, Clone)]
pub struct Planner {
    config: HealingConfig,
    progress: HashMap<String, Progress>,
    cooldowns: HashMap<(String, String), Timestamp>,
    policy_cooldowns: HashMap<String, Timestamp>,
}

impl Planner {
    /// A planner for a validated configuration.
    pub fn new(config: HealingConfig) -> Self {
        Self {
            config,
            progress: HashMap::new(),
            cooldowns: HashMap::new(),
            policy_cooldowns: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HealingConfig {
        &self.config
    }

    /// Replaces the configuration; progress of incidents in flight is kept.
    pub fn set_config(&mut self, config: HealingConfig) {
        self.config = config;
    }

    /// Sets the global dry-run switch.
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.config.dry_run = dry_run;
    }

    /// The next step for `subject`.
    pub fn plan(
        &mut self,
        subject: &Subject,
        cluster: &ClusterSnapshot,
        now: Timestamp,
    ) -> Decision {
        if let Some(namespace) = &subject.namespace
            && self.config.protected_namespaces.contains(namespace)
        {
            return Decision::Deny(Denial::Protected {
                namespace: namespace.clone(),
            });
        }
        if self
            .progress
            .get(&subject.case)
            .is_some_and(|p| p.escalated)
        {
            return Decision::AwaitingHuman;
        }
        let Some(rule) = self.rule_for(subject) else {
            if subject.severity > self.config.auto_heal_max_severity {
                return self.escalate(subject, EscalationReason::SeverityAboveAutoHeal);
            }
            return Decision::NoMatchingRule;
        };
        // The gate applies when healing starts: once a rule is under way, the
        // severity raised by its own failed steps must not stop the next step.
        let starting = !self.progress.contains_key(&subject.case);
        if starting
            && subject.severity > self.config.auto_heal_max_severity
            && !rule.act_above_auto_heal_severity
        {
            return self.escalate(subject, EscalationReason::SeverityAboveAutoHeal);
        }
        let rule = rule.clone();
        let progress = self
            .progress
            .entry(subject.case.clone())
            .or_insert_with(|| Progress {
                rule: rule.name.clone(),
                next_action: 0,
                attempts: 0,
                escalated: false,
            });
        // Skip actions that cannot apply to this incident (no pod to restart, ...).
        let (step, remediation) = loop {
            if progress.attempts >= rule.max_attempts || progress.next_action >= rule.actions.len()
            {
                let reason = EscalationReason::ActionsExhausted {
                    rule: rule.name.clone(),
                };
                return self.escalate(subject, reason);
            }
            let step = progress.next_action;
            match concretize(&rule.actions[step], subject, cluster) {
                Some(remediation) => break (step, remediation),
                None => progress.next_action += 1,
            }
        };
        let key = (rule.name.clone(), remediation.target());
        if let Some(last) = self.cooldowns.get(&key) {
            let until = last
                .checked_add(SignedDuration::from_secs(i64::from(rule.cooldown_seconds)))
                .unwrap_or(Timestamp::MAX);
            if now < until {
                return Decision::Deny(Denial::Cooldown {
                    rule: rule.name.clone(),
                    action: rule.actions[step].name().to_owned(),
                    target: remediation.target(),
                    until,
                });
            }
        }
        let action = rule.actions[step].clone();
        let disruption = action
            .is_disruptive()
            .then(|| disruption_request(&remediation, cluster));
        Decision::Act(PlannedAction {
            rule: rule.name.clone(),
            step,
            action,
            remediation,
            dry_run: self.config.dry_run || rule.dry_run,
            disruption,
        })
    }

    /// Whether [`plan`](Self::plan) would decide [`Decision::NoMatchingRule`]
    /// for `subject`, without changing anything: a caller can then leave
    /// the subject alone until it, the rules or its case's progress change.
    pub fn matches_no_rule(&self, subject: &Subject) -> bool {
        let protected = subject
            .namespace
            .as_ref()
            .is_some_and(|namespace| self.config.protected_namespaces.contains(namespace));
        !protected
            && !self.progress.contains_key(&subject.case)
            && subject.severity <= self.config.auto_heal_max_severity
            && self.rule_for(subject).is_none()
    }

    /// Records that `planned` was carried out (or tried) for the case
    /// (see [`Subject::case`]) at `now`: starts the cooldown and counts the attempt.
    pub fn record_attempt(&mut self, case: &str, planned: &PlannedAction, now: Timestamp) {
        self.cooldowns
            .insert((planned.rule.clone(), planned.remediation.target()), now);
        if let Some(progress) = self.progress.get_mut(case) {
            progress.attempts += 1;
        }
    }

    /// The last action did not help: the next one in the list is tried.
    pub fn advance(&mut self, case: &str) {
        if let Some(progress) = self.progress.get_mut(case) {
            progress.next_action += 1;
        }
    }

    /// The case is over: forget its progress.
    pub fn finish(&mut self, case: &str) {
        self.progress.remove(case);
    }

    /// Seed-004 policies that fire for `metric` of `service` at `value`,
    /// outside their cooldown; firing starts the cooldown.
    pub fn fire_policies(
        &mut self,
        service: &str,
        metric: &str,
        value: f64,
        now: Timestamp,
    ) -> Vec<(String, HealingAction)> {
        let mut fired = Vec::new();
        for policy in &self.config.policies {
            if !policy.fires(service, metric, value) {
                continue;
            }
            let cooling = self.policy_cooldowns.get(&policy.name).is_some_and(|last| {
                now.duration_since(*last) < SignedDuration::from_secs(i64::from(policy.cooldown))
            });
            if cooling {
                continue;
            }
            self.policy_cooldowns.insert(policy.name.clone(), now);
            fired.push((
                policy.name.clone(),
                policy.healing_action(&self.config.escalation_channel),
            ));
        }
        fired
    }

    fn rule_for(&self, subject: &Subject) -> Option<&HealingRule> {
        match self.progress.get(&subject.case) {
            Some(progress) => self.config.rules.iter().find(|r| r.name == progress.rule),
            None => self.config.matching_rules(subject).into_iter().next(),
        }
    }

    fn escalate(&mut self, subject: &Subject, reason: EscalationReason) -> Decision {
        let progress = self
            .progress
            .entry(subject.case.clone())
            .or_insert_with(|| Progress {
                rule: String::new(),
                next_action: 0,
                attempts: 0,
                escalated: false,
            });
        progress.escalated = true;
        Decision::Escalate {
            notification: Notification {
                channel: self.config.escalation_channel.clone(),
                subject: format!("[{}] escalated: {}", subject.severity, subject.title),
                body: format!("Incident {} needs a human: {reason}.", subject.incident_id),
            },
            reason,
        }
    }
}

/// Turns a configured action into a concrete one for `subject`, or `None`
/// when it cannot apply (no pod to restart, already at the replica bound...).
fn concretize(
    action: &HealingAction,
    subject: &Subject,
    cluster: &ClusterSnapshot,
) -> Option<Remediation> {
    let namespace = subject.namespace.clone();
    Some(match action {
        HealingAction::RestartPod => Remediation::Cluster(ClusterAction::RestartPod {
            namespace: namespace?,
            pod: subject.pod.clone()?,
        }),
        HealingAction::ScaleDeployment { to, by, min, max } => {
            let namespace = namespace?;
            let deployment = subject.deployment.clone()?;
            let current = cluster.deployment(&namespace, &deployment)?.replicas;
            let wanted = match (to, by) {
                (Some(to), _) => i64::from(*to),
                (None, Some(by)) => i64::from(current) + i64::from(*by),
                (None, None) => return None,
            };
            let replicas = wanted.clamp(i64::from(*min), i64::from(*max)) as u32;
            if replicas == current {
                return None;
            }
            Remediation::Cluster(ClusterAction::ScaleDeployment {
                namespace,
                deployment,
                replicas,
            })
        }
        HealingAction::CordonNode => Remediation::Cluster(ClusterAction::CordonNode {
            node: subject.node.clone()?,
        }),
        HealingAction::DrainNode { timeout_seconds } => {
            Remediation::Cluster(ClusterAction::DrainNode {
                node: subject.node.clone()?,
                timeout_seconds: *timeout_seconds,
            })
        }
        HealingAction::Notify { channel } => Remediation::Notify(Notification {
            channel: channel.clone(),
            subject: format!("[{}] {}", subject.severity, subject.title),
            body: format!(
                "Incident {} ({}) on {}.",
                subject.incident_id,
                subject.category,
                subject.resource_name()
            ),
        }),
        HealingAction::CustomScript {
            program,
            args,
            timeout_seconds,
        } => Remediation::Script(ScriptInvocation {
            program: program.clone(),
            args: args.clone(),
            env: subject.environment(),
            timeout_seconds: *timeout_seconds,
        }),
        HealingAction::RollbackTraffic => Remediation::RollbackTraffic {
            namespace: namespace?,
            service: subject.service.clone()?,
        },
    })
}

fn disruption_request(remediation: &Remediation, cluster: &ClusterSnapshot) -> DisruptionRequest {
    let mut request = DisruptionRequest::new(Disruptor::Healing, remediation.target());
    let Remediation::Cluster(action) = remediation else {
        return request;
    };
    if let Some(namespace) = action.namespace() {
        request = request.in_namespace(namespace);
    }
    let workload_of = |namespace: &str, deployment: &str, disrupted: u32, disrupted_ready: u32| {
        let pods: Vec<_> = cluster
            .pods
            .iter()
            .filter(|p| p.namespace == namespace && p.deployment() == Some(deployment))
            .collect();
        WorkloadImpact {
            workload: format!("{namespace}/{deployment}"),
            pods: pods.len() as u32,
            ready_pods: pods.iter().filter(|p| p.is_ready()).count() as u32,
            disrupted_pods: disrupted,
            disrupted_ready_pods: disrupted_ready,
        }
    };
    match action {
        ClusterAction::RestartPod { namespace, pod } => {
            if let Some(pod) = cluster.pod(namespace, pod)
                && let Some(deployment) = pod.deployment()
            {
                let ready = u32::from(pod.is_ready());
                request = request.with_impact(workload_of(namespace, deployment, 1, ready));
            }
        }
        ClusterAction::ScaleDeployment {
            namespace,
            deployment,
            replicas,
        } => {
            if let Some(current) = cluster.deployment(namespace, deployment)
                && *replicas < current.replicas
            {
                let removed = current.replicas - replicas;
                let impact = workload_of(
                    namespace,
                    deployment,
                    removed,
                    removed.min(current.ready_replicas),
                );
                request = request.with_impact(impact);
            }
        }
        _ => {}
    }
    request
}
