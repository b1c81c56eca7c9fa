//! GitOps export: the files a repository synced by ArgoCD (or Flux) should
//! hold for a set of traffic rules.
//!
//! This is the pure half of the export. It decides file names and contents;
//! an adapter writes them under a directory and commits. Names are stable
//! (`<namespace>/<service>-virtualservice.yaml`), so re-exporting an unchanged
//! rule produces an identical file and an empty Git diff.

use std::collections::BTreeMap;

use super::istio::{IstioApiVersion, ManifestError, to_yaml};
use super::rule::TrafficRule;

/// One file of a GitOps export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    /// Path relative to the export directory, `/`-separated.
    pub relative_path: String,
    /// The file's contents (one YAML document).
    pub contents: String,
}

/// The relative path of a rule's VirtualService file.
pub fn virtual_service_path(rule: &TrafficRule) -> String {
    format!("{}/{}-virtualservice.yaml", rule.namespace, rule.service)
}

/// The relative path of a rule's DestinationRule file.
pub fn destination_rule_path(rule: &TrafficRule) -> String {
    format!("{}/{}-destinationrule.yaml", rule.namespace, rule.service)
}

/// The files for `rules`, sorted by path: a VirtualService and a
/// DestinationRule per rule.
///
/// Every rule is validated first, and two rules for the same service are
/// refused: they would write the same files.
pub fn export_rules(
    rules: &[TrafficRule],
    version: IstioApiVersion,
) -> Result<Vec<ExportedFile>, ManifestError> {
    let mut owners: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut files = Vec::with_capacity(rules.len() * 2);
    for (index, rule) in rules.iter().enumerate() {
        let manifests = rule.to_istio(version)?;
        let key = (rule.namespace.as_str(), rule.service.as_str());
        if let Some(&first) = owners.get(&key) {
            return Err(ManifestError::DuplicateRule {
                namespace: rule.namespace.clone(),
                service: rule.service.clone(),
                first,
                second: index,
            });
        }
        owners.insert(key, index);
        files.push(ExportedFile {
            relative_path: virtual_service_path(rule),
            contents: to_yaml(&manifests.virtual_service)?,
        });
        files.push(ExportedFile {
            relative_path: destination_rule_path(rule),
            contents: to_yaml(&manifests.destination_rule)?,
        });
    }
    files.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::rule::Destination;

    fn rule(namespace: &str, service: &str) -> TrafficRule {
        TrafficRule::weighted(
            service,
            namespace,
            vec![
                Destination::for_version("v1", 50),
                Destination::for_version("v2", 50),
            ],
        )
    }

    #[test]
    fn files_are_named_by_namespace_and_service_and_sorted() {
        let rules = [rule("shop", "payments"), rule("bookinfo", "reviews")];
        let files = export_rules(&rules, IstioApiVersion::V1).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.relative_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bookinfo/reviews-destinationrule.yaml",
                "bookinfo/reviews-virtualservice.yaml",
                "shop/payments-destinationrule.yaml",
                "shop/payments-virtualservice.yaml",
            ]
        );
        assert!(
            files[1]
                .contents
                .starts_with("apiVersion: networking.istio.io/v1\nkind: VirtualService\n")
        );
        assert!(files[0].contents.contains("kind: DestinationRule\n"));
        assert!(
            files[0]
                .contents
                .contains("  name: reviews\n  namespace: bookinfo\n")
        );
    }

    #[test]
    fn exporting_twice_gives_identical_files() {
        let rules = [rule("bookinfo", "reviews")];
        assert_eq!(
            export_rules(&rules, IstioApiVersion::V1beta1).unwrap(),
            export_rules(&rules, IstioApiVersion::V1beta1).unwrap()
        );
    }

    #[test]
    fn duplicate_and_invalid_rules_are_refused() {
        let rules = [rule("bookinfo", "reviews"), rule("bookinfo", "reviews")];
        let error = export_rules(&rules, IstioApiVersion::V1).unwrap_err();
        assert_eq!(
            error.to_string(),
            "two traffic rules target bookinfo/reviews: rules[0] and rules[1]"
        );
        // A namespace with a slash would escape its directory; validation stops it.
        let rules = [rule("../etc", "reviews")];
        let error = export_rules(&rules, IstioApiVersion::V1).unwrap_err();
        assert!(matches!(error, ManifestError::InvalidRule(_)), "{error}");
    }
}
