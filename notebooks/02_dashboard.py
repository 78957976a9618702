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
# # The dashboard, and where batching pays
#
# The [quick start](01_quickstart.ipynb) measured the digits CNN with one magic. This notebook
# measures the same model from `workbench.Dashboard`, a small panel that shows the medians as
# they settle and can be stopped half-way, and then sweeps batch sizes and thread counts to
# see when sending samples in batches, or giving an engine a second thread, makes it faster.

# %%
import plotly.io as pio
import torch

import workbench
from workbench.demo import digits_cnn, load_digits, train

# Plotly's own MIME type draws in JupyterLab; the HTML fallback keeps the figures visible in
# exported HTML and on nbviewer (it fetches plotly.js from a CDN).
pio.renderers.default = "plotly_mimetype+notebook_connected"
_ = torch.manual_seed(0)

# %% [markdown]
# ## The model
#
# The same network and data as in the quick start. `train` is the loop written out there, in
# one call; the export checks the file against PyTorch, as always.

# %%
digits = load_digits()
model = digits_cnn()
accuracy = train(model, digits, epochs=8)
print(f"test accuracy {accuracy:.1%}")
assert accuracy > 0.9

artifact = workbench.export(model, digits.test_x[:32], "digits.onnx")
assert artifact.parity.ok, artifact.parity.summary
artifact

# %% [markdown]
# ## The dashboard
#
# The panel offers every engine available here, ticked, and fields for the batch sizes, the
# thread counts and the measuring time per cell. **Run** starts the measurement in the
# background, so the notebook stays usable; the bar chart shows each cell's running median with
# its 95% interval while it narrows. **Stop** ends the run after the current step and keeps the
# cells measured so far.

# %%
dash = workbench.Dashboard(artifact, batch_sizes=(1, 32), budget_s=0.5)
dash

# %% [markdown]
# Press **Run** above, or run the next cell: `run()` does the same from code and returns at
# once, and `wait()` blocks until the measurement is over and returns its `Results`, the same
# object `workbench.benchmark` returns.

# %%
dash.run()
results = dash.wait()
assert results is not None, dash.error
assert all(m.ok for m in results.measurements), [m.cause for m in results if not m.ok]
assert all(m.parity is None or m.parity.ok for m in results), "an engine's outputs drifted"
results

# %% [markdown]
# ## A batch and thread sweep
#
# A server that answers one request at a time runs the model at batch 1; one that gathers
# requests can run them together. Whether gathering pays depends on the engine and the model,
# and so does whether a second thread helps. The sweep below measures every engine at batch
# sizes 1, 8 and 32 with one and with two threads: 18 cells, each in its own worker process with
# its thread count set explicitly. Each cell gets a third of a second.

# %%
sweep = workbench.Dashboard(artifact, batch_sizes=(1, 8, 32), threads=(1, 2), budget_s=0.3)
sweep.run()
sweep

# %%
swept = sweep.wait()
assert swept is not None, sweep.error
assert all(m.ok for m in swept.measurements), [m.cause for m in swept if not m.ok]
assert all(m.parity is None or m.parity.ok for m in swept), "an engine's outputs drifted"
print(f"{len(swept)} cells measured")

# %% [markdown]
# ## Throughput against batch size
#
# Throughput is samples per second: the batch size divided by the median time of one call. One
# line per engine and thread count; a line that climbs means a bigger batch makes each sample
# cheaper.

# %%
swept.plot("throughput")

# %% [markdown]
# The same numbers as a table, and two ratios computed from them: how much more throughput
# batch 32 gives than batch 1 (the gain from batching), and how much more two threads give
# than one at the same batch size (the gain from the second thread).

# %%
table = swept.to_pandas()
throughput = table.pivot_table(
    index=["runtime", "threads"], columns="batch_size", values="throughput_per_s"
)
throughput["batching gain (32 vs 1)"] = throughput[32] / throughput[1]
throughput.style.format("{:,.0f}").format("{:.1f}×", subset=["batching gain (32 vs 1)"])

# %%
by_threads = table.pivot_table(
    index=["runtime", "batch_size"], columns="threads", values="median_ms"
)
by_threads["second-thread gain"] = by_threads[1] / by_threads[2]
by_threads.style.format("{:.4f}").format("{:.2f}×", subset=["second-thread gain"])

# %%
best = table.loc[table.groupby("runtime")["throughput_per_s"].idxmax()]
for row in best.itertuples():
    print(
        f"{row.runtime:12} best throughput {row.throughput_per_s:>10,.0f} samples/s "
        f"at batch {row.batch_size}, {row.threads} thread(s)"
    )
assert (best["batch_size"] > 1).all(), "batching should pay for every engine on this model"

# %% [markdown]
# ## Where batching pays
#
# Read the tables above with three ideas in mind:
#
# - **Every call has a fixed cost**: crossing from Python into the engine, checking the inputs,
#   starting the kernels. At batch 1 on a model this small that cost is a large share of the
#   call, so the batching gain is large: the same fixed cost is shared by 32 samples. The gain
#   flattens once the arithmetic itself dominates, which a bigger model reaches at a smaller
#   batch.
# - **A second thread has to be fed.** Splitting one 8×8 image across two threads costs more in
#   hand-offs than it saves, so at batch 1 the second-thread gain is often near 1 or below;
#   at larger batches there is enough work to split, and it rises. On a machine where other
#   programs are busy, two threads can also collapse, since each waits for the other; the
#   noisy flag in the results says when that happened.
# - **Engines differ in their fixed cost and in their kernels**, so the order of the engines
#   can change between batch 1 and batch 32: compare the winners printed below.
#
# Batching only pays if requests can wait for each other: a batch of 32 answers the first
# request no sooner than the whole batch is done. The median column of the sweep gives that
# latency; choose the largest batch whose latency your application tolerates.

# %%
for (batch_size, threads), winner in swept.winners().items():
    print(f"batch {batch_size:>2}, {threads} thread(s): {winner}")

# %% [markdown]
# Next: [03_transformer](03_transformer.ipynb) compares the engines on a small transformer,
# whose work is mostly matrix products rather than convolutions.
