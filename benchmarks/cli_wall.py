"""(c) Wall time of `workbench bench` over three runtimes on the demo CNN. Goal: under 30 s.

The digits CNN of `workbench demo` is trained briefly and exported; then the command line runs
ONNX Runtime, OpenVINO and the ONNX reference evaluator at batch 1, worker start included.

    python benchmarks/cli_wall.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import workbench
    from workbench.demo import digits_cnn, load_digits, train

    digits = load_digits()
    model = digits_cnn()
    train(model, digits, epochs=2)
    folder = Path(tempfile.mkdtemp(prefix="wb-cli-"))
    artifact = workbench.export(model, digits.test_x[:1], folder / "digits_cnn.onnx")

    command = [
        shutil.which("workbench") or "workbench",
        "bench",
        str(artifact.path),
        "-r",
        "onnxruntime",
        "-r",
        "openvino",
        "-r",
        "onnx-reference",
    ]
    walls = []
    for run in range(args.runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - start)
        print(f"run {run + 1}: {walls[-1]:.1f} s")
    print(done.stdout)
    worst = max(walls)
    print(
        f"wall time over {args.runs} runs: best {min(walls):.1f} s, worst {worst:.1f} s; "
        f"goal: under 30 s -> {'met' if worst < 30 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
