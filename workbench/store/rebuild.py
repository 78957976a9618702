"""Stored measurements back into Results objects, one model at a time."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING

from workbench.errors import StoreError

if TYPE_CHECKING:
    from workbench.results import Results
    from workbench.store.sqlite import Store


def results_from_store(
    store: Store, study: str, run: int | None = None, artifact: str | None = None
) -> Results:
    """The Results of one run of a study (the latest by default) for one of its models."""
    from workbench.results import Results

    runs = store.runs(study)
    if not runs:
        raise StoreError(
            f"{store.path} holds no study called {study!r}; its studies are: "
            f"{', '.join(store.studies()['study']) or 'none'}."
        )
    chosen = runs[-1] if run is None else run
    if chosen not in runs:
        raise StoreError(f"Study {study!r} has no run {chosen}; its runs are {runs}.")
    rows = store.load(study, chosen)
    models = list(dict.fromkeys(row["artifact"] for row, _ in rows))
    if artifact is None and len(models) > 1:
        raise StoreError(
            f"Run {chosen} of {study!r} measured {len(models)} models; name one "
            f"with artifact=... (one of {', '.join(m[:12] for m in models)})."
        )
    sha = artifact if artifact is not None else (models[0] if models else "")
    chosen_rows = [(row, m) for row, m in rows if row["artifact"] == sha or not sha]
    config = json.loads(_config(store, study) or "{}")
    name = _artifact_name(store, sha)
    stub = SimpleNamespace(name=name, sha256=sha, parity=None)
    results = Results.from_measurements(
        [m for _, m in chosen_rows], artifact=stub, reference=config.get("reference")
    )
    environment = chosen_rows[0][0]["environment"] if chosen_rows else None
    if environment:
        results = replace(results, environment=store.environment(environment))
    return results


def _config(store: Store, study: str) -> str | None:
    rows = store._query("SELECT config FROM study WHERE name = ?", (study,))
    return rows[0]["config"] if rows else None


def _artifact_name(store: Store, sha: str) -> str:
    rows = store._query("SELECT name FROM artifact WHERE sha256 = ?", (sha,))
    return rows[0]["name"] if rows else sha[:12]
