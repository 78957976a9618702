"""Statistics for latency samples: robust to skew, honest about what cannot be told apart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_Z95 = 1.959964


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one cell's timed calls, in milliseconds."""

    n: int
    median_ms: float
    mean_ms: float
    std_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    ci_low_ms: float
    ci_high_ms: float

    @property
    def relative_halfwidth(self) -> float:
        """Half the width of the median's interval, as a share of the median."""
        if not self.median_ms:
            return math.inf
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.median_ms


def median_interval(values: Sequence[float], z: float = _Z95) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics.

    The ranks come from the normal approximation of the binomial; fit for skewed latency,
    where mean-based intervals mislead. With fewer than 6 values it is the full range.
    """
    return _interval_of_sorted(sorted(values), z)


def _interval_of_sorted(ordered: Sequence[float], z: float = _Z95) -> tuple[float, float]:
    n = len(ordered)
    if n == 0:
        return (math.nan, math.nan)
    if n < 6:
        return (float(ordered[0]), float(ordered[-1]))
    spread = z * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - spread) - 1)
    high = min(n - 1, math.ceil(n / 2 + spread))
    return (float(ordered[low]), float(ordered[high]))


def summarize(samples_ns: Sequence[int]) -> LatencyStats:
    """Statistics of per-call nanoseconds, in milliseconds; one sort serves them all."""
    import numpy as np

    values = np.sort(np.asarray(samples_ns, dtype=np.float64)) / 1e6
    low, high = _interval_of_sorted(values)
    return LatencyStats(
        n=int(values.size),
        median_ms=float(np.median(values)),
        mean_ms=float(values.mean()),
        std_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        min_ms=float(values[0]),
        ci_low_ms=low,
        ci_high_ms=high,
    )


@dataclass(frozen=True)
class Ratio:
    """A speed-up summarised over rounds: median of the per-round ratios and its interval."""

    value: float
    low: float
    high: float
    rounds: int

    @property
    def verdict(self) -> str:
        if self.rounds == 0 or math.isnan(self.value):
            return "not measured"
        if self.low > 1.0:
            return "faster"
        if self.high < 1.0:
            return "slower"
        return "not distinguishable"


def ratio_over_rounds(baseline_ms: Sequence[float], candidate_ms: Sequence[float]) -> Ratio:
    """Speed-up of a candidate over a baseline, from round medians measured side by side."""
    ratios = [
        base / cand
        for base, cand in zip(baseline_ms, candidate_ms, strict=False)
        if base > 0 and cand > 0 and not (math.isnan(base) or math.isnan(cand))
    ]
    if not ratios:
        return Ratio(math.nan, math.nan, math.nan, 0)
    ordered = sorted(ratios)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    low, high = median_interval(ordered)
    return Ratio(value, low, high, len(ordered))
