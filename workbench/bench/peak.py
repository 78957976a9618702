"""The machine's ceiling: its best sustained fp32 matrix-product throughput, in GFLOP/s.

A model's attained GFLOP/s only means something next to what the same cores can do at best.
The products run in a worker process started like the benchmark's own, with the same thread
variables, and are timed by the same harness: a square product counts as a one-node model.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from workbench.bench.process import (
    WorkerDiedError,
    WorkerFailedError,
    WorkerProcess,
    cores_available,
)
from workbench.errors import WorkbenchError
from workbench.runtimes.base import ModelRef, Runtime, RuntimeConfig, Session, SessionInfo

if TYPE_CHECKING:
    import numpy as np

    from workbench.store.environment import Environment

log = logging.getLogger(__name__)

SIZES = (512, 1024, 2048)
LIBRARIES = ("numpy", "torch")
_WARMUP_S = 0.1
_TIMEOUT_S = 120.0  # covers importing torch in the worker on a slow machine


@dataclass(frozen=True)
class Peak:
    """The best fp32 matrix-product throughput seen, and how it was reached.

    ``details`` holds the GFLOP/s of every library and size tried, and why a library was
    skipped when it was.
    """

    gflops: float
    threads: int
    size: int
    method: str
    details: dict[str, Any] = field(default_factory=dict)


class PeakStore(Protocol):
    """Where measured peaks are kept between sessions, keyed by environment fingerprint."""

    def get_peak(self, fingerprint: str) -> float | None: ...

    def set_peak(self, fingerprint: str, gflops: float, details: dict[str, Any]) -> None: ...


class MatrixProduct(Runtime):
    """A "runtime" whose model is one square fp32 product, ``a @ b``, run by numpy or torch.

    It is never registered: only the peak measurement loads it, in a worker.
    """

    name = "matrix-product"
    description = "square fp32 matrix products (options: library)"
    option_names = ("library",)
    option_choices = {"library": LIBRARIES}  # noqa: RUF012 - read-only class table
    in_default_sweep = False

    def load(self, model: ModelRef | None, config: RuntimeConfig, threads: int | None) -> Session:
        return _ProductSession(config.option("library", "numpy") or "numpy", threads)


class _ProductSession(Session):
    def __init__(self, library: str, threads: int | None) -> None:
        self.library = library
        if library == "torch":
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.info = SessionInfo("cpu", torch.get_num_threads(), {"torch": torch.__version__})
        else:
            import numpy

            self.info = SessionInfo("cpu", threads, {"numpy": numpy.__version__})

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [feeds["a"] @ feeds["b"]]

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        # The result lands in one buffer made beforehand, so no call pays for an allocation.
        if self.library == "torch":
            import torch

            a, b = torch.from_numpy(feeds["a"]), torch.from_numpy(feeds["b"])
            out = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
            return lambda: torch.mm(a, b, out=out)
        import numpy

        a, b = feeds["a"], feeds["b"]
        result = numpy.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
        return lambda: numpy.matmul(a, b, out=result)


def measure_peak(
    threads: int | None = None, seconds: float = 2.0, sizes: Sequence[int] = SIZES
) -> Peak:
    """Measure this machine's best fp32 matrix-product GFLOP/s with ``threads`` threads.

    Every size is tried with numpy's BLAS and with torch when installed, each library in its
    own fresh worker; ``seconds`` of timed calls are shared among all tries. A try's figure is
    2·n³ over its median call, and the best try is the peak.
    """
    libraries = [name for name in LIBRARIES if importlib.util.find_spec(name) is not None]
    share_s = seconds / max(1, len(libraries) * len(sizes))
    results: dict[str, float] = {}
    skipped: dict[str, str] = {}
    used = threads or cores_available()
    for library in libraries:
        try:
            found, used = _measure_library(library, threads, sizes, share_s)
        except (WorkerFailedError, WorkerDiedError) as failure:
            skipped[library] = getattr(failure, "cause", None) or str(failure)
            log.warning("skipped %s for the peak, so it rests on the others: %s", library, failure)
            continue
        results.update(found)

    if not results:
        raise WorkbenchError(
            "No matrix product could be timed for the peak "
            f"({'; '.join(f'{k}: {v}' for k, v in skipped.items()) or 'neither numpy nor torch'}"
            "); install numpy, or torch, in this environment and try again."
        )
    best = max(results, key=results.__getitem__)
    method, size = best.split(" ")
    details = {"gflops_by_try": results, "skipped": skipped, "seconds": seconds}
    log.info("measured a peak of %.1f GFLOP/s (%s) on %s threads", results[best], best, used)
    return Peak(results[best], int(used or cores_available()), int(size), method, details)


def _measure_library(
    library: str, threads: int | None, sizes: Sequence[int], seconds: float
) -> tuple[dict[str, float], int | None]:
    """GFLOP/s per size for one library, measured in one worker, and the threads it used."""
    import cloudpickle
    import numpy

    worker = WorkerProcess(f"peak {library}", threads, None)
    try:
        loaded = worker.request(
            "load",
            _TIMEOUT_S,
            runtime=cloudpickle.dumps(MatrixProduct()),
            model=None,
            config=RuntimeConfig("matrix-product", (("library", library),)),
            threads=threads,
        )
        generator = numpy.random.default_rng(0)
        found = {}
        for size in sizes:
            operands = generator.standard_normal((2, size, size), dtype=numpy.float32)
            feeds = {"a": operands[0], "b": operands[1]}
            worker.request("prepare", _TIMEOUT_S, key=size, feeds=feeds, warmup_s=_WARMUP_S)
            reply = worker.request("measure", _TIMEOUT_S + seconds, key=size, seconds=seconds)
            median_s = statistics.median(reply["samples_ns"]) / 1e9
            found[f"{library} {size}"] = 2 * size**3 / median_s / 1e9
    finally:
        worker.close()
    return found, loaded["info"].threads


_measured: dict[str, float] = {}


def peak_for(
    environment: Environment,
    store: PeakStore | None = None,
    *,
    threads: int | None = None,
    seconds: float = 2.0,
) -> float:
    """The peak GFLOP/s of this environment, measured the first time it is asked for.

    With a ``store`` the figure is read from it and written to it, so it is measured once per
    environment fingerprint; without one it is kept for the life of this process.
    """
    key = _peak_key(environment, threads)
    if store is not None:
        known = store.get_peak(key)
        if known is not None:
            return float(known)
    elif key in _measured:
        return _measured[key]

    peak = measure_peak(threads, seconds)
    if store is not None:
        details = {"threads": peak.threads, "size": peak.size, "method": peak.method}
        store.set_peak(key, peak.gflops, {**details, **peak.details})
    else:
        _measured[key] = peak.gflops
    return peak.gflops


def _peak_key(environment: Environment, threads: int | None) -> str:
    # NOTE: the fingerprint names the machine, not the thread count; a peak on fewer threads
    # than the usable cores gets its own key, so it never stands in for the full one.
    if threads is None or threads == environment.cores_usable:
        return environment.fingerprint
    return f"{environment.fingerprint}:threads={threads}"
