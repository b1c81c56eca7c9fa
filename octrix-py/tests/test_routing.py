"""TrafficRule to Istio manifests, and LoadBalancer."""

from __future__ import annotations

import json

import pytest

import octrix
from octrix import BalancingStrategy

EXPECTED_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
  labels:
    app.kubernetes.io/managed-by: octrix
spec:
  hosts:
  - reviews
  http:
  - name: weighted
    route:
    - destination:
        host: reviews
        subset: v1
      weight: 80
    - destination:
        host: reviews
        subset: v2
      weight: 20
"""


def test_weighted_rule_renders_the_core_golden_yaml() -> None:
    rule = octrix.TrafficRule.weighted("reviews", "bookinfo", {"v1": 80, "v2": 20})
    rule.validate()
    assert rule.weights == [("v1", 80), ("v2", 20)]
    yaml = rule.to_yaml()
    assert yaml.startswith(EXPECTED_VS + "---\n")
    assert "kind: DestinationRule" in yaml
    manifests = rule.to_istio()
    vs = manifests["virtual_service"]
    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert [r["weight"] for r in vs["spec"]["http"][0]["route"]] == [80, 20]
    dr = rule.destination_rule("v1beta1")
    assert dr["apiVersion"] == "networking.istio.io/v1beta1"
    assert dr["spec"]["subsets"][1] == {"name": "v2", "labels": {"version": "v2"}}
    assert rule.virtual_service(octrix.IstioApiVersion.V1) == vs
    listed = json.loads(rule.to_json())
    assert listed["kind"] == "List" and len(listed["items"]) == 2


def test_rules_from_mappings_and_yaml_with_header_match() -> None:
    rule = octrix.TrafficRule(
        {
            "service": "reviews",
            "namespace": "bookinfo",
            "destinations": [
                {"subset": "v1", "labels": {"version": "v1"}, "weight": 100},
                {"subset": "v2", "labels": {"version": "v2"}, "weight": 0},
            ],
            "kind": {"type": "header_match", "headers": [{"name": "x-canary", "value": {"exact": "true"}}], "subset": "v2"},
        }
    )
    http = rule.virtual_service()["spec"]["http"]
    assert http[0]["match"] == [{"headers": {"x-canary": {"exact": "true"}}}]
    assert http[0]["route"] == [{"destination": {"host": "reviews", "subset": "v2"}}]
    again = octrix.TrafficRule.from_yaml(rule.rule_yaml())
    assert again.to_dict() == rule.to_dict()


def test_invalid_rules_list_every_field_error() -> None:
    rule = octrix.TrafficRule.weighted("Reviews", "bookinfo", {"v1": 80, "v2": 30})
    with pytest.raises(octrix.ValidationError) as caught:
        rule.to_istio()
    fields = [field for field, _ in caught.value.errors]
    assert "service" in fields and "destinations" in fields
    assert caught.value.field == fields[0]
    with pytest.raises(octrix.ValidationError):
        rule.validate()
    with pytest.raises(octrix.ValidationError) as malformed:
        octrix.TrafficRule({"service": "a", "namespace": "b", "destinations": [{"subset": "v1", "labels": {}, "weight": -1}]})
    assert malformed.value.field == "destinations[0].weight"
    with pytest.raises(octrix.ValidationError) as version:
        octrix.TrafficRule.weighted("a", "b", {"v1": 100}).to_yaml("v2")
    assert version.value.field == "api_version"


def test_round_robin_skips_unhealthy_endpoints() -> None:
    balancer = octrix.LoadBalancer(["10.0.0.1:80", ("10.0.0.2:80", 1), {"address": "10.0.0.3:80", "weight": 1}])
    assert balancer.strategy is BalancingStrategy.ROUND_ROBIN
    picks = []
    for _ in range(6):
        pick = balancer.pick()
        picks.append(pick.address)
        balancer.complete(pick)
    assert picks == ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"] * 2
    assert balancer.set_health("10.0.0.2:80", False) is True
    assert balancer.set_health("10.0.0.2:80", False) is False
    assert balancer.healthy_count == 2
    seen = set()
    for _ in range(4):
        with balancer.pick() as address:
            seen.add(address)
    assert seen == {"10.0.0.1:80", "10.0.0.3:80"}
    assert all(s["outstanding"] == 0 for s in balancer.status())
    held = balancer.pick()
    assert sum(s["outstanding"] for s in balancer.status()) == 1
    assert held.index in (0, 2)


def test_weighted_and_least_outstanding() -> None:
    balancer = octrix.LoadBalancer([("a", 3), ("b", 1)], strategy="weighted")
    counts = {"a": 0, "b": 0}
    for _ in range(40):
        pick = balancer.pick()
        counts[pick.address] += 1
        balancer.complete(pick)
    assert counts == {"a": 30, "b": 10}
    balancer.strategy = BalancingStrategy.LEAST_OUTSTANDING
    held = balancer.pick()
    other = balancer.pick()
    assert {held.address, other.address} == {"a", "b"}
    balancer.set_weight("b", 5)
    assert balancer.status()[1]["weight"] == 5


def test_power_of_two_choices_is_reproducible_with_a_seed() -> None:
    def run() -> list[str]:
        balancer = octrix.LoadBalancer([f"e{i}" for i in range(5)], strategy="power_of_two_choices", seed=42)
        return [balancer.pick().address for _ in range(20)]

    assert run() == run()


def test_balancer_errors() -> None:
    balancer = octrix.LoadBalancer(["a"])
    balancer.set_health("a", False)
    with pytest.raises(octrix.NoHealthyEndpointError) as caught:
        balancer.pick()
    assert caught.value.total == 1
    with pytest.raises(octrix.UnknownEndpointError) as unknown:
        balancer.set_health("zzz", True)
    assert isinstance(unknown.value, KeyError) and unknown.value.address == "zzz"
    with pytest.raises(octrix.ConfigError) as duplicate:
        octrix.LoadBalancer(["a", "a"])
    assert duplicate.value.field == "endpoints[1].address"
    with pytest.raises(octrix.ConfigError) as zero:
        octrix.LoadBalancer([("a", 0)])
    assert zero.value.field == "endpoints[0].weight"
    with pytest.raises(octrix.ValidationError) as strategy:
        octrix.LoadBalancer(["a"], strategy="random")
    assert strategy.value.field == "strategy"
    balancer.replace_endpoints(["a", "b"])
    assert balancer.healthy_count == 1  # "a" keeps its health
    other = octrix.LoadBalancer(["b"])
    with pytest.raises(octrix.ValidationError) as foreign:
        balancer.complete(other.pick())
    assert foreign.value.field == "pick"
