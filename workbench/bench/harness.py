"""The timing loop that runs inside a worker process.

Warm-up calls are timed and thrown away; measured calls are timed one by one with the
monotonic nanosecond clock, with the garbage collector paused as timeit does.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmUp:
    first_ms: float
    calls: int


def warm_up(call: Callable[[], object], seconds: float, min_calls: int = 3) -> WarmUp:
    """Time the first call alone, then call until both the time and the count are reached."""
    clock = time.perf_counter_ns
    start = clock()
    call()
    first_ns = clock() - start
    deadline = clock() + int(seconds * 1e9)
    calls = 1
    while calls < min_calls or clock() < deadline:
        call()
        calls += 1
    return WarmUp(first_ms=first_ns / 1e6, calls=calls)


def time_calls(call: Callable[[], object], seconds: float, max_calls: int = 1_000_000) -> list[int]:
    """Per-call durations in nanoseconds: at least one call, then until the time is up."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    deadline = clock() + int(seconds * 1e9)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            start = clock()
            call()
            end = clock()
            append(end - start)
            if end >= deadline or len(samples) >= max_calls:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples
