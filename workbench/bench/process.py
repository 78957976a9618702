"""The coordinator's handle on one worker process.

Every request waits with a deadline while watching the worker's memory, so a crash, an
out-of-memory kill or a hang becomes a :class:`WorkerDiedError` with a status and a cause, and the
caller carries on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import Pipe
from typing import Any

from workbench.bench.worker import FD_VARIABLE, PARENT_VARIABLE
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_POLL_S = 0.05
_SIGNALS = {
    signal.SIGSEGV: "a segmentation fault (SIGSEGV)",
    signal.SIGABRT: "an abort (SIGABRT)",
    signal.SIGBUS: "a bus error (SIGBUS)",
    signal.SIGFPE: "an arithmetic fault (SIGFPE)",
    signal.SIGILL: "an illegal instruction (SIGILL)",
}


class WorkerDiedError(WorkbenchError):
    """The worker is gone: status is ``crashed``, ``oom`` or ``timeout``."""

    def __init__(self, status: str, cause: str) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause


class WorkerCancelledError(WorkbenchError):
    """The coordinator stopped waiting because the sweep was cancelled."""


class WorkerFailedError(WorkbenchError):
    """The worker is alive but the request failed; kind is from the worker's error reply."""

    def __init__(self, kind: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


@dataclass(frozen=True)
class CpuSnapshot:
    busy_s: float
    worker_s: float
    own_s: float
    wall_s: float


def cores_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_environment(threads: int | None) -> dict[str, str]:
    """Thread variables for a worker, always set: inherited ones (Dask sets 1) must not leak."""
    count = str(threads or cores_available())
    return dict.fromkeys(THREAD_VARIABLES, count)


class WorkerProcess:
    """One worker: start, request with deadline, classify its death, kill."""

    def __init__(self, label: str, threads: int | None, memory_limit_mb: float | None) -> None:
        self.label = label
        self.memory_limit_mb = memory_limit_mb
        # The log lives as long as the worker, which no with-block could span.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="workbench-worker-", suffix=".log", delete=False
        )
        ours, theirs = Pipe(duplex=True)
        environment = {
            **os.environ,
            **thread_environment(threads),
            FD_VARIABLE: str(theirs.fileno()),
            PARENT_VARIABLE: str(os.getpid()),
        }
        # NOTE: a new session keeps a terminal's Ctrl-C away from workers: the coordinator
        # decides when they stop, and they die with it through the parent-death signal.
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "workbench.bench.worker"],
            env=environment,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        theirs.close()
        self._connection = ours
        self._killed_for: tuple[str, str] | None = None
        self._connection.send(list(sys.path))

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    def request(self, command: str, timeout_s: float, **payload: Any) -> Any:
        """Send a command and wait for its reply, or raise WorkerDiedError / WorkerFailedError."""
        self.send(command, **payload)
        return self.receive(command, timeout_s)

    def send(self, command: str, **payload: Any) -> None:
        try:
            self._connection.send((command, payload))
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise self._death() from None

    def receive(self, command: str, timeout_s: float, stop: Any = None) -> Any:
        """Wait for the reply to the command sent last.

        ``stop`` (anything with ``is_set()``, such as a threading.Event) ends the wait early:
        the worker is killed and WorkerCancelledError raised.
        """
        deadline = time.monotonic() + timeout_s
        while not self._connection.poll(_POLL_S):
            if not self.alive:
                raise self._death()
            if stop is not None and stop.is_set():
                self.kill()
                raise WorkerCancelledError(f"{command!r} was cancelled")
            self._check_memory()
            if time.monotonic() > deadline:
                self._kill(
                    "timeout",
                    f"no answer to {command!r} within {timeout_s:g} s; the "
                    "worker was killed (a hang, or a budget too small)",
                )
                raise self._death()
        try:
            status, body = self._connection.recv()
        except (EOFError, OSError):
            raise self._death() from None
        if status == "error":
            raise WorkerFailedError(body["kind"], body["message"], body.get("traceback", ""))
        return body

    def cpu_snapshot(self) -> CpuSnapshot:
        """CPU time of the whole machine, this worker and this process, for the noise figure."""
        import psutil

        machine = psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        busy = sum(machine) - idle
        try:
            times = psutil.Process(self.pid).cpu_times()
            worker = times.user + times.system
        except psutil.Error:
            worker = 0.0
        own = os.times()
        return CpuSnapshot(busy, worker, own.user + own.system, time.monotonic())

    def ask_to_close(self) -> None:
        """Ask the worker to exit, without waiting; `close` then waits and kills if needed."""
        if self.alive:
            with contextlib.suppress(OSError):
                self._connection.send(("close", {}))

    def close(self, timeout_s: float = 1.0) -> None:
        """Ask politely, then kill; never leaves the process behind."""
        self.ask_to_close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=timeout_s)
        self.kill()

    def kill(self) -> None:
        if self.alive:
            self._popen.kill()
        try:
            self._popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("worker %s (pid %s) did not exit after SIGKILL", self.label, self.pid)
        self._connection.close()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    def _kill(self, status: str, cause: str) -> None:
        self._killed_for = (status, cause)
        self._popen.kill()
        self._popen.wait()

    def _check_memory(self) -> None:
        if not self.memory_limit_mb:
            return
        import psutil

        try:
            rss_mb = psutil.Process(self.pid).memory_info().rss / 2**20
        except psutil.Error:
            return
        if rss_mb > self.memory_limit_mb:
            self._kill(
                "oom",
                f"the worker used {rss_mb:.0f} MB, over the memory limit of "
                f"{self.memory_limit_mb:.0f} MB, and was killed",
            )

    def _death(self) -> WorkerDiedError:
        self._popen.wait()
        if self._killed_for is not None:
            return WorkerDiedError(*self._killed_for)
        code = self._popen.returncode
        tail = self._log_tail()
        if code is not None and code < 0:
            number = -code
            if number == signal.SIGKILL:
                return WorkerDiedError(
                    "oom",
                    "the worker was killed by SIGKILL from outside, most "
                    "likely by the kernel's out-of-memory killer" + tail,
                )
            what = _SIGNALS.get(number, f"signal {number}")
            return WorkerDiedError("crashed", f"the engine died of {what}" + tail)
        return WorkerDiedError("crashed", f"the worker exited with code {code}" + tail)

    def _log_tail(self) -> str:
        try:
            with open(self._log.name, errors="replace") as handle:
                lines = [line.strip() for line in handle.read().splitlines()[-40:] if line.strip()]
        except OSError:
            return ""
        interesting = [line for line in lines if "Fatal Python error" in line or "Error" in line]
        chosen = (interesting or lines)[-1:] if lines else []
        return f"; last words: {chosen[0][:200]}" if chosen else ""
