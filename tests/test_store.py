"""The store: a file that survives crashes, many writers, and bad input with one clear sentence."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.bench.measurement import Cell, Parity, finished
from workbench.errors import StoreError
from workbench.runtimes import RuntimeConfig
from workbench.store import schema
from workbench.store.codec import measurement_row, row_to_measurement
from workbench.store.sqlite import Store, open_store


def a_measurement(label="onnxruntime", batch=1, scale=1.0, options=(("opt", "all"),)):
    samples = [int(scale * (1000 + (i * 37) % 200)) for i in range(300)]
    rounds = [scale * 1.0e-3 * (1 + 0.01 * i) for i in range(6)]
    parity = Parity("torch", True, 1e-7, 2e-6, "logits")
    return finished(
        Cell(RuntimeConfig(label, options), batch, 2),
        samples,
        rounds,
        first_ms=3.5,
        load_s=0.25,
        peak_rss_mb=120.0,
        parity=parity,
        noise_cores=0.05,
        stop_reason="budget",
        provider="CPUExecutionProvider",
        threads_used=2,
        details={"onnxruntime": "1.32.0"},
    )


def fill(store: Store, study: str = "s", rows: int = 1) -> int:
    from workbench.store.environment import current_environment

    env = store.record_environment(current_environment())
    store.ensure_study(study, {"reference": "torch"})
    run = store.start_run(study, env)
    for index in range(rows):
        store.add_measurement(
            a_measurement(batch=index + 1),
            study=study,
            run=run,
            fingerprint=f"f{index}",
            artifact="a" * 64,
            environment=env,
        )
    return run


def test_a_measurement_survives_the_round_trip() -> None:
    original = a_measurement()
    row = measurement_row(original)
    back = row_to_measurement(row)
    assert back == original
    assert len(row["samples"]) < 300 * 4  # packed smaller than plain uint32


def test_the_file_is_sqlite_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    with open_store(path) as store:
        fill(store, rows=3)
        assert store.integrity() == "ok"
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    assert raw.execute("SELECT COUNT(*) FROM measurement").fetchone()[0] == 3


def test_the_default_path_follows_the_environment_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert open_store().path == tmp_path / "workbench.sqlite"
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "elsewhere.sqlite"))
    assert open_store().path == tmp_path / "elsewhere.sqlite"


def test_tables_come_back_as_dataframes_and_exports(tmp_path: Path) -> None:
    store = open_store(tmp_path / "t.sqlite")
    fill(store, "first", rows=2)
    fill(store, "second", rows=1)
    studies = store.studies()
    assert list(studies["study"]) == ["first", "second"]
    assert list(studies["measurements"]) == [2, 1]
    table = store.measurements("first")
    assert list(table["batch_size"]) == [1, 2]
    assert "samples" not in table.columns
    csv = pd.read_csv(store.export(tmp_path / "m.csv"))
    parquet = pd.read_parquet(store.export(tmp_path / "m.parquet", study="second"))
    assert len(csv) == 3
    assert len(parquet) == 1
    with pytest.raises(StoreError, match=r"\.parquet or \.csv"):
        store.export(tmp_path / "m.xlsx")


def test_a_file_that_is_not_sqlite_is_refused_by_name(tmp_path: Path) -> None:
    junk = tmp_path / "notes.sqlite"
    junk.write_text("these are my notes, not a database\n" * 10)
    with pytest.raises(StoreError, match="is not a workbench store") as caught:
        open_store(junk)
    assert str(junk) in str(caught.value)
    assert junk.read_text().startswith("these are my notes")


def test_a_store_from_a_newer_workbench_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    open_store(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError) as caught:
        open_store(path)
    message = str(caught.value)
    assert str(path) in message
    assert "schema 99" in message
    assert f"up to {schema.VERSION}" in message


def test_a_folder_that_cannot_hold_the_store_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="not writable"):
        open_store(tmp_path / "missing-folder" / "s.sqlite")


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        ("attempt to write a readonly database", "read-only"),
        ("database or disk is full", "disk is full"),
    ],
)
def test_a_failed_write_names_the_store_and_leaves_no_partial_row(tmp_path, failure, words):
    # The tests run as root, which no folder permission stops; the failure SQLite reports for a
    # read-only or full disk is raised at the insert instead.
    store = open_store(tmp_path / "f.sqlite")
    run = fill(store, rows=1)

    class FailingConnection:
        def __init__(self, real: sqlite3.Connection) -> None:
            self.real = real

        def execute(self, sql: str, *args):
            if sql.startswith("INSERT INTO measurement"):
                raise sqlite3.OperationalError(failure)
            return self.real.execute(sql, *args)

    real = store._db
    store._db = FailingConnection(real)
    with pytest.raises(StoreError) as caught:
        store.add_measurement(
            a_measurement(batch=9),
            study="s",
            run=run,
            fingerprint="x",
            artifact="a" * 64,
            environment="e",
        )
    store._db = real
    assert str(store.path) in str(caught.value)
    assert words in str(caught.value)
    assert len(store.measurements("s")) == 1
    assert store.integrity() == "ok"


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import a_measurement
    from workbench.store.sqlite import open_store
    store = open_store({path!r})
    run = int(sys.argv[2])
    for index in range(int(sys.argv[3])):
        store.add_measurement(a_measurement(batch=index + 1), study="s", run=run,
                              fingerprint=sys.argv[1] + "-" + str(index), artifact="a" * 64,
                              environment="e")
        if len(sys.argv) > 4:
            print(index, flush=True)
    """
)


def test_eight_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "many.sqlite"
    run = fill(open_store(path), rows=0)
    script = WRITER.format(tests=str(Path(__file__).parent), path=str(path))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", script, f"w{i}", str(run), "200"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    errors = [writer.communicate(timeout=300)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 8, errors
    assert not any("locked" in text for text in errors)
    table = open_store(path).measurements("s")
    assert len(table) == 1600
    assert table["fingerprint"].nunique() == 1600


def test_a_kill_in_the_middle_of_writing_leaves_a_sound_store(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    run = fill(open_store(path), rows=0)
    script = WRITER.format(tests=str(Path(__file__).parent), path=str(path))
    writer = subprocess.Popen(
        [sys.executable, "-c", script, "k", str(run), "100000", "say"],
        stdout=subprocess.PIPE,
        text=True,
    )
    written = -1
    while written < 50:
        written = int(writer.stdout.readline())
    writer.kill()  # SIGKILL, mid-stream
    writer.wait()
    store = open_store(path)
    assert store.integrity() == "ok"
    table = store.measurements("s")
    assert len(table) >= written + 1
    assert table["median_ms"].notna().all()
    assert list(table["fingerprint"]) == [f"k-{i}" for i in range(len(table))]
    rebuilt = [m for _, m in store.load("s")]
    assert all(len(m.samples_ns) == 300 for m in rebuilt)


def test_results_come_back_from_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    from workbench.store.environment import current_environment

    env = store.record_environment(current_environment())
    store.ensure_study("r", {"reference": "torch"})
    run = store.start_run("r", env)
    for label, scale in (("torch", 2.0), ("onnxruntime", 1.0)):
        store.add_measurement(
            a_measurement(label, scale=scale, options=()),
            study="r",
            run=run,
            fingerprint=label,
            artifact="b" * 64,
            environment=env,
        )
    results = store.results("r")
    assert isinstance(results, workbench.Results)
    assert results.reference == "torch"
    assert results.environment == current_environment()
    row = results.to_pandas().set_index("runtime").loc["onnxruntime"]
    assert row["verdict"] == "faster"
    assert row["speedup"] == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(StoreError, match="no study called 'nope'"):
        store.results("nope")
