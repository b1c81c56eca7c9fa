//! [`K8sConfig`]: the `[kubernetes]` section a user writes in Octrix's
//! configuration file (the ConfigMap in `docs/deploy/` holds one), turned into
//! the observer's, actuator's and leader elector's settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::actuator::ActuatorConfig;
use crate::leader::LeaseConfig;
use crate::observer::ObserverConfig;

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Leader election is on but no identity is known.
    #[error(
        "leader election needs an identity: set leader_election.identity or the POD_NAME environment variable"
    )]
    NoIdentity,
}

/// How Octrix connects to and acts on a Kubernetes cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct K8sConfig {
    /// Kubeconfig file; when unset, `$KUBECONFIG`, `~/.kube/config`, then the
    /// in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Kube context; the current context when unset.
    pub context: Option<String>,
    /// Only observe this namespace; all namespaces when unset.
    pub namespace: Option<String>,
    /// Only observe pods, deployments and replica sets with these labels.
    pub label_selector: Option<String>,
    /// Only observe nodes with these labels.
    pub node_label_selector: Option<String>,
    /// Validate every action with a server-side dry run instead of acting.
    pub dry_run: bool,
    /// Grace period of pod restarts; the pod's own when unset.
    pub restart_grace_period_seconds: Option<u32>,
    /// Leader election among replicas.
    pub leader_election: LeaderElectionConfig,
}

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderElectionConfig {
    /// Whether replicas elect a leader (only the leader acts).
    pub enabled: bool,
    /// Namespace of the Lease; `$POD_NAMESPACE` or `default` when unset.
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity; `$POD_NAME` when unset.
    pub identity: Option<String>,
    /// Seconds a Lease stays held without renewal.
    pub lease_duration_seconds: u32,
    /// Seconds a leader keeps leading without a successful renewal.
    pub renew_deadline_seconds: u32,
    /// Seconds between two attempts to acquire or renew.
    pub retry_period_seconds: u32,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_namespace: None,
            lease_name: "octrix-leader".to_owned(),
            identity: None,
            lease_duration_seconds: 15,
            renew_deadline_seconds: 10,
            retry_period_seconds: 2,
        }
    }
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

impl K8sConfig {
    /// The observer's settings for the cluster called `cluster_name`.
    pub fn observer(&self, cluster_name: &str) -> ObserverConfig {
        ObserverConfig {
            namespace: non_empty(self.namespace.as_ref()),
            label_selector: non_empty(self.label_selector.as_ref()),
            node_label_selector: non_empty(self.node_label_selector.as_ref()),
            clock: Arc::new(jiff::Timestamp::now),
            cluster_name: cluster_name.to_owned(),
        }
    }

    /// The actuator's settings for the cluster called `cluster_name`.
    pub fn actuator(&self, cluster_name: &str) -> ActuatorConfig {
        let mut config = ActuatorConfig::new(cluster_name);
        config.restart_grace_period_seconds = self.restart_grace_period_seconds;
        config
    }

    /// The Lease settings, reading `POD_NAME` and `POD_NAMESPACE` (set by the
    /// Deployment in `docs/deploy/`) where the file leaves them out; `None`
    /// when leader election is off.
    ///
    /// # Errors
    /// [`ConfigError::NoIdentity`] when no identity is configured or found.
    pub fn lease(&self) -> Result<Option<LeaseConfig>, ConfigError> {
        let le = &self.leader_election;
        if !le.enabled {
            return Ok(None);
        }
        let identity = le
            .identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .filter(|i| !i.is_empty())
            .ok_or(ConfigError::NoIdentity)?;
        let namespace = le
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let mut config = LeaseConfig::new(namespace, le.lease_name.clone(), identity);
        config.lease_duration = Duration::from_secs(u64::from(le.lease_duration_seconds));
        config.renew_deadline = Duration::from_secs(u64::from(le.renew_deadline_seconds));
        config.retry_period = Duration::from_secs(u64::from(le.retry_period_seconds));
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_conversions() {
        let config: K8sConfig = toml::from_str(
            r#"
            namespace = "shop"
            label_selector = "app=web"
            restart_grace_period_seconds = 5
            [leader_election]
            enabled = true
            lease_namespace = "octrix"
            identity = "octrix-0"
            lease_duration_seconds = 20
            "#,
        )
        .expect("parses");
        assert!(!config.dry_run);
        let observer = config.observer("prod");
        assert_eq!(observer.cluster_name, "prod");
        assert_eq!(observer.namespace.as_deref(), Some("shop"));
        assert_eq!(observer.label_selector.as_deref(), Some("app=web"));
        assert_eq!(
            config.actuator("prod").restart_grace_period_seconds,
            Some(5)
        );
        let lease = config.lease().expect("valid").expect("enabled");
        assert_eq!(lease.namespace, "octrix");
        assert_eq!(lease.name, "octrix-leader");
        assert_eq!(lease.identity, "octrix-0");
        assert_eq!(lease.lease_duration, Duration::from_secs(20));
        assert_eq!(lease.renew_deadline, Duration::from_secs(10));
        assert_eq!(lease.retry_period, Duration::from_secs(2));
        assert_eq!(K8sConfig::default().lease(), Ok(None));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<K8sConfig>("namepsace = \"typo\"").expect_err("typo");
        assert!(
            err.to_string().contains("unknown field `namepsace`"),
            "{err}"
        );
    }
}
