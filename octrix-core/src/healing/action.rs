//! What a healing rule may do, and the concrete remediation it becomes.

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterAction;

/// One step of a rule, as the user writes it (seed 000's action types, plus
/// rollback of a canary's traffic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HealingAction {
    /// Delete the incident's pod so its controller replaces it.
    RestartPod,
    /// Scale the incident's deployment to a count or by a delta, kept within
    /// `[min, max]`.
    ScaleDeployment {
        /// Target replica count.
        #[serde(default)]
        to: Option<u32>,
        /// Change in replicas (negative scales down).
        #[serde(default)]
        by: Option<i32>,
        /// Never go below this many replicas.
        #[serde(default = "default_min_replicas")]
        min: u32,
        /// Never go above this many replicas.
        #[serde(default = "default_max_replicas")]
        max: u32,
    },
    /// Mark the incident's node unschedulable.
    CordonNode,
    /// Cordon the node and evict its pods within disruption budgets.
    DrainNode {
        /// How long evictions may take.
        #[serde(default = "default_drain_timeout")]
        timeout_seconds: u32,
    },
    /// Send a message to a named channel.
    Notify {
        /// Channel name, resolved by the notifier (e.g. `oncall`, `slack-sre`).
        channel: String,
    },
    /// Run a program with arguments (never through a shell), with the
    /// incident's fields in its environment.
    CustomScript {
        /// Absolute path or name of the program.
        program: String,
        /// Arguments, passed as they are.
        #[serde(default)]
        args: Vec<String>,
        /// Kill the program after this many seconds.
        #[serde(default = "default_script_timeout")]
        timeout_seconds: u32,
    },
    /// Send all of a canary's traffic back to its stable version.
    RollbackTraffic,
}

fn default_min_replicas() -> u32 {
    1
}
fn default_max_replicas() -> u32 {
    10
}
fn default_drain_timeout() -> u32 {
    300
}
fn default_script_timeout() -> u32 {
    60
}

impl HealingAction {
    /// The action's name as written in configuration (`restart-pod`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::RestartPod => "restart-pod",
            Self::ScaleDeployment { .. } => "scale-deployment",
            Self::CordonNode => "cordon-node",
            Self::DrainNode { .. } => "drain-node",
            Self::Notify { .. } => "notify",
            Self::CustomScript { .. } => "custom-script",
            Self::RollbackTraffic => "rollback-traffic",
        }
    }

    /// Whether the action disrupts workloads, and so draws on the safety budget.
    pub fn is_disruptive(&self) -> bool {
        matches!(
            self,
            Self::RestartPod
                | Self::ScaleDeployment { .. }
                | Self::CordonNode
                | Self::DrainNode { .. }
        )
    }
}

/// A program run for a `custom-script` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptInvocation {
    /// Program to execute.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment passed to it (`OCTRIX_INCIDENT_ID`, `OCTRIX_SEVERITY`, ...).
    pub env: Vec<(String, String)>,
    /// Kill it after this many seconds.
    pub timeout_seconds: u32,
}

/// A message to send for a `notify` action or an escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Channel name.
    pub channel: String,
    /// Short subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
}

/// A rule's action made concrete for one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Remediation {
    /// A change to the cluster, carried out by a `ClusterActuator`.
    Cluster(ClusterAction),
    /// A message, sent by a `Notifier`.
    Notify(Notification),
    /// A program, run by an adapter.
    Script(ScriptInvocation),
    /// Traffic of a service sent back to its stable version.
    RollbackTraffic {
        /// Namespace of the service.
        namespace: String,
        /// The service.
        service: String,
    },
}

impl Remediation {
    /// The object acted on, used as the cooldown key.
    pub fn target(&self) -> String {
        match self {
            Self::Cluster(action) => action.target(),
            Self::Notify(n) => format!("channel/{}", n.channel),
            Self::Script(s) => format!("script/{}", s.program),
            Self::RollbackTraffic { namespace, service } => {
                format!("service/{namespace}/{service}")
            }
        }
    }
}
