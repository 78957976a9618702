"""(a) Does the harness add to what it measures?

The workbench's median latency for ONNX Runtime on an MLP 784-512-512-10 at batch 1, against a
raw `session.run` loop timed call by call in its own process with the same thread settings.
The two alternate in pairs within one run; the ratio of each pair is reported. Goal: within 3%.

    python benchmarks/harness_overhead.py [--pairs 6] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RAW_LOOP = r"""
import json, sys, time
import numpy as np, onnxruntime as ort
path, seconds = sys.argv[1], float(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = 0
options.inter_op_num_threads = 1
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
feeds = {session.get_inputs()[0].name: np.load(sys.argv[3])}
for _ in range(200):
    session.run(None, feeds)
samples, clock = [], time.perf_counter_ns
deadline = clock() + int(seconds * 1e9)
while clock() < deadline:
    start = clock(); session.run(None, feeds); samples.append(clock() - start)
print(json.dumps({"median_ms": float(np.median(samples)) / 1e6, "n": len(samples)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()

    import numpy as np
    import torch

    import workbench
    from workbench.bench.process import thread_environment

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    ).eval()
    folder = Path(tempfile.mkdtemp(prefix="wb-overhead-"))
    artifact = workbench.export(model, torch.randn(1, 784), folder / "mlp.onnx")
    feeds = next(iter(artifact._example_feeds.values()))
    np.save(folder / "x.npy", feeds)
    env = {**os.environ, **thread_environment(None)}

    ratios = []
    for pair in range(args.pairs):
        raw = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    RAW_LOOP,
                    str(artifact.path),
                    str(args.seconds),
                    str(folder / "x.npy"),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        results = workbench.benchmark(
            artifact,
            runtimes=["onnxruntime"],
            budget_s=args.seconds,
            min_rounds=8,
            precision=0.0,
            progress=False,
        )
        cell = results.measurements[0]
        ratio = cell.stats.median_ms / raw["median_ms"]
        ratios.append(ratio)
        print(
            f"pair {pair + 1}: workbench {cell.stats.median_ms * 1e3:.1f} µs "
            f"(n={cell.stats.n}, noise {cell.noise_cores:.2f} cores), raw loop "
            f"{raw['median_ms'] * 1e3:.1f} µs (n={raw['n']}), ratio {ratio:.3f}"
        )
    middle = statistics.median(ratios)
    print(
        f"\nmedian ratio workbench/raw over {len(ratios)} pairs: {middle:.3f} "
        f"(range {min(ratios):.3f}–{max(ratios):.3f}); goal: within 3% "
        f"-> {'met' if abs(middle - 1) <= 0.03 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
