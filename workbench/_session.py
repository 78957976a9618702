"""A scratch folder for this Python process, removed when the process exits."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile


@functools.cache
def scratch_dir() -> str:
    """Models exported without a path and pickled modules for workers live here."""
    path = tempfile.mkdtemp(prefix="workbench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
