"""Tiny models built in code, for the tests: each function returns ``(model, example_inputs)``.

Every model is seeded, runs on the CPU in milliseconds, and is left in eval mode (except where a
test asks otherwise). ``example_inputs`` is always a tuple of tensors, batch first.
"""

from __future__ import annotations

import torch
from torch import nn

SEED = 0


class TwoInputs(nn.Module):
    """``forward(x, mask)`` returning a tuple of two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.linear(x * mask)
        return torch.relu(hidden), hidden.sum(dim=-1)


def mlp() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A 32-64-10 perceptron with ReLU; batch 4."""
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    return model, (torch.randn(4, 32),)


def cnn() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Conv2d + BatchNorm + ReLU + pool + Linear on 1x8x8 images; batch 4."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    )
    # Give the batch norm non-trivial running statistics, so eval mode differs from training.
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 1.5)
    return model.eval(), (torch.randn(4, 1, 8, 8),)


def transformer() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A one-layer ``nn.TransformerEncoder`` (d_model 16, 2 heads, dropout 0.1); seq 8, batch 2."""
    torch.manual_seed(SEED)
    layer = nn.TransformerEncoderLayer(
        d_model=16, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True
    )
    model = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False).eval()
    return model, (torch.randn(2, 8, 16),)


def two_inputs() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Two inputs (``x``, ``mask``), two outputs; batch 3."""
    torch.manual_seed(SEED)
    model = TwoInputs().eval()
    x = torch.randn(3, 16)
    mask = (torch.rand(3, 16) > 0.3).to(torch.float32)
    return model, (x, mask)


MODELS = {"mlp": mlp, "cnn": cnn, "transformer": transformer}
