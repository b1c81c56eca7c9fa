//! Parsing of payloads captured from a real Prometheus 2.42 and Alertmanager
//! 0.25 (copied into `tests/data/`).

use octrix_core::alert::AlertStatus;
use octrix_prom::alertmanager::{
    AlertmanagerAlertState, AlertmanagerStatus, GettableAlert, WebhookPayload,
};
use octrix_prom::prometheus::{
    BuildInfo, Envelope, QueryData, ResponseStatus, TargetHealth, Targets,
};

fn data(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}

fn query_data(path: &str) -> QueryData {
    let envelope: Envelope<QueryData> = serde_json::from_slice(&data(path)).unwrap();
    assert_eq!(envelope.status, ResponseStatus::Success);
    envelope.data.expect("success carries data")
}

#[test]
fn instant_vector() {
    let QueryData::Vector(samples) = query_data("prometheus/query-vector-up.json") else {
        panic!("not a vector")
    };
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].metric["__name__"], "up");
    assert_eq!(samples[0].metric["instance"], "127.0.0.1:19090");
    assert_eq!(samples[1].metric["job"], "node");
    assert_eq!(samples[1].value.timestamp, 1_795_424_866.106);
    assert_eq!(samples[1].value.value, 1.0);
    assert_eq!(
        samples[1].value.time().unwrap().to_string(),
        "2026-11-23T09:07:46.106Z"
    );

    let QueryData::Vector(rules) = query_data("prometheus/query-vector-recording-rule.json") else {
        panic!("not a vector")
    };
    assert_eq!(rules[0].metric["__name__"], "job:up:sum");
    assert_eq!(rules[1].metric["job"], "prometheus");
}

#[test]
fn matrices() {
    let QueryData::Matrix(series) = query_data("prometheus/query-matrix-range-vector.json") else {
        panic!("not a matrix")
    };
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].values.len(), 5);
    assert_eq!(series[0].values[0].timestamp, 1_795_424_861.894);
    assert_eq!(series[1].values[4].timestamp, 1_795_424_866.301);
    assert!(
        series
            .iter()
            .flat_map(|s| &s.values)
            .all(|s| s.value == 1.0)
    );

    let QueryData::Matrix(range) = query_data("prometheus/query_range-matrix.json") else {
        panic!("not a matrix")
    };
    let times: Vec<f64> = range[0].values.iter().map(|s| s.timestamp).collect();
    assert_eq!(
        times,
        [
            1795424856.0,
            1795424858.0,
            1795424860.0,
            1795424862.0,
            1795424864.0,
            1795424866.0
        ]
    );
}

#[test]
fn scalar_and_string() {
    let QueryData::Scalar(s) = query_data("prometheus/query-scalar.json") else {
        panic!("not a scalar")
    };
    assert_eq!((s.timestamp, s.value), (1_795_424_866.84, 4.0));
    let QueryData::String(s) = query_data("prometheus/query-string.json") else {
        panic!("not a string")
    };
    assert_eq!(
        (s.timestamp, s.value.as_str()),
        (1_795_424_867.175, "hello")
    );
}

#[test]
fn error_envelope_keeps_type_and_message() {
    let envelope: Envelope<QueryData> =
        serde_json::from_slice(&data("prometheus/query-error-bad-promql.json")).unwrap();
    assert_eq!(envelope.status, ResponseStatus::Error);
    assert_eq!(envelope.data, None);
    assert_eq!(envelope.error_type.as_deref(), Some("bad_data"));
    assert_eq!(
        envelope.error.as_deref(),
        Some("invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis")
    );
}

#[test]
fn targets_and_build_info() {
    let targets: Envelope<Targets> =
        serde_json::from_slice(&data("prometheus/targets.json")).unwrap();
    let targets = targets.data.unwrap();
    assert_eq!(targets.active_targets.len(), 2);
    let node = &targets.active_targets[0];
    assert_eq!(node.scrape_pool, "node");
    assert_eq!(node.scrape_url, "http://127.0.0.1:19100/metrics");
    assert_eq!(node.health, TargetHealth::Up);
    assert_eq!(node.labels["instance"], "127.0.0.1:19100");
    assert_eq!(node.discovered_labels["__scrape_interval__"], "1s");
    assert_eq!(node.last_scrape_duration, 0.01106553);
    assert!(targets.dropped_targets.is_empty());

    let info: Envelope<BuildInfo> =
        serde_json::from_slice(&data("prometheus/buildinfo.json")).unwrap();
    let info = info.data.unwrap();
    assert_eq!(info.version, "2.42.0+ds");
    assert_eq!(info.go_version, "go1.19.8");
}

#[test]
fn webhook_firing_from_prometheus() {
    let payload =
        WebhookPayload::from_json(&data("alertmanager/alertmanager-webhook-firing.json")).unwrap();
    assert_eq!(payload.version, "4");
    assert_eq!(payload.receiver, "webhook");
    assert_eq!(payload.status, AlertStatus::Firing);
    assert_eq!(
        payload.group_key,
        r#"{}:{alertname="NodeUp", service="node"}"#
    );
    assert_eq!(payload.truncated_alerts, 0);
    assert_eq!(payload.group_labels["service"], "node");
    assert_eq!(payload.common_labels["severity"], "warning");
    assert_eq!(
        payload.common_annotations["summary"],
        "node exporter 127.0.0.1:19100 is up"
    );
    assert_eq!(payload.external_url, "http://127.0.0.1:19093");

    let alerts = payload.to_alerts();
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert.fingerprint, "413724370af55eb6");
    assert_eq!(alert.name(), Some("NodeUp"));
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.labels["instance"], "127.0.0.1:19100");
    assert_eq!(alert.starts_at.to_string(), "2026-11-23T09:06:35.412Z");
    assert_eq!(alert.ends_at, None);
    assert_eq!(
        alert.generator_url.as_deref(),
        Some("http://127.0.0.1:19090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+1&g0.tab=1")
    );
}

#[test]
fn webhook_from_amtool_firing_then_resolved() {
    let firing = WebhookPayload::from_json(&data(
        "alertmanager/alertmanager-webhook-amtool-firing.json",
    ))
    .unwrap();
    let alert = &firing.to_alerts()[0];
    assert_eq!(alert.name(), Some("ManualAlert"));
    // Nanosecond precision survives.
    assert_eq!(
        alert.starts_at.to_string(),
        "2026-11-23T09:07:35.578108207Z"
    );
    assert_eq!(
        alert.generator_url, None,
        "amtool sends an empty generatorURL"
    );

    let resolved =
        WebhookPayload::from_json(&data("alertmanager/alertmanager-webhook-resolved.json"))
            .unwrap();
    assert_eq!(resolved.status, AlertStatus::Resolved);
    let alert = &resolved.to_alerts()[0];
    assert_eq!(alert.status, AlertStatus::Resolved);
    assert_eq!(alert.fingerprint, "7e871ffd3ec70305");
    assert_eq!(alert.ends_at.unwrap().to_string(), "2026-11-23T09:07:35Z");
}

#[test]
fn webhook_errors_name_the_field() {
    let text = String::from_utf8(data("alertmanager/alertmanager-webhook-firing.json")).unwrap();
    let broken = text.replace(
        r#""startsAt": "2026-11-23T09:06:35.412Z""#,
        r#""startsAt": "soon""#,
    );
    assert_ne!(broken, text);
    let error = WebhookPayload::from_json(broken.as_bytes()).unwrap_err();
    assert!(
        error.to_string().starts_with("alerts[0].startsAt: "),
        "{error}"
    );

    let broken = text.replace(r#""status": "firing","#, r#""status": "burning","#);
    let error = WebhookPayload::from_json(broken.as_bytes()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("status: unknown variant `burning`"),
        "{error}"
    );

    let error = WebhookPayload::from_json(b"42").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(".: invalid type: integer `42`"),
        "{error}"
    );
}

#[test]
fn alertmanager_api_v2_alerts_and_status() {
    let alerts: Vec<GettableAlert> =
        serde_json::from_slice(&data("alertmanager/alertmanager-api-v2-alerts.json")).unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].fingerprint, "413724370af55eb6");
    assert_eq!(alerts[0].status.state, AlertmanagerAlertState::Active);
    assert!(alerts[0].status.silenced_by.is_empty());
    assert_eq!(alerts[0].receivers[0].name, "webhook");
    assert_eq!(alerts[1].labels["alertname"], "AlwaysFiring");
    assert_eq!(alerts[1].ends_at.to_string(), "2026-11-23T09:11:31.412Z");

    let status: AlertmanagerStatus =
        serde_json::from_slice(&data("alertmanager/alertmanager-api-v2-status.json")).unwrap();
    assert_eq!(status.cluster.status, "disabled");
    assert_eq!(status.version_info.version, "0.25.0");
    assert!(status.config.original.contains("group_wait: 1s"));
}
