//! What signals and incidents are about: [`ResourceRef`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of object a resource reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A Kubernetes pod.
    Pod,
    /// A Kubernetes node.
    Node,
    /// A Kubernetes deployment.
    Deployment,
    /// A Kubernetes stateful set.
    StatefulSet,
    /// A Kubernetes daemon set.
    DaemonSet,
    /// A Kubernetes service.
    Service,
    /// A scrape target (Prometheus `instance`), when nothing better is known.
    Instance,
    /// A metric series with no Kubernetes object behind it.
    Series,
}

impl ResourceKind {
    /// The lowercase name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Pod => "pod",
            ResourceKind::Node => "node",
            ResourceKind::Deployment => "deployment",
            ResourceKind::StatefulSet => "statefulset",
            ResourceKind::DaemonSet => "daemonset",
            ResourceKind::Service => "service",
            ResourceKind::Instance => "instance",
            ResourceKind::Series => "series",
        }
    }
}

/// What a signal or an incident is about.
///
/// Identity is kind, namespace and name; `node` is where a pod happened to
/// run and is deliberately left out of [`ResourceRef::identity`], so that a
/// pod rescheduled under the same name stays the same resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    /// The kind of object.
    pub kind: ResourceKind,
    /// Its namespace, for namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The node it runs on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl ResourceRef {
    /// A pod in `namespace`.
    pub fn pod(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::namespaced(ResourceKind::Pod, namespace, name)
    }

    /// A node.
    pub fn node(name: impl Into<String>) -> Self {
        Self::cluster_scoped(ResourceKind::Node, name)
    }

    /// A namespaced object of any kind.
    pub fn namespaced(
        kind: ResourceKind,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            namespace: Some(namespace.into()),
            name: name.into(),
            node: None,
        }
    }

    /// A cluster-scoped object (node, scrape target, series).
    pub fn cluster_scoped(kind: ResourceKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: None,
            name: name.into(),
            node: None,
        }
    }

    /// The same resource, noted as running on `node`.
    pub fn on_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Kind, namespace (empty when cluster-scoped) and name: what identifies
    /// the resource, in a fixed order for hashing.
    pub fn identity(&self) -> [&str; 3] {
        [
            self.kind.as_str(),
            self.namespace.as_deref().unwrap_or(""),
            &self.name,
        ]
    }
}

impl fmt::Display for ResourceRef {
    /// `pod shop/cart-1`, `node worker-2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_leaves_out_the_node() {
        let here = ResourceRef::pod("shop", "db-0").on_node("a");
        let there = ResourceRef::pod("shop", "db-0").on_node("b");
        assert_eq!(here.identity(), there.identity());
        assert_eq!(here.to_string(), "pod shop/db-0");
        assert_eq!(ResourceRef::node("w1").to_string(), "node w1");
    }
}
