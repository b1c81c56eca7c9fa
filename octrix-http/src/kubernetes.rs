//! [`KubeCluster`]: the cluster ports of `octrix serve` on a real Kubernetes
//! cluster, built from the `[kubernetes]` section of the configuration.
//!
//! One connection feeds the observer (reflectors over pods, nodes,
//! deployments and replica sets), the actuator, the chaos executor and the
//! Istio route applier. With leader election on, every replica observes and
//! serves the API, and only the leader changes the cluster (heals, injects
//! faults): followers' actions are refused with the reason, on the timeline.

use std::sync::Arc;
use std::time::Duration;

use octrix_core::routing::IstioApiVersion;
use octrix_k8s::config::ConfigError;
use octrix_k8s::{
    ChaosExecutorConfig, K8sConfig, KubeActuator, KubeChaosExecutor, KubeObserver,
    KubeRoutingApplier, LeaderElector,
};

/// Why the Kubernetes side could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable kubeconfig or in-cluster account, or the server is unreachable.
    #[error("cannot connect to Kubernetes: {0}")]
    Connect(String),
    /// The configuration cannot be used.
    #[error("kubernetes configuration: {0}")]
    Config(#[from] ConfigError),
    /// The observer's watches did not list everything in time.
    #[error("the cluster watches did not sync within {timeout:?}: {reason}")]
    Sync {
        /// How long it waited.
        timeout: Duration,
        /// The observer's error.
        reason: String,
    },
    /// The leader elector could not start.
    #[error("leader election: {0}")]
    Leader(String),
}

/// Everything the server needs from a Kubernetes cluster.
pub struct KubeCluster {
    /// The kube context (or server URL) the cluster is known by.
    pub cluster_name: String,
    /// Watches the cluster.
    pub observer: Arc<KubeObserver>,
    /// Heals (restart, scale, cordon, drain).
    pub actuator: Arc<KubeActuator>,
    /// Injects and reverts chaos.
    pub chaos: Arc<KubeChaosExecutor>,
    /// Applies deployed traffic rules and rolls canaries back.
    pub routes: Arc<KubeRoutingApplier>,
    /// This replica's candidacy, when leader election is on; dropping it
    /// steps down.
    pub leader: Option<LeaderElector>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("cluster_name", &self.cluster_name)
            .field("leader", &self.leader.as_ref().map(LeaderElector::identity))
            .finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Connects as `config` says, starts the watches (and the leader
    /// elector) and waits at most `sync_timeout` for the watches to list
    /// the cluster.
    ///
    /// # Errors
    /// A [`KubeError`] naming what failed; nothing keeps running then.
    pub async fn connect(config: &K8sConfig, sync_timeout: Duration) -> Result<Self, KubeError> {
        let lease = config.lease()?;
        let connection =
            octrix_k8s::connect(config.kubeconfig.as_deref(), config.context.as_deref())
                .await
                .map_err(|e| KubeError::Connect(e.to_string()))?;
        let client = connection.client;
        let cluster_name = connection.cluster_name;
        let observer = Arc::new(KubeObserver::spawn(
            client.clone(),
            config.observer(&cluster_name),
        ));
        observer
            .wait_until_ready(sync_timeout)
            .await
            .map_err(|e| KubeError::Sync {
                timeout: sync_timeout,
                reason: e.to_string(),
            })?;
        let leader = lease
            .map(|lease| LeaderElector::spawn(client.clone(), lease))
            .transpose()
            .map_err(|e| KubeError::Leader(e.to_string()))?;
        let actuator_config = config.actuator(&cluster_name);
        let mut chaos_config = ChaosExecutorConfig::new(cluster_name.clone());
        chaos_config.actuator = actuator_config.clone();
        let mut actuator = KubeActuator::new(client.clone(), actuator_config);
        let mut chaos = KubeChaosExecutor::new(client.clone(), chaos_config);
        if let Some(elector) = &leader {
            actuator = actuator.with_leader(elector.subscribe());
            chaos = chaos.with_leader(elector.subscribe());
        }
        Ok(Self {
            routes: Arc::new(KubeRoutingApplier::new(client, IstioApiVersion::V1)),
            cluster_name,
            observer,
            actuator: Arc::new(actuator),
            chaos: Arc::new(chaos),
            leader,
        })
    }

    /// Whether this replica may change the cluster now.
    pub fn is_leader(&self) -> bool {
        self.leader.as_ref().is_none_or(LeaderElector::is_leader)
    }
}
