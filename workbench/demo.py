"""The main job in one call: train a small CNN on handwritten digits, export, benchmark, report.

The digits (8×8 grey images, 1,797 of them) ship with scikit-learn, so nothing is downloaded;
training takes seconds on a CPU.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.artifact import Artifact
    from workbench.results import Results

log = logging.getLogger(__name__)


def digits_cnn() -> Any:
    """A two-convolution network for 1×8×8 images and 10 classes."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


@dataclass(frozen=True)
class Digits:
    """The digits split into training and test tensors, scaled to [0, 1]."""

    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any


def load_digits(seed: int = 0) -> Digits:
    import torch
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    data = sklearn_digits()
    images = (data.images / 16.0).astype("float32")[:, None, :, :]
    train_x, test_x, train_y, test_y = train_test_split(
        images, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    return Digits(
        torch.from_numpy(train_x),
        torch.from_numpy(train_y).long(),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y).long(),
    )


def train(model: Any, digits: Digits, epochs: int = 8, seed: int = 0) -> float:
    """Train with Adam in mini-batches; return the test accuracy."""
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(digits.train_x))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss_fn(model(digits.train_x[batch]), digits.train_y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.inference_mode():
        predicted = model(digits.test_x).argmax(dim=1)
    return float((predicted == digits.test_y).float().mean())


@dataclass(frozen=True)
class DemoOutcome:
    accuracy: float
    artifact: Artifact
    results: Results
    report: Path
    seconds: float


def run_demo(
    output: str | Path = "workbench-demo.html",
    *,
    quick: bool = False,
    batch_sizes: tuple[int, ...] = (1, 32),
    budget_s: float | None = None,
    progress: bool = True,
) -> DemoOutcome:
    """Train, export with parity, benchmark every available runtime, write the HTML report."""
    import torch

    import workbench

    started = time.perf_counter()
    torch.manual_seed(0)
    digits = load_digits()
    model = digits_cnn()
    accuracy = train(model, digits, epochs=3 if quick else 8)
    log.info("trained the digits CNN: test accuracy %.3f", accuracy)

    folder = Path(output).expanduser().absolute().parent
    artifact = workbench.export(model, digits.test_x[:32], folder / "digits_cnn.onnx")
    results = workbench.benchmark(
        artifact,
        batch_sizes=batch_sizes,
        budget_s=budget_s if budget_s is not None else (0.5 if quick else 2.0),
        progress=progress,
    )
    report = results.to_html(output, title=f"Digits CNN (test accuracy {accuracy:.1%})")
    return DemoOutcome(accuracy, artifact, results, report, time.perf_counter() - started)
