"""Fixtures shared by the tests: exported tiny models, reused across a whole session.

The models themselves live in ``models.py`` (``from models import mlp``); pytest puts this
folder on ``sys.path`` because it has no ``__init__.py``.
"""

from __future__ import annotations

from pathlib import Path

import models
import pytest


@pytest.fixture(scope="session")
def mlp_artifact(tmp_path_factory: pytest.TempPathFactory):
    """The mlp from ``models.py`` exported once, batch dynamic, parity checked."""
    import workbench

    model, inputs = models.mlp()
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    return workbench.export(model, inputs, path)


@pytest.fixture
def no_staging_left():
    """Call with a folder: asserts that no export staging folder was left in it."""

    def check(folder: Path) -> None:
        leftovers = sorted(p.name for p in folder.glob(".workbench-export-*"))
        assert leftovers == [], f"staging folders left behind in {folder}: {leftovers}"

    return check


def _registering(register, unregister):
    """Yields an ``add`` that registers things for one test; removes them afterwards."""
    names = []

    def add(thing) -> str:
        register(thing)
        names.append(thing.name)
        return thing.name

    yield add
    for name in names:
        unregister(name)


@pytest.fixture
def registered():
    """Registers runtimes for one test and removes them afterwards."""
    from workbench.runtimes import register, unregister

    yield from _registering(register, unregister)


@pytest.fixture
def passes_registered():
    """Registers optimization passes for one test and removes them afterwards."""
    from workbench.optimize.passes import register, unregister

    yield from _registering(register, unregister)
