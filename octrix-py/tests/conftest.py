"""Shared fixtures: fixed instants and captured Alertmanager payloads."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[2] / "examples" / "fastapi" / "data"

#: Just after the captured firing alert started (2026-11-23T09:06:35.412Z).
T0 = datetime(2026, 11, 23, 9, 7, 0, tzinfo=timezone.utc)


def load(name: str) -> dict[str, Any]:
    """A captured payload, parsed."""
    with (DATA / name).open(encoding="utf-8") as file:
        payload: dict[str, Any] = json.load(file)
    return payload


@pytest.fixture
def firing() -> dict[str, Any]:
    """Alertmanager's webhook delivery of a firing NodeUp alert (captured)."""
    return load("alertmanager-webhook-firing.json")


@pytest.fixture
def resolved_of_firing(firing: dict[str, Any]) -> dict[str, Any]:
    """The same group resolved, as Alertmanager sends it ten minutes later."""
    payload = copy.deepcopy(firing)
    payload["status"] = "resolved"
    for alert in payload["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-23T09:16:35.412Z"
    return payload
