"""Octrix's reliability core for Python.

Anomaly detection (:class:`WindowedZScore`, :class:`DetectorBank`), severity
classification (:class:`Classifier`, :func:`severity_from_label`), incidents
from Alertmanager webhooks with MTTA/MTTR (:class:`IncidentBook`),
healing-rule evaluation (:class:`HealingRules`), Istio manifests from traffic
rules (:class:`TrafficRule`), circuit breakers (:class:`CircuitBreaker`),
load balancing (:class:`LoadBalancer`) and chaos scenario validation
(:class:`ChaosScenario`), all running in Octrix's Rust core.

Timestamps are timezone-aware UTC :class:`datetime.datetime` values, durations
:class:`datetime.timedelta`, enumerations the :class:`enum.StrEnum` classes
below, and every error an :class:`OctrixError`.
"""

from __future__ import annotations

from octrix._enums import (
    AlertStatus,
    BalancingStrategy,
    BreakerState,
    CallOutcome,
    Category,
    Direction,
    Health,
    IncidentStatus,
    IngestOutcome,
    IstioApiVersion,
    Severity,
)
from octrix._octrix import (
    CallPermit,
    ChaosError,
    ChaosScenario,
    CircuitBreaker,
    CircuitOpenError,
    Classifier,
    ConfigError,
    Detection,
    DetectionBatch,
    DetectorBank,
    HealingRules,
    IllegalTransitionError,
    Incident,
    IncidentBook,
    IncidentPage,
    Ingested,
    LoadBalancer,
    ManualClock,
    NoHealthyEndpointError,
    OctrixError,
    Pick,
    RejectedSampleError,
    SeriesLimitError,
    TrafficRule,
    UnknownEndpointError,
    UnknownIncidentError,
    UnknownSeriesError,
    ValidationError,
    WindowedZScore,
    severity_from_label,
)

__all__ = [
    "AlertStatus",
    "BalancingStrategy",
    "BreakerState",
    "CallOutcome",
    "CallPermit",
    "Category",
    "ChaosError",
    "ChaosScenario",
    "CircuitBreaker",
    "CircuitOpenError",
    "Classifier",
    "ConfigError",
    "Detection",
    "DetectionBatch",
    "DetectorBank",
    "Direction",
    "HealingRules",
    "Health",
    "IllegalTransitionError",
    "Incident",
    "IncidentBook",
    "IncidentPage",
    "IncidentStatus",
    "IngestOutcome",
    "Ingested",
    "IstioApiVersion",
    "LoadBalancer",
    "ManualClock",
    "NoHealthyEndpointError",
    "OctrixError",
    "Pick",
    "RejectedSampleError",
    "SeriesLimitError",
    "Severity",
    "TrafficRule",
    "UnknownEndpointError",
    "UnknownIncidentError",
    "UnknownSeriesError",
    "ValidationError",
    "WindowedZScore",
    "severity_from_label",
]
