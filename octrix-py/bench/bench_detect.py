"""Rolling z-score anomaly detection over one series, three ways, one run.

* Octrix: ``DetectorBank.observe_many`` on a numpy float64 array (read in
  place, GIL released): every sample's z-score against the 20 samples before
  it, plus the full detection of each anomaly; the z-scores and the anomaly
  positions as numpy arrays.
* pandas: ``rolling(20)`` mean and population standard deviation, shifted by
  one so that each sample is judged against the samples before it, then the
  z-score and ``|z| > 2.5``; the anomaly positions as a numpy array.
* pure Python: a ``deque`` window of 20 with running sums, the same formula.

All three must agree (same anomalies, z-scores within 1e-6): the script
checks it before printing the figures. Each figure is the median of
``--repeat`` runs; the ratios come from the same run.

Usage: python octrix-py/bench/bench_detect.py [--samples N] [--repeat R]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import numpy.typing as npt
import pandas as pd

import octrix

WINDOW = 20
SENSITIVITY = 2.5
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)

Floats = npt.NDArray[np.float64]
# numpy arrays from Octrix and pandas, a list from pure Python.
Positions = npt.NDArray[np.int64] | list[int]


def series(samples: int) -> Floats:
    """Latency-like samples around 100 with a spike every 5,000 samples."""
    rng = np.random.default_rng(2026)
    values = rng.normal(100.0, 5.0, samples)
    values[::5000] += 60.0
    return values


def octrix_bank(values: Floats, run: int) -> tuple[Floats, Positions]:
    """Octrix's DetectorBank, a fresh series per run."""
    bank = octrix.DetectorBank()
    batch = bank.observe_many("latency_ms", {"run": str(run)}, values, at=AT)
    return batch.z_scores(), batch.anomaly_index_array()


def pandas_rolling(values: Floats, _run: int) -> tuple[Floats, Positions]:
    """pandas: rolling mean and population std of the previous 20 samples."""
    s = pd.Series(values)
    rolling = s.rolling(WINDOW)
    mean = rolling.mean().shift(1)
    std = rolling.std(ddof=0).shift(1)
    z = (s - mean) / std
    anomalies = np.flatnonzero((z.abs() > SENSITIVITY).to_numpy())
    return z.to_numpy(), anomalies


def pure_python(values: Floats, _run: int) -> tuple[Floats, Positions]:
    """A deque window of 20 with a running sum and sum of squares."""
    window: deque[float] = deque()
    total = 0.0
    total_sq = 0.0
    z_scores: list[float] = []
    anomalies: list[int] = []
    for index, value in enumerate(values.tolist()):
        if len(window) == WINDOW:
            mean = total / WINDOW
            variance = max(total_sq / WINDOW - mean * mean, 0.0)
            z = (value - mean) / math.sqrt(variance) if variance > 0 else 0.0
            z_scores.append(z)
            if abs(z) > SENSITIVITY:
                anomalies.append(index)
            oldest = window.popleft()
            total -= oldest
            total_sq -= oldest * oldest
        else:
            z_scores.append(math.nan)
        window.append(value)
        total += value
        total_sq += value * value
    return np.asarray(z_scores), anomalies


def measure(
    function: Callable[[Floats, int], tuple[Floats, Positions]], values: Floats, repeat: int
) -> tuple[float, Floats, Positions]:
    """Median seconds of `repeat` runs, and the last run's result."""
    times = []
    result: tuple[Floats, Positions] = (values, [])
    for run in range(repeat):
        start = time.perf_counter()
        result = function(values, run)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--python-repeat", type=int, default=3)
    args = parser.parse_args()

    values = series(args.samples)
    octrix_s, octrix_z, octrix_anomalies = measure(octrix_bank, values, args.repeat)
    pandas_s, pandas_z, pandas_anomalies = measure(pandas_rolling, values, args.repeat)
    python_s, python_z, python_anomalies = measure(pure_python, values, args.python_repeat)

    # Same answers before any figure is believed.
    assert np.array_equal(octrix_anomalies, pandas_anomalies), "anomalies differ"
    assert np.array_equal(octrix_anomalies, python_anomalies), "anomalies differ"
    judged = slice(WINDOW, None)
    np.testing.assert_allclose(octrix_z[judged], pandas_z[judged], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(octrix_z[judged], python_z[judged], rtol=1e-6, atol=1e-6)

    def rate(seconds: float) -> str:
        return f"{args.samples / seconds / 1e6:.1f} M samples/s"

    print(
        f"# {args.samples:,} samples, window {WINDOW}, sensitivity {SENSITIVITY}, "
        f"{len(octrix_anomalies)} anomalies (all three agree)"
    )
    print(
        f"# Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print("| implementation | median time | throughput | Octrix is |")
    print("|---|---|---|---|")
    print(f"| Octrix `DetectorBank.observe_many` (numpy array) | {octrix_s * 1e3:.2f} ms | {rate(octrix_s)} | - |")
    print(
        f"| pandas `rolling(20)` mean/std z-score | {pandas_s * 1e3:.2f} ms | {rate(pandas_s)} "
        f"| **{pandas_s / octrix_s:.1f}x faster** |"
    )
    print(
        f"| pure Python, deque window 20 with running sums | {python_s * 1e3:.1f} ms | {rate(python_s)} "
        f"| **{python_s / octrix_s:.0f}x faster** |"
    )


if __name__ == "__main__":
    main()
