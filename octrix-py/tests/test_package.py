"""The package surface: re-exports, the exception hierarchy, enums."""

from __future__ import annotations

import inspect

import octrix
import octrix._octrix as native


def test_everything_native_is_re_exported_and_documented() -> None:
    for name in native.__all__:
        assert getattr(octrix, name) is getattr(native, name)
        assert name in octrix.__all__
        assert inspect.getdoc(getattr(native, name)), name
    for name in octrix.__all__:
        assert hasattr(octrix, name)


def test_one_exception_hierarchy_with_builtin_bases() -> None:
    expected = {
        "ConfigError": ValueError,
        "ValidationError": ValueError,
        "RejectedSampleError": ValueError,
        "UnknownSeriesError": KeyError,
        "UnknownIncidentError": KeyError,
        "UnknownEndpointError": KeyError,
        "IllegalTransitionError": None,
        "NoHealthyEndpointError": None,
        "CircuitOpenError": None,
        "SeriesLimitError": None,
        "ChaosError": None,
    }
    for name, builtin in expected.items():
        cls = getattr(octrix, name)
        assert issubclass(cls, octrix.OctrixError), name
        assert cls.__module__ == "octrix"
        if builtin is not None:
            assert issubclass(cls, builtin), name
    assert issubclass(octrix.OctrixError, Exception)


def test_enums_are_str_values() -> None:
    assert octrix.Severity("medium") is octrix.Severity.MEDIUM
    assert octrix.Severity.CRITICAL == "critical"
    assert octrix.Severity.HIGH.rank == 2
    assert [c.value for c in octrix.Category][:2] == ["pod-crash", "high-cpu"]
    assert octrix.BreakerState.HALF_OPEN == "half_open"
