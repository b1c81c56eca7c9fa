//! Label sets, as Prometheus and Kubernetes use them.

use std::collections::BTreeMap;

/// A set of labels, always sorted by name so that equal sets compare, hash and
/// render the same whatever order they were built in.
pub type Labels = BTreeMap<String, String>;

/// Builds [`Labels`] from pairs.
///
/// ```
/// let labels = octrix_core::labels::from_pairs([("job", "api"), ("env", "prod")]);
/// assert_eq!(labels.keys().collect::<Vec<_>>(), ["env", "job"]);
/// ```
pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Labels
where
    K: Into<String>,
    V: Into<String>,
{
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}
