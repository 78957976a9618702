"""Compare a model's outputs with reference outputs under dtype-aware tolerances.

numpy only: the runs that produce the outputs happen elsewhere (the framework in the caller,
the engines in worker processes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# (absolute, relative) tolerance per element type: |actual - expected| <= atol + rtol * |expected|.
# NOTE: float32 allows 1e-4 absolute: reordered reductions in fused kernels differ by a few ulps
# per addition, and deep models accumulate that.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-6),
    "float32": (1e-4, 1e-3),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}
EXACT = (0.0, 0.0)


@dataclass(frozen=True)
class OutputParity:
    """How one output of one run compares with its reference."""

    name: str
    batch_size: int | None
    shape: tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    ok: bool
    problem: str = ""


@dataclass(frozen=True)
class ParityReport:
    """Per-output errors of a candidate against a reference, with a verdict."""

    reference: str
    candidate: str
    rows: tuple[OutputParity, ...] = field(default_factory=tuple)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def worst(self) -> OutputParity | None:
        """The output furthest outside its tolerance (or closest to it when all pass)."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda row: (not row.ok, _tolerance_share(row)))

    @property
    def summary(self) -> str:
        if self.error:
            return f"parity not established: {self.error}"
        worst = self.worst
        if worst is None:
            return "parity not established: no outputs were compared"
        where = f"{worst.name!r}" + (f" at batch {worst.batch_size}" if worst.batch_size else "")
        if self.ok:
            return f"parity ok: largest error {worst.max_abs:.3g} (abs) on {where}"
        detail = worst.problem or f"max abs {worst.max_abs:.3g}, max rel {worst.max_rel:.3g}"
        return f"parity FAILED on {where}: {detail} (atol {worst.atol:g}, rtol {worst.rtol:g})"

    def __str__(self) -> str:
        from workbench._html import text_table

        return f"{self.candidate} vs {self.reference}: {self.summary}\n" + text_table(
            _HEADERS, (_cells(row) for row in self.rows)
        )

    def _repr_html_(self) -> str:
        from workbench._html import STYLE, escape, table

        verdict_class = "wb-good" if self.ok else "wb-bad"
        rows = []
        for row in self.rows:
            cells = [escape(cell) for cell in _cells(row)]
            cells[-1] = f'<span class="{"wb-good" if row.ok else "wb-bad"}">{cells[-1]}</span>'
            rows.append(cells)
        return (
            f"{STYLE}<div><b>Parity</b> {escape(self.candidate)} vs {escape(self.reference)}: "
            f'<span class="{verdict_class}">{escape(self.summary)}</span></div>'
            + table(_HEADERS, rows, raw=True)
        )


_HEADERS = ("output", "batch", "shape", "dtype", "max abs", "max rel", "atol", "rtol", "verdict")


def _cells(row: OutputParity) -> list[str]:
    verdict = "ok" if row.ok else (row.problem or "outside tolerance")
    return [
        row.name,
        "" if row.batch_size is None else str(row.batch_size),
        "x".join(map(str, row.shape)) or "scalar",
        row.dtype,
        f"{row.max_abs:.3g}",
        f"{row.max_rel:.3g}",
        f"{row.atol:g}",
        f"{row.rtol:g}",
        verdict,
    ]


def _tolerance_share(row: OutputParity) -> float:
    limit = row.atol + row.rtol
    return row.max_abs / limit if limit else row.max_abs


def tolerance_for(
    dtype: str, overrides: Mapping[str, tuple[float, float]] | None
) -> tuple[float, float]:
    if overrides and dtype in overrides:
        return overrides[dtype]
    return DEFAULT_TOLERANCES.get(dtype, EXACT)


def compare_outputs(
    names: Sequence[str],
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    *,
    batch_size: int | None = None,
    tolerances: Mapping[str, tuple[float, float]] | None = None,
) -> list[OutputParity]:
    """Compare outputs pairwise; a count or shape mismatch is a failed row, not an exception."""
    import numpy as np

    if len(expected) != len(actual):
        return [
            _mismatch(
                names[0] if names else "outputs",
                batch_size,
                f"{len(actual)} outputs where the reference gave {len(expected)}",
            )
        ]
    rows = []
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        name = names[index] if index < len(names) else f"output_{index}"
        rows.append(_compare_one(name, batch_size, np.asarray(want), np.asarray(got), tolerances))
    return rows


def _compare_one(
    name: str,
    batch_size: int | None,
    want: np.ndarray,
    got: np.ndarray,
    tolerances: Mapping[str, tuple[float, float]] | None,
) -> OutputParity:
    import numpy as np

    if want.shape != got.shape:
        return _mismatch(
            name, batch_size, f"shape {got.shape} where the reference has {want.shape}"
        )
    dtype = want.dtype.name
    atol, rtol = tolerance_for(dtype, tolerances)
    if want.size == 0:
        return OutputParity(name, batch_size, want.shape, dtype, 0.0, 0.0, atol, rtol, True)
    want64, got64 = want.astype(np.float64), got.astype(np.float64)
    nan_mismatch = bool(np.any(np.isnan(want64) != np.isnan(got64)))
    both = ~(np.isnan(want64) | np.isnan(got64))
    diff = np.abs(want64 - got64)[both]
    scale = np.abs(want64)[both]
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = (
        float((diff / np.maximum(scale, np.finfo(np.float64).tiny)).max()) if diff.size else 0.0
    )
    within = bool(np.all(diff <= atol + rtol * scale)) and not nan_mismatch
    problem = "NaN where the reference has a number, or the reverse" if nan_mismatch else ""
    return OutputParity(
        name, batch_size, want.shape, dtype, max_abs, max_rel, atol, rtol, within, problem
    )


def _mismatch(name: str, batch_size: int | None, problem: str) -> OutputParity:
    nan = float("nan")
    return OutputParity(name, batch_size, (), "", nan, nan, 0.0, 0.0, False, problem)
