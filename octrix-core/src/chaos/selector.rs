//! Target selectors: which objects a scenario aims at, and how many of them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::Labels;

/// How many of the eligible targets a run takes (Chaos Mesh's `mode`).
///
/// Written `one`, `all`, `{fixed: 3}` or `{percent: 25}` in YAML and JSON alike.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "ModeRepr", into = "ModeRepr")]
pub enum SelectionMode {
    /// One, chosen at random.
    #[default]
    One,
    /// All of them.
    All,
    /// This many, chosen at random (all of them when fewer are eligible).
    Fixed(u32),
    /// This percentage, rounded down but at least one, chosen at random
    /// (Chaos Mesh's `fixed-percent`).
    Percent(f64),
}

/// The written form of a [`SelectionMode`]: a plain name for the modes
/// without a value, a one-key map for the others. (serde's own enum form
/// would need YAML tags such as `!fixed 3`.)
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ModeRepr {
    Name(String),
    Fixed(FixedRepr),
    Percent(PercentRepr),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedRepr {
    fixed: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PercentRepr {
    percent: f64,
}

impl TryFrom<ModeRepr> for SelectionMode {
    type Error = String;

    fn try_from(repr: ModeRepr) -> Result<Self, String> {
        match repr {
            ModeRepr::Name(name) if name == "one" => Ok(Self::One),
            ModeRepr::Name(name) if name == "all" => Ok(Self::All),
            ModeRepr::Name(name) => Err(format!(
                "unknown mode {name:?}: expected one, all, {{fixed: n}} or {{percent: p}}"
            )),
            ModeRepr::Fixed(FixedRepr { fixed }) => Ok(Self::Fixed(fixed)),
            ModeRepr::Percent(PercentRepr { percent }) => Ok(Self::Percent(percent)),
        }
    }
}

impl From<SelectionMode> for ModeRepr {
    fn from(mode: SelectionMode) -> Self {
        match mode {
            SelectionMode::One => Self::Name("one".to_owned()),
            SelectionMode::All => Self::Name("all".to_owned()),
            SelectionMode::Fixed(fixed) => Self::Fixed(FixedRepr { fixed }),
            SelectionMode::Percent(percent) => Self::Percent(PercentRepr { percent }),
        }
    }
}

/// Which objects a scenario aims at.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetSelector {
    /// Only this namespace; any namespace that is not protected when `None`.
    pub namespace: Option<String>,
    /// Labels the object must carry (all of them, with these values).
    pub labels: Labels,
    /// How many of the matching objects to take.
    pub mode: SelectionMode,
}

impl TargetSelector {
    /// Checks the selector; `field` is its path, e.g. `target`.
    pub fn validate(&self, field: &str) -> Result<(), Error> {
        if self.namespace.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid(
                format!("{field}.namespace"),
                "must not be empty (omit it for every namespace)",
            ));
        }
        if self.labels.keys().any(String::is_empty) {
            return Err(Error::invalid(
                format!("{field}.labels"),
                "must not have an empty label name",
            ));
        }
        match self.mode {
            SelectionMode::Fixed(0) => Err(Error::invalid(
                format!("{field}.mode.fixed"),
                "must be at least 1",
            )),
            SelectionMode::Percent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => Err(
                Error::invalid(format!("{field}.mode.percent"), "must be within (0, 100]"),
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for TargetSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "namespace={ns}")?,
            None => f.write_str("namespace=*")?,
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(f, " labels={{{}}}", labels.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn check(target: TargetSelector) -> Result<(), String> {
        target.validate("target").map_err(|e| e.to_string())
    }

    #[test]
    fn selectors_are_checked_and_named() {
        let mode = |mode| TargetSelector {
            mode,
            ..TargetSelector::default()
        };
        assert_eq!(
            check(mode(SelectionMode::Fixed(0))).unwrap_err(),
            "invalid chaos scenario: target.mode.fixed must be at least 1"
        );
        assert_eq!(
            check(mode(SelectionMode::Percent(0.0))).unwrap_err(),
            "invalid chaos scenario: target.mode.percent must be within (0, 100]"
        );
        assert!(check(mode(SelectionMode::Percent(100.0))).is_ok());
        let empty_ns = TargetSelector {
            namespace: Some(String::new()),
            ..TargetSelector::default()
        };
        assert!(check(empty_ns).unwrap_err().contains("target.namespace"));
        let empty_label = TargetSelector {
            labels: labels::from_pairs([("", "x")]),
            ..TargetSelector::default()
        };
        assert!(check(empty_label).unwrap_err().contains("target.labels"));
    }

    #[test]
    fn modes_read_and_write_as_names_or_one_key_maps() {
        for (text, mode) in [
            ("one", SelectionMode::One),
            ("all", SelectionMode::All),
            ("{percent: 25}", SelectionMode::Percent(25.0)),
        ] {
            let selector: TargetSelector =
                serde_norway::from_str(&format!("mode: {text}")).unwrap();
            assert_eq!(selector.mode, mode);
            let yaml = serde_norway::to_string(&selector).unwrap();
            assert_eq!(
                serde_norway::from_str::<TargetSelector>(&yaml).unwrap(),
                selector
            );
        }
        let bad: Result<TargetSelector, _> = serde_norway::from_str("mode: some");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown mode \"some\"")
        );

        let json = serde_json::to_string(&SelectionMode::Fixed(2)).unwrap();
        assert_eq!(json, r#"{"fixed":2}"#);
        assert_eq!(
            TargetSelector {
                namespace: Some("shop".into()),
                labels: labels::from_pairs([("app", "web")]),
                mode: SelectionMode::All,
            }
            .to_string(),
            "namespace=shop labels={app=web}"
        );
    }
}
