# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Sweeps at scale
#
# One grid of SGD runs over spectra, learning rates and batch sizes, sharded over every local
# device, written chunk by chunk to disk, interrupted and resumed, and read back as an
# `xarray.Dataset`. On a GPU or TPU machine the same cells shard over the accelerators; on a
# laptop we ask XLA for 4 virtual CPU devices (this must happen before JAX starts).

# %%
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import pathlib  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spectral_sim import PowerLaw, runtime, simulate, sweep  # noqa: E402

runtime.configure(x64=False)  # sweeps run in float32
from spectral_sim.models import linear  # noqa: E402

SMOKE = os.environ.get("SPECTRAL_SIM_SMOKE") == "1"  # the test suite's small scale
N_SEEDS = 32 if SMOKE else 512
print(jax.device_count(), "devices:", jax.devices())

# %% [markdown]
# ## The grid
# `make` builds one point's Params from its axis values; `simulate(params, key)` returns the
# observables of one run. `batch` sets a shape (a static field), so each batch size is its own
# compile group; `s` and `lr` are traced and vmapped, as are the seeds. The largest learning
# rate is past SGD's stability edge: those runs blow up, and the sweep flags them instead of
# failing.

# %%
STEPS = [1, 10, 100, 1000]


def make(s, lr, batch):
    return linear.Params(PowerLaw(s=s, a=2.0, n_modes=512), lr=lr, noise=0.01, batch=batch)


def run_one(params, key):
    return simulate.trajectory(linear, params, key, steps=STEPS)[1]


grid = sweep.Grid(
    product=dict(s=[1.25, 1.5, 2.0, 3.0], lr=[0.05, 0.2, 0.5, 4.0], batch=[1, 8]),
    n_seeds=N_SEEDS,
)
CHUNK = 2 * jax.device_count()  # small chunks, so that there is something to resume
print(sweep.plan(make, grid, simulate=run_one, chunk_size=CHUNK).summary())

# %% [markdown]
# `sweep.plan` validated the axes against `make` and worked out the compile groups, the chunk
# size and the memory per device without compiling anything. A bad axis (a name `make` does not
# take, an empty list, an invalid value) is refused here, before any compilation.

# %%
try:
    sweep.plan(make, sweep.Grid(product=dict(s=[2.0], lr=[-0.1], batch=[1])))
except ValueError as error:
    print("refused:", error)

# %% [markdown]
# ## Run it, with chunk files on disk
# With `out=`, each finished chunk is written atomically beside a manifest that fingerprints the
# grid, the seed, the code and the config. Keys come from each point's index in the whole grid,
# so the numbers do not depend on the chunk size or the device count.

# %%
out = pathlib.Path(tempfile.mkdtemp()) / "sgd"
kwargs = dict(out=out, chunk_size=CHUNK, dims={"loss": ("step",)}, coords={"step": STEPS})
start = time.perf_counter()
data = sweep.run(run_one, make, grid, **kwargs)
print(f"first run: {time.perf_counter() - start:.1f} s")
print(sorted(p.name for p in out.iterdir()))

# %% [markdown]
# ## Resume
# Pretend the run was killed before its last chunk was written: delete it and run again. Only
# the missing chunk is computed, and the result is the same to the bit.

# %%
chunks = sorted(out.glob("chunk-*.npz"))
chunks[-1].unlink()
start = time.perf_counter()
again = sweep.run(run_one, make, grid, **kwargs)
print(f"resumed run ({len(chunks) - 1} of {len(chunks)} chunks from disk): "
      f"{time.perf_counter() - start:.1f} s")  # fmt: skip
assert again.loss.equals(data.loss) and again.nonfinite.equals(data.nonfinite)
print("identical to the uninterrupted run")

# %% [markdown]
# Another sweep in the same directory (here: more seeds) is refused rather than mixed with the
# stored chunks; pass `overwrite=True` to recompute. From the command line the same engine runs
# every experiment: `spectral-sim run learning_curves --quick --out runs/lc` resumes from
# `runs/lc/sweeps/` when run again.

# %%
try:
    sweep.run(run_one, make, sweep.Grid(product=grid.product, n_seeds=N_SEEDS + 1), **kwargs)
except ValueError as error:
    print("refused:", error)

# %% [markdown]
# ## Reading the result
# The dataset's dims are the grid axes, `seed`, and the outputs' own axes (`step`, named by
# `dims=`). Everything else is xarray: select, reduce, convert to pandas.

# %%
print(data)

# %% [markdown]
# ## Divergence is flagged, not plotted
# `nonfinite` marks every (point, seed) whose outputs went to inf or NaN. Leave those points
# out before averaging or plotting: here the learning rate 4 diverged everywhere.

# %%
share = data.nonfinite.mean("seed")
print(share.to_dataframe().query("nonfinite > 0"))
stable_lr = [lr for lr in data.lr.values if not share.sel(lr=lr).any()]
ok = data.sel(lr=stable_lr)

# %%
final = ok.loss.sel(step=1000)
mean = final.mean("seed")
sem = final.std("seed") / np.sqrt(ok.sizes["seed"])
print(mean.sel(batch=8).to_pandas())
print("relative SEM at batch 8, lr 0.2:", (sem / mean).sel(batch=8, lr=0.2).values)

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
for ax, batch in zip(axes, grid.product["batch"], strict=True):
    for lr in stable_lr:
        curve = mean.sel(batch=batch, lr=lr)
        ax.plot(curve.s, curve, "o-", label=f"lr = {lr:g}")
    ax.set(xlabel="s", yscale="log", title=f"batch {batch}: loss after 1000 steps")
axes[0].set_ylabel("mean loss over seeds")
axes[0].legend()
plt.show()

# %% [markdown]
# ## Provenance, saving and reopening
# `data.attrs` records the package version, git commit, JAX version, devices, process count,
# x64, seed, time, the grid and the config. `sweep.save` writes netCDF; `sweep.load` reopens it.

# %%
for name in ("package_version", "git_commit", "jax_version", "devices", "x64", "chunk"):
    print(f"{name:>15}: {data.attrs[name]}")
path = sweep.save(data, out.parent / "sgd.nc")
assert sweep.load(path).loss.equals(data.loss)

# %% [markdown]
# ## Several hosts
# The same sweep runs under `jax.distributed`: start one process per host with an `out`
# directory every process can see. Process *i* computes chunks *i*, *i + N*, ..., and every
# process assembles the whole dataset from the chunk files. From the command line:
# `spectral-sim run NAME --distributed --out /shared/runs` (SLURM, TPU pods and Open MPI are
# detected), or `--coordinator HOST:PORT --num-processes N --process-id I`.
