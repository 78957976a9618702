"""Arguments shared by the two text faces of the API: the ``workbench`` command and ``%wb``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from workbench.errors import InputError


def add_dims(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dims",
        nargs="*",
        default=[],
        metavar="NAME=SIZE",
        help="sizes for symbolic dimensions other than the batch, e.g. seq=128",
    )


def add_sweep(parser: argparse.ArgumentParser, *, budget_s: float) -> None:
    """Runtimes, batch sizes, threads and the time budget of a benchmark."""
    parser.add_argument(
        "-r",
        "--runtime",
        action="append",
        dest="runtimes",
        metavar="RUNTIME",
        help="runtime, repeatable: onnxruntime, openvino, onnxruntime:opt=basic, "
        "openvino:hint=throughput (default: every available one)",
    )
    parser.add_argument(
        "-b",
        "--batch-size",
        nargs="+",
        type=int,
        default=[1],
        dest="batch_sizes",
        metavar="N",
        help="batch sizes (default: 1)",
    )
    parser.add_argument(
        "-t",
        "--threads",
        nargs="+",
        type=int,
        metavar="N",
        help="thread counts (default: each runtime's own)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=budget_s,
        metavar="SECONDS",
        help=f"measuring time per cell at most (default: {budget_s:g})",
    )


def parse_dims(items: Sequence[str]) -> dict[str, int] | None:
    """``["seq=128"]`` as ``{"seq": 128}``; None when no pair was given."""
    found = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not size.isdigit():
            raise InputError(f"--dims takes NAME=SIZE pairs such as seq=128; got {item!r}.")
        found[name] = int(size)
    return found or None
