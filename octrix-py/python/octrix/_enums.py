"""The str enums of Octrix's values.

Each is an :class:`enum.StrEnum`: a member compares equal to its value
(``Severity.MEDIUM == "medium"``), so plain strings are accepted wherever a
member is expected, and values returned by Octrix serialise as plain strings.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AlertStatus",
    "BalancingStrategy",
    "BreakerState",
    "CallOutcome",
    "Category",
    "Direction",
    "Health",
    "IncidentStatus",
    "IngestOutcome",
    "IstioApiVersion",
    "Severity",
]


class Severity(StrEnum):
    """How bad a signal or an incident is, from low to critical."""

    LOW = "low"
    """Minor issue; auto-healing recommended."""
    MEDIUM = "medium"
    """Moderate issue; auto-healing attempted."""
    HIGH = "high"
    """Significant issue; escalated to people."""
    CRITICAL = "critical"
    """Severe issue; immediate escalation."""

    @property
    def rank(self) -> int:
        """Position from low (0) to critical (3)."""
        return list(Severity).index(self)


class Category(StrEnum):
    """The kind of problem a signal or an incident is about."""

    POD_CRASH = "pod-crash"
    HIGH_CPU = "high-cpu"
    HIGH_MEMORY = "high-memory"
    OOM_KILLED = "oom-killed"
    NODE_PRESSURE = "node-pressure"
    NODE_NOT_READY = "node-not-ready"
    PERSISTENT_RESTARTS = "persistent-restarts"
    ANOMALY = "anomaly"
    ALERT = "alert"


class Direction(StrEnum):
    """On which side of the window's mean a sample lies."""

    ABOVE = "above"
    BELOW = "below"
    AT_MEAN = "at_mean"


class IncidentStatus(StrEnum):
    """Where an incident is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertStatus(StrEnum):
    """Whether an alert is firing."""

    FIRING = "firing"
    RESOLVED = "resolved"


class IngestOutcome(StrEnum):
    """What ingesting one alert did to the incident book."""

    OPENED = "opened"
    """A new incident was opened."""
    REOPENED = "reopened"
    """A recently resolved incident was reopened."""
    RECURRED = "recurred"
    """An active incident's problem started again (a new firing episode)."""
    DUPLICATE = "duplicate"
    """A redelivery of what an active incident already holds."""
    AUTO_RESOLVED = "auto_resolved"
    """The alert resolved at its source, so the incident was."""
    IGNORED = "ignored"
    """Nothing changed (see ``Ingested.reason``)."""


class BreakerState(StrEnum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CallOutcome(StrEnum):
    """How a call made through a circuit breaker counts."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


class BalancingStrategy(StrEnum):
    """How a load balancer chooses among healthy endpoints."""

    ROUND_ROBIN = "round_robin"
    LEAST_OUTSTANDING = "least_outstanding"
    WEIGHTED = "weighted"
    POWER_OF_TWO_CHOICES = "power_of_two_choices"


class Health(StrEnum):
    """Whether a load balancer endpoint may receive traffic."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class IstioApiVersion(StrEnum):
    """Which ``networking.istio.io`` API version to generate."""

    V1 = "v1"
    V1BETA1 = "v1beta1"
