//! [`UnwiredCluster`]: the cluster ports when the server has no cluster
//! adapter, answering every call with an error that says so.
//!
//! With a real Prometheus but no Kubernetes adapter, the engine still reads
//! metrics and ingests alerts; it must not pretend to see or change a
//! cluster. Each tick then reports the observer's error, and a healing
//! action on the cluster fails (and escalates) with the same reason.

use async_trait::async_trait;
use octrix_core::cluster::{
    ActionReport, ClusterAction, ClusterActuator, ClusterError, ClusterInfo, ClusterKind,
    ClusterObserver, ClusterSnapshot,
};

/// A cluster that is not connected, and says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwiredCluster {
    reason: String,
}

impl UnwiredCluster {
    /// A cluster port answering every call with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    fn error(&self) -> ClusterError {
        ClusterError::Unavailable {
            cluster: "kubernetes".to_owned(),
            reason: self.reason.clone(),
        }
    }

    fn cluster_info() -> ClusterInfo {
        ClusterInfo {
            name: "kubernetes (not connected)".to_owned(),
            kind: ClusterKind::Kubernetes,
        }
    }
}

#[async_trait]
impl ClusterObserver for UnwiredCluster {
    fn info(&self) -> ClusterInfo {
        Self::cluster_info()
    }

    async fn snapshot(&self) -> Result<ClusterSnapshot, ClusterError> {
        Err(self.error())
    }
}

#[async_trait]
impl ClusterActuator for UnwiredCluster {
    fn info(&self) -> ClusterInfo {
        Self::cluster_info()
    }

    async fn execute(
        &self,
        _action: &ClusterAction,
        _dry_run: bool,
    ) -> Result<ActionReport, ClusterError> {
        Err(self.error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_fails_with_the_reason() {
        let cluster = UnwiredCluster::new("the Kubernetes adapter is not wired");
        let error = cluster.snapshot().await.unwrap_err();
        assert!(error.to_string().contains("not wired"), "{error}");
        let action = ClusterAction::CordonNode { node: "n1".into() };
        assert!(cluster.execute(&action, true).await.is_err());
        assert_eq!(
            ClusterObserver::info(&cluster).kind,
            ClusterKind::Kubernetes
        );
    }
}
