"""WindowedZScore, DetectorBank, Detection and DetectionBatch."""

from __future__ import annotations

import array
import math
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import octrix
from octrix import Direction

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_windowed_zscore_matches_the_core_example() -> None:
    detector = octrix.WindowedZScore(window=4, sensitivity=2.0, min_samples=3)
    warmup = [detector.observe(v) for v in (10.0, 12.0, 11.0)]
    assert all(not d.judged and d.confidence == 0.0 and d.z == 0.0 for d in warmup)
    # Judged against [10, 12, 11]: mean 11, population std 0.816.
    detection = detector.observe(13.0)
    assert detection.judged
    assert detection.z == pytest.approx(2.449489742783178, abs=1e-12)
    assert detection.is_anomaly
    assert detection.direction is Direction.ABOVE
    assert detection.direction == "above"
    assert detection.score == pytest.approx(detection.z / (detection.z + 2.0))
    assert detection.confidence == pytest.approx(0.5 + detection.z / 10)
    assert detection.to_dict() == {
        "score": detection.score,
        "z": detection.z,
        "direction": "above",
        "is_anomaly": True,
        "confidence": detection.confidence,
    }
    assert detector.mean == pytest.approx(11.5)  # window now [10, 12, 11, 13]
    assert (detector.window, detector.sensitivity, detector.min_samples) == (4, 2.0, 3)


def test_a_spike_after_a_calm_signal_is_an_anomaly_below_too() -> None:
    detector = octrix.WindowedZScore()
    for i in range(20):
        assert not detector.observe(100.0 + i % 5).is_anomaly
    dip = detector.observe(50.0)
    assert dip.is_anomaly and dip.direction is Direction.BELOW and dip.z < -2.5
    assert dip.confidence == 1.0


def test_rejected_samples_raise_are_counted_and_forgotten() -> None:
    detector = octrix.WindowedZScore(window=3)
    with pytest.raises(octrix.RejectedSampleError) as caught:
        detector.observe(math.nan)
    assert math.isnan(caught.value.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, octrix.OctrixError)
    with pytest.raises(octrix.RejectedSampleError, match="exceeds the limit"):
        detector.observe(1e200)
    assert detector.rejected == 2
    assert detector.mean is None


def test_invalid_configuration_names_the_field() -> None:
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.WindowedZScore(window=1)
    assert caught.value.field == "window"
    [(field, message)] = caught.value.errors
    assert field == "window" and message.startswith("must be between 2 and ") and message.endswith(", got 1")
    with pytest.raises(ValueError, match="min_samples"):
        octrix.WindowedZScore(window=5, min_samples=9)


def reference(values: list[float], window: int) -> list[float]:
    """z-scores by a two-pass recompute over the previous `window` values."""
    out = []
    for i, value in enumerate(values):
        if i < window:
            out.append(math.nan)
            continue
        past = values[i - window : i]
        mean = sum(past) / window
        std = math.sqrt(sum((x - mean) ** 2 for x in past) / window)
        out.append((value - mean) / std)
    return out


def test_observe_many_equals_one_by_one_for_lists_arrays_and_buffers() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(50.0, 3.0, 500)
    values[300] = 120.0
    expected = reference(values.tolist(), 20)
    for given in (values, values.tolist(), array.array("d", values), memoryview(values)):
        batch = octrix.WindowedZScore().observe_many(given)
        assert len(batch) == 500
        z = batch.z_scores()
        assert z.dtype == np.float64 and z.shape == (500,)
        assert np.isnan(z[:20]).all()
        np.testing.assert_allclose(z[20:], expected[20:], rtol=1e-9)
        assert 300 in batch.anomaly_indices
        assert batch.anomaly_count == len(batch.anomalies)
    one_by_one = octrix.WindowedZScore()
    singles = [one_by_one.observe(v) for v in values]
    batch = octrix.WindowedZScore().observe_many(values)
    assert [i for i, d in enumerate(singles) if d.is_anomaly] == batch.anomaly_indices
    for index, detection in batch.anomalies:
        assert detection == singles[index]


def test_observe_many_reads_strided_and_integer_input() -> None:
    values = np.arange(100, dtype=np.float64)
    strided = octrix.WindowedZScore(window=3).observe_many(values[::2])
    assert len(strided) == 50
    ints = octrix.WindowedZScore(window=3).observe_many(np.arange(0, 100, 2))
    assert ints.z_list()[3:] == strided.z_list()[3:]


def test_batches_list_rejected_samples_instead_of_raising() -> None:
    detector = octrix.WindowedZScore(window=2)
    batch = detector.observe_many([1.0, math.nan, 2.0, math.inf, 3.0])
    assert batch.rejected == [1, 3]
    z = batch.z_list()
    assert math.isnan(z[1]) and math.isnan(z[3])
    # [1, 2] has mean 1.5 and std 0.5: 3 is three deviations above.
    assert z[4] == pytest.approx(3.0)
    assert detector.rejected == 2
    assert repr(batch) == "DetectionBatch(samples=5, anomalies=1, rejected=2)"


def test_bad_sample_containers_are_validation_errors() -> None:
    with pytest.raises(octrix.ValidationError) as caught:
        octrix.WindowedZScore().observe_many("12")
    assert caught.value.field == "values"
    with pytest.raises(octrix.ValidationError):
        octrix.WindowedZScore().observe_many([1.0, "x"])


def test_the_gil_is_released_during_batches() -> None:
    values = np.random.default_rng(1).normal(0, 1, 2_000_000)
    done = threading.Event()
    ticks = 0

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        bank = octrix.DetectorBank()
        for _ in range(3):
            bank.observe_many("m", {}, values, at=T0)
    finally:
        done.set()
        thread.join()
    # Python code ran while Rust worked: the GIL was not held all along.
    assert ticks > 0


def test_bank_series_follow_their_metric_configuration() -> None:
    bank = octrix.DetectorBank(
        {
            "default": {"sensitivity": 3.0},
            "metrics": {"latency": {"window": 5, "min_samples": 3}},
            "idle_ttl": timedelta(minutes=1),
            "max_series": 2,
        }
    )
    assert bank.config["idle_ttl"] == "PT1M"
    assert bank.bytes_per_series("latency") < bank.bytes_per_series("cpu")
    pod = {"pod": "api-0"}
    for i in range(3):
        assert not bank.observe("latency", pod, 10.0 + i % 2, at=T0).judged
    judged = bank.observe("latency", pod, 30.0, at=T0)
    assert judged.judged and judged.is_anomaly
    assert bank.contains("latency", {"pod": "api-0"})
    assert not bank.contains("latency", {"pod": "api-1"})
    assert len(bank) == 1
    bank.observe("cpu", pod, 1.0, at=T0)
    with pytest.raises(octrix.SeriesLimitError) as caught:
        bank.observe("cpu", {"pod": "api-9"}, 1.0, at=T0)
    assert caught.value.max_series == 2
    assert caught.value.series == 'cpu{pod="api-9"}'
    assert bank.counters == {
        "series_created": 2,
        "series_evicted": 0,
        "series_limit_hits": 1,
        "rejected_values": 0,
    }
    assert bank.evict_idle(now=T0 + timedelta(seconds=30)) == 0
    assert bank.evict_idle(now=T0 + timedelta(minutes=2)) == 2
    assert len(bank) == 0


def test_bank_batches_match_a_standalone_detector() -> None:
    values = np.random.default_rng(3).normal(10, 2, 1000)
    batch = octrix.DetectorBank().observe_many("m", {"a": "b"}, values, at=T0)
    alone = octrix.WindowedZScore().observe_many(values)
    assert batch.z_list()[20:] == alone.z_list()[20:]
    assert batch.anomaly_indices == alone.anomaly_indices


def test_bank_configuration_from_yaml_and_toml_names_bad_fields() -> None:
    bank = octrix.DetectorBank.from_yaml("idle_ttl: 30m\ndefault: {window: 10}\n")
    assert bank.config["default"]["window"] == 10
    bank = octrix.DetectorBank.from_toml('idle_ttl = "5m"\n[metrics.cpu]\nwindow = 7\n')
    assert bank.config["metrics"]["cpu"]["window"] == 7
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.DetectorBank({"metrics": {"cpu": {"window": 1}}})
    assert caught.value.field == "metrics.cpu.window"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.DetectorBank({"default": {"windw": 3}})
    assert caught.value.field == "default.windw"
    with pytest.raises(octrix.ConfigError) as caught:
        octrix.DetectorBank.from_yaml("max_series: many\n")
    assert caught.value.field == "max_series"


def test_naive_datetimes_are_refused_with_the_argument_name() -> None:
    bank = octrix.DetectorBank()
    with pytest.raises(octrix.ValidationError) as caught:
        bank.observe("m", {}, 1.0, at=datetime(2026, 1, 1))
    assert caught.value.field == "at"
    with pytest.raises(octrix.ValidationError, match="timezone-aware"):
        bank.evict_idle(now="yesterday")  # type: ignore[arg-type]


def test_long_bank_batches_agree_with_one_by_one_observation() -> None:
    # Long enough for the core's block kernel, at an offset where naive
    # sums fail, with a flat stretch, a spike and rejected samples.
    values = np.random.default_rng(5).normal(1e9, 1.0, 50_000)
    values[10_000:10_100] = 1e9
    values[20_000] += 50.0
    values[[30_000, 30_001]] = [math.nan, math.inf]
    bank = octrix.DetectorBank()
    batch = bank.observe_many("m", {}, values, at=T0, threads=2)
    one_by_one = octrix.WindowedZScore()
    expected = []
    for value in values:
        try:
            expected.append(one_by_one.observe(value))
        except octrix.RejectedSampleError:
            expected.append(None)
    z = batch.z_scores()
    assert z is batch.z_scores()  # the array written by the core, no copy
    want = np.array([d.z if d is not None and d.judged else math.nan for d in expected])
    np.testing.assert_allclose(z, want, rtol=1e-9, atol=0.0)
    assert batch.anomaly_indices == [i for i, d in enumerate(expected) if d and d.is_anomaly]
    assert 20_000 in batch.anomaly_indices
    assert batch.rejected == [30_000, 30_001]
    assert (z[10_020:10_100] == 0.0).all()  # flat windows: exactly zero variance
    assert bank.counters["rejected_values"] == 2
    # The series continues exactly as the one-by-one detector does.
    for value in (1e9 + 0.5, 1e9 - 2.0, 1e9 + 9.0):
        assert bank.observe("m", {}, value, at=T0) == one_by_one.observe(value)
    with pytest.raises(octrix.ValidationError) as caught:
        bank.observe_many("m", {}, values, at=T0, threads=0)
    assert caught.value.field == "threads"


def test_bank_batches_write_into_a_given_array_and_name_a_bad_one() -> None:
    values = np.random.default_rng(9).normal(100.0, 5.0, 10_000)
    values[5_000] += 60.0
    expected = octrix.DetectorBank().observe_many("m", {}, values, at=T0)
    out = np.full(len(values), 7.0)
    batch = octrix.DetectorBank().observe_many("m", {}, values, at=T0, out=out)
    assert batch.z_scores() is out
    np.testing.assert_array_equal(out, expected.z_scores())  # NaN where not judged
    assert np.isnan(out[:20]).all() and not np.isnan(out[20:]).any()
    bank = octrix.DetectorBank()
    for bad, message in (
        (np.zeros(len(values) - 1), "one value per sample"),
        (np.zeros(len(values), dtype=np.float32), "float64"),
        ([0.0] * len(values), "float64"),
        (values, "borrow"),  # the input itself: read and written at once
    ):
        with pytest.raises(octrix.ValidationError, match=message) as caught:
            bank.observe_many("m", {}, values, at=T0, out=bad)
        assert caught.value.field == "out"
    assert len(bank) == 0  # nothing observed


def test_anomaly_positions_come_as_an_int64_array_too() -> None:
    values = np.random.default_rng(4).normal(100.0, 5.0, 20_000)
    values[::5_000] += 60.0
    batch = octrix.DetectorBank().observe_many("m", {}, values, at=T0)
    positions = batch.anomaly_index_array()
    assert positions.dtype == np.int64
    assert positions.tolist() == batch.anomaly_indices
    assert {5_000, 10_000, 15_000} <= set(positions.tolist())
    assert [i for i, _ in batch.anomalies] == batch.anomaly_indices
