"""The statistics of latency samples, checked on synthetic samples whose answers are known."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from workbench.bench.stats import Ratio, median_interval, ratio_over_rounds, summarize


@pytest.mark.parametrize("n", [50, 200])
def test_the_median_interval_covers_the_true_median_about_95_percent_of_the_time(n):
    # Latency is skewed: a lognormal with mu=0 has its median at exactly 1.
    generator = np.random.default_rng(n)
    covered = 0
    for _ in range(400):
        low, high = median_interval(generator.lognormal(0.0, 1.0, n).tolist())
        covered += low <= 1.0 <= high
    assert 0.90 <= covered / 400 <= 0.99


def test_the_median_interval_narrows_as_samples_grow():
    generator = np.random.default_rng(1)
    widths = []
    for n in (50, 500, 5000):
        low, high = median_interval(generator.lognormal(0.0, 1.0, n).tolist())
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_the_median_interval_of_a_known_list_uses_the_textbook_ranks():
    # For n = 100 the 95% interval of the median lies between the 40th and 61st values.
    values = list(range(1, 101))
    random.Random(0).shuffle(values)
    assert median_interval(values) == (40, 61)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_with_fewer_than_six_values_the_interval_is_the_range(n):
    values = [3.0, 1.0, 4.0, 1.5, 9.0][:n]
    assert median_interval(values) == (min(values), max(values))


def test_no_values_give_no_interval():
    low, high = median_interval([])
    assert math.isnan(low)
    assert math.isnan(high)


def test_summarize_a_hand_made_list():
    samples_ns = [ms * 1_000_000 for ms in (7, 2, 9, 4, 1, 10, 3, 8, 6, 5)]

    stats = summarize(samples_ns)

    assert stats.n == 10
    assert stats.median_ms == pytest.approx(5.5)
    assert stats.mean_ms == pytest.approx(5.5)
    assert stats.std_ms == pytest.approx(math.sqrt(82.5 / 9))
    assert stats.p90_ms == pytest.approx(9.1)
    assert stats.p99_ms == pytest.approx(9.91)
    assert stats.min_ms == pytest.approx(1.0)
    assert (stats.ci_low_ms, stats.ci_high_ms) == (1.0, 10.0)
    assert stats.relative_halfwidth == pytest.approx(4.5 / 5.5)


def test_summarize_one_sample():
    stats = summarize([2_500_000])

    assert (stats.n, stats.median_ms, stats.std_ms, stats.min_ms) == (1, 2.5, 0.0, 2.5)
    assert (stats.ci_low_ms, stats.ci_high_ms) == (2.5, 2.5)
    assert stats.relative_halfwidth == 0.0


def test_a_constant_ratio_of_two_is_faster():
    ratio = ratio_over_rounds([10.0] * 12, [5.0] * 12)

    assert (ratio.value, ratio.low, ratio.high, ratio.rounds) == (2.0, 2.0, 2.0, 12)
    assert ratio.verdict == "faster"


def test_ratios_straddling_one_are_not_distinguishable():
    candidate = [10.0 / r for r in (0.9, 1.1, 0.95, 1.05, 1.02, 0.98, 1.08, 0.93, 1.01, 0.99)]

    ratio = ratio_over_rounds([10.0] * 10, candidate)

    assert ratio.low < 1.0 < ratio.high
    assert ratio.value == pytest.approx(1.0, abs=0.02)
    assert ratio.verdict == "not distinguishable"


def test_ratios_below_one_are_slower():
    candidate = [10.0 / r for r in (0.5, 0.55, 0.45, 0.52, 0.48, 0.5, 0.51, 0.49)]

    ratio = ratio_over_rounds([10.0] * 8, candidate)

    assert ratio.value == pytest.approx(0.5)
    assert ratio.high < 1.0
    assert ratio.verdict == "slower"


def test_rounds_without_a_measurement_are_skipped():
    baseline = [10.0, math.nan, 10.0, 10.0, 0.0, 10.0]
    candidate = [4.0, 4.0, math.nan, 5.0, 5.0, 5.0]

    ratio = ratio_over_rounds(baseline, candidate)

    assert ratio.rounds == 3  # rounds 1, 4 and 6 had both medians
    assert ratio.value == 2.0
    assert not math.isnan(ratio.low)


def test_no_common_round_is_not_measured():
    ratio = ratio_over_rounds([math.nan, 5.0], [3.0, math.nan])

    assert ratio.rounds == 0
    assert math.isnan(ratio.value)
    assert ratio.verdict == "not measured"
    assert Ratio(math.nan, math.nan, math.nan, 0).verdict == "not measured"


def _cell_with_rounds(label: str, rounds: list[float]):
    from workbench.bench.measurement import Cell, finished
    from workbench.runtimes import RuntimeConfig

    samples = [int(value * 1e6) for value in rounds for _ in range(5)]
    return finished(Cell(RuntimeConfig(label), 1, None), samples, rounds)


def test_the_winner_is_tied_only_with_runtimes_its_rounds_cannot_separate():
    from workbench.results import Results
    from workbench.store.environment import current_environment

    fast = _cell_with_rounds("fast", [1.00, 1.02, 0.99, 1.01, 1.00, 0.98, 1.02, 1.00])
    twin = _cell_with_rounds("twin", [1.01, 1.00, 1.00, 0.99, 1.02, 1.00, 0.99, 1.01])
    slow = _cell_with_rounds("slow", [2.0, 2.1, 1.9, 2.0, 2.05, 1.95, 2.0, 2.0])
    results = Results((slow, twin, fast), current_environment(), "m", "0" * 64, "slow")
    (label,) = results.winners().values()
    assert label.startswith(("fast", "twin"))
    assert "not distinguishable from" in label
    assert "slow" not in label

    alone = Results((slow, fast), current_environment(), "m", "0" * 64, "slow")
    assert alone.winners() == {(1, None): "fast"}


def test_the_rerun_interval_adds_run_to_run_wander_to_the_sampling_error():
    import math

    from workbench.bench.stats import LatencyStats, rerun_interval

    stats = LatencyStats(100, 1.0, 1.0, 0.1, 1.2, 1.5, 0.9, 0.99, 1.01)
    low, high = rerun_interval(stats, run_to_run=0.0)
    assert low == pytest.approx(math.exp(-math.sqrt(2) * math.log(1 / 0.99)))
    assert high == pytest.approx(math.exp(math.sqrt(2) * math.log(1.01)))
    wide_low, wide_high = rerun_interval(stats, run_to_run=0.02)
    between = 1.959964 * math.log1p(0.02)
    assert wide_high == pytest.approx(math.exp(math.sqrt(2) * math.hypot(math.log(1.01), between)))
    assert wide_low < low < 1.0 < high < wide_high
