"""Classifier (severity classification) and ChaosScenario validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import octrix

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
POD = {"kind": "pod", "namespace": "shop", "name": "cart-7d9f", "node": "worker-1"}


def cpu(second: int, ratio: float) -> dict[str, object]:
    return {
        "at": T0 + timedelta(seconds=second),
        "resource": POD,
        "service": "cart",
        "reading": {"type": "cpu_utilisation", "ratio": ratio},
    }


def test_cpu_above_80_percent_for_three_samples_is_medium_then_clears() -> None:
    classifier = octrix.Classifier()
    assert classifier.observe(cpu(0, 0.90)) == []
    assert classifier.observe(cpu(15, 0.91)) == []
    [raised] = classifier.observe(cpu(30, 0.92))
    assert raised["result"] == "raised"
    assert raised["category"] == octrix.Category.HIGH_CPU
    assert raised["severity"] == octrix.Severity.MEDIUM
    assert raised["since"] == T0 and raised["at"] == T0 + timedelta(seconds=30)
    assert raised["threshold"] == 0.80
    [cleared] = classifier.observe(cpu(45, 0.20))
    assert cleared["result"] == "cleared" and cleared["category"] == "high-cpu"
    assert cleared["at"] == T0 + timedelta(seconds=45)
    assert classifier.observe(cpu(60, 0.20)) == []


def test_policies_and_bad_observations() -> None:
    strict = octrix.Classifier({"high_cpu": {"high": {"threshold": 0.5, "for_samples": 1}}})
    [raised] = strict.observe(cpu(0, 0.6))
    assert raised["severity"] == "high"
    assert strict.policy["high_cpu"]["high"]["threshold"] == 0.5
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.Classifier({"high_cpu": {"high": {"threshold": 1.5, "for_samples": 1}}})
    assert caught.value.field == "high_cpu.high.threshold"
    with pytest.raises(octrix.ValidationError) as bad:
        strict.observe({**cpu(0, 0.5), "reading": {"type": "cpu_utilisation"}})
    assert bad.value.field == "observation.reading"
    strict.observe(cpu(1, float("inf")) | {"reading": {"type": "restart_rate", "per_hour": -1.0}})
    assert strict.rejected_readings == 1
    yaml = octrix.Classifier.from_yaml("node_not_ready: { severity: high, for_samples: 1 }\n")
    assert yaml.policy["node_not_ready"]["severity"] == "high"


PACKET_LOSS = """
id: checkout-loss
name: Lossy checkout
target: { namespace: shop, labels: { app: checkout }, mode: all }
type: packet-loss
parameters: { loss_percent: 20, duration_seconds: 60 }
"""


def test_chaos_scenarios_are_validated_naming_the_field() -> None:
    scenario = octrix.ChaosScenario.from_yaml(PACKET_LOSS)
    assert (scenario.id, scenario.name, scenario.scenario_type) == ("checkout-loss", "Lossy checkout", "packet-loss")
    assert scenario.target_kind == "service"  # packet loss hits a service's pods
    data = scenario.to_dict()
    assert data["parameters"]["loss_percent"] == 20
    assert octrix.ChaosScenario(data).to_dict() == data
    with pytest.raises(octrix.ValidationError) as caught:
        octrix.ChaosScenario.from_yaml(PACKET_LOSS.replace("loss_percent: 20", "loss_percent: 120"))
    assert caught.value.field == "parameters.loss_percent"
    assert str(caught.value) == "invalid chaos scenario: parameters.loss_percent must be within (0, 100]"
    with pytest.raises(octrix.ValidationError) as bad_id:
        octrix.ChaosScenario({**data, "id": "Bad Id"})
    assert bad_id.value.field == "id"
    with pytest.raises(octrix.ValidationError):
        octrix.ChaosScenario.from_yaml(PACKET_LOSS.replace("packet-loss", "disk-fill"))
    assert "latency-injection" in octrix.ChaosScenario.scenario_types()
    builtin = octrix.ChaosScenario.builtin("node-failure")
    assert builtin.target_kind == "node" and builtin.id == "builtin-node-failure"
