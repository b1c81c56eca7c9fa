"""HealingRules: which actions a rule set plans for an incident, dry run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import octrix

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

RULES = """
rules:
  - name: crashloops
    match: { categories: [pod-crash] }
    cooldown_seconds: 60
    actions:
      - type: restart-pod
      - type: scale-deployment
        by: 1
      - type: notify
        channel: sre
  - name: everything-else
    priority: -1
    actions:
      - type: notify
        channel: oncall
"""

SUBJECT: dict[str, Any] = {
    "incident_id": "inc-1",
    "category": "pod-crash",
    "severity": "medium",
    "title": "web-1 crash-looping",
    "namespace": "shop",
    "pod": "web-1",
    "deployment": "web",
}

CLUSTER: dict[str, Any] = {
    "deployments": [
        {"namespace": "shop", "name": "web", "replicas": 2, "ready_replicas": 1, "labels": {}}
    ],
    "pods": [
        {
            "namespace": "shop",
            "name": "web-1",
            "node": "worker-1",
            "owner": {"kind": "Deployment", "name": "web"},
            "phase": "Running",
            "labels": {},
            "containers": [],
        }
    ],
}


def test_plan_restarts_a_crash_looping_pod() -> None:
    rules = octrix.HealingRules.from_yaml(RULES)
    assert rules.rule_names == ["crashloops", "everything-else"]
    assert rules.matching_rules(SUBJECT) == ["crashloops", "everything-else"]
    decision = rules.plan(SUBJECT, now=T0)
    assert decision["decision"] == "act"
    assert decision["rule"] == "crashloops" and decision["step"] == 0
    assert decision["action"] == {"type": "restart-pod"}
    assert decision["remediation"] == {
        "kind": "cluster",
        "type": "restart-pod",
        "namespace": "shop",
        "pod": "web-1",
    }
    assert decision["dry_run"] is False
    assert decision["disruption"]["target"] == "pod/shop/web-1"


def test_dry_run_walks_the_whole_ladder_then_escalates() -> None:
    rules = octrix.HealingRules.from_yaml(RULES)
    decisions = rules.dry_run(SUBJECT, cluster=CLUSTER, now=T0)
    acts = [d for d in decisions if d["decision"] == "act"]
    assert [d["action"]["type"] for d in acts] == ["restart-pod", "scale-deployment", "notify"]
    assert all(d["dry_run"] for d in acts)
    assert acts[1]["remediation"] == {
        "kind": "cluster",
        "type": "scale-deployment",
        "namespace": "shop",
        "deployment": "web",
        "replicas": 3,
    }
    assert acts[2]["remediation"]["channel"] == "sre"
    final = decisions[-1]
    assert final["decision"] == "escalate"
    assert final["reason"] == {"reason": "actions_exhausted", "rule": "crashloops"}
    assert final["notification"]["channel"] == "oncall"


def test_severity_protection_and_no_match() -> None:
    rules = octrix.HealingRules.from_yaml(RULES)
    critical = rules.plan({**SUBJECT, "severity": "critical"}, now=T0)
    assert critical["decision"] == "escalate"
    assert critical["reason"] == {"reason": "severity_above_auto_heal"}
    protected = rules.plan({**SUBJECT, "namespace": "kube-system"}, now=T0)
    assert protected == {"decision": "deny", "reason": "protected", "namespace": "kube-system"}
    only_crashes = octrix.HealingRules({"rules": [{"name": "c", "match": {"categories": ["pod-crash"]}, "actions": [{"type": "restart-pod"}]}]})
    assert only_crashes.plan({**SUBJECT, "category": "high-cpu"}, now=T0) == {"decision": "no_matching_rule"}


def test_incidents_from_the_book_are_planned_with_the_cluster() -> None:
    book = octrix.IncidentBook()
    book.ingest_alert(
        {
            "status": "firing",
            "labels": {
                "alertname": "KubePodCrashLooping",
                "category": "pod-crash",
                "namespace": "shop",
                "pod": "web-1",
                "service": "web",
                "severity": "warning",
            },
            "startsAt": "2026-01-01T00:00:00Z",
            "fingerprint": "f1",
        },
        now=T0,
    )
    incident = book["INC-000001"]
    rules = octrix.HealingRules.from_yaml(RULES)
    decision = rules.plan(incident, cluster=CLUSTER, now=T0)
    assert decision["remediation"]["pod"] == "web-1"
    # Without the pod in the snapshot it cannot be restarted: the next
    # applicable action is planned.
    gone = rules.plan(incident, now=T0)
    assert gone["action"]["type"] == "notify"


def test_bad_rule_sets_name_the_field() -> None:
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.HealingRules.from_yaml("rules:\n  - name: x\n    actions: []\n")
    assert caught.value.field == "rules[0].actions"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.HealingRules.from_yaml("rules:\n  - name: x\n    actions: [{type: explode}]\n")
    assert caught.value.field == "rules[0].actions[0].type"
    assert "unknown variant `explode`" in str(caught.value)
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.HealingRules.from_toml('escalation_channel = " "\n')
    assert caught.value.field == "escalation_channel"
    with pytest.raises(octrix.ValidationError) as invalid:
        octrix.HealingRules().plan({"incident_id": "x"})
    assert invalid.value.field == "incident"
    assert "category" in str(invalid.value)


def test_dry_run_config_is_reported() -> None:
    rules = octrix.HealingRules({"dry_run": True, "rules": [{"name": "r", "actions": [{"type": "restart-pod"}]}]})
    assert rules.to_dict()["dry_run"] is True
    assert rules.plan(SUBJECT, now=T0)["dry_run"] is True
    assert rules.plan(SUBJECT, now=T0 + timedelta(hours=1))["step"] == 0
