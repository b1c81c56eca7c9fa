//! Every Kubernetes API operation this crate performs, in one list.
//!
//! Each call site names its [`ApiOp`] (the observer's watches, the actuator's
//! requests, leases and events), so a refusal becomes a
//! [`ClusterError::Forbidden`](octrix_core::cluster::ClusterError::Forbidden)
//! naming the verb and resource, and the least-privilege ClusterRole in
//! `docs/deploy/` is checked against [`ALL_OPS`] by a test: it grants exactly
//! these verbs, no more and no fewer.

use std::collections::{BTreeMap, BTreeSet};

/// One verb on one resource of one API group, as an RBAC rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiOp {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// Resource, with `/subresource` where one is used.
    pub resource: &'static str,
    /// RBAC verb.
    pub verb: &'static str,
}

const fn op(group: &'static str, resource: &'static str, verb: &'static str) -> ApiOp {
    ApiOp {
        group,
        resource,
        verb,
    }
}

/// Observer: list pods.
pub const LIST_PODS: ApiOp = op("", "pods", "list");
/// Observer: watch pods.
pub const WATCH_PODS: ApiOp = op("", "pods", "watch");
/// Actuator: read a pod before restarting it.
pub const GET_POD: ApiOp = op("", "pods", "get");
/// Actuator: restart a pod.
pub const DELETE_POD: ApiOp = op("", "pods", "delete");
/// Actuator: evict a pod during a drain.
pub const CREATE_EVICTION: ApiOp = op("", "pods/eviction", "create");
/// Observer: list nodes.
pub const LIST_NODES: ApiOp = op("", "nodes", "list");
/// Observer: watch nodes.
pub const WATCH_NODES: ApiOp = op("", "nodes", "watch");
/// Actuator: read a node before cordoning it.
pub const GET_NODE: ApiOp = op("", "nodes", "get");
/// Actuator: cordon and uncordon a node.
pub const PATCH_NODE: ApiOp = op("", "nodes", "patch");
/// Observer: list deployments.
pub const LIST_DEPLOYMENTS: ApiOp = op("apps", "deployments", "list");
/// Observer: watch deployments.
pub const WATCH_DEPLOYMENTS: ApiOp = op("apps", "deployments", "watch");
/// Actuator: read a deployment's replica count.
pub const GET_SCALE: ApiOp = op("apps", "deployments/scale", "get");
/// Actuator: scale a deployment.
pub const PATCH_SCALE: ApiOp = op("apps", "deployments/scale", "patch");
/// Observer: list replica sets (pod to deployment mapping).
pub const LIST_REPLICASETS: ApiOp = op("apps", "replicasets", "list");
/// Observer: watch replica sets.
pub const WATCH_REPLICASETS: ApiOp = op("apps", "replicasets", "watch");
/// Leader election: read the lease.
pub const GET_LEASE: ApiOp = op("coordination.k8s.io", "leases", "get");
/// Leader election: create the lease.
pub const CREATE_LEASE: ApiOp = op("coordination.k8s.io", "leases", "create");
/// Leader election: acquire, renew and release the lease.
pub const UPDATE_LEASE: ApiOp = op("coordination.k8s.io", "leases", "update");
/// Events: record an action.
pub const CREATE_EVENT: ApiOp = op("events.k8s.io", "events", "create");
/// Events: count a repeated action in the same event series.
pub const PATCH_EVENT: ApiOp = op("events.k8s.io", "events", "patch");

/// Routing: read a VirtualService back; chaos: read one before adding faults.
pub const GET_VIRTUAL_SERVICE: ApiOp = op("networking.istio.io", "virtualservices", "get");
/// Routing: server-side apply a VirtualService; chaos: add and remove faults.
pub const PATCH_VIRTUAL_SERVICE: ApiOp = op("networking.istio.io", "virtualservices", "patch");
/// Chaos: create a fault-injecting VirtualService where the service has none.
pub const CREATE_VIRTUAL_SERVICE: ApiOp = op("networking.istio.io", "virtualservices", "create");
/// Chaos: delete the VirtualService a run created.
pub const DELETE_VIRTUAL_SERVICE: ApiOp = op("networking.istio.io", "virtualservices", "delete");
/// Routing: read a DestinationRule back.
pub const GET_DESTINATION_RULE: ApiOp = op("networking.istio.io", "destinationrules", "get");
/// Routing: server-side apply a DestinationRule.
pub const PATCH_DESTINATION_RULE: ApiOp = op("networking.istio.io", "destinationrules", "patch");
/// Chaos: start a stress Job.
pub const CREATE_JOB: ApiOp = op("batch", "jobs", "create");
/// Chaos: delete a stress Job (and its pods).
pub const DELETE_JOB: ApiOp = op("batch", "jobs", "delete");
/// Chaos: create a deny-all NetworkPolicy (network partition).
pub const CREATE_NETWORK_POLICY: ApiOp = op("networking.k8s.io", "networkpolicies", "create");
/// Chaos: delete the NetworkPolicy of a partition.
pub const DELETE_NETWORK_POLICY: ApiOp = op("networking.k8s.io", "networkpolicies", "delete");
/// Chaos: read a Service's pod selector (network partition).
pub const GET_SERVICE: ApiOp = op("", "services", "get");

/// Discovery of the served API groups (`GET /apis`), to choose the Eviction
/// version and to tell whether Istio's CRDs are installed. A non-resource URL that the built-in `system:discovery` role grants
/// every authenticated user, so it is not part of [`ALL_OPS`].
pub const DISCOVERY: ApiOp = op("", "/apis", "get");

/// Every resource operation the crate performs.
pub const ALL_OPS: &[ApiOp] = &[
    LIST_PODS,
    WATCH_PODS,
    GET_POD,
    DELETE_POD,
    CREATE_EVICTION,
    LIST_NODES,
    WATCH_NODES,
    GET_NODE,
    PATCH_NODE,
    LIST_DEPLOYMENTS,
    WATCH_DEPLOYMENTS,
    GET_SCALE,
    PATCH_SCALE,
    LIST_REPLICASETS,
    WATCH_REPLICASETS,
    GET_LEASE,
    CREATE_LEASE,
    UPDATE_LEASE,
    CREATE_EVENT,
    PATCH_EVENT,
    GET_VIRTUAL_SERVICE,
    PATCH_VIRTUAL_SERVICE,
    CREATE_VIRTUAL_SERVICE,
    DELETE_VIRTUAL_SERVICE,
    GET_DESTINATION_RULE,
    PATCH_DESTINATION_RULE,
    CREATE_JOB,
    DELETE_JOB,
    CREATE_NETWORK_POLICY,
    DELETE_NETWORK_POLICY,
    GET_SERVICE,
];

/// [`ALL_OPS`] grouped as RBAC rules: `(group, resource) -> verbs`.
pub fn required_rules() -> BTreeMap<(&'static str, &'static str), BTreeSet<&'static str>> {
    let mut rules: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
    for op in ALL_OPS {
        rules
            .entry((op.group, op.resource))
            .or_default()
            .insert(op.verb);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_distinct_and_grouped() {
        let distinct: BTreeSet<_> = ALL_OPS.iter().collect();
        assert_eq!(distinct.len(), ALL_OPS.len());
        let rules = required_rules();
        assert_eq!(
            rules[&("", "pods")],
            BTreeSet::from(["delete", "get", "list", "watch"])
        );
        assert_eq!(rules[&("", "pods/eviction")], BTreeSet::from(["create"]));
        assert_eq!(
            rules[&("coordination.k8s.io", "leases")],
            BTreeSet::from(["create", "get", "update"])
        );
        assert_eq!(
            rules[&("networking.istio.io", "virtualservices")],
            BTreeSet::from(["create", "delete", "get", "patch"])
        );
        assert_eq!(
            rules[&("batch", "jobs")],
            BTreeSet::from(["create", "delete"])
        );
        assert_eq!(rules.len(), 13);
    }
}
