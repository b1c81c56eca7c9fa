//! [`RouteApplier`]: the port through which a deployed traffic rule reaches
//! the mesh. `octrix-k8s`'s [`KubeRoutingApplier`] implements it by
//! server-side applying the Istio VirtualService and DestinationRule.

use async_trait::async_trait;
use octrix_core::routing::TrafficRule;
use octrix_k8s::{KubeRoutingApplier, RoutingError};

/// Why a traffic rule could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The mesh cannot take the rule now (Istio not installed, API server
    /// unreachable, request refused).
    #[error("{0}")]
    Unavailable(String),
    /// The rule cannot be turned into the mesh's objects.
    #[error("{0}")]
    Invalid(String),
}

/// Applies traffic rules to a service mesh.
#[async_trait]
pub trait RouteApplier: Send + Sync {
    /// Where rules go, for messages (`"istio on kubernetes cluster prod"`).
    fn target(&self) -> String;

    /// Applies `rule`; returns what was written, in words.
    async fn apply(&self, rule: &TrafficRule) -> Result<String, ApplyError>;
}

#[async_trait]
impl RouteApplier for KubeRoutingApplier {
    fn target(&self) -> String {
        format!("Istio networking.istio.io/{}", self.version().as_str())
    }

    async fn apply(&self, rule: &TrafficRule) -> Result<String, ApplyError> {
        let applied = KubeRoutingApplier::apply(self, rule)
            .await
            .map_err(|e| match e {
                RoutingError::InvalidRule(_) | RoutingError::Encode { .. } => {
                    ApplyError::Invalid(e.to_string())
                }
                other => ApplyError::Unavailable(other.to_string()),
            })?;
        let name = |o: &kube::api::DynamicObject| {
            format!(
                "{}/{}",
                o.metadata.namespace.as_deref().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default()
            )
        };
        Ok(format!(
            "applied to the cluster: VirtualService {} and DestinationRule {} ({})",
            name(&applied.virtual_service),
            name(&applied.destination_rule),
            RouteApplier::target(self)
        ))
    }
}
