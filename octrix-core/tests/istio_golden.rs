//! Golden files for the Istio manifests generated from traffic rules.
//!
//! Every case is rendered for both API versions, as YAML and JSON, and
//! compared byte for byte with `tests/data/istio/`. After an intended change,
//! regenerate with `OCTRIX_BLESS=1 cargo test -p octrix-core --test istio_golden`
//! and review the diff.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use octrix_core::routing::rule::{
    HeaderCondition, LoadBalancerAlgorithm, OutlierDetection, TrafficPolicy,
};
use octrix_core::routing::{Destination, IstioApiVersion, RuleKind, StringMatch, TrafficRule};
use octrix_core::time::SignedDuration;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/istio")
}

fn blessing() -> bool {
    std::env::var_os("OCTRIX_BLESS").is_some_and(|v| v == "1")
}

/// The seed's example: 80 % to v1, 20 % to v2.
fn weighted() -> TrafficRule {
    TrafficRule::weighted(
        "dummy-service",
        "default",
        vec![
            Destination::for_version("v1", 80),
            Destination::for_version("v2", 20),
        ],
    )
}

/// Three versions, explicit hosts and gateways, and a traffic policy.
fn three_way() -> TrafficRule {
    let mut rule = TrafficRule::weighted(
        "reviews",
        "bookinfo",
        vec![
            Destination::for_version("v1", 50),
            Destination::for_version("v2", 30),
            Destination {
                subset: "v3".into(),
                labels: octrix_core::labels::from_pairs([
                    ("app.kubernetes.io/version", "3.0.0"),
                    ("track", "canary"),
                ]),
                weight: 20,
            },
        ],
    );
    rule.hosts = vec![
        "reviews".into(),
        "reviews.bookinfo.svc.cluster.local".into(),
    ];
    rule.gateways = vec!["istio-system/public-gateway".into(), "mesh".into()];
    rule.traffic_policy = Some(TrafficPolicy {
        load_balancer: Some(LoadBalancerAlgorithm::LeastRequest),
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx_errors: 5,
            interval: SignedDuration::from_secs(10),
            base_ejection_time: SignedDuration::from_millis(30_500),
            max_ejection_percent: 50,
        }),
    });
    rule
}

/// A/B: testers and mobile clients go to v2, the rest stays on v1.
fn header_match() -> TrafficRule {
    let mut rule = TrafficRule::weighted(
        "checkout",
        "shop",
        vec![
            Destination::for_version("v1", 100),
            Destination::for_version("v2", 0),
        ],
    );
    rule.kind = RuleKind::HeaderMatch {
        headers: vec![
            HeaderCondition {
                name: "x-user-group".into(),
                value: StringMatch::Exact("beta-testers".into()),
            },
            HeaderCondition {
                name: "user-agent".into(),
                value: StringMatch::Regex(".*(Android|iPhone).*".into()),
            },
            HeaderCondition {
                name: "x-build".into(),
                value: StringMatch::Prefix("2024.".into()),
            },
        ],
        subset: "v2".into(),
    };
    rule
}

/// Shadow 12.5 % of the traffic to v2, which takes none of the answers.
fn mirror() -> TrafficRule {
    let mut rule = TrafficRule::weighted(
        "payments",
        "shop",
        vec![
            Destination::for_version("v1", 100),
            Destination::for_version("v2", 0),
        ],
    );
    rule.kind = RuleKind::Mirror {
        subset: "v2".into(),
        percentage: 12.5,
    };
    rule
}

fn cases() -> Vec<(&'static str, TrafficRule)> {
    vec![
        ("weighted", weighted()),
        ("three-way", three_way()),
        ("header-match", header_match()),
        ("mirror", mirror()),
    ]
}

fn rendered() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for (name, rule) in cases() {
        for version in [IstioApiVersion::V1beta1, IstioApiVersion::V1] {
            let manifests = rule.to_istio(version).expect("case rules are valid");
            let stem = format!("{name}-{}", version.as_str());
            files.push((format!("{stem}.yaml"), manifests.to_yaml().unwrap()));
            files.push((format!("{stem}.json"), manifests.to_json().unwrap()));
        }
    }
    files
}

#[test]
fn manifests_match_golden_files() {
    let dir = golden_dir();
    let files = rendered();
    if blessing() {
        fs::create_dir_all(&dir).unwrap();
        for (name, contents) in &files {
            fs::write(dir.join(name), contents).unwrap();
        }
        return;
    }
    for (name, contents) in &files {
        let path = dir.join(name);
        let expected = fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: {error}; create it with OCTRIX_BLESS=1", path.display())
        });
        assert_eq!(
            contents, &expected,
            "{name} differs from its golden file; if intended, regenerate with OCTRIX_BLESS=1"
        );
    }
}

#[test]
fn no_stale_golden_files() {
    if blessing() {
        return;
    }
    let expected: BTreeSet<String> = rendered().into_iter().map(|(name, _)| name).collect();
    let present: BTreeSet<String> = fs::read_dir(golden_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(present, expected);
}

#[test]
fn versions_differ_only_in_api_version() {
    for (_, rule) in cases() {
        let beta = rule
            .to_istio(IstioApiVersion::V1beta1)
            .unwrap()
            .to_yaml()
            .unwrap();
        let v1 = rule
            .to_istio(IstioApiVersion::V1)
            .unwrap()
            .to_yaml()
            .unwrap();
        assert_eq!(
            beta.replace("networking.istio.io/v1beta1", "networking.istio.io/v1"),
            v1
        );
    }
}

#[test]
fn golden_yaml_parses_back_to_the_same_objects() {
    use octrix_core::routing::istio::{DestinationRule, VirtualService};
    for (_, rule) in cases() {
        let manifests = rule.to_istio(IstioApiVersion::V1).unwrap();
        let yaml = manifests.to_yaml().unwrap();
        let (vs, dr) = yaml.split_once("---\n").unwrap();
        assert_eq!(
            serde_norway::from_str::<VirtualService>(vs).unwrap(),
            manifests.virtual_service
        );
        assert_eq!(
            serde_norway::from_str::<DestinationRule>(dr).unwrap(),
            manifests.destination_rule
        );
    }
}

#[test]
fn gitops_export_names_and_contents() {
    let rules: Vec<TrafficRule> = cases().into_iter().map(|(_, rule)| rule).collect();
    let files = octrix_core::routing::gitops::export_rules(&rules, IstioApiVersion::V1).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.relative_path.as_str()).collect();
    assert_eq!(
        names,
        [
            "bookinfo/reviews-destinationrule.yaml",
            "bookinfo/reviews-virtualservice.yaml",
            "default/dummy-service-destinationrule.yaml",
            "default/dummy-service-virtualservice.yaml",
            "shop/checkout-destinationrule.yaml",
            "shop/checkout-virtualservice.yaml",
            "shop/payments-destinationrule.yaml",
            "shop/payments-virtualservice.yaml",
        ]
    );
    // Each file is one document of the rule's YAML stream (itself checked
    // against the golden files above).
    let stream = weighted()
        .to_istio(IstioApiVersion::V1)
        .unwrap()
        .to_yaml()
        .unwrap();
    let (vs, dr) = stream.split_once("---\n").unwrap();
    assert_eq!(files[3].contents, vs);
    assert_eq!(files[2].contents, dr);
}
