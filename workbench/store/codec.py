"""Measurements to rows and back; raw samples packed small (uint32 ns when they fit, zlib)."""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import asdict
from typing import Any

from workbench.bench.measurement import Cell, Measurement, Parity
from workbench.bench.stats import STAT_NAMES, LatencyStats
from workbench.runtimes.base import RuntimeConfig

_VARIANT = "variant"


def pack(values: Any, dtype: str) -> bytes:
    import numpy as np

    return zlib.compress(np.asarray(values, dtype=dtype).tobytes(), level=6)


def unpack(blob: bytes | None, dtype: str) -> list[Any]:
    import numpy as np

    if not blob:
        return []
    return np.frombuffer(zlib.decompress(blob), dtype=dtype).tolist()


def measurement_row(item: Measurement) -> dict[str, Any]:
    """The measurement table's columns for one record (without study, run and ids)."""
    dtype = "uint32" if item.samples_ns and max(item.samples_ns) < 2**32 else "int64"
    row: dict[str, Any] = {
        "runtime": item.cell.label,
        "engine": item.cell.config.name,
        "options": json.dumps(item.cell.config.options),
        "batch_size": item.cell.batch_size,
        "threads": item.cell.threads,
        "status": item.status,
        "cause": item.cause,
        "stop_reason": item.stop_reason,
        "first_ms": _number(item.first_ms),
        "load_s": _number(item.load_s),
        "peak_rss_mb": _number(item.peak_rss_mb),
        "noise_cores": _number(item.noise_cores),
        "provider": item.provider,
        "threads_used": item.threads_used,
        "parity": json.dumps(asdict(item.parity)) if item.parity else None,
        # NOTE: the variant a cell ran travels in the details, which needs no new column.
        "details": json.dumps(
            {**item.details, **({_VARIANT: item.cell.variant} if item.cell.variant else {})},
            default=str,
        ),
        "samples": pack(item.samples_ns, dtype) if item.samples_ns else None,
        "sample_dtype": dtype,
        "round_medians": pack(item.round_medians_ms, "float64") if item.round_medians_ms else None,
    }
    for name in STAT_NAMES:
        row[name] = getattr(item.stats, name) if item.stats else None
    return row


def row_to_measurement(row: dict[str, Any]) -> Measurement:
    options = tuple(tuple(pair) for pair in json.loads(row["options"] or "[]"))
    details = json.loads(row["details"] or "{}")
    variant = str(details.pop(_VARIANT, ""))
    cell = Cell(RuntimeConfig(row["engine"], options), row["batch_size"], row["threads"], variant)
    stats = None
    if row["n"]:
        stats = LatencyStats(**{name: row[name] for name in STAT_NAMES})
    parity = Parity(**json.loads(row["parity"])) if row["parity"] else None
    return Measurement(
        cell=cell,
        status=row["status"],
        cause=row["cause"] or "",
        samples_ns=tuple(unpack(row["samples"], row["sample_dtype"] or "int64")),
        round_medians_ms=tuple(unpack(row["round_medians"], "float64")),
        stats=stats,
        first_ms=_float(row["first_ms"]),
        load_s=_float(row["load_s"]),
        peak_rss_mb=_float(row["peak_rss_mb"]),
        parity=parity,
        noise_cores=_float(row["noise_cores"]),
        stop_reason=row["stop_reason"] or "",
        provider=row["provider"] or "",
        threads_used=row["threads_used"],
        details=details,
    )


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
