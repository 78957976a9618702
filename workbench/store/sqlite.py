"""The store: one SQLite file in WAL mode holding environments, artifacts, studies, runs and
measurements, each measurement written in its own transaction.

Several kernels may write one store at once: SQLite serialises the writers and the busy
timeout makes each wait its turn. A process killed in the middle of a write leaves the file as
it was before that transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import StoreError
from workbench.store import schema
from workbench.store.codec import measurement_row, row_to_measurement

if TYPE_CHECKING:
    import pandas as pd

    from workbench.artifact import Artifact
    from workbench.bench.measurement import Measurement
    from workbench.results import Results
    from workbench.store.environment import Environment

DEFAULT_NAME = "workbench.sqlite"
ENV_VARIABLE = "WORKBENCH_STORE"
BUSY_TIMEOUT_S = 60.0
_SQLITE_HEADER = b"SQLite format 3\x00"


def default_path() -> Path:
    """``$WORKBENCH_STORE`` when set, else ``workbench.sqlite`` in the working directory."""
    return Path(os.environ.get(ENV_VARIABLE) or DEFAULT_NAME).expanduser().absolute()


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open (or create) the store at ``path``, ``$WORKBENCH_STORE`` or ./workbench.sqlite."""
    return Store(path)


class Store:
    """Reads and writes one store file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser().absolute() if path else default_path()
        _check_file(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            schema.migrate(self._db, self.path)
        except sqlite3.DatabaseError as error:
            raise _explain(self.path, error) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a failure rolls it back whole and says which file."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as error:
            raise _explain(self.path, error) from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.DatabaseError):
                raise _explain(self.path, error) from None
            raise

    def record_environment(self, environment: Environment) -> str:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO environment (fingerprint, recorded_at, data) VALUES (?,?,?)",
                (environment.fingerprint, time.time(), json.dumps(asdict(environment))),
            )
        return environment.fingerprint

    def record_artifact(self, artifact: Artifact) -> str:
        provenance = asdict(artifact.provenance)
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO artifact (sha256, path, name, opset, ir_version, parent, "
                "step, bytes, provenance, signature, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    artifact.sha256,
                    str(artifact.path),
                    artifact.name,
                    artifact.opset,
                    artifact.ir_version,
                    artifact.parent,
                    artifact.step,
                    artifact.total_bytes,
                    json.dumps(provenance, default=str),
                    json.dumps(
                        {
                            "inputs": [asdict(s) for s in artifact.inputs],
                            "outputs": [asdict(s) for s in artifact.outputs],
                        }
                    ),
                    time.time(),
                ),
            )
        return artifact.sha256

    def ensure_study(self, name: str, config: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO study (name, created_at, config) VALUES (?,?,?)",
                (name, time.time(), json.dumps(config, default=str)),
            )

    def start_run(self, study: str, environment: str, note: str = "") -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO run (study, started_at, environment, note) VALUES (?,?,?,?)",
                (study, time.time(), environment, note),
            )
        return int(cursor.lastrowid or 0)

    def add_measurement(
        self,
        measurement: Measurement,
        *,
        study: str,
        run: int,
        fingerprint: str,
        artifact: str,
        environment: str,
    ) -> None:
        """Write one measurement in its own transaction."""
        row = measurement_row(measurement)
        row.update(
            study=study,
            run=run,
            fingerprint=fingerprint,
            artifact=artifact,
            environment=environment,
            recorded_at=time.time(),
        )
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._transaction() as db:
            db.execute(f"INSERT INTO measurement ({columns}) VALUES ({marks})", tuple(row.values()))

    def set_peak(self, environment: str, gflops: float, details: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO peak (environment, gflops, details, recorded_at) "
                "VALUES (?,?,?,?)",
                (environment, gflops, json.dumps(details, default=str), time.time()),
            )

    # -- reading ------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as error:
            raise _explain(self.path, error) from None

    def get_peak(self, environment: str) -> float | None:
        rows = self._query("SELECT gflops FROM peak WHERE environment = ?", (environment,))
        return float(rows[0]["gflops"]) if rows else None

    def finished(self, study: str, run: int | None = None) -> set[str]:
        """Fingerprints of the cells the study (or one run of it) holds a measurement for."""
        where, parameters = _filter(study, run)
        rows = self._query(f"SELECT DISTINCT fingerprint FROM measurement {where}", parameters)
        return {row["fingerprint"] for row in rows}

    def runs(self, study: str) -> list[int]:
        rows = self._query("SELECT id FROM run WHERE study = ? ORDER BY id", (study,))
        return [int(row["id"]) for row in rows]

    def environment(self, fingerprint: str) -> Environment:
        from workbench.store.environment import Environment

        rows = self._query("SELECT data FROM environment WHERE fingerprint = ?", (fingerprint,))
        if not rows:
            raise StoreError(f"{self.path} holds no environment {fingerprint!r}.")
        data = json.loads(rows[0]["data"])
        data["cpu_flags"] = tuple(data["cpu_flags"])
        return Environment(**data)

    def lineage(self, sha256: str) -> list[dict[str, Any]]:
        """The artifact and its ancestors, newest first."""
        chain, current = [], sha256
        while current:
            rows = self._query("SELECT * FROM artifact WHERE sha256 = ?", (current,))
            if not rows:
                break
            chain.append(dict(rows[0]))
            current = rows[0]["parent"]
        return chain

    def studies(self) -> pd.DataFrame:
        import pandas as pd

        rows = self._query(
            "SELECT s.name AS study, s.created_at, COUNT(DISTINCT r.id) AS runs, "
            "COUNT(m.id) AS measurements FROM study s LEFT JOIN run r ON r.study = s.name "
            "LEFT JOIN measurement m ON m.run = r.id GROUP BY s.name ORDER BY s.created_at"
        )
        frame = pd.DataFrame(
            [dict(row) for row in rows], columns=["study", "created_at", "runs", "measurements"]
        )
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s")
        return frame

    def measurements(self, study: str | None = None, run: int | None = None) -> pd.DataFrame:
        """One row per stored measurement, raw samples left out."""
        import pandas as pd

        where, parameters = _filter(study, run)
        rows = self._query(f"SELECT * FROM measurement {where} ORDER BY id", parameters)
        frame = pd.DataFrame([dict(row) for row in rows])
        return frame.drop(columns=["samples", "round_medians"], errors="ignore")

    def load(self, study: str, run: int | None = None) -> list[tuple[dict[str, Any], Measurement]]:
        """Stored rows with their Measurement records rebuilt, samples included."""
        where, parameters = _filter(study, run)
        rows = self._query(f"SELECT * FROM measurement {where} ORDER BY id", parameters)
        return [(dict(row), row_to_measurement(dict(row))) for row in rows]

    def results(self, study: str, run: int | None = None, artifact: str | None = None) -> Results:
        """A study's measurements as Results; the latest run unless ``run`` is given."""
        from workbench.store.rebuild import results_from_store

        return results_from_store(self, study, run, artifact)

    def export(self, path: str | os.PathLike[str], study: str | None = None) -> Path:
        """Write the measurements table to .parquet or .csv, chosen by the file's suffix."""
        target = Path(path)
        frame = self.measurements(study)
        if target.suffix == ".parquet":
            frame.to_parquet(target)
        elif target.suffix == ".csv":
            frame.to_csv(target, index=False)
        else:
            raise StoreError(f"Export to {target} is not possible: name a .parquet or .csv file.")
        return target

    def integrity(self) -> str:
        """SQLite's own check of the file: 'ok' when sound."""
        return str(self._query("PRAGMA integrity_check")[0][0])


def _filter(study: str | None, run: int | None) -> tuple[str, tuple[Any, ...]]:
    clauses, parameters = [], []
    if study is not None:
        clauses.append("study = ?")
        parameters.append(study)
    if run is not None:
        clauses.append("run = ?")
        parameters.append(run)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(parameters)


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise StoreError(f"{path} is a folder; the store is a file, such as {path / DEFAULT_NAME}.")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            if handle.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise StoreError(
                    f"{path} is not a workbench store: it is not an SQLite file. Choose another "
                    f"path (or set {ENV_VARIABLE})."
                )
    if not path.exists() and not os.access(path.parent, os.W_OK):
        raise StoreError(
            f"Cannot create the store {path}: the folder {path.parent} is not writable (or does "
            f"not exist). Choose another path, or set {ENV_VARIABLE}."
        )


def _explain(path: Path, error: sqlite3.DatabaseError) -> StoreError:
    text = str(error)
    if "readonly" in text or "read-only" in text:
        return StoreError(f"Cannot write to the store {path}: it or its folder is read-only.")
    if "disk is full" in text or "disk I/O" in text:
        return StoreError(
            f"Cannot write to the store {path}: the disk is full or failing "
            f"({text}); nothing partial was written."
        )
    if "locked" in text:
        return StoreError(
            f"The store {path} stayed locked by another writer for "
            f"{BUSY_TIMEOUT_S:g} s; nothing was written. Try again."
        )
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path} is not a readable workbench store ({text}).")
    return StoreError(f"The store {path} failed: {text}.")
