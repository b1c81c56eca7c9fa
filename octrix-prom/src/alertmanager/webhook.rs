//! Alertmanager's webhook payload (version 4), as a receiver gets it.
//!
//! [`WebhookPayload::from_json`] parses a delivery; unknown fields are
//! ignored, and a malformed payload is an [`Error`] that names the field, so
//! that the HTTP layer can answer `400 alerts[0].startsAt: ...`.
//! [`WebhookPayload::to_alerts`] converts the delivery into the core's
//! [`Alert`]s.
//!
//! ```
//! use octrix_core::alert::AlertStatus;
//! use octrix_prom::alertmanager::WebhookPayload;
//!
//! let body = br#"{
//!   "version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "truncatedAlerts": 0,
//!   "status": "firing", "receiver": "octrix",
//!   "groupLabels": {"alertname": "HighCPU"},
//!   "commonLabels": {"alertname": "HighCPU", "severity": "critical"},
//!   "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
//!   "alerts": [{
//!     "status": "firing",
//!     "labels": {"alertname": "HighCPU", "severity": "critical", "service": "web"},
//!     "annotations": {"summary": "CPU above 90%"},
//!     "startsAt": "2025-09-01T13:55:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
//!     "generatorURL": "http://prometheus:9090/graph?g0.expr=up", "fingerprint": "abc123"
//!   }]
//! }"#;
//! let payload = WebhookPayload::from_json(body).unwrap();
//! let alerts = payload.to_alerts();
//! assert_eq!(alerts[0].name(), Some("HighCPU"));
//! assert_eq!(alerts[0].status, AlertStatus::Firing);
//! assert_eq!(alerts[0].ends_at, None); // the zero time means "not ended"
//!
//! let broken = br#"{"version": "4", "status": "firing", "receiver": "r", "groupKey": "",
//!   "alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday",
//!               "fingerprint": "x"}]}"#;
//! let error = WebhookPayload::from_json(broken).unwrap_err();
//! assert!(error.to_string().starts_with("alerts[0].startsAt: "), "{error}");
//! ```

use octrix_core::alert::{Alert, AlertStatus};
use octrix_core::{Labels, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a webhook payload was rejected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not a valid version 4 payload; `path` names the field
    /// (`alerts[0].startsAt`, or `.` for the document itself).
    #[error("{path}: {message}")]
    Malformed {
        /// Where in the document the problem is.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

/// One delivery of Alertmanager's webhook receiver (payload version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// Payload version; Alertmanager sends `"4"`.
    pub version: String,
    /// Identifies the alert group, for deduplication of notifications.
    pub group_key: String,
    /// Alerts left out because of the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if any alert in the group fires, else `resolved`.
    pub status: AlertStatus,
    /// The receiver's name in Alertmanager's configuration.
    pub receiver: String,
    /// Labels the group is grouped by.
    #[serde(default)]
    pub group_labels: Labels,
    /// Labels shared by every alert of the group.
    #[serde(default)]
    pub common_labels: Labels,
    /// Annotations shared by every alert of the group.
    #[serde(default)]
    pub common_annotations: Labels,
    /// Alertmanager's external URL.
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    /// The group's alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a [`WebhookPayload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Identifying labels.
    pub labels: Labels,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: Labels,
    /// When the alert started firing.
    pub starts_at: Timestamp,
    /// When it ended; `None` for Alertmanager's zero time
    /// `0001-01-01T00:00:00Z`, which firing alerts carry.
    #[serde(
        default,
        deserialize_with = "deserialize_end",
        serialize_with = "serialize_end"
    )]
    pub ends_at: Option<Timestamp>,
    /// Link to the expression that produced it (empty for alerts posted by
    /// hand, e.g. with `amtool`).
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    /// Identity of the label set.
    pub fingerprint: String,
}

/// Go's zero `time.Time`, which Alertmanager writes for "no end".
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn zero_time() -> Timestamp {
    Timestamp::from_second(ZERO_TIME_SECONDS).expect("year 1 is within jiff's range")
}

fn deserialize_end<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    let end = Option::<Timestamp>::deserialize(d)?;
    Ok(end.filter(|t| *t > zero_time()))
}

fn serialize_end<S: Serializer>(end: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    end.unwrap_or_else(zero_time).serialize(s)
}

impl WebhookPayload {
    /// Parses a delivery's body.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let payload: Self =
            serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Malformed {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| Error::Malformed {
            path: ".".to_owned(),
            message: e.to_string(),
        })?;
        Ok(payload)
    }

    /// The delivery's alerts as the core's [`Alert`]s.
    pub fn to_alerts(&self) -> Vec<Alert> {
        self.alerts.iter().map(WebhookAlert::to_alert).collect()
    }
}

impl WebhookAlert {
    /// This alert as the core's [`Alert`]; an end time is kept only for a
    /// resolved alert, an empty generator URL becomes `None`.
    pub fn to_alert(&self) -> Alert {
        Alert {
            fingerprint: self.fingerprint.clone(),
            status: self.status,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at: self.starts_at,
            ends_at: match self.status {
                AlertStatus::Resolved => self.ends_at,
                AlertStatus::Firing => None,
            },
            generator_url: Some(self.generator_url.clone()).filter(|u| !u.is_empty()),
        }
    }
}

impl From<&WebhookAlert> for Alert {
    fn from(alert: &WebhookAlert) -> Self {
        alert.to_alert()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"version":"4","groupKey":"k","status":"resolved","receiver":"r",
        "alerts":[{"status":"resolved","labels":{"alertname":"A"},
        "startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:05:00Z","fingerprint":"f"}]}"#;

    #[test]
    fn optional_fields_default_and_unknown_fields_are_ignored() {
        let with_extra = MINIMAL.replace(r#""receiver":"r","#, r#""receiver":"r","x":[1],"#);
        let p = WebhookPayload::from_json(with_extra.as_bytes()).unwrap();
        assert_eq!(p.truncated_alerts, 0);
        assert!(p.common_labels.is_empty());
        let alert = &p.to_alerts()[0];
        assert_eq!(alert.status, AlertStatus::Resolved);
        assert_eq!(alert.ends_at.unwrap().as_second(), 1_767_225_900);
        assert_eq!(alert.generator_url, None);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                MINIMAL.replace(
                    r#""status":"resolved","labels""#,
                    r#""status":"gone","labels""#,
                ),
                "alerts[0].status",
            ),
            (MINIMAL.replace(r#","fingerprint":"f""#, ""), "alerts[0]"),
            (
                MINIMAL.replace(r#""endsAt":"2026-01-01T00:05:00Z""#, r#""endsAt":5"#),
                "alerts[0].endsAt",
            ),
            (MINIMAL.replace(r#""alerts":["#, r#""alerts":{"#), "alerts"),
            (
                MINIMAL.replace(r#""version":"4""#, r#""version":4"#),
                "version",
            ),
        ];
        for (body, path) in cases {
            match WebhookPayload::from_json(body.as_bytes()) {
                Err(Error::Malformed { path: got, message }) => {
                    assert_eq!(got, path, "{message}")
                }
                Ok(_) => panic!("accepted {body}"),
            }
        }
        let missing =
            WebhookPayload::from_json(MINIMAL.replace(r#","fingerprint":"f""#, "").as_bytes())
                .unwrap_err()
                .to_string();
        assert!(
            missing.starts_with("alerts[0]: missing field `fingerprint` at line 3"),
            "{missing}"
        );
        assert!(WebhookPayload::from_json(b"{} trailing").is_err());
        assert!(WebhookPayload::from_json(format!("{MINIMAL} x").as_bytes()).is_err());
    }

    #[test]
    fn zero_end_time_round_trips() {
        let firing = MINIMAL
            .replace("2026-01-01T00:05:00Z", "0001-01-01T00:00:00Z")
            .replace("resolved", "firing");
        let p = WebhookPayload::from_json(firing.as_bytes()).unwrap();
        assert_eq!(p.alerts[0].ends_at, None);
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.contains(r#""endsAt":"0001-01-01T00:00:00Z""#),
            "{json}"
        );
        assert_eq!(WebhookPayload::from_json(json.as_bytes()).unwrap(), p);
    }
}
