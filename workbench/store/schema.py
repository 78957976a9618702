"""The store's tables and their migrations, versioned through SQLite's ``user_version``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from workbench.errors import StoreError

VERSION = 1
"""The schema this code writes; older stores are migrated up to it when opened."""

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE environment (
        fingerprint TEXT PRIMARY KEY, recorded_at REAL NOT NULL, data TEXT NOT NULL);
    CREATE TABLE artifact (
        sha256 TEXT PRIMARY KEY, path TEXT, name TEXT, opset INTEGER, ir_version INTEGER,
        parent TEXT, step TEXT, bytes INTEGER, provenance TEXT, signature TEXT,
        recorded_at REAL NOT NULL);
    CREATE INDEX artifact_parent ON artifact (parent);
    CREATE TABLE study (name TEXT PRIMARY KEY, created_at REAL NOT NULL, config TEXT);
    CREATE TABLE run (
        id INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL REFERENCES study (name),
        started_at REAL NOT NULL, environment TEXT, note TEXT);
    CREATE TABLE measurement (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        study TEXT NOT NULL, run INTEGER NOT NULL REFERENCES run (id),
        fingerprint TEXT NOT NULL, artifact TEXT, environment TEXT,
        runtime TEXT NOT NULL, engine TEXT NOT NULL, options TEXT,
        batch_size INTEGER NOT NULL, threads INTEGER,
        status TEXT NOT NULL, cause TEXT, stop_reason TEXT,
        n INTEGER, median_ms REAL, mean_ms REAL, std_ms REAL, p90_ms REAL, p99_ms REAL,
        min_ms REAL, ci_low_ms REAL, ci_high_ms REAL,
        first_ms REAL, load_s REAL, peak_rss_mb REAL, noise_cores REAL,
        provider TEXT, threads_used INTEGER, parity TEXT, details TEXT,
        samples BLOB, sample_dtype TEXT, round_medians BLOB,
        recorded_at REAL NOT NULL);
    CREATE INDEX measurement_study ON measurement (study, run);
    CREATE INDEX measurement_fingerprint ON measurement (study, fingerprint);
    CREATE TABLE peak (
        environment TEXT PRIMARY KEY, gflops REAL NOT NULL, details TEXT,
        recorded_at REAL NOT NULL);
    """,
}


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the file up to VERSION, one migration per transaction; refuse newer files."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > VERSION:
        raise StoreError(
            f"{path} was written by a newer workbench (store schema {found}; this version reads "
            f"up to {VERSION}). Upgrade onnx-workbench to open it."
        )
    for version in range(found + 1, VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        # NOTE: another process may have migrated the file while this one waited for the lock.
        if db.execute("PRAGMA user_version").fetchone()[0] >= version:
            db.execute("COMMIT")
            continue
        try:
            for statement in filter(str.strip, _MIGRATIONS[version].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
