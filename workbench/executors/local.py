"""Run a sweep on this machine: one worker per runtime configuration, one measuring at a time.

All workers stay alive for the whole sweep. The coordinator runs short rounds across the cells
in a shuffled order, so that the machine's drift hits every runtime alike, and keeps each
round's median so that speed-ups can be computed round by round.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.bench.measurement import Cell, Measurement, Parity, finished
from workbench.bench.process import (
    WorkerCancelledError,
    WorkerDiedError,
    WorkerFailedError,
    WorkerProcess,
)
from workbench.bench.stats import summarize
from workbench.errors import InputError, RuntimeNotAvailableError
from workbench.export.parity import compare_outputs
from workbench.runtimes import ModelRef, Runtime

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Progress = Callable[[str, Any], None]
_GAP_S = 0.02  # lets the previous worker's spinning threads go idle before the next measures


@dataclass(frozen=True)
class SweepPlan:
    """What to measure and how long to try."""

    cells: tuple[Cell, ...]
    runtimes: dict[str, Runtime]
    model: ModelRef
    feeds: Callable[[int], dict[str, np.ndarray]]
    output_names: tuple[str, ...]
    reference: str | None
    budget_s: float = 2.0
    min_rounds: int = 8
    max_rounds: int = 400
    precision: float = 0.01
    warmup_s: float = 0.2
    timeout_s: float = 60.0
    memory_limit_mb: float | None = None
    seed: int = 0
    variants: Mapping[str, ModelRef] = field(default_factory=dict)
    """The model each named variant runs; a cell with no variant runs ``model``."""
    similarity_floors: Mapping[str, float] = field(default_factory=dict)
    """Variants computed at lower precision (fp16, int8), whose outputs cannot meet float32
    tolerances: each is judged by the cosine similarity of its outputs with the reference's,
    which must reach the floor given here."""

    @property
    def load_timeout_s(self) -> float:
        """Loading compiles the model, which can take far longer than one timed round."""
        return 3 * self.timeout_s

    @property
    def round_s(self) -> float:
        return min(0.25, max(0.02, self.budget_s / (1.5 * self.min_rounds)))


@dataclass
class _CellState:
    cell: Cell
    failure: tuple[str, str] | None = None
    samples: list[int] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)
    measured_s: float = 0.0
    others_s: float = 0.0
    wall_s: float = 0.0
    first_ms: float = math.nan
    peak_rss_mb: float = math.nan
    outputs: list[Any] | None = None
    parity: Parity | None = None
    reported: bool = False

    @property
    def active(self) -> bool:
        return self.failure is None and self.outputs is not None


@dataclass
class _Group:
    runtime: Runtime
    cells: list[_CellState]
    worker: WorkerProcess | None = None
    load: dict[str, Any] = field(default_factory=dict)


class LocalExecutor:
    """Measures the cells of a plan in isolated worker processes on this machine."""

    def __init__(self) -> None:
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop after the current request; finished cells are still reported."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def submit(self, plan: SweepPlan, progress: Progress | None = None) -> Iterator[Measurement]:
        """Measure every cell; yields measurements in the order they complete."""
        notify = progress or (lambda kind, data: None)
        states = {cell: _CellState(cell) for cell in plan.cells}
        groups: dict[tuple[str, int | None], _Group] = {}
        for cell, state in states.items():
            runtime = plan.runtimes[cell.config.name]
            groups.setdefault(cell.group, _Group(runtime, [])).cells.append(state)
        try:
            notify("phase", "starting workers")
            self._start(plan, groups)
            yield from self._report_failures(states)
            notify("phase", "warming up")
            self._prepare_all(plan, groups)
            yield from self._report_failures(states)
            notify("phase", "measuring")
            yield from self._rounds(plan, groups, states, notify)
        except WorkerCancelledError:
            log.info("the sweep was cancelled while its workers were starting")
        finally:
            # All are asked at once, so stopping a sweep takes one worker's exit, not the sum.
            workers = [group.worker for group in groups.values() if group.worker is not None]
            for worker in workers:
                worker.ask_to_close()
            for worker in workers:
                worker.close()

    # -- starting and preparing -------------------------------------------------------------

    def _start(self, plan: SweepPlan, groups: dict[Any, _Group]) -> None:
        """Start every worker first, so that engine imports overlap, then collect the loads."""
        for group in groups.values():
            _spawn(plan, group, group.cells[0].cell)
        for group in groups.values():
            self._finish_load(plan, group)

    def _finish_load(self, plan: SweepPlan, group: _Group) -> None:
        assert group.worker is not None
        try:
            group.load = group.worker.receive("load", plan.load_timeout_s, stop=self._cancel)
        except WorkerFailedError as failure:
            if failure.kind == "not-available":
                raise RuntimeNotAvailableError(failure.message) from None
            _fail(group.cells, "failed", f"loading failed: {failure.message}")
        except WorkerDiedError as death:
            _fail(group.cells, death.status, f"loading: {death.cause}")

    def _prepare_all(self, plan: SweepPlan, groups: dict[Any, _Group]) -> None:
        # The reference runtime goes first: the others' outputs are compared with it.
        ordered = sorted(groups.values(), key=lambda g: g.cells[0].cell.label != plan.reference)
        for group in ordered:
            for state in group.cells:
                if state.failure is None and not self.cancelled:
                    self._prepare(plan, group, state)
        references = {
            s.cell.batch_size: s
            for g in ordered
            for s in g.cells
            if s.cell.label == plan.reference and s.outputs is not None
        }
        for group in ordered:
            for state in group.cells:
                if state.outputs is not None:
                    state.parity = _parity(plan, state, references.get(state.cell.batch_size))

    def _prepare(self, plan: SweepPlan, group: _Group, state: _CellState) -> None:
        assert group.worker is not None
        try:
            feeds = plan.feeds(state.cell.batch_size)
        except InputError as error:
            state.failure = ("failed", str(error))
            return
        try:
            reply = group.worker.request(
                "prepare",
                plan.timeout_s,
                key=state.cell.batch_size,
                feeds=feeds,
                warmup_s=plan.warmup_s,
            )
        except WorkerFailedError as failure:
            state.failure = ("failed", f"the first run failed: {failure.message}")
            return
        except WorkerDiedError as death:
            state.failure = (death.status, f"the first run: {death.cause}")
            self._restart(plan, group)
            return
        state.outputs = reply["outputs"]
        state.first_ms = reply["first_ms"]
        state.peak_rss_mb = reply["peak_rss_mb"]

    def _restart(self, plan: SweepPlan, group: _Group) -> None:
        """After a death, give the group's remaining cells a fresh worker."""
        survivors = [s for s in group.cells if s.failure is None]
        if group.worker is not None:
            group.worker.kill()
            group.worker = None
        if not survivors:
            return
        log.info("restarting the worker of %s after a failure", survivors[0].cell.label)
        _spawn(plan, group, survivors[0].cell)
        self._finish_load(plan, group)
        for state in survivors:
            if state.failure is None and state.outputs is not None:
                outputs, parity = state.outputs, state.parity
                self._prepare(plan, group, state)
                state.outputs, state.parity = outputs, parity

    # -- measuring ----------------------------------------------------------------------------

    def _rounds(
        self,
        plan: SweepPlan,
        groups: dict[Any, _Group],
        states: dict[Cell, _CellState],
        notify: Progress,
    ) -> Iterator[Measurement]:
        shuffle = random.Random(plan.seed).shuffle
        group_of = {s.cell: g for g in groups.values() for s in g.cells}
        for round_index in range(plan.max_rounds):
            running = [s for s in states.values() if s.active and not _spent(plan, s)]
            if not running or self.cancelled or _precise(plan, states, round_index):
                break
            shuffle(running)
            for state in running:
                if self.cancelled:
                    break
                self._measure_once(plan, group_of[state.cell], state, round_index)
                if state.samples:
                    notify("measured", (state.cell, summarize(state.samples)))
                time.sleep(_GAP_S)
            yield from self._report_failures(states)
        for state in states.values():
            if state.active and state.samples and not state.reported:
                state.reported = True
                yield _measurement(plan, state, groups[state.cell.group], self.cancelled)

    def _measure_once(self, plan: SweepPlan, group: _Group, state: _CellState, index: int) -> None:
        worker = group.worker
        if worker is None:
            return
        while len(state.round_medians) < index:
            state.round_medians.append(math.nan)
        before = worker.cpu_snapshot()
        try:
            reply = worker.request(
                "measure", plan.timeout_s, key=state.cell.batch_size, seconds=plan.round_s
            )
        except WorkerFailedError as failure:
            state.failure = ("failed", f"a timed run failed: {failure.message}")
            return
        except WorkerDiedError as death:
            state.failure = (death.status, death.cause)
            self._restart(plan, group)
            return
        after = worker.cpu_snapshot()
        samples = reply["samples_ns"]
        state.samples.extend(samples)
        state.round_medians.append(summarize(samples).median_ms)
        state.measured_s += sum(samples) / 1e9
        state.peak_rss_mb = max(state.peak_rss_mb, reply["peak_rss_mb"])
        others = (
            (after.busy_s - before.busy_s)
            - (after.worker_s - before.worker_s)
            - (after.own_s - before.own_s)
        )
        state.others_s += max(0.0, others)
        state.wall_s += after.wall_s - before.wall_s

    def _report_failures(self, states: dict[Cell, _CellState]) -> Iterator[Measurement]:
        for state in states.values():
            if state.failure is not None and not state.reported:
                state.reported = True
                status, cause = state.failure
                yield Measurement(cell=state.cell, status=status, cause=cause, parity=state.parity)


def _spawn(plan: SweepPlan, group: _Group, cell: Cell) -> None:
    """Start the group's worker and send it the load request, without waiting for the reply."""
    import cloudpickle

    group.worker = WorkerProcess(cell.label, cell.threads, plan.memory_limit_mb)
    group.worker.send(
        "load",
        runtime=cloudpickle.dumps(group.runtime),
        model=plan.variants.get(cell.variant, plan.model) if cell.variant else plan.model,
        config=cell.config,
        threads=cell.threads,
    )


def _fail(states: list[_CellState], status: str, cause: str) -> None:
    for state in states:
        if state.failure is None:
            state.failure = (status, cause)


def _spent(plan: SweepPlan, state: _CellState) -> bool:
    return state.measured_s >= plan.budget_s


def _precise(plan: SweepPlan, states: dict[Cell, _CellState], rounds_done: int) -> bool:
    if rounds_done < plan.min_rounds:
        return False
    active = [s for s in states.values() if s.active]
    return all(_meets_precision(plan, s) for s in active)


def _meets_precision(plan: SweepPlan, state: _CellState) -> bool:
    return bool(state.samples) and summarize(state.samples).relative_halfwidth <= plan.precision


def _parity(plan: SweepPlan, state: _CellState, reference: _CellState | None) -> Parity | None:
    if reference is None or state is reference or state.outputs is None:
        return None
    if state.cell.variant in plan.similarity_floors:
        return _similarity(plan, state, reference)
    rows = compare_outputs(
        plan.output_names, reference.outputs or [], state.outputs, batch_size=state.cell.batch_size
    )
    if not rows:
        return None
    worst = max(rows, key=lambda row: (not row.ok, row.max_abs))
    return Parity(
        reference=reference.cell.label,
        ok=all(row.ok for row in rows),
        max_abs=max(row.max_abs for row in rows),
        max_rel=max(row.max_rel for row in rows),
        worst_output=worst.name,
        detail=worst.problem,
    )


def _similarity(plan: SweepPlan, state: _CellState, reference: _CellState) -> Parity:
    import numpy as np

    floor = plan.similarity_floors[state.cell.variant]
    worst, worst_name, max_abs = 1.0, "", 0.0
    expected, actual = reference.outputs or [], state.outputs or []
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        a = np.asarray(want, dtype=np.float64).ravel()
        b = np.asarray(got, dtype=np.float64).ravel()
        if a.shape != b.shape:
            worst, worst_name = -1.0, plan.output_names[index]
            continue
        norm = np.linalg.norm(a) * np.linalg.norm(b)
        similarity = float(a @ b / norm) if norm > 0 else float(np.array_equal(a, b))
        max_abs = max(max_abs, float(np.max(np.abs(a - b))) if a.size else 0.0)
        if similarity < worst:
            worst, worst_name = similarity, plan.output_names[index]
    return Parity(
        reference=reference.cell.label,
        ok=len(expected) == len(actual) and worst >= floor,
        max_abs=max_abs,
        max_rel=float("nan"),
        worst_output=worst_name,
        detail=f"cosine similarity {worst:.5f} (lower precision; the floor is {floor:g})",
    )


def _measurement(plan: SweepPlan, state: _CellState, group: _Group, cancelled: bool) -> Measurement:
    if cancelled:
        reason = "cancelled"
    elif _meets_precision(plan, state) and len(state.samples) > 0:
        reason = "precision"
    else:
        reason = "budget"
    info = group.load.get("info")
    return finished(
        state.cell,
        state.samples,
        state.round_medians,
        first_ms=state.first_ms,
        load_s=group.load.get("load_s", math.nan),
        peak_rss_mb=state.peak_rss_mb,
        parity=state.parity,
        noise_cores=state.others_s / state.wall_s if state.wall_s else math.nan,
        stop_reason=reason,
        provider=getattr(info, "provider", ""),
        threads_used=getattr(info, "threads", None),
        details=dict(getattr(info, "details", {})),
    )


def run_in_worker(
    runtime: Runtime,
    config: Any,
    model: ModelRef,
    feeds: list[dict[str, np.ndarray]],
    timeout_s: float = 300.0,
) -> list[list[np.ndarray]]:
    """Run each feed once in a throw-away worker and return the outputs.

    Raises WorkerDiedError or WorkerFailedError; callers decide what a failure means to them.
    """
    import cloudpickle

    worker = WorkerProcess(config.label, None, None)
    try:
        worker.request(
            "load",
            timeout_s,
            runtime=cloudpickle.dumps(runtime),
            model=model,
            config=config,
            threads=None,
        )
        return [worker.request("run", timeout_s, feeds=feed) for feed in feeds]
    finally:
        worker.close()


def probe_in_worker(runtimes: list[Runtime], timeout_s: float = 120.0) -> dict[str, Any]:
    """Import each runtime's engine in one worker and report what it offers, or why not."""
    import cloudpickle

    from workbench.runtimes import Availability

    found: dict[str, Any] = {}
    worker: WorkerProcess | None = None
    for runtime in runtimes:
        if worker is None or not worker.alive:
            worker = WorkerProcess("probe", None, None)
        try:
            found[runtime.name] = worker.request(
                "probe", timeout_s, runtime=cloudpickle.dumps(runtime)
            )
        except WorkerFailedError as failure:
            found[runtime.name] = Availability(
                ok=False, reason=failure.message, install=runtime.install
            )
        except WorkerDiedError as death:
            found[runtime.name] = Availability(
                ok=False, reason=f"importing it {death.cause}", install=runtime.install
            )
            worker.kill()
            worker = None
    if worker is not None:
        worker.close()
    return found
