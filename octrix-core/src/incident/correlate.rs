//! Correlation: grouping related incidents that open close together.
//!
//! An incident opened while another incident with the same values for every
//! configured key (by default service, environment and severity, as seed
//! 001 says) was seen within the window joins that incident's group. An
//! incident missing any key's value is left alone: "no service" is not a
//! reason to group unrelated incidents. The group is decided at opening.

use serde::{Deserialize, Serialize};

use super::model::{Incident, IncidentId};
use crate::Timestamp;
use crate::time::SignedDuration;

/// One attribute two incidents must share to be correlated.
///
/// Written as a string in configuration: `service`, `environment`,
/// `severity`, `category`, `namespace`, or `label:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CorrelationKey {
    /// The incident's service.
    Service,
    /// Its environment.
    Environment,
    /// Its severity.
    Severity,
    /// Its category.
    Category,
    /// Its namespace.
    Namespace,
    /// The value of one of its labels (`label:team`).
    Label(String),
}

const LABEL_PREFIX: &str = "label:";

impl TryFrom<String> for CorrelationKey {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "service" => Ok(CorrelationKey::Service),
            "environment" => Ok(CorrelationKey::Environment),
            "severity" => Ok(CorrelationKey::Severity),
            "category" => Ok(CorrelationKey::Category),
            "namespace" => Ok(CorrelationKey::Namespace),
            _ => match text.strip_prefix(LABEL_PREFIX) {
                Some(name) if !name.is_empty() => Ok(CorrelationKey::Label(name.to_owned())),
                _ => Err(format!(
                    "unknown correlation key `{text}`: expected service, environment, severity, \
                     category, namespace or label:<name>"
                )),
            },
        }
    }
}

impl From<CorrelationKey> for String {
    fn from(key: CorrelationKey) -> Self {
        match key {
            CorrelationKey::Service => "service".into(),
            CorrelationKey::Environment => "environment".into(),
            CorrelationKey::Severity => "severity".into(),
            CorrelationKey::Category => "category".into(),
            CorrelationKey::Namespace => "namespace".into(),
            CorrelationKey::Label(name) => format!("{LABEL_PREFIX}{name}"),
        }
    }
}

impl CorrelationKey {
    /// The incident's value for this key, if it has one.
    pub fn value_of(&self, incident: &Incident) -> Option<String> {
        match self {
            CorrelationKey::Service => incident.service.clone(),
            CorrelationKey::Environment => incident.environment.clone(),
            CorrelationKey::Severity => Some(incident.severity.as_str().to_owned()),
            CorrelationKey::Category => Some(incident.category.as_str().to_owned()),
            CorrelationKey::Namespace => incident.namespace.clone(),
            CorrelationKey::Label(name) => incident.labels.get(name).cloned(),
        }
    }
}

/// Which incidents are related.
///
/// An incident opened while another incident with the same values for
/// every key was seen within `window` joins that incident's group. An
/// incident missing any key's value is left alone: "no service" is not a
/// reason to group unrelated incidents. The group is decided at opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Attributes that must all be equal; empty disables correlation.
    pub keys: Vec<CorrelationKey>,
    /// How recently the related incident must have been seen.
    pub window: SignedDuration,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            keys: vec![
                CorrelationKey::Service,
                CorrelationKey::Environment,
                CorrelationKey::Severity,
            ],
            window: SignedDuration::from_mins(15),
        }
    }
}

impl CorrelationConfig {
    /// The group `incident` joins: that of the most recently seen related
    /// incident among `others` seen within the window before `now`.
    pub fn group_for<'a>(
        &self,
        incident: &Incident,
        others: impl IntoIterator<Item = &'a Incident>,
        now: Timestamp,
    ) -> Option<IncidentId> {
        let values = self.values_of(incident)?;
        others
            .into_iter()
            .filter(|other| other.id != incident.id)
            .filter(|other| now.duration_since(other.last_seen) <= self.window)
            .filter(|other| self.values_of(other).as_ref() == Some(&values))
            .max_by_key(|other| other.last_seen)
            .map(|related| related.correlation_group.clone())
    }

    fn values_of(&self, incident: &Incident) -> Option<Vec<String>> {
        if self.keys.is_empty() {
            return None;
        }
        self.keys.iter().map(|key| key.value_of(incident)).collect()
    }
}
