//! Choosing what a run hits: a pure function of a cluster snapshot, a
//! selector and a seeded random number generator.

use std::collections::BTreeSet;
use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::Error;
use super::{SelectionMode, TargetKind, TargetSelector};
use crate::Labels;
use crate::cluster::{ClusterSnapshot, PodPhase};

/// One object a run acts on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// A pod.
    Pod {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
    /// A node.
    Node {
        /// Node name.
        name: String,
    },
    /// A service, i.e. the deployment of the same name behind it.
    Service {
        /// Namespace.
        namespace: String,
        /// Service (and deployment) name.
        name: String,
    },
}

impl Target {
    /// Namespace of the target, for namespaced objects.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Self::Pod { namespace, .. } | Self::Service { namespace, .. } => Some(namespace),
            Self::Node { .. } => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pod { namespace, name } => write!(f, "pod/{namespace}/{name}"),
            Self::Node { name } => write!(f, "node/{name}"),
            Self::Service { namespace, name } => write!(f, "service/{namespace}/{name}"),
        }
    }
}

fn has_labels(object: &Labels, wanted: &Labels) -> bool {
    wanted.iter().all(|(k, v)| object.get(k) == Some(v))
}

/// Every object of `kind` that `selector` matches, sorted, leaving out
/// protected namespaces and pods that are not running.
///
/// Nodes are not namespaced: a selector namespace keeps the nodes that run a
/// pod of that namespace.
pub fn eligible_targets(
    snapshot: &ClusterSnapshot,
    kind: TargetKind,
    selector: &TargetSelector,
    protected: &BTreeSet<String>,
) -> Result<Vec<Target>, Error> {
    if let Some(namespace) = &selector.namespace
        && protected.contains(namespace)
    {
        return Err(Error::ProtectedNamespace {
            namespace: namespace.clone(),
        });
    }
    let namespace_ok = |ns: &str| {
        !protected.contains(ns) && selector.namespace.as_deref().is_none_or(|want| want == ns)
    };
    let mut targets: Vec<Target> = match kind {
        TargetKind::Pod => snapshot
            .pods
            .iter()
            .filter(|p| p.phase == PodPhase::Running && namespace_ok(&p.namespace))
            .filter(|p| has_labels(&p.labels, &selector.labels))
            .map(|p| Target::Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
            })
            .collect(),
        TargetKind::Node => snapshot
            .nodes
            .iter()
            .filter(|n| has_labels(&n.labels, &selector.labels))
            .filter(|n| {
                selector.namespace.as_deref().is_none_or(|ns| {
                    snapshot
                        .pods
                        .iter()
                        .any(|p| p.namespace == ns && p.node.as_deref() == Some(&n.name))
                })
            })
            .map(|n| Target::Node {
                name: n.name.clone(),
            })
            .collect(),
        TargetKind::Service => snapshot
            .deployments
            .iter()
            .filter(|d| namespace_ok(&d.namespace) && has_labels(&d.labels, &selector.labels))
            .map(|d| Target::Service {
                namespace: d.namespace.clone(),
                name: d.name.clone(),
            })
            .collect(),
    };
    targets.sort();
    Ok(targets)
}

/// How many of `eligible` objects `mode` takes.
pub fn selection_size(mode: SelectionMode, eligible: usize) -> usize {
    let wanted = match mode {
        SelectionMode::One => 1,
        SelectionMode::All => eligible,
        SelectionMode::Fixed(n) => n as usize,
        // Chaos Mesh rounds down but never selects nothing from a non-empty set.
        SelectionMode::Percent(p) => ((eligible as f64 * p / 100.0).floor() as usize).max(1),
    };
    wanted.min(eligible)
}

/// Chooses the targets of a run: the eligible objects, then as many as the
/// mode asks for, at random, returned sorted.
///
/// The same snapshot, selector and generator state always give the same
/// choice. Fails when nothing is eligible or the selector names a protected
/// namespace.
pub fn select_targets<R: Rng + ?Sized>(
    snapshot: &ClusterSnapshot,
    kind: TargetKind,
    selector: &TargetSelector,
    protected: &BTreeSet<String>,
    rng: &mut R,
) -> Result<Vec<Target>, Error> {
    let eligible = eligible_targets(snapshot, kind, selector, protected)?;
    if eligible.is_empty() {
        return Err(Error::NoTargets {
            kind,
            selector: selector.to_string(),
        });
    }
    let amount = selection_size(selector.mode, eligible.len());
    let mut chosen = rand::seq::index::sample(rng, eligible.len(), amount).into_vec();
    chosen.sort_unstable();
    Ok(chosen.into_iter().map(|i| eligible[i].clone()).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    use super::*;
    use crate::sim::{SimCluster, SimConfig, SimDeploymentConfig};
    use crate::{ManualClock, Timestamp, labels};

    fn snapshot() -> ClusterSnapshot {
        let mut config = SimConfig::default();
        config
            .deployments
            .push(SimDeploymentConfig::named("kube-system", "coredns", 2));
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        SimCluster::new(config, clock).unwrap().snapshot_now()
    }

    fn protected() -> BTreeSet<String> {
        ["kube-system".to_owned()].into()
    }

    fn selector(namespace: Option<&str>, app: Option<&str>, mode: SelectionMode) -> TargetSelector {
        TargetSelector {
            namespace: namespace.map(str::to_owned),
            labels: app
                .map(|a| labels::from_pairs([("app", a)]))
                .unwrap_or_default(),
            mode,
        }
    }

    fn names(targets: &[Target]) -> Vec<String> {
        targets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn eligibility_follows_namespace_labels_and_protection() {
        let s = snapshot();
        let all_pods = eligible_targets(
            &s,
            TargetKind::Pod,
            &TargetSelector::default(),
            &protected(),
        )
        .unwrap();
        // 7 shop pods and 3 node-exporters; coredns is protected.
        assert_eq!(all_pods.len(), 10);
        assert!(
            all_pods
                .iter()
                .all(|t| t.namespace() != Some("kube-system"))
        );

        let checkout = selector(Some("shop"), Some("checkout"), SelectionMode::All);
        assert_eq!(
            names(&eligible_targets(&s, TargetKind::Pod, &checkout, &protected()).unwrap()),
            ["pod/shop/checkout-1", "pod/shop/checkout-2"]
        );
        assert_eq!(
            names(&eligible_targets(&s, TargetKind::Service, &checkout, &protected()).unwrap()),
            ["service/shop/checkout"]
        );
        let services = eligible_targets(
            &s,
            TargetKind::Service,
            &TargetSelector::default(),
            &protected(),
        )
        .unwrap();
        assert_eq!(
            names(&services),
            [
                "service/shop/checkout",
                "service/shop/frontend",
                "service/shop/payments"
            ]
        );

        let kube = selector(Some("kube-system"), None, SelectionMode::One);
        assert_eq!(
            eligible_targets(&s, TargetKind::Pod, &kube, &protected()),
            Err(Error::ProtectedNamespace {
                namespace: "kube-system".into()
            })
        );
    }

    #[test]
    fn nodes_match_node_labels_and_optionally_a_namespace() {
        let s = snapshot();
        let one = TargetSelector {
            labels: labels::from_pairs([("kubernetes.io/hostname", "node-1")]),
            ..TargetSelector::default()
        };
        assert_eq!(
            names(&eligible_targets(&s, TargetKind::Node, &one, &protected()).unwrap()),
            ["node/node-1"]
        );
        let shop = selector(Some("shop"), None, SelectionMode::All);
        assert_eq!(
            eligible_targets(&s, TargetKind::Node, &shop, &protected())
                .unwrap()
                .len(),
            3
        );
        let nowhere = selector(Some("billing"), None, SelectionMode::All);
        assert_eq!(
            select_targets(
                &s,
                TargetKind::Node,
                &nowhere,
                &protected(),
                &mut Pcg64Mcg::seed_from_u64(1)
            ),
            Err(Error::NoTargets {
                kind: TargetKind::Node,
                selector: "namespace=billing labels={}".into()
            })
        );
    }

    #[test]
    fn modes_take_one_all_fixed_or_a_percentage_at_least_one() {
        assert_eq!(selection_size(SelectionMode::One, 7), 1);
        assert_eq!(selection_size(SelectionMode::All, 7), 7);
        assert_eq!(selection_size(SelectionMode::Fixed(3), 7), 3);
        assert_eq!(selection_size(SelectionMode::Fixed(9), 7), 7);
        assert_eq!(selection_size(SelectionMode::Percent(50.0), 7), 3);
        assert_eq!(selection_size(SelectionMode::Percent(10.0), 7), 1);
        assert_eq!(selection_size(SelectionMode::Percent(100.0), 7), 7);
        assert_eq!(selection_size(SelectionMode::One, 0), 0);
    }

    #[test]
    fn the_choice_is_random_but_reproducible() {
        let s = snapshot();
        let shop = selector(Some("shop"), None, SelectionMode::Fixed(3));
        let pick = |seed| {
            select_targets(
                &s,
                TargetKind::Pod,
                &shop,
                &protected(),
                &mut Pcg64Mcg::seed_from_u64(seed),
            )
            .unwrap()
        };
        let first = pick(7);
        assert_eq!(first, pick(7), "same seed, same choice");
        assert_eq!(first.len(), 3);
        let mut sorted = first.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, first, "sorted and distinct");
        assert!(first.iter().all(|t| t.namespace() == Some("shop")));
        let distinct: BTreeSet<Vec<Target>> = (0..20).map(pick).collect();
        assert!(distinct.len() > 1, "different seeds pick differently");
    }
}
