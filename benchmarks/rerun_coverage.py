"""(c) Do the intervals hold when the same benchmark is run again?

A small convolutional model is measured on a few runtimes and batch sizes, then the whole sweep
is run again N times. Two figures come out:

- how often a re-run's median falls inside the first run's 95% interval of the median, once for
  the interval from the calls (order statistics of all samples) and once for the interval from
  the round medians (bootstrap over rounds);
- how often ``workbench.compare`` calls two runs of the same thing "not distinguishable", over
  every pair of runs, with its default allowance for run-to-run wander and without any.
  Goal: at least 90% on a quiet machine.

It also estimates that wander: the pooled standard deviation of the log of each cell's median
across runs, which is what ``workbench.bench.stats.RUN_TO_RUN`` stands for.

Each run's noise is printed as well (other processes' CPU time, and the noise warnings), since a
busy machine explains a low figure.

    python benchmarks/rerun_coverage.py [--runs 5] [--budget 1.0] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per cell and run")
    parser.add_argument("--runtimes", default="torch,onnxruntime,openvino")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    import workbench

    artifact = _small_cnn(Path(tempfile.mkdtemp(prefix="wb-rerun-")))

    runs = []
    for index in range(args.runs):
        start = time.perf_counter()
        results = workbench.benchmark(
            artifact,
            runtimes=args.runtimes.split(","),
            batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
            threads=[args.threads],
            budget_s=args.budget,
            progress=False,
        )
        runs.append(results)
        print(f"run {index + 1}: {time.perf_counter() - start:.0f} s; {_noise_line(results)}")

    figures = _figures(runs)
    _report(figures, runs)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _small_cnn(folder: Path) -> Any:
    """Two 3x3 convolutions on 32x32 images and a linear head, exported with its parity check."""
    import torch

    import workbench

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 10),
    ).eval()
    return workbench.export(model, torch.randn(1, 3, 32, 32), folder / "cnn.onnx")


def _noise_line(results: Any) -> str:
    from workbench.bench.shifts import noise_warning

    cores = [m.noise_cores for m in results.measurements if m.ok]
    warned = [m for m in results.measurements if m.ok and noise_warning(m)]
    return (
        f"other processes used {min(cores):.2f}–{max(cores):.2f} cores; "
        f"{len(warned)} of {len(cores)} cells warned"
    )


def _figures(runs: list[Any]) -> dict[str, Any]:
    """Coverage of the first run's intervals by the re-runs, and compare's verdicts on pairs."""
    import workbench
    from workbench.bench.stats import bootstrap_ratio_rounds, rerun_interval

    first = {m.cell: m for m in runs[0].measurements if m.ok}
    by_samples, by_rounds, by_rerun, spreads = [], [], [], []
    for later in runs[1:]:
        for item in later.measurements:
            origin = first.get(item.cell)
            if origin is None or not item.ok:
                continue
            median, stats = item.stats.median_ms, origin.stats
            by_samples.append(stats.ci_low_ms <= median <= stats.ci_high_ms)
            # The interval of the first run's median alone: its ratio to a constant 1.
            alone = bootstrap_ratio_rounds(origin.round_medians_ms, [1.0])
            by_rounds.append(alone.low <= median <= alone.high)
            low, high = rerun_interval(stats)
            by_rerun.append(low <= median <= high)
            spreads.append(median / stats.median_ms - 1)

    pairs = list(itertools.combinations(runs, 2))
    verdicts = [cell.verdict for a, b in pairs for cell in workbench.compare(a, b).cells]
    bare = [cell.verdict for a, b in pairs for cell in workbench.compare(a, b, run_to_run=0).cells]
    return {
        "reruns_inside_sample_interval": _share(by_samples),
        "reruns_inside_round_interval": _share(by_rounds),
        "reruns_inside_rerun_interval": _share(by_rerun),
        "rerun_median_change_abs_median": sorted(abs(s) for s in spreads)[len(spreads) // 2],
        "rerun_median_change_max": max(spreads, key=abs),
        "run_to_run_sd": _run_to_run(runs),
        "pairs_not_distinguishable": _share([v == "not distinguishable" for v in verdicts]),
        "pair_verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
        "pairs_not_distinguishable_within_run_only": _share(
            [v == "not distinguishable" for v in bare]
        ),
        "max_noise_cores": max(m.noise_cores for r in runs for m in r.measurements if m.ok),
    }


def _run_to_run(runs: list[Any]) -> float:
    """Pooled standard deviation of log(median) of each cell across runs, as a relative figure."""
    logs: dict[Any, list[float]] = {}
    for results in runs:
        for item in results.measurements:
            if item.ok:
                logs.setdefault(item.cell, []).append(math.log(item.stats.median_ms))
    variances = [statistics.variance(v) for v in logs.values() if len(v) > 1]
    return math.expm1(math.sqrt(statistics.fmean(variances))) if variances else math.nan


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def _report(figures: dict[str, Any], runs: list[Any]) -> None:
    from workbench.bench.stats import RUN_TO_RUN

    cells = len(runs[0].measurements)
    goal = figures["pairs_not_distinguishable"] >= 0.9
    covered = figures["reruns_inside_rerun_interval"] >= 0.9
    print(
        f"\n{len(runs)} runs of {cells} cells\n"
        f"re-run medians inside run 1's 95% interval from the calls:  "
        f"{figures['reruns_inside_sample_interval']:.0%}\n"
        f"re-run medians inside run 1's 95% interval from the rounds: "
        f"{figures['reruns_inside_round_interval']:.0%}\n"
        f"re-run medians inside run 1's re-run interval (rerun_low_ms..rerun_high_ms): "
        f"{figures['reruns_inside_rerun_interval']:.0%}; goal 90% -> "
        f"{'met' if covered else 'NOT met'}\n"
        f"re-run medians moved by {figures['rerun_median_change_abs_median']:.1%} typically, "
        f"at most {figures['rerun_median_change_max']:+.1%}\n"
        f"run-to-run wander of a cell's median (pooled sd): {figures['run_to_run_sd']:.1%} "
        f"(compare assumes {RUN_TO_RUN:.0%})\n"
        f"compare said 'not distinguishable' for {figures['pairs_not_distinguishable']:.0%} of "
        f"cell pairs {figures['pair_verdicts']}; goal 90% -> {'met' if goal else 'NOT met'}\n"
        f"... and with run_to_run=0 (within-run noise only): "
        f"{figures['pairs_not_distinguishable_within_run_only']:.0%}\n"
        f"most CPU other processes used during a cell: {figures['max_noise_cores']:.2f} cores"
    )


if __name__ == "__main__":
    main()
