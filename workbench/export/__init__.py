"""Turning framework models into artifacts, and the parity check that follows every export."""

from workbench._callable import make_callable

# NOTE: workbench.export(model, inputs) still exports after this folder has been imported.
make_callable(__name__, "workbench.api:export")
