"""Octrix's reliability core for Python.

Anomaly detection (:class:`WindowedZScore`, :class:`DetectorBank`), incidents
from Alertmanager webhooks with MTTA/MTTR (:class:`IncidentBook`), healing-rule
evaluation (:class:`HealingRules`), Istio manifests from traffic rules
(:class:`TrafficRule`), circuit breakers and load balancing, all running in
Octrix's Rust core.
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
    CircuitOpenError,
    ConfigError,
    Detection,
    DetectionBatch,
    DetectorBank,
    IllegalTransitionError,
    NoHealthyEndpointError,
    OctrixError,
    RejectedSampleError,
    SeriesLimitError,
    UnknownEndpointError,
    UnknownIncidentError,
    UnknownSeriesError,
    ValidationError,
    WindowedZScore,
)

__all__ = [
    "AlertStatus",
    "BalancingStrategy",
    "BreakerState",
    "CallOutcome",
    "Category",
    "CircuitOpenError",
    "ConfigError",
    "Detection",
    "DetectionBatch",
    "DetectorBank",
    "Direction",
    "Health",
    "IllegalTransitionError",
    "IncidentStatus",
    "IngestOutcome",
    "IstioApiVersion",
    "NoHealthyEndpointError",
    "OctrixError",
    "RejectedSampleError",
    "SeriesLimitError",
    "Severity",
    "UnknownEndpointError",
    "UnknownIncidentError",
    "UnknownSeriesError",
    "ValidationError",
    "WindowedZScore",
]
