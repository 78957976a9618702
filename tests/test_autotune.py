"""autotune(): a valid front, one recommendation inside the budget, never a slower int8."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import workbench
from workbench.bench.measurement import Cell, Measurement
from workbench.bench.stats import summarize
from workbench.optimize.tuning import FLOOR, _recommend
from workbench.optimize.variant import Variant, Variants
from workbench.runtimes import RuntimeConfig


def test_autotune_on_a_tiny_model_returns_a_front_and_a_recommendation(mlp_artifact, tmp_path):
    data = np.random.default_rng(3).standard_normal((128, 32)).astype(np.float32)
    store = tmp_path / "tune.sqlite"

    tuning = workbench.autotune(
        mlp_artifact, data=data, max_drop=0.02, budget_s=6, threads=[1], store=store,
        progress=False,
    )  # fmt: skip

    table = tuning.table
    assert set(table["variant"]) >= {"fp32", "slim", "int8-dynamic", "int8-static"}
    assert set(table["status"]) <= {
        "recommended", "in budget", "pruned", "over budget", "wrong outputs", "failed",
        "reference", "accuracy unknown",
    }  # fmt: skip
    front = tuning.front()
    assert len(front) >= 1
    assert front["median_ms"].is_monotonic_increasing
    # Along the front, a faster cell costs more accuracy: the drop falls as latency rises.
    assert front["drop"].is_monotonic_decreasing
    choice = tuning.recommendation
    assert choice is not None
    assert choice.drop <= 0.02 or math.isnan(choice.drop)
    assert choice.over_floor.verdict != "slower"
    assert (table["status"] == "recommended").sum() == 1
    assert choice.runtime in tuning.reason
    assert "ms" in tuning.reason
    # Over-budget variants are measured and shown, never recommended.
    over = table[table["drop"] > 0.02]
    assert (over["status"].isin(["over budget", "wrong outputs", "failed"])).all()
    figure = tuning.plot()
    assert any(trace.name == "recommended" for trace in figure.data)
    steps = tuning.contributions()
    assert steps.iloc[-1]["median_ms"] == pytest.approx(choice.median_ms)
    assert "Recommendation" in str(tuning)
    # The decisive round is kept as a run of a study, each cell with the variant it ran.
    with workbench.open_store(store) as opened:
        stored = [item for _row, item in opened.load(f"autotune:{mlp_artifact.name}")]
        runs = opened.runs(f"autotune:{mlp_artifact.name}")
    assert len(runs) == 1
    assert {m.cell for m in stored} == {m.cell for m in tuning.final}
    assert {m.cell.variant for m in stored} >= {"fp32", choice.variant}


def _variant(name: str, precision: str, drop: float) -> Variant:
    return Variant(
        name, tuple(name.split("+")) if name != "fp32" else (), precision, "ok", drop=drop
    )


def _measured(
    variant: str, ms: float, config: RuntimeConfig = FLOOR, rounds: int = 12, phase: int = 0
):
    """Round medians that wobble by ±2% around ``ms``, in the given phase."""
    medians = tuple(ms * (1 + 0.02 * (-1) ** (index + phase)) for index in range(rounds))
    samples = [int(m * 1e6) for m in medians]
    return Measurement(
        Cell(config, 1, 1, variant),
        "ok",
        samples_ns=tuple(samples),
        round_medians_ms=medians,
        stats=summarize(samples),
    )


def test_int8_is_never_recommended_where_it_is_slower_than_onnx_runtime_fp32():
    variants = Variants([_variant("fp32", "fp32", 0.0), _variant("int8-dynamic", "int8", 0.0)])
    final = [_measured("fp32", 1.0), _measured("int8-dynamic", 1.6)]

    choice, reason = _recommend(final, variants, 0.01)

    assert choice.variant == "fp32"
    assert choice.runtime == "onnxruntime"
    assert "fastest" in reason


def test_a_faster_variant_over_the_accuracy_budget_is_not_recommended():
    variants = Variants(
        [
            _variant("fp32", "fp32", 0.0),
            _variant("int8-static", "int8", 0.05),
            _variant("int8-dynamic", "int8", 0.004),
        ]
    )
    final = [
        _measured("fp32", 1.0),
        _measured("int8-static", 0.4),
        _measured("int8-dynamic", 0.6),
    ]

    choice, reason = _recommend(final, variants, 0.01)

    assert choice.variant == "int8-dynamic"
    assert choice.over_floor.value == pytest.approx(1 / 0.6, rel=0.05)
    assert choice.over_floor.verdict == "faster"
    assert "ONNX Runtime fp32" in reason
    assert "within the budget of 0.01" in reason


def test_a_tie_in_speed_goes_to_the_smaller_drop_and_full_precision():
    variants = Variants([_variant("fp32", "fp32", 0.0), _variant("fp16", "fp16", 0.0)])
    openvino = RuntimeConfig("openvino")
    # fp16 on OpenVINO has the lower median, but round by round the two trade places.
    final = [_measured("fp32", 1.0), _measured("fp16", 0.99, openvino, phase=1)]

    choice, reason = _recommend(final, variants, 0.01)

    assert choice.variant == "fp32"
    assert "Not distinguishable" in reason


def test_bad_budgets_are_one_sentence(mlp_artifact):
    with pytest.raises(workbench.InputError, match="max_drop must be a non-negative number"):
        workbench.autotune(mlp_artifact, max_drop=-1, progress=False)
    with pytest.raises(workbench.InputError, match="budget_s must be a positive number"):
        workbench.autotune(mlp_artifact, budget_s=0, progress=False)
    with pytest.raises(workbench.InputError, match="measures PyTorch eager as its reference"):
        workbench.autotune(mlp_artifact, runtimes=["torch"], progress=False)


def test_a_much_faster_cell_is_not_a_tie_however_noisy_its_rounds():
    variants = Variants([_variant("fp32", "fp32", 0.0), _variant("int8-static", "int8", 0.0)])
    openvino = RuntimeConfig("openvino")
    noisy = _measured("int8-static", 0.45, openvino)
    # Rounds so scattered that the ratio's interval reaches below 1.
    wild = tuple(
        ms * factor for ms, factor in zip(noisy.round_medians_ms, [0.2, 5.0] * 6, strict=True)
    )
    noisy = dataclasses.replace(noisy, round_medians_ms=wild)

    choice, _reason = _recommend([_measured("fp32", 1.0), noisy], variants, 0.01)

    assert choice.variant == "int8-static"
    assert choice.runtime == "openvino"


def test_a_busy_machine_is_named_in_the_reason():
    variants = Variants([_variant("fp32", "fp32", 0.0)])
    busy = dataclasses.replace(_measured("fp32", 1.0), noise_cores=0.9)

    _choice, reason = _recommend([busy], variants, 0.01)

    assert "other processes used up to 0.9 cores" in reason
    _choice, quiet = _recommend([_measured("fp32", 1.0)], variants, 0.01)
    assert "Caution" not in quiet


def test_a_cell_that_loses_every_round_to_the_floor_is_not_recommended():
    variants = Variants([_variant("fp32", "fp32", 0.0), _variant("int8-static", "int8", 0.0)])
    # Its pooled median looks 10% faster, but round by round it is 20% slower than the floor.
    lucky = dataclasses.replace(_measured("int8-static", 0.9), round_medians_ms=tuple([1.2] * 12))

    choice, reason = _recommend([_measured("fp32", 1.0), lucky], variants, 0.01)

    assert (choice.variant, choice.runtime) == ("fp32", "onnxruntime")
    assert "was not faster than ONNX Runtime fp32, which is kept" in reason


def test_a_recommendation_without_a_measured_floor_says_so():
    variants = Variants([_variant("fp32", "fp32", 0.0), _variant("fp16", "fp16", 0.0)])
    openvino = RuntimeConfig("openvino")

    choice, reason = _recommend([_measured("fp16", 0.5, openvino)], variants, 0.01)

    assert choice.variant == "fp16"
    assert "not checked against ONNX Runtime fp32, which could not be measured" in reason
    assert "nan" not in reason


def test_a_float32_variant_whose_task_metric_fell_is_over_budget():
    variants = Variants([_variant("fp32", "fp32", 0.0), _variant("slim", "fp32", 0.3)])
    openvino = RuntimeConfig("openvino")

    choice, _reason = _recommend(
        [_measured("fp32", 1.0), _measured("slim", 0.5, openvino)], variants, 0.01
    )

    assert choice.variant == "fp32"


def test_without_data_the_floor_is_measured_and_the_front_holds_float32_cells(mlp_artifact):
    tuning = workbench.autotune(
        mlp_artifact,
        passes=["slim", "int8-dynamic"],
        runtimes=["onnxruntime:opt=basic"],
        threads=[None],
        budget_s=1.0,
        progress=False,
    )

    table = tuning.table
    # ONNX Runtime fp32 at all optimizations was measured although only opt=basic was asked for.
    floor = table[(table["variant"] == "fp32") & (table["runtime"] == "onnxruntime")]
    assert len(floor) == 1
    assert floor.iloc[0]["median_ms"] > 0
    assert (table["status"] == "recommended").sum() == 1
    assert tuning.recommendation.threads is None
    front = tuning.front()
    assert len(front) >= 1
    assert set(front["variant"]) <= {"fp32", "slim"}  # int8's drop is unknown without data
    assert (table[table["variant"] == "int8-dynamic"]["status"] == "accuracy unknown").all()
