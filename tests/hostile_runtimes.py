"""Runtimes that misbehave on purpose, registered only by the tests that need them.

Most run the model with ONNX Runtime, so their healthy calls give the right outputs, and
misbehave in one way: they segfault, abort, eat memory, hang, raise, or crash at batch 4 only.
Others give zeros, report their environment, or are not installed at all. Workers receive them
through cloudpickle by reference: a worker imports this module from the test process's
``sys.path``, so it imports no engine at the top.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from workbench.runtimes import ModelRef, Runtime, RuntimeConfig, Session, SessionInfo

CHUNK_BYTES = 50 * 2**20
RAISED_MESSAGE = "the hostile engine refused to run on purpose"


class OrtBacked(Runtime):
    """Runs the model with ONNX Runtime's CPU provider; subclasses misbehave in `misbehave`."""

    name = "ort-backed"
    description = "ONNX Runtime on the CPU, wrapped by a test"
    module = "onnxruntime"
    distributions = ("onnxruntime",)
    install = "pip install onnxruntime"

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        import onnxruntime

        self.misbehave_at_load()
        session = onnxruntime.InferenceSession(
            str(model.artifact.path), providers=["CPUExecutionProvider"]
        )
        return OrtBackedSession(session, self, threads)

    def misbehave_at_load(self) -> None:
        return

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        return

    def details(self) -> dict[str, Any]:
        return {}


class OrtBackedSession(Session):
    def __init__(self, session: Any, runtime: OrtBacked, threads: int | None) -> None:
        self._session = session
        self._runtime = runtime
        self._inputs = {value.name for value in session.get_inputs()}
        self.info = SessionInfo("CPUExecutionProvider", threads, runtime.details())

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._runtime.misbehave(feeds)
        own = {name: value for name, value in feeds.items() if name in self._inputs}
        return list(self._session.run(None, own))


class Segfault(OrtBacked):
    """Reads address 0 on its first call, or while loading."""

    name = "hostile-segfault"

    def __init__(self, at_load: bool = False) -> None:
        self.at_load = at_load

    def misbehave_at_load(self) -> None:
        if self.at_load:
            ctypes.string_at(0)

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        ctypes.string_at(0)


class Abort(OrtBacked):
    name = "hostile-abort"

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        os.abort()


class MemoryHog(OrtBacked):
    """Keeps allocating 50 MB blocks, every page written, until someone stops it."""

    name = "hostile-memory"

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        hoard = []
        while len(hoard) < 200:  # 10 GB: far past any limit a test sets
            hoard.append(b"\x01" * CHUNK_BYTES)
            time.sleep(0.01)
        time.sleep(3600)


class Hang(OrtBacked):
    """Sleeps for an hour on its first call, or while loading after writing to ``started``."""

    name = "hostile-hang"

    def __init__(self, started: str | None = None) -> None:
        self.started = started

    def misbehave_at_load(self) -> None:
        if self.started:
            with open(self.started, "w") as handle:
                handle.write(str(os.getpid()))
            time.sleep(3600)

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        time.sleep(3600)


class Raises(OrtBacked):
    name = "hostile-raises"

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        raise RuntimeError(RAISED_MESSAGE)


class CrashAtBatch4(OrtBacked):
    """Segfaults at batch 4 only: on the first call, or once the timed calls have begun."""

    name = "hostile-batch4"

    def __init__(self, journal: str, during_measure: bool = False) -> None:
        self.journal = journal  # each worker that loads the model appends its pid here
        self.during_measure = during_measure

    def misbehave_at_load(self) -> None:
        with open(self.journal, "a") as handle:
            handle.write(f"{os.getpid()}\n")

    def misbehave(self, feeds: Mapping[str, np.ndarray]) -> None:
        batch = next(iter(feeds.values())).shape[0]
        # NOTE: the harness pauses the garbage collector only while it times calls.
        measuring = not gc.isenabled()
        if batch == 4 and (measuring or not self.during_measure):
            os.kill(os.getpid(), signal.SIGSEGV)


class Garbage(Runtime):
    """Fast because it computes nothing: every output is zeros of the right shape."""

    name = "hostile-garbage"

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        return GarbageSession(model.artifact.outputs)


class GarbageSession(Session):
    def __init__(self, outputs: Any) -> None:
        self._outputs = outputs
        self.info = SessionInfo("nothing", 1)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        batch = next(iter(feeds.values())).shape[0]
        return [np.zeros((batch, *spec.shape[1:]), dtype=spec.dtype) for spec in self._outputs]


class ReportsEnvironment(OrtBacked):
    """Healthy; reports the thread variables its worker was started with."""

    name = "reports-environment"

    def details(self) -> dict[str, Any]:
        keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        return {key: os.environ.get(key) for key in keys}


class NotInstalled(OrtBacked):
    """An engine whose Python module does not exist here."""

    name = "not-installed"
    description = "an engine that is not installed"
    module = "not_a_real_engine"
    distributions = ("not-a-real-engine",)
    install = "pip install not-a-real-engine"


def leftover_workers() -> list[str]:
    """Descriptions of processes this test process started that are still alive."""
    import psutil

    me = psutil.Process()
    found = {}
    for child in me.children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
    for process in psutil.process_iter(["ppid", "cmdline", "status"]):
        command = " ".join(process.info["cmdline"] or ())
        if (
            process.info["ppid"] == me.pid
            and "workbench.bench.worker" in command
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found[process.pid] = command
    return [f"pid {pid}: {command}" for pid, command in sorted(found.items())]
