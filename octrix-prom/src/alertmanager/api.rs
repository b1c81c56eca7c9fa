//! Types of Alertmanager's API v2 (`/api/v2/...`).

use octrix_core::{Labels, Timestamp};
use serde::{Deserialize, Serialize};

/// An alert to post to Alertmanager (`POST /api/v2/alerts`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identifying labels; `alertname` by convention.
    pub labels: Labels,
    /// Descriptive annotations.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub annotations: Labels,
    /// Start; Alertmanager uses the time of receipt when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// End; a time in the past resolves the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// Link to what produced the alert.
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
}

/// An alert as Alertmanager reports it (`GET /api/v2/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableAlert {
    /// Identifying labels.
    pub labels: Labels,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: Labels,
    /// When it started.
    pub starts_at: Timestamp,
    /// When it ends (or is expected to, unless renewed).
    pub ends_at: Timestamp,
    /// When Alertmanager last received it.
    pub updated_at: Timestamp,
    /// Identity of the label set.
    pub fingerprint: String,
    /// Receivers it is routed to.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    /// Whether it is active, silenced or inhibited.
    pub status: AlertmanagerAlertStatus,
    /// Link to what produced the alert.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: Option<String>,
}

/// A receiver named in Alertmanager's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    /// Its name.
    pub name: String,
}

/// The state of an alert in Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerAlertStatus {
    /// Unprocessed, active or suppressed.
    pub state: AlertmanagerAlertState,
    /// IDs of the silences that mute it.
    #[serde(default)]
    pub silenced_by: Vec<String>,
    /// Fingerprints of the alerts that inhibit it.
    #[serde(default)]
    pub inhibited_by: Vec<String>,
}

/// Unprocessed, active or suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertmanagerAlertState {
    /// Received but not yet processed.
    Unprocessed,
    /// Notified to receivers.
    Active,
    /// Muted by a silence or an inhibition.
    Suppressed,
}

/// Which alerts `GET /api/v2/alerts` returns. The default returns all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertFilter {
    /// Include (`Some(true)`) or exclude (`Some(false)`) active alerts.
    pub active: Option<bool>,
    /// Include or exclude silenced alerts.
    pub silenced: Option<bool>,
    /// Include or exclude inhibited alerts.
    pub inhibited: Option<bool>,
    /// Include or exclude unprocessed alerts.
    pub unprocessed: Option<bool>,
    /// Label matchers in Alertmanager's syntax, e.g. `alertname="HighCPU"`.
    pub matchers: Vec<String>,
    /// Only alerts routed to receivers matching this regex.
    pub receiver: Option<String>,
}

/// A label matcher of a silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Value, or a regex when `is_regex`.
    pub value: String,
    /// Whether `value` is a regex.
    pub is_regex: bool,
    /// `true` for `=`/`=~`, `false` for `!=`/`!~`.
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

impl Matcher {
    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            is_regex: false,
            is_equal: true,
        }
    }

    /// `name!="value"`.
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            is_equal: false,
            ..Self::equal(name, value)
        }
    }

    /// `name=~"regex"`.
    pub fn regex(name: impl Into<String>, regex: impl Into<String>) -> Self {
        Self {
            is_regex: true,
            ..Self::equal(name, regex)
        }
    }
}

/// A silence to create (`POST /api/v2/silences`).
///
/// ```
/// use octrix_core::Timestamp;
/// use octrix_prom::alertmanager::{Matcher, Silence};
///
/// let start = Timestamp::from_second(1_800_000_000).unwrap();
/// let silence = Silence {
///     matchers: vec![Matcher::equal("service", "checkout")],
///     starts_at: start,
///     ends_at: start + std::time::Duration::from_secs(600),
///     created_by: "octrix".into(),
///     comment: "chaos run 42: pod-failure on checkout".into(),
/// };
/// let json = serde_json::to_value(&silence).unwrap();
/// assert_eq!(json["createdBy"], "octrix");
/// assert_eq!(json["matchers"][0]["isEqual"], true);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Alerts matching all of these are muted.
    pub matchers: Vec<Matcher>,
    /// Start of the silence.
    pub starts_at: Timestamp,
    /// End of the silence.
    pub ends_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// A silence as Alertmanager reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    /// Its ID.
    pub id: String,
    /// Pending, active or expired.
    pub status: SilenceStatus,
    /// When it was last changed.
    pub updated_at: Timestamp,
    /// What it silences, when and why.
    #[serde(flatten)]
    pub silence: Silence,
}

/// The `status` of a [`GettableSilence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    /// Pending, active or expired.
    pub state: SilenceState,
}

/// Lifecycle of a silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// Muting alerts now.
    Active,
    /// Ended or expired.
    Expired,
}

/// Answer of `POST /api/v2/silences`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SilenceCreated {
    #[serde(rename = "silenceID")]
    pub(crate) silence_id: String,
}

/// Alertmanager's status (`GET /api/v2/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerStatus {
    /// High-availability cluster state.
    pub cluster: ClusterStatus,
    /// Configuration in force.
    pub config: ConfigStatus,
    /// When it started.
    pub uptime: Timestamp,
    /// Version information.
    pub version_info: VersionInfo,
}

/// High-availability cluster state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// `ready`, `settling` or `disabled`.
    pub status: String,
    /// This instance's name in the cluster.
    #[serde(default)]
    pub name: Option<String>,
    /// The other members.
    #[serde(default)]
    pub peers: Vec<Peer>,
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
}

/// The configuration in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The configuration file as loaded (YAML).
    pub original: String,
}

/// Version information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Version, e.g. `0.25.0`.
    pub version: String,
    /// Source revision.
    #[serde(default)]
    pub revision: String,
    /// Source branch.
    #[serde(default)]
    pub branch: String,
    /// Who built it.
    #[serde(default)]
    pub build_user: String,
    /// When it was built.
    #[serde(default)]
    pub build_date: String,
    /// Go version used.
    #[serde(default)]
    pub go_version: String,
}
