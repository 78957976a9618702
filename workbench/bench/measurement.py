"""Immutable records of what measuring one cell gave."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from workbench.bench.stats import LatencyStats, summarize
from workbench.runtimes.base import RuntimeConfig

STATUSES = ("ok", "failed", "crashed", "oom", "timeout")
NOISE_LIMIT_CORES = 0.2
"""Other processes using more CPU than this while a cell ran make its numbers untrustworthy."""


@dataclass(frozen=True)
class Cell:
    """One point of a sweep: a runtime configuration, a batch size and a thread count.

    ``variant`` names the model variant the cell runs (``""``: the sweep's one model).
    """

    config: RuntimeConfig
    batch_size: int
    threads: int | None
    variant: str = ""

    @property
    def label(self) -> str:
        return f"{self.config.label} [{self.variant}]" if self.variant else self.config.label

    @property
    def group(self) -> tuple[str, int | None]:
        """Cells of one group share a worker process."""
        return (self.label, self.threads)

    def describe(self) -> str:
        threads = "default threads" if self.threads is None else f"{self.threads} threads"
        return f"{self.label}, batch {self.batch_size}, {threads}"


@dataclass(frozen=True)
class Parity:
    """How a cell's outputs compare with the reference runtime's at the same batch size."""

    reference: str
    ok: bool
    max_abs: float
    max_rel: float
    worst_output: str
    detail: str = ""


@dataclass(frozen=True)
class Measurement:
    """Everything measuring one cell gave, including how it failed."""

    cell: Cell
    status: str
    cause: str = ""
    samples_ns: tuple[int, ...] = ()
    round_medians_ms: tuple[float, ...] = ()
    stats: LatencyStats | None = None
    first_ms: float = math.nan
    load_s: float = math.nan
    peak_rss_mb: float = math.nan
    parity: Parity | None = None
    noise_cores: float = math.nan
    stop_reason: str = ""
    provider: str = ""
    threads_used: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def noisy(self) -> bool:
        return not math.isnan(self.noise_cores) and self.noise_cores > NOISE_LIMIT_CORES

    @property
    def throughput_per_s(self) -> float:
        if self.stats is None or not self.stats.median_ms:
            return math.nan
        return self.cell.batch_size / (self.stats.median_ms / 1e3)


def finished(
    cell: Cell,
    samples_ns: list[int],
    round_medians_ms: list[float],
    **fields: Any,
) -> Measurement:
    """A successful measurement with its statistics computed from the samples."""
    return Measurement(
        cell=cell,
        status="ok",
        samples_ns=tuple(samples_ns),
        round_medians_ms=tuple(round_medians_ms),
        stats=summarize(samples_ns),
        **fields,
    )
