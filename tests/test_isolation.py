"""A runtime that crashes, eats memory, hangs or raises costs its own cells, never the caller.

Each hostile runtime runs beside ONNX Runtime in one benchmark: the call returns, the hostile
cell says what happened, ONNX Runtime's cell is measured, and no worker process is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import cloudpickle
import hostile_runtimes as hostile
import psutil
import pytest

import workbench
from workbench.bench.process import WorkerDiedError, WorkerProcess, cores_available
from workbench.runtimes import Runtime, register, unregister

QUICK = {"budget_s": 0.2, "warmup_s": 0.02, "min_rounds": 2, "progress": False}


@pytest.fixture(scope="module")
def artifact(mlp_artifact) -> workbench.Artifact:
    return mlp_artifact


@pytest.fixture(autouse=True)
def _no_worker_survives():
    yield
    assert hostile.leftover_workers() == []


def _cell(results: workbench.Results, label: str, batch_size: int = 1) -> workbench.Measurement:
    (found,) = [m for m in results if m.cell.label == label and m.cell.batch_size == batch_size]
    return found


def _assert_measured(item: workbench.Measurement) -> None:
    assert item.status == "ok", item.cause
    assert item.stats is not None
    assert item.stats.n == len(item.samples_ns) > 0
    assert item.stats.median_ms > 0


@pytest.mark.parametrize(
    "case",
    [
        (hostile.Segfault(), {}, "crashed", ["the first run", "segmentation fault", "SIGSEGV"]),
        (hostile.Segfault(at_load=True), {}, "crashed", ["loading", "segmentation fault"]),
        (hostile.Abort(), {}, "crashed", ["the first run", "abort", "SIGABRT"]),
        (
            hostile.MemoryHog(),
            {"memory_limit_mb": 300},
            "oom",
            ["over the memory limit of 300 MB", "killed"],
        ),
        (hostile.Hang(), {"timeout_s": 1.5}, "timeout", ["'prepare'", "within 1.5 s", "killed"]),
        (hostile.Raises(), {}, "failed", ["the first run failed", hostile.RAISED_MESSAGE]),
    ],
    ids=["segfault", "segfault-at-load", "abort", "memory", "hang", "raises"],
)
def test_a_hostile_runtime_costs_only_its_own_cell(artifact, registered, case):
    runtime, options, status, words = case
    name = registered(runtime)

    results = workbench.benchmark(artifact, runtimes=[name, "onnxruntime"], **QUICK, **options)

    assert [m.cell.label for m in results] == [name, "onnxruntime"]
    broken = _cell(results, name)
    assert broken.status == status
    for word in words:
        assert word in broken.cause
    assert broken.stats is None
    assert broken.samples_ns == ()
    _assert_measured(_cell(results, "onnxruntime"))
    assert results.verdict(broken) == status
    assert name not in str(results).split("fastest at batch 1: ")[1].splitlines()[0]


@pytest.mark.parametrize("during_measure", [False, True], ids=["first-call", "timed-calls"])
def test_a_crash_at_one_batch_size_restarts_the_worker_for_the_others(
    artifact, registered, tmp_path, during_measure
):
    journal = tmp_path / "loads.txt"
    name = registered(hostile.CrashAtBatch4(str(journal), during_measure=during_measure))

    results = workbench.benchmark(
        artifact, runtimes=[name, "onnxruntime"], batch_sizes=(1, 4, 2), **QUICK
    )

    crashed = _cell(results, name, batch_size=4)
    assert crashed.status == "crashed"
    assert "segmentation fault" in crashed.cause
    assert crashed.cause.startswith("the first run") != during_measure
    for batch in (1, 2):
        survivor = _cell(results, name, batch_size=batch)
        _assert_measured(survivor)
        assert survivor.parity is not None
        assert survivor.parity.ok
        assert survivor.parity.reference == "onnxruntime"
    for batch in (1, 4, 2):
        _assert_measured(_cell(results, "onnxruntime", batch_size=batch))
    loads = journal.read_text().split()
    assert len(loads) == 2, "the worker was not restarted exactly once after the crash"
    assert len(set(loads)) == 2


def test_worker_thread_variables_are_set_by_the_harness(artifact, registered, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    name = registered(hostile.ReportsEnvironment())

    results = workbench.benchmark(artifact, runtimes=[name], threads=(1, None), **QUICK)

    one, default = results.measurements
    assert (one.cell.threads, default.cell.threads) == (1, None)
    assert one.details["OMP_NUM_THREADS"] == "1"
    assert one.details["MKL_NUM_THREADS"] == "1"
    assert one.details["OPENBLAS_NUM_THREADS"] == "1"
    assert default.details["OMP_NUM_THREADS"] == str(cores_available())
    assert os.environ["OMP_NUM_THREADS"] == "7"  # the caller's own environment is untouched


def test_a_worker_stuck_loading_is_killed_at_its_deadline(tmp_path):
    worker = WorkerProcess("stuck", None, None)
    hang = cloudpickle.dumps(hostile.Hang(started=str(tmp_path / "started")))
    started = time.monotonic()
    try:
        with pytest.raises(WorkerDiedError) as caught:
            worker.request("load", 1.0, runtime=hang, model=None, config=None, threads=None)
        assert time.monotonic() - started < 10
        assert caught.value.status == "timeout"
        assert "no answer to 'load' within 1 s" in caught.value.cause
        assert not worker.alive
        assert (tmp_path / "started").exists()  # it did hang, rather than fail to start
    finally:
        worker.close()


_COORDINATOR = textwrap.dedent(
    """
    import os, sys, time
    import cloudpickle
    import hostile_runtimes
    from workbench.bench.process import WorkerFailedError, WorkerProcess

    how, started = sys.argv[1], sys.argv[2]
    worker = WorkerProcess("orphan", None, None)
    if how == "idle":
        try:  # any request proves the worker has started and waits for the next
            worker.request("run", 60, feeds={})
        except WorkerFailedError:
            pass
    elif how != "at-once":
        hang = hostile_runtimes.Hang(started=started)
        worker.send("load", runtime=cloudpickle.dumps(hang), model=None, config=None, threads=None)
        while not os.path.exists(started):
            time.sleep(0.01)
    print(worker.pid, flush=True)
    if how == "busy-sigkill":
        time.sleep(3600)
    os._exit(0)
    """
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["at-once", "idle", "busy-exit", "busy-sigkill"])
def test_a_worker_dies_with_its_coordinator(how, tmp_path):
    # A busy worker (here stuck loading) cannot notice its pipe closing: only the parent-death
    # signal stops it.
    coordinator = subprocess.Popen(
        [sys.executable, "-c", _COORDINATOR, how, str(tmp_path / "started")],
        stdout=subprocess.PIPE,
        text=True,
        # The coordinator dies without tidying up: its worker's log goes to tmp_path.
        env={
            **os.environ,
            "PYTHONPATH": os.path.dirname(hostile.__file__),
            "TMPDIR": str(tmp_path),
        },
    )
    try:
        worker_pid = int(coordinator.stdout.readline())
        if how == "busy-sigkill":
            assert not _gone(worker_pid)
            coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=30)

        deadline = time.monotonic() + 10
        while not _gone(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(worker_pid), f"worker {worker_pid} outlived its coordinator"
    finally:
        coordinator.kill()
        coordinator.wait()
        coordinator.stdout.close()


def test_a_runtime_defined_inside_a_function_is_sent_by_value(artifact, registered):
    # As in a notebook cell: the class cannot be imported by name, so the worker gets its code.
    import numpy as np

    class Halves(Runtime):
        name = "halves"

        def load(self, model, config, threads):
            session = hostile.OrtBacked().load(model, config, threads)
            run = session.run
            session.run = lambda feeds: [value / 2 for value in run(feeds)]
            return session

    name = registered(Halves())

    results = workbench.benchmark(artifact, runtimes=["onnxruntime", name], **QUICK)

    halves = _cell(results, name)
    _assert_measured(halves)
    assert halves.parity is not None
    assert not halves.parity.ok
    assert results.verdict(halves) == "wrong outputs"
    assert np.isfinite(halves.parity.max_abs)
    assert halves.parity.max_abs > 0


def test_a_cancel_while_workers_start_ends_the_sweep_at_once(mlp_artifact, tmp_path):
    import threading

    from workbench.executors import LocalExecutor

    # A runtime whose loading never finishes: only the cancel can end this sweep early.
    started = tmp_path / "started"
    register(hostile.Hang(started=str(started)))
    executor = LocalExecutor()
    cancelled_at: list[float] = []

    def cancel_once_loading() -> None:
        while not started.exists():
            time.sleep(0.05)
        cancelled_at.append(time.monotonic())
        executor.cancel()

    threading.Thread(target=cancel_once_loading, daemon=True).start()
    try:
        results = workbench.benchmark(
            mlp_artifact,
            runtimes=["hostile-hang"],
            budget_s=5,
            timeout_s=60,
            progress=False,
            executor=executor,
        )
    finally:
        unregister("hostile-hang")
    after_cancel = time.monotonic() - cancelled_at[0]
    assert after_cancel < 2.0, f"the sweep went on for {after_cancel:.1f} s after the cancel"
    assert results.measurements == ()
    assert results.to_pandas().empty
    assert "status" in results.to_pandas().columns
    assert results.plot() == []
    assert not hostile.leftover_workers()
