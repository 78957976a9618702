# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quick start: from a trained model to a fair speed comparison
#
# This notebook takes a small convolutional network from training to a benchmark on every
# engine installed here, in about a minute on two CPU cores:
#
# 1. train it on the handwritten digits that ship with scikit-learn, watching the curves;
# 2. export it to ONNX with `%wb export` and read the parity table that proves the file
#    computes what the PyTorch model computes;
# 3. measure it on PyTorch, ONNX Runtime and OpenVINO with `%wb bench`;
# 4. read the numbers: medians with their intervals, speed-ups, the verdicts, and the plots.
#
# Every measurement runs in a separate worker process, so a crash in an engine cannot take
# this notebook down with it.

# %%
import plotly.io as pio
import torch
from torch import nn

import workbench
from workbench.demo import digits_cnn, load_digits

# Plotly's own MIME type draws in JupyterLab; the HTML fallback keeps the figures visible in
# exported HTML and on nbviewer (it fetches plotly.js from a CDN).
pio.renderers.default = "plotly_mimetype+notebook_connected"
torch.manual_seed(0)

# %load_ext workbench

# %% [markdown]
# ## The data and the model
#
# The digits are 1,797 grey images of 8×8 pixels. `load_digits` scales them to [0, 1] and keeps
# a quarter aside for testing; `digits_cnn` builds two convolutions, a pooling step and two
# linear layers.

# %%
digits = load_digits()
model = digits_cnn()
print(f"training images {tuple(digits.train_x.shape)}, test images {tuple(digits.test_x.shape)}")
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown]
# ## Training, with live curves
#
# `workbench.TrainingPlot` redraws its figure in place as `update` is called, and `finish`
# draws the last state. Here it shows the mean training loss of each epoch and the accuracy
# on the held-out test images.

# %%
plot = workbench.TrainingPlot(metrics=("loss", "accuracy"), title="Digits CNN")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(1, 11):
    model.train()
    order = torch.randperm(len(digits.train_x))
    losses = []
    for start in range(0, len(order), 64):
        batch = order[start : start + 64]
        optimizer.zero_grad()
        loss = loss_fn(model(digits.train_x[batch]), digits.train_y[batch])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    model.eval()
    with torch.inference_mode():
        predicted = model(digits.test_x).argmax(dim=1)
    accuracy = (predicted == digits.test_y).float().mean().item()
    plot.update(step=epoch, loss=sum(losses) / len(losses), accuracy=accuracy)

plot.finish()
print(f"test accuracy after {epoch} epochs: {accuracy:.1%}")
assert accuracy > 0.9, "the CNN should reach well over 90% on the digits"

# %% [markdown]
# ## Export, and check the file before anything else
#
# `%wb export MODEL INPUTS` exports with PyTorch's exporter and at once runs the example
# inputs through both PyTorch and ONNX Runtime (in a worker process), comparing every output.
# The batch size stays dynamic, so it also tries a second batch size, to catch a file that
# only works for the batch it was traced with.
#
# Speed means nothing if the outputs are different: an engine that skips half the work is fast
# and wrong. That is why the comparison comes first, here and in every benchmark below.

# %%
example = digits.test_x[:32]
# artifact = %wb export model example -o digits.onnx
assert artifact.parity.ok, artifact.parity.summary
artifact

# %% [markdown]
# How to read the parity table: one row per output and batch size. **max abs** is the largest
# absolute difference between PyTorch's and ONNX Runtime's values, **max rel** the largest
# relative one. An output passes when every element is within `atol + rtol × |expected|`; for
# float32 that is 1e-4 absolute plus 1e-3 relative (the atol and rtol columns), since engines
# add numbers in a different order and float32 rounding then differs in the last digits.
# Errors orders of magnitude below the tolerance are that rounding and nothing more.
#
# `%wb inspect` summarises the file: operators, parameters, and the floating-point operations
# one sample costs, most of them in the convolutions.

# %%
# %wb inspect artifact

# %% [markdown]
# ## Which engines are here
#
# `%wb runtimes` lists every engine the workbench knows, whether it can run here and, when it
# cannot, why and how to install it. The ONNX reference evaluator is slow and is measured only
# when named.

# %%
# %wb runtimes

# %% [markdown]
# ## Benchmark on every engine
#
# `%wb bench` measures the artifact at batch sizes 1 and 32 on every available engine. For
# each engine and batch size (a *cell*) a worker process loads the model, times the very first
# call, warms up, and then measures in short rounds that take turns with the other cells, so a
# slow moment of the machine hits every engine alike. A cell stops when its median is known to
# within 1% or when its budget (here half a second) is spent.
#
# `-o` returns the `Results`, as `%timeit -o` does; the table and plots are shown either way.

# %%
# results = %wb bench artifact -b 1 32 --budget 0.5 -o

# %%
measured = {m.cell.config.name for m in results}
expected = {r.name for r in workbench.runtimes(probe=False) if r.available} - {"onnx-reference"}
assert measured == expected, f"measured {sorted(measured)}, expected {sorted(expected)}"
assert all(m.ok for m in results.measurements), [m.cause for m in results if not m.ok]
assert all(m.parity is None or m.parity.ok for m in results), "an engine's outputs drifted"
print(f"{len(results)} cells measured on {', '.join(sorted(measured))}; all outputs agree")

# %% [markdown]
# ## Reading the numbers
#
# - **median ms [95% CI]**: the median time of one call, with a 95% confidence interval for
#   it. The median, not the mean, because a few slow calls (the machine doing something else)
#   should not move it. A narrow interval means the number is
#   settled; a wide one means the engine's timing wandered.
# - **speed-up [95% CI]** over PyTorch, the baseline: the ratio is taken round by round, and the
#   interval says how far it moved between rounds. When the interval holds 1 the verdict is
#   **not distinguishable**: the two are equally fast as far as this run can tell, however the
#   medians happen to fall. Only an interval wholly above 1 says *faster*, and only one wholly
#   below 1 says *slower*.
# - **noisy**: while each cell ran, the workbench read how much CPU other processes used. Above
#   0.2 cores the cell is flagged, and its numbers are not to be trusted; run it again on a
#   quiet machine.
# - **samples/s** is the batch size divided by the median: the throughput one caller gets.
#
# The full table, `results.to_pandas()`, has one row per cell and more columns than the
# display. Three of them are worth a look before a model goes to production:
#
# - **first_ms**: the very first call after loading, timed alone. It includes the one-off work
#   an engine defers until it sees real inputs (choosing kernels, allocating buffers), which is
#   what the first request to a freshly started server pays.
# - **peak_rss_mb**: the worker's peak memory with the engine and the model loaded; most of it
#   is the engine itself, not this small model.
# - **max_abs_err**: the largest difference between the engine's outputs and PyTorch's on the
#   benchmark's own inputs. Every cell is checked before it is ranked; a cell outside the
#   tolerance would read "wrong outputs" and never be named the winner.

# %%
columns = [
    "runtime", "batch_size", "median_ms", "ci_low_ms", "ci_high_ms", "speedup", "speedup_low",
    "speedup_high", "verdict", "noisy", "first_ms", "peak_rss_mb", "max_abs_err",
]  # fmt: skip
table = results.to_pandas()[columns]
table.style.hide(axis="index").format(precision=4, na_rep="-").format(
    "{:.1e}", subset=["max_abs_err"], na_rep="-"
)

# %% [markdown]
# The winners, batch size by batch size. A winner whose interval overlaps another engine's is
# named together with it: the ranking between them is not settled.

# %%
for (batch_size, _threads), winner in results.winners().items():
    print(f"batch {batch_size:>2}: {winner}")

# %% [markdown]
# ## Reading the plots
#
# The benchmark drew these figures above:
#
# - **Speed-up over the baseline**: one bar per engine and batch size, with its 95% interval as
#   an error bar. Bars whose error bar crosses 1 are the "not distinguishable" ones.
# - **Throughput against batch size**: samples per second. A line that climbs steeply means the
#   engine gains from batching: the fixed cost of a call is spread over more samples.
# - **Latency per call**: the distribution of every timed call; a long tail to the right is
#   the machine interrupting, a second hump an engine switching between two code paths.
#
# Any of them can be drawn again by name, for example the latency distribution:

# %%
results.plot("latency")

# %% [markdown]
# ## Keep the answer
#
# `to_html` writes one self-contained report, with the plots, the table, the export parity and
# the machine the numbers came from (CPU, instruction sets, package versions), to share or to
# compare with a later run.

# %%
report = results.to_html("digits-report.html", title=f"Digits CNN, {accuracy:.1%} accuracy")
print(f"wrote {report.name}, {report.stat().st_size / 1024:.0f} KiB")

# %% [markdown]
# Next: [02_dashboard](02_dashboard.ipynb) measures the same model from a live dashboard and
# sweeps batch sizes and thread counts.
