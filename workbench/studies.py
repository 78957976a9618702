"""A named, stored, resumable sweep: `Study`.

A study plans its cells (model × runtime × batch size × threads), measures those its latest
run is missing, and writes each measurement to the store the moment it completes. What counts
as "the same cell" is a fingerprint of the model's sha256, the cell's configuration and the
environment, so a study interrupted by a kernel interrupt, a kill -9 or a crash picks up where
it stopped, and one re-run on another machine or with other versions measures afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.artifact import Artifact
from workbench.bench.measurement import Cell, Measurement
from workbench.errors import InputError
from workbench.runtimes import RuntimeConfig
from workbench.store.environment import Environment, current_environment

if TYPE_CHECKING:
    from workbench.results import Results
    from workbench.store.sqlite import Store

log = logging.getLogger(__name__)


def cell_fingerprint(sha256: str, cell: Cell, environment: Environment) -> str:
    """Identity of a cell: the model, the configuration, and the environment it runs in."""
    key = {
        "model": sha256,
        "runtime": cell.config.name,
        "options": list(cell.config.options),
        "batch_size": cell.batch_size,
        "threads": cell.threads,
        "environment": environment.fingerprint,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PlannedCell:
    target: str
    artifact: Artifact
    cell: Cell
    fingerprint: str


class Study:
    """A named sweep kept in a store; ``run()`` measures only what is missing."""

    def __init__(
        self,
        name: str,
        targets: Any,
        runtimes: Iterable[str] | None = None,
        batch_sizes: Iterable[int] = (1,),
        threads: Iterable[int | None] = (None,),
        *,
        budget_s: float = 2.0,
        store: Store | str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        from workbench.store.sqlite import Store

        if not isinstance(name, str) or not name.strip():
            raise InputError(f"A study needs a name, such as 'digits-cnn'; got {name!r}.")
        self.name = name
        self.targets = _artifacts(targets)
        self.runtimes = None if runtimes is None else [str(r) for r in runtimes]
        self.batch_sizes = tuple(batch_sizes)
        self.threads = tuple(threads)
        self.budget_s = budget_s
        self.options = options
        self.store = store if isinstance(store, Store) else Store(store)
        self.environment = current_environment()

    def __repr__(self) -> str:
        return (
            f"Study({self.name!r}, {len(self.targets)} models, "
            f"{len(self.missing())} cells missing, store {str(self.store.path)!r})"
        )

    # -- planning -----------------------------------------------------------------------------

    def plan(self) -> list[PlannedCell]:
        """Every cell of the study, whether measured already or not."""
        from workbench.study import _choose_runtimes, _positive_ints, _thread_counts

        planned = []
        for target, artifact in self.targets.items():
            framework = getattr(artifact, "_framework_model", None) is not None
            configs, _ = _choose_runtimes(self.runtimes, has_framework=framework)
            for config in configs:
                for batch in _positive_ints("batch_sizes", self.batch_sizes):
                    for count in _thread_counts(self.threads):
                        cell = Cell(config, batch, count)
                        fingerprint = cell_fingerprint(artifact.sha256, cell, self.environment)
                        planned.append(PlannedCell(target, artifact, cell, fingerprint))
        return planned

    def missing(self, run: int | None = None) -> list[PlannedCell]:
        """Cells the given run (the latest by default) holds no measurement for."""
        runs = self.store.runs(self.name)
        chosen = run if run is not None else (runs[-1] if runs else None)
        done = self.store.finished(self.name, chosen) if chosen is not None else set()
        return [planned for planned in self.plan() if planned.fingerprint not in done]

    # -- running ------------------------------------------------------------------------------

    def run(self, *, again: bool = False, progress: bool = True) -> int:
        """Measure the cells the latest run is missing (all of them with ``again``).

        Cells of one model, batch size and thread count are measured together, interleaved,
        so their speed-ups are paired; each measurement is stored as it completes. Returns
        the run's number.
        """
        import workbench

        env = self.store.record_environment(self.environment)
        runs = self.store.runs(self.name)
        self.store.ensure_study(self.name, self._config())
        run = self.store.start_run(self.name, env) if again or not runs else runs[-1]
        todo = self.missing(run)
        log.info("study %s, run %d: %d cells to measure", self.name, run, len(todo))
        for (target, batch, count), group in _chunks(todo).items():
            artifact = self.targets[target]
            self.store.record_artifact(artifact)
            by_cell = {planned.cell: planned for planned in group}

            def store(measurement: Measurement, by_cell: dict = by_cell) -> None:
                planned = by_cell[measurement.cell]
                self.store.add_measurement(
                    measurement,
                    study=self.name,
                    run=run,
                    fingerprint=planned.fingerprint,
                    artifact=planned.artifact.sha256,
                    environment=env,
                )

            workbench.benchmark(
                artifact,
                runtimes=[p.cell.config.label for p in group],
                batch_sizes=(batch,),
                threads=(count,),
                budget_s=self.budget_s,
                progress=progress,
                on_measurement=store,
                **self.options,
            )
        return run

    # -- reading ------------------------------------------------------------------------------

    def results(
        self, run: int | None = None, target: str | None = None, *, roofline: bool = True
    ) -> Results:
        """One model's Results from the store, for the latest run unless ``run`` is given.

        With ``roofline`` each cell also gets its attained GFLOP/s and share of this machine's
        fp32 matrix-multiply peak, measured once per environment and kept in the store.
        """
        from workbench.bench.peak import peak_for
        from workbench.results import with_roofline

        name = target or _only(self.targets)
        if name not in self.targets:
            raise InputError(
                f"Study {self.name!r} has no model {name!r}; its models are: "
                f"{', '.join(self.targets)}."
            )
        artifact = self.targets[name]
        results = self.store.results(self.name, run, artifact=artifact.sha256)
        if not roofline or not any(m.ok for m in results.measurements):
            return results
        return with_roofline(results, artifact, peak_for(results.environment, self.store))

    @property
    def runs(self) -> list[int]:
        return self.store.runs(self.name)

    def report(self, path: str | os.PathLike[str], run: int | None = None) -> Path:
        """One self-contained HTML report of the run (the latest by default)."""
        from workbench.report import study_report

        return study_report(self, Path(path), run)

    def _config(self) -> dict[str, Any]:
        from workbench.study import _reference

        labels = [RuntimeConfig.parse(r) for r in self.runtimes] if self.runtimes else []
        reference = (
            _reference(labels)
            if labels
            else _reference(
                [RuntimeConfig(name) for name in ("torch", "onnxruntime")]
                if any(
                    getattr(a, "_framework_model", None) is not None for a in self.targets.values()
                )
                else [RuntimeConfig("onnxruntime")]
            )
        )
        return {
            "targets": {n: a.sha256 for n, a in self.targets.items()},
            "runtimes": self.runtimes,
            "batch_sizes": list(self.batch_sizes),
            "threads": list(self.threads),
            "budget_s": self.budget_s,
            "reference": reference,
        }


def _chunks(cells: list[PlannedCell]) -> dict[tuple[str, int, int | None], list[PlannedCell]]:
    groups: dict[tuple[str, int, int | None], list[PlannedCell]] = {}
    for planned in cells:
        key = (planned.target, planned.cell.batch_size, planned.cell.threads)
        groups.setdefault(key, []).append(planned)
    return groups


def _artifacts(targets: Any) -> dict[str, Artifact]:
    """An Artifact, a path, (module, inputs), or a list or dict of them, by name."""
    from workbench.study import _resolve_target

    if isinstance(targets, Mapping):
        items = list(targets.items())
    elif isinstance(targets, list):
        items = [(None, target) for target in targets]
    else:
        items = [(None, targets)]
    found: dict[str, Artifact] = {}
    for name, target in items:
        if isinstance(target, tuple) and len(target) == 2:
            artifact = _resolve_target(*target)
        else:
            artifact = _resolve_target(target, None)
        found[name or artifact.name] = artifact
    if not found:
        raise InputError("A study needs at least one model to measure.")
    return found


def _only(targets: dict[str, Artifact]) -> str:
    if len(targets) != 1:
        raise InputError(
            f"This study measures {len(targets)} models; name one with "
            f"target=... (one of {', '.join(targets)})."
        )
    return next(iter(targets))
