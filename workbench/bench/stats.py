"""Statistics for latency samples: robust to skew, honest about what cannot be told apart."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_Z95 = 1.959964
OUTLIER_K = 3.5
"""A call is an outlier when its log-latency lies more than this many robust standard deviations
(1.4826 × the median absolute deviation) from the median: about 1 in 2000 calls of normal noise."""
OUTLIER_FLOOR = 0.5
"""...and when it is also more than 1.5 times slower (or faster) than the median. On a quiet
machine the spread can be under 1%, and a call 5% slow is then no sign of interference."""
MIN_ROUNDS = 4
"""Fewer round medians than this are too few to resample; the samples are used instead."""


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


STAT_NAMES = tuple(field.name for field in dataclasses.fields(LatencyStats))
"""The statistics of a cell, in the order tables show them."""


@dataclass(frozen=True)
class Ratio:
    """A speed-up with its 95% interval; above 1 the candidate is faster."""

    value: float
    low: float
    high: float
    rounds: int
    basis: str = "paired rounds"
    """What the interval rests on: "paired rounds", "round medians" or "samples"; ``rounds``
    counts the rounds, or the samples of the smaller run when the basis is "samples"."""

    @property
    def verdict(self) -> str:
        """A side is taken only when the whole interval lies on that side of 1."""
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


def bootstrap_ratio(
    a_samples: Sequence[float],
    b_samples: Sequence[float],
    *,
    rounds: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Ratio:
    """median(a) / median(b) of two independent runs, with a percentile bootstrap interval.

    ``rounds`` resamples are drawn; given latencies, a value above 1 means b is faster. Calls
    within a run are correlated (the latency moves between levels), so this interval is too
    narrow for runs that drifted; prefer :func:`bootstrap_ratio_rounds` when round medians are
    at hand.
    """
    ratio = _bootstrap(a_samples, b_samples, rounds, seed, confidence)
    return Ratio(*ratio, min(_finite_count(a_samples), _finite_count(b_samples)), "samples")


def bootstrap_ratio_rounds(
    a_round_medians: Sequence[float],
    b_round_medians: Sequence[float],
    *,
    rounds: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Ratio:
    """The same ratio from the medians of each run's rounds, resampled as whole blocks.

    A round is a short stretch of calls, so a level shift stays inside the blocks it hit and
    widens the interval as it should. Rounds that were not measured (NaN) are left out.
    """
    ratio = _bootstrap(a_round_medians, b_round_medians, rounds, seed, confidence)
    count = min(_finite_count(a_round_medians), _finite_count(b_round_medians))
    return Ratio(*ratio, count, "round medians")


RUN_TO_RUN = 0.02
"""Relative standard deviation assumed for a whole run's level, from run to run.

NOTE: measured at 0.9–1.4% on a 2-core VM (benchmarks/rerun_coverage.py); the default leaves
room above that. Within-run intervals cannot see this wander at all.
"""


def rerun_interval(
    stats: LatencyStats, run_to_run: float = RUN_TO_RUN, z: float = _Z95
) -> tuple[float, float]:
    """Where the median of a re-run of the same cell should fall, 95% of the time.

    Two runs differ by their sampling error and by their levels, each run having both: on the
    log scale the interval is √2 times the within-run half-width and the run-to-run spread
    added in quadrature.
    """
    median = stats.median_ms
    if not (median > 0 and stats.ci_low_ms > 0 and stats.ci_high_ms > 0):
        return (math.nan, math.nan)
    between = z * math.log1p(run_to_run)
    below = math.sqrt(2) * math.hypot(math.log(median / stats.ci_low_ms), between)
    above = math.sqrt(2) * math.hypot(math.log(stats.ci_high_ms / median), between)
    return (median * math.exp(-below), median * math.exp(above))


def widened(ratio: Ratio, run_to_run: float, z: float = _Z95) -> Ratio:
    """The ratio of two separate runs with room made for how much a run's level wanders.

    Within-run data cannot see that a whole run sits a little high or low (the process's memory
    layout, the core it got, the clock). If each run's level varies with a relative standard
    deviation of ``run_to_run``, their ratio varies by √2 times that; it is added to each side of
    the interval in quadrature, on the log scale.
    """
    if run_to_run <= 0 or not (ratio.low > 0 and ratio.value > 0 and ratio.high > 0):
        return ratio
    extra = z * math.sqrt(2) * math.log1p(run_to_run)
    centre = math.log(ratio.value)
    below = math.hypot(centre - math.log(ratio.low), extra)
    above = math.hypot(math.log(ratio.high) - centre, extra)
    return dataclasses.replace(ratio, low=math.exp(centre - below), high=math.exp(centre + above))


def _bootstrap(
    a: Sequence[float], b: Sequence[float], rounds: int, seed: int, confidence: float
) -> tuple[float, float, float]:
    import numpy as np

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, such as 0.95; got {confidence!r}.")
    a_sorted, b_sorted = _sorted_finite(a), _sorted_finite(b)
    if not a_sorted.size or not b_sorted.size:
        return (math.nan, math.nan, math.nan)

    generator = np.random.default_rng(seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = _resampled_medians(a_sorted, rounds, generator) / _resampled_medians(
            b_sorted, rounds, generator
        )
        value = float(np.median(a_sorted) / np.median(b_sorted))
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return (value, float(low), float(high))


def _resampled_medians(
    ordered: np.ndarray, rounds: int, generator: np.random.Generator
) -> np.ndarray:
    """Medians of ``rounds`` resamples with replacement, drawn without building the resamples.

    NOTE: a resample's k-th smallest value is ``ordered[floor(n·U)]`` where U is the k-th smallest
    of n uniform numbers, which follows Beta(k, n - k + 1); the next one up lies a Beta(1, n - k)
    share of the way from U to 1. So each median costs two draws instead of n, which keeps 10^5
    samples fast, and the result is the same in distribution as resampling every value.
    """
    import numpy as np

    n = ordered.size
    k = (n + 1) // 2
    lower = generator.beta(k, n - k + 1, rounds)
    pick = np.minimum((lower * n).astype(np.int64), n - 1)
    if n % 2:
        return ordered[pick]
    upper = lower + (1 - lower) * generator.beta(1, n - k, rounds)
    return (ordered[pick] + ordered[np.minimum((upper * n).astype(np.int64), n - 1)]) / 2


def _sorted_finite(values: Sequence[float]) -> np.ndarray:
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    return np.sort(array[np.isfinite(array)])


def _finite_count(values: Sequence[float]) -> int:
    return sum(1 for value in values if math.isfinite(value))


def outliers(
    samples: Sequence[float], k: float = OUTLIER_K, floor: float = OUTLIER_FLOOR
) -> np.ndarray:
    """A boolean mask of the calls far from the median, judged on log-latency.

    Latency is multiplicative and skewed, so distances are measured on its logarithm: beyond
    ``k`` robust standard deviations (from the median absolute deviation), and beyond a factor
    of ``1 + floor`` either way. Both sides count.
    """
    import numpy as np

    values = np.asarray(samples, dtype=np.float64)
    mask = np.zeros(values.shape, dtype=bool)
    usable = np.isfinite(values) & (values > 0)
    if usable.sum() < 3:
        return mask

    logs = np.log(values[usable])
    distance = np.abs(logs - np.median(logs))
    scale = 1.4826 * np.median(distance)
    if scale == 0:  # mostly identical values: fall back on the mean absolute deviation
        scale = 1.2533 * distance.mean()
    if scale > 0:
        mask[usable] = distance > max(k * scale, math.log1p(floor))
    return mask


def outlier_share(
    samples: Sequence[float], k: float = OUTLIER_K, floor: float = OUTLIER_FLOOR
) -> float:
    """The share of calls that :func:`outliers` marks; NaN when there are none to judge."""
    mask = outliers(samples, k, floor)
    return float(mask.mean()) if mask.size else math.nan
