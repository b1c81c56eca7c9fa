//! `IncidentBook`, `Incident`, `Ingested` and `IncidentPage`: incidents from
//! Alertmanager webhook payloads, with a lifecycle and MTTA/MTTR.

use octrix_core::Timestamp;
use octrix_core::alert::{Alert, AlertStatus};
use octrix_core::classify::{Category, Severity};
use octrix_core::incident::{
    self, IgnoreReason, Incident, IncidentBook, IncidentBookConfig, IncidentFilter, IncidentId,
    IncidentQuery, IncidentStats, IncidentStatus, Ingested, SortDirection, SortKey, TimeRange,
};
use octrix_core::labels::Labels;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Deserialize;

use crate::convert::{self, enum_to_py};
use crate::errors::Error;

/// One alert of an Alertmanager webhook payload (version 4), as the binding
/// reads it: a plain field mapping onto the core's [`Alert`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: AlertStatus,
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    starts_at: Timestamp,
    #[serde(default)]
    ends_at: Option<Timestamp>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
    fingerprint: String,
}

impl From<WebhookAlert> for Alert {
    /// An end time is kept only for a resolved alert (firing alerts carry
    /// Go's zero time), an empty generator URL becomes `None`.
    fn from(alert: WebhookAlert) -> Self {
        Alert {
            ends_at: match alert.status {
                AlertStatus::Resolved => alert.ends_at,
                AlertStatus::Firing => None,
            },
            fingerprint: alert.fingerprint,
            status: alert.status,
            labels: alert.labels,
            annotations: alert.annotations,
            starts_at: alert.starts_at,
            generator_url: alert.generator_url.filter(|url| !url.is_empty()),
        }
    }
}

/// The parts of a webhook payload the book needs.
#[derive(Debug, Deserialize)]
struct WebhookPayload {
    alerts: Vec<WebhookAlert>,
}

/// One incident: a problem with an identity (its fingerprint), a lifecycle
/// (open → acknowledged → resolved) and a timeline. A snapshot: it does not
/// change when the book does.
#[pyclass(module = "octrix", name = "Incident", frozen)]
#[derive(Debug, Clone)]
pub struct PyIncident {
    pub(crate) inner: Incident,
}

impl From<&Incident> for PyIncident {
    fn from(incident: &Incident) -> Self {
        Self {
            inner: incident.clone(),
        }
    }
}

/// The incident as a dict: the core's serde form with its timestamps as UTC
/// datetimes.
fn incident_dict<'py>(py: Python<'py>, incident: &Incident) -> PyResult<Bound<'py, PyAny>> {
    let dict = convert::to_py(py, incident)?;
    let map = dict.cast::<PyDict>()?;
    convert::set_time(map, "first_seen", Some(incident.first_seen))?;
    convert::set_time(map, "last_seen", Some(incident.last_seen))?;
    convert::set_time(
        map,
        "occurrence_started_at",
        Some(incident.occurrence_started_at),
    )?;
    convert::set_time(map, "acknowledged_at", incident.acknowledged_at)?;
    convert::set_time(map, "resolved_at", incident.resolved_at)?;
    if let Some(timeline) = map.get_item("timeline")? {
        timeline_times(timeline.cast::<PyList>()?, incident)?;
    }
    Ok(dict)
}

/// Sets the `at` of every timeline entry dict to its datetime.
fn timeline_times(list: &Bound<'_, PyList>, incident: &Incident) -> PyResult<()> {
    for (item, entry) in list.iter().zip(&incident.timeline) {
        convert::set_time(item.cast::<PyDict>()?, "at", Some(entry.at))?;
    }
    Ok(())
}

#[pymethods]
impl PyIncident {
    /// Identifier, e.g. `INC-000001`.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id.as_str()
    }

    /// One line for people: the alert's `summary`, else its `alertname`.
    #[getter]
    fn title(&self) -> &str {
        &self.inner.title
    }

    /// Longer text: the alert's `description`.
    #[getter]
    fn description(&self) -> Option<&str> {
        self.inner.description.as_deref()
    }

    /// What kind of problem (`alert` for Alertmanager alerts without a
    /// `category` label).
    #[getter]
    fn category<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enum_to_py(py, "Category", &self.inner.category)
    }

    /// How bad, now.
    #[getter]
    fn severity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enum_to_py(py, "Severity", &self.inner.severity)
    }

    /// Lifecycle status.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enum_to_py(py, "IncidentStatus", &self.inner.status)
    }

    /// The affected service (label `service`, else `job`).
    #[getter]
    fn service(&self) -> Option<&str> {
        self.inner.service.as_deref()
    }

    /// The environment (label `environment`, else `env`).
    #[getter]
    fn environment(&self) -> Option<&str> {
        self.inner.environment.as_deref()
    }

    /// The Kubernetes namespace.
    #[getter]
    fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// The source's labels.
    #[getter]
    fn labels(&self) -> Labels {
        self.inner.labels.clone()
    }

    /// Who owns it.
    #[getter]
    fn assignee(&self) -> Option<&str> {
        self.inner.assignee.as_deref()
    }

    /// Where the runbook is (annotation `runbook_url`).
    #[getter]
    fn runbook_url(&self) -> Option<&str> {
        self.inner.runbook_url.as_deref()
    }

    /// Link back to what produced the alert.
    #[getter]
    fn generator_url(&self) -> Option<&str> {
        self.inner.generator_url.as_deref()
    }

    /// Identity used for deduplication (Alertmanager's fingerprint).
    #[getter]
    fn fingerprint(&self) -> &str {
        self.inner.fingerprint.as_str()
    }

    /// How many times the problem started (firing episodes, reopenings).
    #[getter]
    fn occurrences(&self) -> u32 {
        self.inner.occurrences
    }

    /// When the book opened the incident (UTC).
    #[getter]
    fn first_seen(&self) -> Timestamp {
        self.inner.first_seen
    }

    /// When the book last heard of it (UTC).
    #[getter]
    fn last_seen(&self) -> Timestamp {
        self.inner.last_seen
    }

    /// When the current occurrence began at its source (`startsAt`, UTC).
    #[getter]
    fn occurrence_started_at(&self) -> Timestamp {
        self.inner.occurrence_started_at
    }

    /// The latest acknowledgement (UTC), cleared on reopening.
    #[getter]
    fn acknowledged_at(&self) -> Option<Timestamp> {
        self.inner.acknowledged_at
    }

    /// The latest resolution (UTC), cleared on reopening.
    #[getter]
    fn resolved_at(&self) -> Option<Timestamp> {
        self.inner.resolved_at
    }

    /// The correlation group: the id of the group's first incident.
    #[getter]
    fn correlation_group(&self) -> &str {
        self.inner.correlation_group.as_str()
    }

    /// Whether it is open or acknowledged.
    #[getter]
    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// From opening to the first acknowledgement (its MTTA share), or None.
    #[getter]
    fn time_to_acknowledge(&self) -> Option<jiff::SignedDuration> {
        self.inner.time_to_acknowledge()
    }

    /// From opening to the first resolution (its MTTR share), or None.
    #[getter]
    fn time_to_resolve(&self) -> Option<jiff::SignedDuration> {
        self.inner.time_to_resolve()
    }

    /// Everything that happened to it, oldest first: dicts with `at` (a UTC
    /// datetime), `actor`, `kind` and the kind's fields.
    #[getter]
    fn timeline<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = convert::to_py(py, &self.inner.timeline)?;
        timeline_times(list.cast::<PyList>()?, &self.inner)?;
        Ok(list)
    }

    /// The incident as a dict (the JSON form, timestamps as UTC datetimes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        incident_dict(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "Incident(id='{}', status='{}', severity='{}', title={:?})",
            self.inner.id, self.inner.status, self.inner.severity, self.inner.title
        )
    }
}

/// What ingesting one alert did.
#[pyclass(module = "octrix", name = "Ingested", frozen)]
#[derive(Debug, Clone)]
pub struct PyIngested {
    inner: Ingested,
    fingerprint: String,
}

impl PyIngested {
    /// The outcome's `IngestOutcome` value.
    fn outcome_name(&self) -> &'static str {
        match self.inner {
            Ingested::Opened(_) => "opened",
            Ingested::Reopened(_) => "reopened",
            Ingested::Recurred(_) => "recurred",
            Ingested::Duplicate(_) => "duplicate",
            Ingested::AutoResolved(_) => "auto_resolved",
            Ingested::Ignored(_) => "ignored",
        }
    }
}

#[pymethods]
impl PyIngested {
    /// What happened: opened, reopened, recurred, duplicate, auto_resolved
    /// or ignored.
    #[getter]
    fn outcome<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::enum_member(py, "IngestOutcome", self.outcome_name())
    }

    /// The incident concerned, None when ignored.
    #[getter]
    fn incident_id(&self) -> Option<&str> {
        self.inner.incident_id().map(IncidentId::as_str)
    }

    /// Why nothing changed, for an ignored resolution: unknown_fingerprint,
    /// already_resolved, auto_resolve_disabled or stale_resolution.
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        match self.inner {
            Ingested::Ignored(reason) => Some(match reason {
                IgnoreReason::UnknownFingerprint => "unknown_fingerprint",
                IgnoreReason::AlreadyResolved => "already_resolved",
                IgnoreReason::AutoResolveDisabled => "auto_resolve_disabled",
                IgnoreReason::StaleResolution => "stale_resolution",
            }),
            _ => None,
        }
    }

    /// The alert's fingerprint.
    #[getter]
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn __repr__(&self) -> String {
        let id = self
            .inner
            .incident_id()
            .map(|id| format!("'{id}'"))
            .unwrap_or_else(|| "None".to_owned());
        let outcome = self.outcome_name();
        format!(
            "Ingested(outcome='{outcome}', incident_id={id}, fingerprint='{}')",
            self.fingerprint
        )
    }
}

/// One page of a listing.
#[pyclass(module = "octrix", name = "IncidentPage", frozen)]
#[derive(Debug)]
pub struct PyIncidentPage {
    items: Vec<PyIncident>,
    total: usize,
    offset: usize,
    limit: usize,
}

#[pymethods]
impl PyIncidentPage {
    /// The incidents on this page.
    #[getter]
    fn items(&self) -> Vec<PyIncident> {
        self.items.clone()
    }

    /// How many incidents matched in all.
    #[getter]
    fn total(&self) -> usize {
        self.total
    }

    /// The query's offset.
    #[getter]
    fn offset(&self) -> usize {
        self.offset
    }

    /// The query's limit.
    #[getter]
    fn limit(&self) -> usize {
        self.limit
    }

    fn __len__(&self) -> usize {
        self.items.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "IncidentPage(items={}, total={}, offset={}, limit={})",
            self.items.len(),
            self.total,
            self.offset,
            self.limit
        )
    }
}

/// Incidents and the rules that drive them: deduplication by fingerprint,
/// correlation, reopening, escalation on repeated occurrences,
/// auto-resolution, and acknowledge/resolve by people.
///
/// Every method that changes something takes `now` (a timezone-aware
/// datetime, the current time when None).
#[pyclass(module = "octrix", name = "IncidentBook")]
#[derive(Debug)]
pub struct PyIncidentBook {
    inner: IncidentBook,
}

impl PyIncidentBook {
    fn id(id: &str) -> IncidentId {
        IncidentId::new(id)
    }

    fn ingest_one(&mut self, alert: WebhookAlert, now: Timestamp) -> PyIngested {
        let fingerprint = alert.fingerprint.clone();
        let inner = self.inner.ingest_alert(&alert.into(), now);
        PyIngested { inner, fingerprint }
    }
}

#[pymethods]
impl PyIncidentBook {
    /// An empty book. `config` (a mapping) sets `reopen_window`,
    /// `escalate_every_occurrences`, `escalation_ceiling`, `auto_resolve`,
    /// `default_alert_severity` and `correlation`.
    #[new]
    #[pyo3(signature = (config = None))]
    fn new(config: Option<&Bound<'_, PyAny>>) -> Result<Self, Error> {
        let config: IncidentBookConfig = match config {
            Some(config) if !config.is_none() => convert::config_from_py(config, "")?,
            _ => IncidentBookConfig::default(),
        };
        Ok(Self {
            inner: IncidentBook::new(config)?,
        })
    }

    /// Ingests an Alertmanager webhook payload (the decoded JSON body, version
    /// 4): each alert opens, reopens, updates or resolves the incident of its
    /// fingerprint. Returns one `Ingested` per alert. A malformed payload
    /// raises ValidationError naming the field (`alerts[0].startsAt`) and
    /// changes nothing.
    #[pyo3(signature = (payload, now = None))]
    fn ingest_alertmanager(
        &mut self,
        payload: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<Vec<PyIngested>, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let payload: WebhookPayload = convert::from_py(payload, "")?;
        Ok(payload
            .alerts
            .into_iter()
            .map(|alert| self.ingest_one(alert, now))
            .collect())
    }

    /// Ingests one alert in the webhook's form (`status`, `labels`,
    /// `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`).
    #[pyo3(signature = (alert, now = None))]
    fn ingest_alert(
        &mut self,
        alert: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyIngested, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let alert: WebhookAlert = convert::from_py(alert, "")?;
        Ok(self.ingest_one(alert, now))
    }

    /// Marks an open incident as being worked on by `actor`. Raises
    /// UnknownIncidentError or IllegalTransitionError (not open).
    #[pyo3(signature = (incident_id, actor, note = None, now = None))]
    fn acknowledge(
        &mut self,
        incident_id: &str,
        actor: &str,
        note: Option<&str>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyIncident, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let incident = self
            .inner
            .acknowledge(&Self::id(incident_id), actor, note, now)?;
        Ok(incident.into())
    }

    /// Resolves an open or acknowledged incident.
    #[pyo3(signature = (incident_id, actor, note = None, now = None))]
    fn resolve(
        &mut self,
        incident_id: &str,
        actor: &str,
        note: Option<&str>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyIncident, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let incident = self
            .inner
            .resolve(&Self::id(incident_id), actor, note, now)?;
        Ok(incident.into())
    }

    /// Reopens a resolved incident (only the latest of its fingerprint).
    #[pyo3(signature = (incident_id, actor, note = None, now = None))]
    fn reopen(
        &mut self,
        incident_id: &str,
        actor: &str,
        note: Option<&str>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyIncident, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let incident = self
            .inner
            .reopen(&Self::id(incident_id), actor, note, now)?;
        Ok(incident.into())
    }

    /// Gives the incident to `assignee` (any status).
    #[pyo3(signature = (incident_id, assignee, actor, now = None))]
    fn assign(
        &mut self,
        incident_id: &str,
        assignee: &str,
        actor: &str,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyIncident, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let incident = self
            .inner
            .assign(&Self::id(incident_id), assignee, actor, now)?;
        Ok(incident.into())
    }

    /// Adds a note to the incident's timeline.
    #[pyo3(signature = (incident_id, actor, text, now = None))]
    fn add_note(
        &mut self,
        incident_id: &str,
        actor: &str,
        text: &str,
        now: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyIncident, Error> {
        let now = convert::timestamp_or_now(now, "now")?;
        let incident = self
            .inner
            .add_note(&Self::id(incident_id), actor, text, now)?;
        Ok(incident.into())
    }

    /// The incident with this id, or None.
    fn get(&self, incident_id: &str) -> Option<PyIncident> {
        self.inner.get(&Self::id(incident_id)).map(Into::into)
    }

    /// The incident with this id; raises UnknownIncidentError (a KeyError).
    fn __getitem__(&self, incident_id: &str) -> Result<PyIncident, Error> {
        let id = Self::id(incident_id);
        self.inner
            .get(&id)
            .map(Into::into)
            .ok_or(Error::Incident(incident::Error::UnknownIncident(id)))
    }

    fn __contains__(&self, incident_id: &str) -> bool {
        self.inner.get(&Self::id(incident_id)).is_some()
    }

    fn __len__(&self) -> usize {
        self.inner.incidents().len()
    }

    /// Every incident, in opening order.
    fn incidents(&self) -> Vec<PyIncident> {
        self.inner.incidents().map(Into::into).collect()
    }

    /// The incidents correlated with `incident_id` (itself included).
    fn group(&self, incident_id: &str) -> Vec<PyIncident> {
        self.inner
            .group(&Self::id(incident_id))
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// One page of the incidents matching every given filter, sorted by
    /// `sort` (first_seen, last_seen, severity or id; ties by id).
    ///
    /// `status`, `severity` and `category` take one value or a list (any
    /// of them matches); `service` and `environment` match exactly; `text`
    /// is a case-insensitive substring of id, title, description, service,
    /// labels, ...; `opened_from` (inclusive) and `opened_until` (exclusive)
    /// bound the opening time. `limit` is 1 to 1000.
    #[pyo3(signature = (
        *, status = None, severity = None, category = None, service = None,
        environment = None, text = None, opened_from = None, opened_until = None,
        sort = "last_seen", descending = true, offset = 0, limit = 50
    ))]
    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        status: Option<&Bound<'_, PyAny>>,
        severity: Option<&Bound<'_, PyAny>>,
        category: Option<&Bound<'_, PyAny>>,
        service: Option<String>,
        environment: Option<String>,
        text: Option<String>,
        opened_from: Option<&Bound<'_, PyAny>>,
        opened_until: Option<&Bound<'_, PyAny>>,
        sort: &str,
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<PyIncidentPage, Error> {
        let statuses: Vec<IncidentStatus> = convert::parse_enums(status, "status")?;
        let severities: Vec<Severity> = convert::parse_enums(severity, "severity")?;
        let categories: Vec<Category> = convert::parse_enums(category, "category")?;
        let query = IncidentQuery {
            filter: IncidentFilter {
                statuses,
                severities,
                categories,
                service,
                environment,
                opened: TimeRange {
                    start: convert::optional_timestamp(opened_from, "opened_from")?,
                    end: convert::optional_timestamp(opened_until, "opened_until")?,
                },
                text,
            },
            sort: convert::parse_name::<SortKey>(sort, "sort")?,
            direction: if descending {
                SortDirection::Descending
            } else {
                SortDirection::Ascending
            },
            offset,
            limit,
        };
        let page = query.apply(self.inner.incidents())?;
        Ok(PyIncidentPage {
            items: page.items.iter().map(Into::into).collect(),
            total: page.total,
            offset: page.offset,
            limit: page.limit,
        })
    }

    /// Counts, MTTA and MTTR of the incidents opened in `[start, end)` (all
    /// when None): a dict with `total`, `by_status`, `by_severity`,
    /// `by_category`, `by_service`, `reopened`, and `mtta`/`mttr` as
    /// `{"count": int, "mean": timedelta | None, "median": timedelta | None}`.
    #[pyo3(signature = (start = None, end = None))]
    fn stats<'py>(
        &self,
        py: Python<'py>,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let range = TimeRange {
            start: convert::optional_timestamp(start, "start")?,
            end: convert::optional_timestamp(end, "end")?,
        };
        stats_dict(py, &self.inner.stats(&range))
    }

    fn __repr__(&self) -> String {
        format!("IncidentBook(incidents={})", self.inner.incidents().len())
    }
}

/// Statistics as a dict, durations as timedeltas and the range as datetimes.
fn stats_dict<'py>(py: Python<'py>, stats: &IncidentStats) -> PyResult<Bound<'py, PyAny>> {
    let dict = convert::to_py(py, stats)?;
    let map = dict.cast::<PyDict>()?;
    for (key, summary) in [("mtta", &stats.mtta), ("mttr", &stats.mttr)] {
        let entry = PyDict::new(py);
        entry.set_item("count", summary.count)?;
        entry.set_item("mean", summary.mean)?;
        entry.set_item("median", summary.median)?;
        map.set_item(key, entry)?;
    }
    let range = PyDict::new(py);
    range.set_item("start", stats.range.start)?;
    range.set_item("end", stats.range.end)?;
    map.set_item("range", range)?;
    Ok(dict)
}

/// The severity an Alertmanager `severity` label stands for (`warning` →
/// medium, `page` → critical, ...), or None when it is not recognised.
#[pyfunction]
pub fn severity_from_label<'py>(
    py: Python<'py>,
    label: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    incident::severity_from_label(label)
        .map(|severity| enum_to_py(py, "Severity", &severity))
        .transpose()
}

/// Registers the incident classes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyIncident>()?;
    module.add_class::<PyIngested>()?;
    module.add_class::<PyIncidentPage>()?;
    module.add_class::<PyIncidentBook>()?;
    module.add_function(wrap_pyfunction!(severity_from_label, module)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(json: &str) -> Alert {
        serde_json::from_str::<WebhookAlert>(json).unwrap().into()
    }

    #[test]
    fn webhook_alerts_map_onto_core_alerts() {
        let firing = alert(
            r#"{"status": "firing", "labels": {"alertname": "NodeUp"},
                "startsAt": "2026-11-23T09:06:35.412Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "", "fingerprint": "413724370af55eb6"}"#,
        );
        assert_eq!(firing.status, AlertStatus::Firing);
        assert_eq!(firing.name(), Some("NodeUp"));
        // Go's zero time on a firing alert is "no end"; an empty URL is none.
        assert_eq!(firing.ends_at, None);
        assert_eq!(firing.generator_url, None);
        assert_eq!(firing.starts_at.as_millisecond(), 1_795_424_795_412);
        assert!(firing.annotations.is_empty());

        let resolved = alert(
            r#"{"status": "resolved", "labels": {}, "annotations": {"summary": "s"},
                "startsAt": "2026-11-23T09:07:35Z", "endsAt": "2026-11-23T09:17:35Z",
                "generatorURL": "http://prometheus/graph", "fingerprint": "f"}"#,
        );
        assert_eq!(
            resolved
                .ends_at
                .map(|t| t.as_second() - resolved.starts_at.as_second()),
            Some(600)
        );
        assert_eq!(
            resolved.generator_url.as_deref(),
            Some("http://prometheus/graph")
        );
        assert_eq!(resolved.annotations["summary"], "s");
    }

    #[test]
    fn a_payload_needs_its_alerts() {
        let error = serde_json::from_str::<WebhookPayload>(r#"{"status": "firing"}"#).unwrap_err();
        assert!(
            error.to_string().contains("missing field `alerts`"),
            "{error}"
        );
    }
}
