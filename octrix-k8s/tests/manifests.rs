//! The manifests in `docs/deploy/` parse as Kubernetes objects, fit together,
//! and the ClusterRole grants exactly the operations the crate performs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use octrix_k8s::K8sConfig;
use octrix_k8s::rbac::required_rules;
use serde::de::DeserializeOwned;

fn manifest<T: DeserializeOwned>(file: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/deploy")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn cluster_role_grants_exactly_the_operations_used() {
    let role: ClusterRole = manifest("clusterrole.yaml");
    let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role.rules.expect("rules") {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                for verb in &rule.verbs {
                    assert_ne!(verb, "*", "wildcard verb");
                    let new = granted
                        .entry((group.clone(), resource.clone()))
                        .or_default()
                        .insert(verb.clone());
                    assert!(new, "{verb} on {group}/{resource} granted twice");
                }
            }
        }
    }
    let used: BTreeMap<(String, String), BTreeSet<String>> = required_rules()
        .into_iter()
        .map(|((g, r), verbs)| {
            (
                (g.to_owned(), r.to_owned()),
                verbs.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
    assert_eq!(granted, used);
}

#[test]
fn objects_fit_together() {
    let namespace: Namespace = manifest("00-namespace.yaml");
    let ns = namespace.metadata.name.expect("name");
    let account: ServiceAccount = manifest("serviceaccount.yaml");
    assert_eq!(account.metadata.namespace.as_deref(), Some(ns.as_str()));
    let role: ClusterRole = manifest("clusterrole.yaml");
    let binding: ClusterRoleBinding = manifest("clusterrolebinding.yaml");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(binding.role_ref.name), role.metadata.name);
    let subjects = binding.subjects.expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace.as_deref(), Some(ns.as_str()));

    let deployment: Deployment = manifest("deployment.yaml");
    assert_eq!(deployment.metadata.namespace.as_deref(), Some(ns.as_str()));
    let spec = &deployment.spec;
    assert_eq!(
        spec.replicas,
        Some(2),
        "a leader and a follower on one PostgreSQL (see deployment.yaml)"
    );
    let strategy = spec.strategy.as_ref().expect("a strategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(
        strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.max_unavailable.clone()),
        Some(IntOrString::Int(0)),
        "an update never leaves fewer replicas serving"
    );
    let template = &deployment.spec.template;
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .expect("template labels");
    assert_eq!(
        deployment.spec.selector.match_labels.as_ref(),
        Some(&labels)
    );
    let pod = template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name, account.metadata.name);
    let container = &pod.containers[0];
    let port = container.ports.as_deref().expect("ports")[0].clone();
    assert_eq!(port.container_port, 3001);
    for (probe, path) in [
        (container.liveness_probe.as_ref(), "/health"),
        (container.readiness_probe.as_ref(), "/ready"),
    ] {
        let get = probe
            .and_then(|p| p.http_get.as_ref())
            .expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::Int(3001));
    }
    let env: BTreeSet<_> = container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert!(env.contains("POD_NAME") && env.contains("POD_NAMESPACE"));
    assert!(env.contains("DATABASE_URL") && env.contains("OCTRIX_ADMIN_TOKEN"));
    assert!(env.contains("POD_IP") && env.contains("OCTRIX_ADVERTISE_URL"));
    let advertised = container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.name == "OCTRIX_ADVERTISE_URL")
        .and_then(|e| e.value.clone());
    assert_eq!(advertised.as_deref(), Some("http://$(POD_IP):3001"));
    assert_eq!(
        container
            .args
            .as_deref()
            .and_then(<[String]>::first)
            .map(String::as_str),
        Some("serve"),
        "the container runs `octrix serve`"
    );

    let service: Service = manifest("service.yaml");
    let spec = service.spec.expect("service spec");
    assert_eq!(spec.selector.as_ref(), Some(&labels));
    let service_port = &spec.ports.expect("ports")[0];
    assert_eq!(service_port.port, 3001);
    assert_eq!(
        service_port.target_port,
        Some(IntOrString::String(port.name.expect("named port")))
    );

    let config_map: ConfigMap = manifest("configmap.yaml");
    let volume = pod.volumes.as_deref().expect("volumes")[0].clone();
    assert_eq!(
        volume.config_map.map(|c| c.name),
        config_map.metadata.name.clone()
    );
    let file = &config_map.data.expect("data")["octrix.toml"];
    let table: toml::Table = toml::from_str(file).expect("octrix.toml is TOML");
    let k8s: K8sConfig = table["kubernetes"]
        .clone()
        .try_into()
        .expect("[kubernetes] is a K8sConfig");
    // The database lease elects the leader; a second election could disagree.
    assert!(!k8s.leader_election.enabled);
    assert!(!k8s.dry_run);
    assert_eq!(k8s.leader_election.lease_name, "octrix-leader");
}
