//! The exposition passes `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};

use octrix_prom::exposition::{BreakerState, OctrixMetrics};

fn promtool_check(text: &str) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install it with scripts/prom-stack.sh start, or run scripts/test-prom");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), report)
}

fn populated() -> OctrixMetrics {
    let m = OctrixMetrics::new();
    m.record_incident_opened("critical", "checkout");
    m.record_incident_opened("low", "cart");
    m.record_incident_resolved("low", "cart", 95.0);
    m.record_acknowledged("critical", 30.0);
    m.set_escalations_pending("critical", 1, 400.0);
    m.record_healing_action("restart-pod", "success");
    m.record_anomaly("zscore");
    m.set_detector_series(3);
    m.record_chaos_run("pod-failure", "completed");
    m.set_circuit_breaker_state("payments", BreakerState::Open);
    m.record_alert_received("firing");
    m.record_http_request("POST", "/alerts", 202, 0.004);
    m.set_source_up("prometheus", true);
    m
}

#[test]
#[ignore = "needs promtool, installed with the Prometheus stack: run scripts/test"]
fn exposition_passes_promtool_check_metrics() {
    let text = populated().encode().unwrap();
    let (code, report) = promtool_check(&text);
    assert_eq!(
        code, 0,
        "promtool check metrics failed:\n{report}\n--- exposition:\n{text}"
    );
}

#[test]
#[ignore = "needs promtool, installed with the Prometheus stack: run scripts/test"]
fn empty_exposition_passes_promtool_check_metrics() {
    let text = OctrixMetrics::new().encode().unwrap();
    let (code, report) = promtool_check(&text);
    assert_eq!(code, 0, "{report}\n{text}");
}

#[test]
#[ignore = "needs promtool, installed with the Prometheus stack: run scripts/test"]
fn promtool_does_reject_broken_expositions() {
    // The check above can fail: promtool rejects the captured bad sample.
    let (code, _) = promtool_check(include_str!("data/promtool/bad.prom"));
    assert_ne!(code, 0);
    let (code, _) = promtool_check(include_str!("data/promtool/lint.prom"));
    assert_eq!(code, 3, "lint problems exit with 3");
    let (code, report) = promtool_check(include_str!("data/promtool/good.prom"));
    assert_eq!(code, 0, "{report}");
}
