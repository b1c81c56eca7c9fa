"""The FastAPI example, driven by TestClient with captured Alertmanager payloads."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import create_app

DATA = Path(__file__).resolve().parent / "data"
START = datetime(2026, 11, 23, 9, 7, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def payload(name: str) -> dict[str, Any]:
    with (DATA / name).open(encoding="utf-8") as file:
        loaded: dict[str, Any] = json.load(file)
    return loaded


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> TestClient:
    return TestClient(create_app(clock=clock))


def test_webhook_opens_deduplicates_and_resolves(client: TestClient, clock: Clock) -> None:
    firing = payload("alertmanager-webhook-firing.json")
    answer = client.post("/alerts", json=firing)
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 1,
        "results": [
            {"fingerprint": "413724370af55eb6", "outcome": "opened", "incident_id": "INC-000001", "reason": None}
        ],
    }
    clock.now += timedelta(minutes=1)
    again = client.post("/alerts", json=firing).json()
    assert again["results"][0]["outcome"] == "duplicate"

    incident = client.get("/incidents/INC-000001").json()
    assert incident["title"] == "node exporter 127.0.0.1:19100 is up"
    assert incident["severity"] == "medium"
    assert incident["first_seen"] == "2026-11-23T09:07:00Z"
    assert incident["last_seen"] == "2026-11-23T09:08:00Z"

    clock.now += timedelta(minutes=1)
    acked = client.post("/incidents/INC-000001/acknowledge", json={"actor": "alice", "note": "on it"})
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"

    clock.now += timedelta(minutes=8)
    resolved = copy.deepcopy(firing)
    resolved["status"] = "resolved"
    resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-23T09:16:35.412Z"
    done = client.post("/alerts", json=resolved).json()
    assert done["results"][0]["outcome"] == "auto_resolved"

    stats = client.get("/stats").json()
    assert stats["total"] == 1
    assert stats["mtta"] == {"count": 1, "mean_seconds": 120.0, "median_seconds": 120.0}
    assert stats["mttr"] == {"count": 1, "mean_seconds": 600.0, "median_seconds": 600.0}


def test_incidents_are_filtered(client: TestClient) -> None:
    client.post("/alerts", json=payload("alertmanager-webhook-firing.json"))
    client.post("/alerts", json=payload("alertmanager-webhook-amtool-firing.json"))
    everything = client.get("/incidents").json()
    assert everything["total"] == 2
    critical = client.get("/incidents", params={"severity": "critical"}).json()
    assert [i["labels"]["alertname"] for i in critical["items"]] == ["ManualAlert"]
    by_service = client.get("/incidents", params={"service": "node"}).json()
    assert [i["id"] for i in by_service["items"]] == ["INC-000001"]
    both = client.get("/incidents", params=[("severity", "critical"), ("severity", "medium")]).json()
    assert both["total"] == 2
    assert client.get("/incidents", params={"status": "resolved"}).json()["total"] == 0
    assert client.get("/incidents", params={"q": "amtool"}).json()["total"] == 1
    paged = client.get("/incidents", params={"limit": 1, "offset": 1}).json()
    assert (paged["total"], len(paged["items"])) == (2, 1)
    assert client.get("/incidents", params={"status": "closed"}).status_code == 422


def test_errors_become_http_answers(client: TestClient) -> None:
    broken = payload("alertmanager-webhook-firing.json")
    broken["alerts"][0]["startsAt"] = "not a time"
    answer = client.post("/alerts", json=broken)
    assert answer.status_code == 422
    assert answer.json()["field"] == "alerts[0].startsAt"
    assert client.get("/incidents/INC-424242").status_code == 404
    client.post("/alerts", json=payload("alertmanager-webhook-firing.json"))
    client.post("/incidents/INC-000001/resolve", json={"actor": "bob"})
    conflict = client.post("/incidents/INC-000001/acknowledge", json={"actor": "bob"})
    assert conflict.status_code == 409
    assert "resolved" in conflict.json()["detail"]


def test_detect_returns_the_anomalies_of_a_batch(client: TestClient) -> None:
    samples = [100.0 + (i % 5) for i in range(40)]
    samples[30] = 180.0
    answer = client.post("/detect", json={"samples": samples})
    assert answer.status_code == 200
    body = answer.json()
    assert body["samples"] == 40 and body["judged"] == 20
    [spike] = [a for a in body["anomalies"] if a["index"] == 30]
    assert spike["value"] == 180.0 and spike["direction"] == "above"
    assert spike["z"] > 2.5 and spike["confidence"] == 1.0
    assert math.isclose(spike["score"], spike["z"] / (spike["z"] + 2.5))
    tight = client.post("/detect", json={"samples": samples, "window": 5, "sensitivity": 1.0}).json()
    assert tight["judged"] == 35 and len(tight["anomalies"]) >= len(body["anomalies"])
    assert client.post("/detect", json={"samples": []}).status_code == 422
    assert client.post("/detect", json={"samples": [1.0], "window": 1}).status_code == 422
