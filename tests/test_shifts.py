"""Bootstrap ratios, outliers, level shifts and noise warnings, on samples with known answers."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from workbench.bench.measurement import Cell, finished
from workbench.bench.shifts import Shift, level_shifts, noise_warning
from workbench.bench.stats import (
    Ratio,
    bootstrap_ratio,
    bootstrap_ratio_rounds,
    outlier_share,
    outliers,
    widened,
)
from workbench.runtimes import RuntimeConfig

# -- bootstrap ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "sigma"), [(40, 0.5), (400, 0.5), (3000, 0.2)])
def test_the_sample_bootstrap_covers_the_true_ratio_about_95_percent_of_the_time(n, sigma):
    # Lognormal medians are exp(mu), so run a's median is 1.5 times run b's.
    generator = np.random.default_rng(n)
    covered = 0
    for seed in range(300):
        a = generator.lognormal(math.log(1.5), sigma, n)
        b = generator.lognormal(0.0, sigma, n + 11)
        ratio = bootstrap_ratio(a, b, seed=seed)
        covered += ratio.low <= 1.5 <= ratio.high
    assert 0.88 <= covered / 300 <= 0.99


@pytest.mark.parametrize("rounds", [6, 10, 30])
def test_the_round_bootstrap_covers_the_true_ratio_about_95_percent_of_the_time(rounds):
    generator = np.random.default_rng(rounds)
    covered = 0
    for seed in range(300):
        a = generator.lognormal(0.0, 0.05, rounds)
        b = generator.lognormal(math.log(0.8), 0.05, rounds + 2)
        ratio = bootstrap_ratio_rounds(a, b, seed=seed)
        covered += ratio.low <= 1.25 <= ratio.high
    assert 0.88 <= covered / 300 <= 0.99


def test_the_quick_bootstrap_draws_the_same_medians_as_resampling_every_value():
    generator = np.random.default_rng(3)
    for n in (9, 10):  # odd and even counts take different paths
        a = generator.lognormal(0.0, 1.0, n)
        quick = bootstrap_ratio(a, [1.0], rounds=40_000, seed=1)
        resampled = np.median(a[generator.integers(0, n, (40_000, n))], axis=1)
        assert quick.low == pytest.approx(np.quantile(resampled, 0.025), rel=0.05)
        assert quick.high == pytest.approx(np.quantile(resampled, 0.975), rel=0.05)


def test_a_hundred_thousand_samples_take_a_moment():
    generator = np.random.default_rng(4)
    a, b = generator.lognormal(0.0, 0.3, 100_000), generator.lognormal(0.0, 0.3, 100_000)

    start = time.perf_counter()
    ratio = bootstrap_ratio(a, b)

    assert time.perf_counter() - start < 1.0
    assert (ratio.basis, ratio.rounds) == ("samples", 100_000)
    assert ratio.low < 1.0 < ratio.high
    assert ratio.high - ratio.low < 0.02


def test_the_round_bootstrap_skips_rounds_that_were_not_measured():
    ratio = bootstrap_ratio_rounds([2.0, math.nan, 2.1, 1.9, 2.0], [1.0, 1.05, 0.95, 1.0, 1.0])

    assert (ratio.basis, ratio.rounds) == ("round medians", 4)
    assert ratio.value == pytest.approx(2.0)
    assert ratio.verdict == "faster"


def test_no_samples_give_no_ratio_and_a_bad_confidence_is_refused():
    assert bootstrap_ratio([], [1.0, 2.0]).verdict == "not measured"
    with pytest.raises(ValueError, match="between 0 and 1"):
        bootstrap_ratio([1.0], [1.0], confidence=95)


def test_run_to_run_wander_widens_each_side_in_quadrature_on_the_log_scale():
    exact = Ratio(1.2, 1.2, 1.2, 10, "round medians")
    loose = Ratio(2.0, 1.0, 3.0, 10, "round medians")

    extra = 1.959964 * math.sqrt(2) * math.log(1.05)
    assert widened(exact, 0.05).low == pytest.approx(1.2 * math.exp(-extra))
    assert widened(exact, 0.05).high == pytest.approx(1.2 * math.exp(extra))
    wide = widened(loose, 0.05)
    assert math.log(2 / wide.low) == pytest.approx(math.hypot(math.log(2), extra))
    assert (wide.value, wide.rounds, wide.basis) == (2.0, 10, "round medians")
    assert widened(loose, 0) is loose
    assert widened(Ratio(math.nan, math.nan, math.nan, 0), 0.05).verdict == "not measured"


# -- outliers -------------------------------------------------------------------------------------


def test_outliers_are_found_at_the_indices_where_they_were_put():
    samples = np.random.default_rng(5).lognormal(0.0, 0.1, 1000)
    samples[[3, 500, 999]] *= 10  # slow calls
    samples[42] /= 10  # and one oddly fast call

    mask = outliers(samples)

    assert np.flatnonzero(mask).tolist() == [3, 42, 500, 999]
    assert outlier_share(samples) == pytest.approx(0.004)


def test_calls_a_few_percent_slow_are_no_outliers_however_tight_the_rest():
    samples = np.random.default_rng(12).lognormal(0.0, 0.005, 1000)
    samples[::5] *= 1.05

    assert outliers(samples, floor=0.5).sum() == 0
    assert outliers(samples, floor=0).sum() >= 150  # by spread alone they would be


def test_identical_samples_have_no_outliers_but_one_different_call_is_one():
    assert not outliers([5.0] * 50).any()
    assert np.flatnonzero(outliers([5.0] * 49 + [9.0])).tolist() == [49]
    assert math.isnan(outlier_share([]))


# -- level shifts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_a_lasting_30_percent_shift_is_found_within_a_few_points(seed):
    rounds = np.random.default_rng(seed).lognormal(0.0, 0.05, 60)
    rounds[25:] *= 1.3

    (shift,) = level_shifts(rounds)

    assert abs(shift.position - 25) <= 2
    assert shift.change == pytest.approx(0.3, abs=0.05)


def test_a_shift_among_many_calls_is_found_within_a_window_or_two():
    calls = np.random.default_rng(6).lognormal(0.0, 0.3, 20_000)
    calls[7_000:] *= 1.3

    (shift,) = level_shifts(calls)

    assert abs(shift.position - 7_000) <= 2 * 20_000 / 200  # windows of 100 calls


def test_a_stretch_that_rises_and_falls_back_gives_two_shifts():
    rounds = np.random.default_rng(7).lognormal(0.0, 0.05, 60)
    rounds[20:35] *= 1.4

    shifts = level_shifts(rounds)

    assert [shift.position for shift in shifts] == [20, 35]
    assert shifts[0].change > 0.3
    assert shifts[1].change < -0.2  # back from 1.4 to 1 is -29%


@pytest.mark.parametrize(("n", "sigma"), [(12, 0.05), (40, 0.05), (40, 0.3), (5000, 0.4)])
def test_stationary_noise_shows_no_shift_in_at_least_95_percent_of_seeds(n, sigma):
    generator = np.random.default_rng(n)
    quiet = sum(not level_shifts(generator.lognormal(0.0, sigma, n)) for _ in range(200))
    assert quiet >= 190


def test_small_steps_and_lone_spikes_are_not_shifts():
    assert level_shifts([1.0] * 10 + [1.05] * 10) == []  # below the 10% effect
    assert level_shifts([1.0] * 10 + [9.0] + [1.0] * 10) == []  # one point is no level


def test_shift_positions_count_the_values_that_were_skipped():
    values = [1.0, math.nan, 1.0, 1.0, 0.0, 2.0, 2.0, 2.0]

    assert level_shifts(values) == [Shift(position=5, before=1.0, after=2.0)]


# -- noise warnings -------------------------------------------------------------------------------


def _measurement(samples_ms: np.ndarray, noise_cores: float = 0.01):
    samples = (np.asarray(samples_ms) * 1e6).astype(int).tolist()
    rounds = [float(np.median(chunk)) for chunk in np.array_split(samples_ms, 10)]
    cell = Cell(RuntimeConfig("onnxruntime"), 1, None)
    return finished(cell, samples, rounds, noise_cores=noise_cores)


def test_a_quiet_measurement_has_no_warning():
    calls = np.random.default_rng(8).lognormal(0.0, 0.1, 3000)
    assert noise_warning(_measurement(calls)) is None


def test_busy_cores_are_named_with_the_advice():
    calls = np.random.default_rng(9).lognormal(0.0, 0.1, 3000)

    warning = noise_warning(_measurement(calls, noise_cores=0.6))

    assert warning == (
        "Other processes used 0.6 cores while this ran; close them or pin the benchmark to "
        "idle cores, and re-run."
    )


def test_a_shift_and_outliers_are_told_in_one_sentence():
    calls = np.random.default_rng(10).lognormal(0.0, 0.05, 4000)
    calls[1000:] *= 1.5
    calls[::7] *= 5  # every seventh call is slow

    warning = noise_warning(_measurement(calls))

    assert warning is not None
    assert warning.startswith(
        "14% of the calls were outliers (1.5 times slower or faster than the median) and the "
        "latency moved from"
    )
    assert "+50%" in warning
    assert "25% of the way through" in warning
    assert warning.endswith("and re-run.")


def test_a_short_excursion_is_a_shift_but_hardly_moves_the_median_so_no_warning():
    calls = np.random.default_rng(11).lognormal(0.0, 0.05, 4000)
    calls[2000:2300] *= 1.5  # 7.5% of the calls

    assert [shift.position for shift in level_shifts(calls)] == [2000, 2300]
    assert noise_warning(_measurement(calls)) is None


def test_a_failed_measurement_has_no_noise_to_warn_about():
    from workbench.bench.measurement import Measurement

    failed = Measurement(Cell(RuntimeConfig("openvino"), 1, None), status="crashed", cause="boom")
    assert noise_warning(failed) is None
