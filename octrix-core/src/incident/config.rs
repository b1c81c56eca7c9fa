//! [`IncidentBookConfig`]: the book's rules, serde-loadable.

use serde::{Deserialize, Serialize};

use super::Error;
use super::correlate::{CorrelationConfig, CorrelationKey};
use crate::classify::Severity;
use crate::time::SignedDuration;

/// The rules an [`IncidentBook`](super::IncidentBook) applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentBookConfig {
    /// Which incidents are grouped together.
    pub correlation: CorrelationConfig,
    /// A resolved incident whose fingerprint fires again less than this
    /// long after its resolution is reopened; later, a new incident is
    /// opened. Zero never reopens.
    pub reopen_window: SignedDuration,
    /// Every this-many occurrences (the 3rd, 6th, ... by default) raise the
    /// severity one level; zero never raises.
    pub escalate_every_occurrences: u32,
    /// Repeated occurrences never raise the severity above this.
    pub escalation_ceiling: Severity,
    /// Resolve an incident when its source alert resolves or its signal
    /// clears.
    pub auto_resolve: bool,
    /// Severity for alerts without a recognised `severity` label.
    pub default_alert_severity: Severity,
}

impl Default for IncidentBookConfig {
    fn default() -> Self {
        Self {
            correlation: CorrelationConfig::default(),
            reopen_window: SignedDuration::from_mins(30),
            escalate_every_occurrences: 3,
            escalation_ceiling: Severity::Critical,
            auto_resolve: true,
            default_alert_severity: Severity::Medium,
        }
    }
}

impl IncidentBookConfig {
    /// Checks the durations and keys; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.reopen_window.is_negative() {
            return Err(Error::invalid_config(
                "reopen_window",
                "must not be negative",
            ));
        }
        if self.correlation.window.is_negative() {
            return Err(Error::invalid_config(
                "correlation.window",
                "must not be negative",
            ));
        }
        let empty_label = self
            .correlation
            .keys
            .iter()
            .any(|key| matches!(key, CorrelationKey::Label(name) if name.is_empty()));
        if empty_label {
            return Err(Error::invalid_config(
                "correlation.keys",
                "must not contain an empty label name",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_from_yaml_and_toml() {
        let yaml = r#"
correlation:
  keys: [service, "label:team"]
  window: 5m
reopen_window: 1h
escalate_every_occurrences: 0
auto_resolve: false
"#;
        let config: IncidentBookConfig = serde_norway::from_str(yaml).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.correlation.keys,
            [
                CorrelationKey::Service,
                CorrelationKey::Label("team".into())
            ]
        );
        assert_eq!(config.correlation.window, SignedDuration::from_mins(5));
        assert_eq!(config.reopen_window, SignedDuration::from_hours(1));
        assert_eq!(config.escalate_every_occurrences, 0);
        assert!(!config.auto_resolve);
        assert_eq!(config.default_alert_severity, Severity::Medium);

        let bad_key = serde_norway::from_str::<IncidentBookConfig>("correlation: { keys: [team] }");
        assert!(
            bad_key
                .unwrap_err()
                .to_string()
                .contains("unknown correlation key `team`")
        );

        let toml_text = "reopen_window = \"-5m\"\n[correlation]\nkeys = [\"severity\"]\n";
        let config: IncidentBookConfig = toml::from_str(toml_text).unwrap();
        assert_eq!(config.correlation.window, SignedDuration::from_mins(15));
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid incident book configuration: reopen_window must not be negative"
        );
    }

    #[test]
    fn empty_label_keys_are_rejected() {
        let mut config = IncidentBookConfig::default();
        config
            .correlation
            .keys
            .push(CorrelationKey::Label(String::new()));
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid incident book configuration: correlation.keys must not contain an empty label name"
        );
    }
}
