"""(d) How close does each runtime get to what the cores can do?

A ResNet-18-shaped network at 224×224 (3.6 GFLOPs per sample), built here without torchvision,
is exported and measured at batch 1 on ONNX Runtime with every graph optimization and on
PyTorch eager. Their attained GFLOP/s are set against the machine's best fp32 matrix product,
measured before and after the sweep. Goal: ONNX Runtime at all optimizations reaches about
90-100% of the peak on a 2-core AVX2 machine.

    python benchmarks/roofline.py [--threads N] [--budget 4] [--peak-seconds 2] [--html out.html]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
from torch import nn

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (width, stride of its first block)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut; a 1×1 convolution on the shortcut when needed."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != width:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, width, 1, stride, bias=False), nn.BatchNorm2d(width)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet18_shape(classes: int = 1000) -> nn.Module:
    """Stem, four stages of two basic blocks, global pooling and a classifier."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inputs = 64
    for width, stride in STAGES:
        layers += [BasicBlock(inputs, width, stride), BasicBlock(width, width, 1)]
        inputs = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="default: every usable core")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds of timing per cell")
    parser.add_argument("--peak-seconds", type=float, default=2.0)
    parser.add_argument("--html", type=Path, default=None, help="write both figures here")
    args = parser.parse_args()

    import workbench
    from workbench.bench.peak import measure_peak
    from workbench.results import with_roofline
    from workbench.viz.report import write_report
    from workbench.viz.roofline import cold_start

    torch.manual_seed(0)
    model = resnet18_shape().eval()
    folder = Path(tempfile.mkdtemp(prefix="wb-roofline-"))
    artifact = workbench.export(model, torch.randn(1, 3, 224, 224), folder / "resnet18.onnx")
    summary = workbench.inspect(artifact)
    print(f"FLOPs per sample: {summary.flops / 1e9:.2f} G")

    # The cores' ceiling is taken on both sides of the sweep; the higher is the peak.
    before = measure_peak(args.threads, args.peak_seconds)
    results = workbench.benchmark(
        artifact,
        runtimes=["onnxruntime:opt=all", "torch"],
        threads=[args.threads],
        budget_s=args.budget,
        progress=False,
    )
    after = measure_peak(args.threads, args.peak_seconds)
    best = max(before, after, key=lambda found: found.gflops)
    print(
        f"peak: {best.gflops:.1f} GFLOP/s ({best.method}, n={best.size}, {best.threads} threads); "
        f"before the sweep {before.gflops:.1f}, after {after.gflops:.1f}"
    )
    for name, value in sorted(best.details["gflops_by_try"].items()):
        print(f"  {name}: {value:.1f} GFLOP/s")

    results = with_roofline(results, summary, best.gflops)
    table = results.to_pandas()
    for row in table.itertuples():
        noise = f"{row.noise_cores:.2f}" if not math.isnan(row.noise_cores) else "?"
        print(
            f"{row.runtime:22} median {row.median_ms:7.2f} ms  {row.gflops_per_s:6.1f} GFLOP/s  "
            f"{row.share_of_peak:6.1%} of peak  (others used {noise} cores)"
        )
    print(results.cold_start().to_string(index=False))
    if args.html:
        figures = [results.roofline(), cold_start(table)]
        sections = [("Results", results._repr_html_())]
        write_report(args.html, "Roofline of a ResNet-18 shape", figures, sections)
        print(f"figures written to {args.html}")


if __name__ == "__main__":
    main()
