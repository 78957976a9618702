"""(b) How long does `import workbench` take? Goal: under 0.2 s.

Fresh interpreters alternate between `import workbench` and an empty program; the cost is the
difference of the medians, so interpreter start-up is not counted.

    python benchmarks/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    bare, loaded = [], []
    for _ in range(args.runs):
        bare.append(timed("pass"))
        loaded.append(timed("import workbench"))
    cost = statistics.median(loaded) - statistics.median(bare)
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, workbench; print(' '.join(m for m in "
            "('torch', 'onnx', 'onnxruntime', 'openvino', 'numpy', 'plotly', 'pandas') "
            "if m in sys.modules) or 'none')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        f"interpreter alone: median {statistics.median(bare) * 1e3:.0f} ms; with import "
        f"workbench: {statistics.median(loaded) * 1e3:.0f} ms ({args.runs} runs each)"
    )
    print(f"import workbench costs {cost * 1e3:.0f} ms; heavy modules imported: {heavy}")
    print(f"goal: under 200 ms -> {'met' if cost < 0.2 else 'NOT met'}")


if __name__ == "__main__":
    main()
