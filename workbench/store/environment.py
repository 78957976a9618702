"""A fingerprint of the machine and the software a measurement ran on.

Read without importing any engine: package versions come from installed metadata.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import asdict, dataclass, field

PACKAGES = (
    "workbench",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "numpy",
    "onnxscript",
)
_INTERESTING_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "neon",
    "asimd",
    "sve",
)


@dataclass(frozen=True)
class Environment:
    """Machine, operating system, Python and package versions."""

    cpu: str
    cpu_flags: tuple[str, ...]
    cores_logical: int
    cores_physical: int | None
    cores_usable: int
    memory_gb: float
    os: str
    machine: str
    python: str
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Short hash that changes when anything here changes."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "fingerprint": self.fingerprint}

    def rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs for a table."""
        versions = ", ".join(f"{k} {v}" for k, v in self.packages.items())
        return [
            ("CPU", self.cpu),
            ("instruction sets", " ".join(self.cpu_flags) or "unknown"),
            (
                "cores",
                f"{self.cores_usable} usable of {self.cores_logical} logical"
                + (f", {self.cores_physical} physical" if self.cores_physical else ""),
            ),
            ("memory", f"{self.memory_gb:.1f} GB"),
            ("system", f"{self.os} ({self.machine})"),
            ("Python", self.python),
            ("packages", versions),
        ]


@functools.cache
def current_environment() -> Environment:
    import psutil

    cpu, flags = _cpu_model_and_flags()
    return Environment(
        cpu=cpu,
        cpu_flags=tuple(flag for flag in _INTERESTING_FLAGS if flag in flags),
        cores_logical=os.cpu_count() or 1,
        cores_physical=psutil.cpu_count(logical=False),
        cores_usable=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
        memory_gb=psutil.virtual_memory().total / 2**30,
        os=platform.platform(terse=True),
        machine=platform.machine(),
        python=platform.python_version(),
        packages=_versions(),
    )


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(
                "onnx-workbench" if name == "workbench" else name
            )
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _cpu_model_and_flags() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model in ("", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags
