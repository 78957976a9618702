"""The worker process: loads one runtime configuration and answers the coordinator's requests.

Started as ``python -m workbench.bench.worker`` with a connection on an inherited file
descriptor. It dies with its parent, and reports every failure as a reply instead of a
traceback on a terminal nobody reads.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
import traceback
from typing import Any

FD_VARIABLE = "WORKBENCH_WORKER_FD"
PARENT_VARIABLE = "WORKBENCH_PARENT_PID"


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent goes, then check the parent is alive."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(os.environ.get(PARENT_VARIABLE, os.getppid())):
        os._exit(0)


def _peak_rss_mb() -> float:
    """Peak resident memory since the last reset, from /proc where it exists."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass  # not Linux: the peak then covers the whole life of the worker


class Worker:
    """Holds the loaded session and the bound calls of each prepared batch size."""

    def __init__(self) -> None:
        self.session: Any = None
        self.calls: dict[Any, Any] = {}

    def handle(self, command: str, payload: dict[str, Any]) -> Any:
        return getattr(self, f"do_{command}")(**payload)

    def do_probe(self, runtime: bytes) -> Any:
        import cloudpickle

        return cloudpickle.loads(runtime).probe()

    def do_load(self, runtime: bytes, model: Any, config: Any, threads: int | None) -> Any:
        import cloudpickle

        started = time.perf_counter()
        self.session = cloudpickle.loads(runtime).load(model, config, threads)
        return {"load_s": time.perf_counter() - started, "info": self.session.info}

    def do_run(self, feeds: dict[str, Any]) -> Any:
        return self.session.run(feeds)

    def do_prepare(self, key: Any, feeds: dict[str, Any], warmup_s: float) -> Any:
        from workbench.bench.harness import warm_up

        _reset_peak_rss()
        # The first inference at this batch size is timed on its own: engines allocate,
        # compile kernels or pick algorithms then, which the warm figures must not include.
        started = time.perf_counter_ns()
        outputs = self.session.run(feeds)
        first_ms = (time.perf_counter_ns() - started) / 1e6
        call = self.session.bind(feeds)
        warm = warm_up(call, warmup_s)
        self.calls[key] = call
        return {
            "outputs": outputs,
            "first_ms": first_ms,
            "warmup_calls": warm.calls,
            "peak_rss_mb": _peak_rss_mb(),
        }

    def do_measure(self, key: Any, seconds: float) -> Any:
        from workbench.bench.harness import time_calls

        _reset_peak_rss()
        samples = time_calls(self.calls[key], seconds)
        return {"samples_ns": samples, "peak_rss_mb": _peak_rss_mb()}

    def do_profile(self, feeds: dict[str, Any], runs: int, warmup_runs: int) -> Any:
        profile = getattr(self.session, "profile", None)
        if profile is None:
            raise NotImplementedError(
                f"{type(self.session).__name__} has no per-node profiler; profiling works with "
                "the onnxruntime and openvino runtimes."
            )
        return profile(feeds, runs, warmup_runs)

    def do_call(self, function: str, kwargs: dict[str, Any]) -> Any:
        """Call ``module:name`` with keyword arguments: model transformations run here too."""
        import importlib

        module, _, name = function.partition(":")
        return getattr(importlib.import_module(module), name)(**kwargs)

    def do_close(self) -> Any:
        if self.session is not None:
            self.session.close()
        return None


def _error_reply(exc: BaseException) -> tuple[str, dict[str, str]]:
    from workbench.errors import InputError, RuntimeNotAvailableError

    if isinstance(exc, MemoryError):
        kind = "oom"
    elif isinstance(exc, RuntimeNotAvailableError):
        kind = "not-available"
    elif isinstance(exc, InputError):
        kind = "input"
    else:
        # An exception may name its own kind: a pass that finds nothing to do is no failure.
        kind = getattr(exc, "worker_kind", "failed")
    message = str(exc).strip() or type(exc).__name__
    return (
        "error",
        {
            "kind": kind,
            "type": type(exc).__name__,
            "message": message,
            "traceback": traceback.format_exc(limit=8),
        },
    )


def main() -> None:
    from multiprocessing.connection import Connection

    _die_with_parent()
    faulthandler.enable()
    connection = Connection(int(os.environ[FD_VARIABLE]))
    sys.path[:] = connection.recv()
    worker = Worker()
    while True:
        try:
            command, payload = connection.recv()
        except EOFError:
            return
        try:
            reply: Any = ("ok", worker.handle(command, payload))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back as a reply
            reply = _error_reply(exc)
        try:
            connection.send(reply)
        except Exception as exc:  # noqa: BLE001 - a reply that cannot be pickled is an error too
            connection.send(_error_reply(exc))
        if command == "close":
            return


if __name__ == "__main__":
    main()
