"""Executors run the cells of a sweep and hand back measurements as they complete."""

from workbench.executors.local import LocalExecutor, SweepPlan

__all__ = ["LocalExecutor", "SweepPlan"]
