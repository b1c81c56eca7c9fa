"""IncidentBook from captured Alertmanager payloads, lifecycle, MTTA/MTTR."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import octrix
from octrix import Category, IncidentStatus, IngestOutcome, Severity

from .conftest import T0, load


def test_a_firing_payload_opens_one_incident_per_alert(firing: dict[str, Any]) -> None:
    book = octrix.IncidentBook()
    [ingested] = book.ingest_alertmanager(firing, now=T0)
    assert ingested.outcome is IngestOutcome.OPENED
    assert ingested.incident_id == "INC-000001"
    assert ingested.fingerprint == "413724370af55eb6"
    assert ingested.reason is None
    incident = book["INC-000001"]
    assert incident.title == "node exporter 127.0.0.1:19100 is up"
    assert incident.severity is Severity.MEDIUM  # severity: warning
    assert incident.category is Category.ALERT
    assert incident.status is IncidentStatus.OPEN
    assert incident.service == "node"
    assert incident.environment == "probe"
    assert incident.labels["alertname"] == "NodeUp"
    assert incident.generator_url is not None and incident.generator_url.startswith("http://")
    assert incident.first_seen == T0
    assert incident.first_seen.tzinfo is not None
    assert incident.first_seen.utcoffset() == timedelta(0)
    assert incident.occurrence_started_at == datetime(
        2026, 11, 23, 9, 6, 35, 412000, tzinfo=timezone.utc
    )
    assert incident.acknowledged_at is None and incident.time_to_acknowledge is None
    [opened] = incident.timeline
    assert opened == {"at": T0, "actor": "octrix", "kind": "opened", "severity": "medium", "source": "alert"}
    assert "INC-000001" in book and len(book) == 1


def test_redelivery_is_a_duplicate_and_resolution_auto_resolves(
    firing: dict[str, Any], resolved_of_firing: dict[str, Any]
) -> None:
    book = octrix.IncidentBook()
    book.ingest_alertmanager(firing, now=T0)
    [again] = book.ingest_alertmanager(firing, now=T0 + timedelta(minutes=1))
    assert again.outcome is IngestOutcome.DUPLICATE
    book.acknowledge("INC-000001", "alice@example.com", note="on it", now=T0 + timedelta(minutes=2))
    [done] = book.ingest_alertmanager(resolved_of_firing, now=T0 + timedelta(minutes=10))
    assert done.outcome is IngestOutcome.AUTO_RESOLVED
    incident = book["INC-000001"]
    assert incident.status is IncidentStatus.RESOLVED
    assert incident.time_to_acknowledge == timedelta(minutes=2)
    assert incident.time_to_resolve == timedelta(minutes=10)
    assert incident.resolved_at == T0 + timedelta(minutes=10)
    kinds = [(entry["kind"], entry.get("to")) for entry in incident.timeline]
    assert kinds == [("opened", None), ("status_changed", "acknowledged"), ("status_changed", "resolved")]
    assert incident.timeline[1]["note"] == "on it"


def test_captured_amtool_firing_and_resolution_open_and_resolve() -> None:
    # amtool's firing alert started at 09:07:35.578108207; Alertmanager's
    # resolution carries startsAt 09:07:35 (truncated to the second): the
    # core compares occurrences at whole seconds, so it resolves.
    book = octrix.IncidentBook()
    [opened] = book.ingest_alertmanager(load("alertmanager-webhook-amtool-firing.json"), now=T0)
    assert opened.outcome == "opened"
    incident_id = opened.incident_id or ""
    assert book[incident_id].severity is Severity.CRITICAL
    assert book[incident_id].service == "api"
    [resolved] = book.ingest_alertmanager(
        load("alertmanager-webhook-resolved.json"), now=T0 + timedelta(minutes=3)
    )
    assert resolved.outcome is IngestOutcome.AUTO_RESOLVED
    assert resolved.incident_id == incident_id
    assert book[incident_id].time_to_resolve == timedelta(minutes=3)
    [again] = book.ingest_alertmanager(load("alertmanager-webhook-resolved.json"), now=T0)
    assert again.outcome is IngestOutcome.IGNORED and again.reason == "already_resolved"
    [unknown] = octrix.IncidentBook().ingest_alertmanager(load("alertmanager-webhook-resolved.json"))
    assert unknown.reason == "unknown_fingerprint" and unknown.incident_id is None


def test_lifecycle_errors_are_typed(firing: dict[str, Any]) -> None:
    book = octrix.IncidentBook()
    book.ingest_alertmanager(firing, now=T0)
    book.resolve("INC-000001", "bob", now=T0 + timedelta(minutes=5))
    with pytest.raises(octrix.IllegalTransitionError) as caught:
        book.acknowledge("INC-000001", "bob", now=T0 + timedelta(minutes=6))
    assert caught.value.incident_id == "INC-000001"
    assert (caught.value.from_status, caught.value.to_status) == ("resolved", "acknowledged")
    with pytest.raises(octrix.UnknownIncidentError) as missing:
        book.acknowledge("INC-999999", "bob")
    assert isinstance(missing.value, KeyError)
    assert missing.value.incident_id == "INC-999999"
    with pytest.raises(KeyError):
        book["INC-404"]
    assert book.get("INC-404") is None
    with pytest.raises(octrix.ValidationError) as empty:
        book.acknowledge("INC-000001", "  ")
    assert empty.value.field == "actor"
    reopened = book.reopen("INC-000001", "carol", note="still broken", now=T0 + timedelta(minutes=7))
    assert reopened.status is IncidentStatus.OPEN and reopened.resolved_at is None
    assigned = book.assign("INC-000001", "dave", "carol", now=T0 + timedelta(minutes=8))
    assert assigned.assignee == "dave"
    noted = book.add_note("INC-000001", "dave", "looking", now=T0 + timedelta(minutes=9))
    assert noted.timeline[-1]["kind"] == "note" and noted.timeline[-1]["text"] == "looking"


def test_malformed_payloads_name_the_field_and_change_nothing(firing: dict[str, Any]) -> None:
    book = octrix.IncidentBook()
    bad = copy.deepcopy(firing)
    bad["alerts"][0]["startsAt"] = "yesterday"
    with pytest.raises(octrix.ValidationError) as caught:
        book.ingest_alertmanager(bad)
    assert caught.value.field == "alerts[0].startsAt"
    assert str(caught.value).startswith("alerts[0].startsAt: ")
    bad = copy.deepcopy(firing)
    del bad["alerts"][0]["fingerprint"]
    with pytest.raises(octrix.ValidationError, match="fingerprint") as caught:
        book.ingest_alertmanager(bad)
    assert caught.value.field == "alerts[0]"
    bad = copy.deepcopy(firing)
    bad["alerts"][0]["status"] = "burning"
    with pytest.raises(octrix.ValidationError) as caught:
        book.ingest_alertmanager(bad)
    assert caught.value.field == "alerts[0].status"
    with pytest.raises(octrix.ValidationError) as caught:
        book.ingest_alertmanager({"alerts": [{"labels": {"a": 1}}]})
    assert caught.value.field == "alerts[0].labels.a"
    assert len(book) == 0


def test_single_alerts_accept_datetimes(firing: dict[str, Any]) -> None:
    alert = dict(firing["alerts"][0])
    alert["startsAt"] = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    book = octrix.IncidentBook()
    ingested = book.ingest_alert(alert, now=T0)
    assert ingested.outcome == "opened"
    assert book["INC-000001"].occurrence_started_at == alert["startsAt"]
    alert["startsAt"] = datetime(2026, 11, 23, 9, 0)
    with pytest.raises(octrix.ValidationError) as caught:
        book.ingest_alert(alert)
    assert caught.value.field == "startsAt"


def five_incidents() -> octrix.IncidentBook:
    book = octrix.IncidentBook()
    for i, (service, severity) in enumerate(
        [("api", "critical"), ("api", "warning"), ("web", "info"), ("db", "critical"), ("web", "warning")]
    ):
        book.ingest_alert(
            {
                "status": "firing",
                "labels": {"alertname": f"A{i}", "service": service, "severity": severity, "env": "prod"},
                "annotations": {"summary": f"alert {i} on {service}"},
                "startsAt": "2026-11-23T08:00:00Z",
                "fingerprint": f"fp{i}",
            },
            now=T0 + timedelta(minutes=i),
        )
    return book


def test_query_filters_sorts_and_pages() -> None:
    book = five_incidents()
    book.acknowledge("INC-000001", "a", now=T0 + timedelta(minutes=10))
    book.resolve("INC-000002", "a", now=T0 + timedelta(minutes=20))
    page = book.query(service="api")
    assert [i.id for i in page.items] == ["INC-000002", "INC-000001"]  # last_seen, newest first
    assert book.query(status="open").total == 3
    assert book.query(status=["open", "acknowledged"]).total == 4
    assert book.query(severity=Severity.CRITICAL).total == 2
    assert book.query(severity="critical", service="db").items[0].id == "INC-000004"
    assert book.query(text="ALERT 2").items[0].id == "INC-000003"
    assert book.query(environment="staging").total == 0
    ascending = book.query(sort="first_seen", descending=False, offset=1, limit=2)
    assert [i.id for i in ascending.items] == ["INC-000002", "INC-000003"]
    assert (ascending.total, ascending.offset, ascending.limit, len(ascending)) == (5, 1, 2, 2)
    opened = book.query(opened_from=T0 + timedelta(minutes=1), opened_until=T0 + timedelta(minutes=3))
    assert sorted(i.id for i in opened.items) == ["INC-000002", "INC-000003"]
    with pytest.raises(octrix.ValidationError) as caught:
        book.query(status="closed")
    assert caught.value.field == "status"
    with pytest.raises(octrix.ValidationError) as caught:
        book.query(limit=0)
    assert caught.value.field == "limit"
    with pytest.raises(octrix.ValidationError):
        book.query(sort="colour")


def test_stats_give_mtta_and_mttr() -> None:
    book = five_incidents()
    book.acknowledge("INC-000001", "a", now=T0 + timedelta(minutes=4))  # 4 min
    book.acknowledge("INC-000002", "a", now=T0 + timedelta(minutes=9))  # 8 min
    book.resolve("INC-000001", "a", now=T0 + timedelta(minutes=30))  # 30 min
    stats = book.stats()
    assert stats["total"] == 5
    assert stats["by_status"] == {"open": 3, "acknowledged": 1, "resolved": 1}
    assert stats["by_severity"] == {"low": 1, "medium": 2, "high": 0, "critical": 2}
    assert stats["by_service"] == {"api": 2, "db": 1, "web": 2}
    assert stats["mtta"] == {"count": 2, "mean": timedelta(minutes=6), "median": timedelta(minutes=6)}
    assert stats["mttr"] == {"count": 1, "mean": timedelta(minutes=30), "median": timedelta(minutes=30)}
    assert stats["range"] == {"start": None, "end": None}
    later = book.stats(start=T0 + timedelta(minutes=2))
    assert later["total"] == 3 and later["mtta"]["count"] == 0
    assert later["range"]["start"] == T0 + timedelta(minutes=2)


def test_to_dict_is_the_json_form_with_datetimes(firing: dict[str, Any]) -> None:
    book = octrix.IncidentBook()
    book.ingest_alertmanager(firing, now=T0)
    data = book["INC-000001"].to_dict()
    assert data["id"] == "INC-000001"
    assert data["status"] == "open" and data["severity"] == "medium"
    assert data["first_seen"] == T0 and data["last_seen"] == T0
    assert data["timeline"][0]["at"] == T0
    assert data["fingerprint"] == "413724370af55eb6"
    assert "acknowledged_at" not in data


def test_book_configuration_is_checked() -> None:
    book = octrix.IncidentBook({"default_alert_severity": "high", "auto_resolve": False})
    ingested = book.ingest_alert(
        {"status": "firing", "labels": {}, "startsAt": "2026-11-23T08:00:00Z", "fingerprint": "x"}
    )
    assert book[ingested.incident_id or ""].severity is Severity.HIGH
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.IncidentBook({"reopen_window": "-5m"})
    assert caught.value.field == "reopen_window"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.IncidentBook({"auto_resolve": "yes"})
    assert caught.value.field == "auto_resolve"


def test_severity_from_label() -> None:
    assert octrix.severity_from_label("warning") is Severity.MEDIUM
    assert octrix.severity_from_label("Critical") is Severity.CRITICAL
    assert octrix.severity_from_label("p2") is Severity.HIGH
    assert octrix.severity_from_label("whatever") is None
