"""Lasting level shifts in a latency series, and one sentence on why a measurement is noisy.

Latency on a shared machine does not wander smoothly: it jumps to another level and stays there
for a while (a frequency change, a neighbour waking up). A shift like that biases a median more
than any single slow call, so it is searched for on its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.bench.stats import OUTLIER_FLOOR, OUTLIER_K, outlier_share

if TYPE_CHECKING:
    import numpy as np

    from workbench.bench.measurement import Measurement

MIN_EFFECT = 0.10
"""A shift counts only when the two levels differ by more than this share (10%)."""
MAX_POINTS = 200
"""Longer series are cut into this many windows, each summarised by its median."""
OUTLIER_SHARE_LIMIT = 0.10
"""More outlying calls than this share (10%) make a measurement noisy; a quiet two-core virtual
machine showed 2–8% of calls 1.5 times slower than the median."""
SHIFTED_SHARE_LIMIT = 0.2
"""Level shifts make a measurement noisy when this share (20%) of its calls ran away from the
longest level; a short excursion hardly moves a median."""


@dataclass(frozen=True)
class Shift:
    """Latency moved from one level to another at ``position`` and stayed there."""

    position: int
    """Index of the first value at the new level."""
    before: float
    """The level before: the median from the previous shift (or the start) to ``position``."""
    after: float
    """The level after: the median from ``position`` to the next shift (or the end)."""

    @property
    def change(self) -> float:
        """The relative change of level: +0.3 for 30% slower."""
        return self.after / self.before - 1


def level_shifts(
    values: Sequence[float],
    *,
    min_segment: int = 3,
    min_effect: float = MIN_EFFECT,
    threshold: float | None = None,
) -> list[Shift]:
    """Find the lasting level shifts in a series of latencies, such as round medians.

    Binary segmentation on log-latency: each stretch is split where a step, or a block that
    stands out from both sides, is most significant, until nothing left passes both tests:
    ``threshold`` robust standard errors (by default one that grows slowly with the length) and
    a change of more than ``min_effect``. Every level lasts at least ``min_segment`` points;
    a series longer than ``MAX_POINTS`` is first cut into windows, and then ``min_segment``
    counts windows. Values that are not positive numbers are skipped.
    """
    import numpy as np

    raw = np.asarray(values, dtype=np.float64)
    kept = np.flatnonzero(np.isfinite(raw) & (raw > 0))
    points, starts = _windowed(raw[kept])
    if points.size < 2 * min_segment:
        return []

    logs = np.log(points)
    noise = max(_noise_scale(logs), 1e-9)  # noiseless steps are judged by their effect alone
    logs = _tame_spikes(logs, noise, min_segment)
    limit = threshold if threshold is not None else _default_threshold(points.size)

    cuts: list[int] = []
    _split(logs, 0, logs.size, _Search(noise, limit, min_segment, math.log1p(min_effect)), cuts)
    bounds = _merge_small_steps(points, [0, *sorted(cuts), points.size], min_effect)
    return [
        Shift(
            position=int(kept[starts[cut]]),
            before=float(np.median(points[previous:cut])),
            after=float(np.median(points[cut:following])),
        )
        for previous, cut, following in zip(bounds, bounds[1:-1], bounds[2:], strict=False)
    ]


def _windowed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The series itself, or the medians of equal windows when it is long; with start indices."""
    import numpy as np

    if values.size <= MAX_POINTS:
        return values, np.arange(values.size)
    starts = np.linspace(0, values.size, MAX_POINTS + 1).astype(np.int64)
    medians = np.array([np.median(values[s:e]) for s, e in itertools.pairwise(starts)])
    return medians, starts[:-1]


def _tame_spikes(logs: np.ndarray, noise: float, min_segment: int) -> np.ndarray:
    """Pull each point to within ``OUTLIER_K`` noise of its neighbourhood's median.

    The neighbourhood spans ``2·min_segment - 1`` points, so a level that lasts ``min_segment``
    points holds its majority and survives, while a lone spike cannot pass for a level.
    """
    import numpy as np

    half = max(min_segment - 1, 1)
    padded = np.pad(logs, half, mode="edge")
    local = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)
    return local + np.clip(logs - local, -OUTLIER_K * noise, OUTLIER_K * noise)


def _noise_scale(logs: np.ndarray) -> float:
    """Robust standard deviation of one point, from neighbours' differences (blind to steps)."""
    import numpy as np

    steps = np.diff(logs)
    return float(1.4826 * np.median(np.abs(steps - np.median(steps))) / math.sqrt(2))


def _default_threshold(n: int) -> float:
    # About n²/2 candidate splits are tried; this keeps false alarms near 1 in 100 series.
    return math.sqrt(2 * math.log(max(n, 2) ** 2 / 2)) + 1.0


@dataclass(frozen=True)
class _Search:
    """What a split must pass: its score in robust standard errors, its size and its effect."""

    noise: float
    limit: float
    min_segment: int
    min_log_effect: float


def _split(logs: np.ndarray, lo: int, hi: int, search: _Search, cuts: list[int]) -> None:
    """Add to ``cuts`` the boundaries found in ``logs[lo:hi]``, recursing into the pieces."""
    best = _best_block(logs[lo:hi], search)
    if best is None or best[2] < search.limit:
        return
    inner = [lo + best[0], lo + best[1]]
    pieces = [lo, *(cut for cut in inner if lo < cut < hi), hi]
    cuts.extend(pieces[1:-1])
    for start, end in itertools.pairwise(pieces):
        _split(logs, start, end, search, cuts)


def _best_block(logs: np.ndarray, search: _Search) -> tuple[int, int, float] | None:
    """The block [i, j) whose mean differs most, in standard errors, from the rest.

    With i = 0 or j = n the block is a step; otherwise it stands out in the middle. Every piece
    keeps ``min_segment`` points, and blocks whose change is below the effect are ignored.
    """
    import numpy as np

    n, min_segment = logs.size, search.min_segment
    middle = np.arange(min_segment, n - min_segment + 1)
    if middle.size == 0:
        return None
    total = np.concatenate([[0.0], np.cumsum(logs)])
    i = np.concatenate([[0], middle])[:, None]
    j = np.concatenate([middle, [n]])[None, :]
    inside = j - i
    valid = (inside >= min_segment) & (inside < n)

    with np.errstate(divide="ignore", invalid="ignore"):
        block_sum = total[j] - total[i]
        gap = block_sum / inside - (total[n] - block_sum) / (n - inside)
        score = np.abs(gap) / (search.noise * np.sqrt(1 / inside + 1 / (n - inside)))
    score = np.where(valid & (np.abs(gap) >= search.min_log_effect), score, -np.inf)
    row, column = np.unravel_index(np.argmax(score), score.shape)
    if not np.isfinite(score[row, column]):
        return None
    return int(i[row, 0]), int(j[0, column]), float(score[row, column])


def _merge_small_steps(points: np.ndarray, bounds: list[int], min_effect: float) -> list[int]:
    """Drop boundaries between neighbouring levels that differ by less than the effect."""
    import numpy as np

    bounds = list(bounds)
    while len(bounds) > 2:
        levels = [np.median(points[s:e]) for s, e in itertools.pairwise(bounds)]
        steps = [abs(math.log(b / a)) for a, b in itertools.pairwise(levels)]
        smallest = int(np.argmin(steps))
        if steps[smallest] >= math.log1p(min_effect):
            break
        del bounds[smallest + 1]
    return bounds


def noise_warning(measurement: Measurement) -> str | None:
    """One sentence on why a measurement's numbers are not to be trusted, or None if they are.

    It looks at the CPU time other processes used while the cell ran, the share of outlying
    calls, and lasting level shifts in the calls' latency, and ends with what to do.
    """
    reasons, advice = [], []
    if measurement.noisy:  # more than NOISE_LIMIT_CORES of other processes' CPU time
        reasons.append(f"other processes used {measurement.noise_cores:.2g} cores while this ran")
        advice.append("close them or pin the benchmark to idle cores")

    samples = measurement.samples_ns
    shifts = level_shifts(samples) if samples else []
    # Calls are judged against the level they ran at, so that a shift is not taken for outliers.
    share = outlier_share(_relative_to_levels(samples, shifts)) if samples else math.nan
    if share > OUTLIER_SHARE_LIMIT:
        reasons.append(
            f"{share:.0%} of the calls were outliers ({1 + OUTLIER_FLOOR:g} times slower or faster "
            "than the median)"
        )
        advice.append("stop background work such as updates, indexing or a browser")
    if shifts and _share_away_from_main_level(shifts, len(samples)) >= SHIFTED_SHARE_LIMIT:
        reasons.append(_describe_shifts(shifts, len(samples)))
        advice.append("fix the CPU frequency (performance governor, no turbo) or measure longer")

    if not reasons:
        return None
    sentence = _join(reasons)
    return f"{sentence[0].upper()}{sentence[1:]}; {'; '.join(advice)}, and re-run."


def _relative_to_levels(samples: Sequence[float], shifts: list[Shift]) -> np.ndarray:
    """Each call divided by the level of the stretch it ran in."""
    import numpy as np

    relative = np.asarray(samples, dtype=np.float64).copy()
    if not shifts:
        return relative
    bounds = [0, *(shift.position for shift in shifts), relative.size]
    levels = [shifts[0].before, *(shift.after for shift in shifts)]
    for (start, end), level in zip(itertools.pairwise(bounds), levels, strict=True):
        relative[start:end] /= level
    return relative


def _share_away_from_main_level(shifts: list[Shift], calls: int) -> float:
    """The share of calls in stretches whose level differs from that of the longest stretch."""
    bounds = [0, *(shift.position for shift in shifts), calls]
    lengths = [end - start for start, end in itertools.pairwise(bounds)]
    levels = [shifts[0].before, *(shift.after for shift in shifts)]
    main = levels[lengths.index(max(lengths))]
    away = [
        n for n, level in zip(lengths, levels, strict=True) if abs(level / main - 1) > MIN_EFFECT
    ]
    return sum(away) / calls


def _describe_shifts(shifts: list[Shift], calls: int) -> str:
    first = shifts[0]
    if len(shifts) == 1:
        where = first.position / calls
        return (
            f"the latency moved from {first.before / 1e6:.3g} ms to {first.after / 1e6:.3g} ms "
            f"({first.change:+.0%}) {where:.0%} of the way through and stayed there"
        )
    levels = [first.before, *(shift.after for shift in shifts)]
    return (
        f"the latency changed level {len(shifts)} times, between {min(levels) / 1e6:.3g} ms "
        f"and {max(levels) / 1e6:.3g} ms"
    )


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
