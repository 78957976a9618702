"""Task metrics and error statistics on plain numpy outputs: higher is better for every metric.

A metric is computed on a variant's outputs for the user's data. ``accuracy`` needs labels;
``agreement`` (argmax agreement) and ``cosine`` (mean cosine similarity of rows, for embeddings)
compare with the float32 model's outputs. A callable ``metric(outputs, labels)`` gets the first
output (or the list of outputs when the model has several) and the labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    import numpy as np

NAMES = ("accuracy", "agreement", "cosine")


@dataclass(frozen=True)
class Metric:
    """A named score: ``function(outputs, labels, reference_outputs) -> float``."""

    name: str
    function: Callable[[list[np.ndarray], Any, list[np.ndarray]], float]
    uses_labels: bool


def resolve(
    metric: str | Callable[..., float] | None, labels: Any, outputs: Sequence[Any]
) -> Metric:
    """The metric asked for, or the natural one: accuracy with labels, else agreement or cosine."""
    if callable(metric):
        name = getattr(metric, "__name__", "metric")

        def call(got: list[np.ndarray], truth: Any, _reference: list[np.ndarray]) -> float:
            try:
                value = metric(got[0] if len(got) == 1 else got, truth)
            except Exception as error:  # the user's function: its failure is named below
                raise InputError(
                    f"The metric {name}(outputs, labels) raised {type(error).__name__}: {error}"
                ) from error
            try:
                return float(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"The metric {name}(outputs, labels) must return one number; it returned "
                    f"{type(value).__name__} {str(value)[:80]}."
                ) from None

        return Metric(name if name != "<lambda>" else "metric", call, labels is not None)
    if metric is None:
        if labels is not None:
            metric = "accuracy"
        else:
            metric = "agreement" if _classifies(outputs) else "cosine"
    if metric == "accuracy":
        if labels is None:
            raise InputError(
                "The metric 'accuracy' needs labels=...; without labels use 'agreement' (argmax "
                "agreement with the float32 model) or 'cosine'."
            )
        shape = getattr(labels, "shape", ())
        if len(shape) > 1 and math.prod(shape[1:]) != 1:
            raise InputError(
                f"The metric 'accuracy' takes one class index per sample; the labels have shape "
                f"{tuple(shape)}. One-hot labels can be given as labels.argmax(axis=1)."
            )
        return Metric("accuracy", lambda got, truth, _ref: accuracy(got[0], truth), True)
    if metric == "agreement":
        return Metric("agreement", lambda got, _truth, ref: agreement(got[0], ref[0]), False)
    if metric == "cosine":
        return Metric("cosine", lambda got, _truth, ref: cosine(got, ref), False)
    raise InputError(
        f"metric must be one of {', '.join(NAMES)} or a callable metric(outputs, labels) -> "
        f"float; got {metric!r}."
    )


def _classifies(outputs: Sequence[Any]) -> bool:
    first = outputs[0] if outputs else None
    shape = getattr(first, "shape", ())
    return len(shape) == 2 and shape[-1] > 1


def accuracy(logits: np.ndarray, labels: Any) -> float:
    import numpy as np

    truth = np.asarray(labels).reshape(-1)
    guess = np.asarray(logits).reshape(len(truth), -1).argmax(axis=-1)
    return float(np.mean(guess == truth))


def agreement(logits: np.ndarray, reference: np.ndarray) -> float:
    import numpy as np

    got, want = np.asarray(logits), np.asarray(reference)
    return float(np.mean(got.argmax(axis=-1) == want.argmax(axis=-1)))


def cosine(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """Mean cosine similarity of each sample's output with the reference's, over all outputs.

    An output with one value per sample (a regressor's) has no direction to compare, and every
    positive value would score 1; it is scored by 1 - ||Δ|| / ||reference|| over the whole
    batch instead (floored at 0), which sees a wrong scale as well as a wrong sign.
    """
    import numpy as np

    scores = []
    for got, want in zip(outputs, reference, strict=True):
        a = np.asarray(got, dtype=np.float64).reshape(len(got), -1) if np.ndim(got) else None
        b = np.asarray(want, dtype=np.float64).reshape(len(want), -1) if np.ndim(want) else None
        if a is None or b is None:
            continue
        if a.shape[1] == 1:
            scale = float(np.linalg.norm(b))
            gap = float(np.linalg.norm(a - b))
            scores.append(max(0.0, 1.0 - gap / scale) if scale > 0 else float(gap == 0))
            continue
        norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        norms = norm_a * norm_b
        # Two zero rows are alike; a zero row against a non-zero one is not.
        both_zero = (norm_a == 0) & (norm_b == 0)
        same = np.where(
            norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1), both_zero * 1.0
        )
        scores.append(float(np.mean(same)))
    return float(np.mean(scores)) if scores else math.nan


@dataclass(frozen=True)
class ErrorStats:
    """How far one model's outputs are from another's, over all outputs and samples."""

    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    agreement: float
    """Argmax agreement when the first output looks like class scores, else NaN."""
    within_tolerance: bool
    samples: int

    def describe(self) -> str:
        parts = [f"max |Δ| {self.max_abs:.3g}", f"mean |Δ| {self.mean_abs:.3g}"]
        if not math.isnan(self.cosine):
            parts.append(f"cosine {self.cosine:.5f}")
        if not math.isnan(self.agreement):
            parts.append(f"argmax agreement {self.agreement:.1%}")
        return ", ".join(parts)


def error_stats(
    names: Sequence[str], expected: Sequence[np.ndarray], actual: Sequence[np.ndarray]
) -> ErrorStats:
    import numpy as np

    from workbench.export.parity import compare_outputs

    rows = compare_outputs(names, expected, actual)
    within = bool(rows) and all(row.ok for row in rows)
    diffs = [
        np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).ravel()
        for a, b in zip(expected, actual, strict=True)
        if np.shape(a) == np.shape(b) and np.asarray(a).dtype.kind in "fc"
    ]
    flat = np.concatenate(diffs) if diffs else np.zeros(0)
    shapes_match = len(expected) == len(actual) and all(
        np.shape(a) == np.shape(b) for a, b in zip(expected, actual, strict=True)
    )
    return ErrorStats(
        max_abs=float(np.nanmax(flat)) if flat.size else (0.0 if shapes_match else math.inf),
        mean_abs=float(np.nanmean(flat)) if flat.size else (0.0 if shapes_match else math.inf),
        max_rel=max((row.max_rel for row in rows), default=math.nan),
        cosine=cosine(actual, expected) if shapes_match else -1.0,
        agreement=(
            agreement(actual[0], expected[0])
            if shapes_match and _classifies(expected)
            else math.nan
        ),
        within_tolerance=within,
        samples=len(expected[0]) if expected and np.ndim(expected[0]) else 0,
    )
