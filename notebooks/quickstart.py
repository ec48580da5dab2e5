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
# # spectral_sim in five minutes
#
# A power-law spectrum, a simulation of one-pass SGD on it (1,000 seeds in one jitted call), the
# exact prediction for the same configuration, one plot, and the same comparison as a verdict
# table with `spectral_sim.compare`.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from spectral_sim import PowerLaw, compare, runtime, simulate, sweep, theory  # noqa: E402

runtime.configure()  # float64 for the theory side; the compilation cache for reruns
from spectral_sim.models import linear  # noqa: E402

SMOKE = os.environ.get("SPECTRAL_SIM_SMOKE") == "1"  # the test suite's small-scale run
N_SEEDS = 100 if SMOKE else 1000

# %% [markdown]
# ## A spectrum and a simulation
# lambda_k = k^-s and the target's power per mode lambda_k w*_k^2 = k^-a. Every traced field
# (s, a, lr, noise) can be vmapped; the number of modes is static (a shape).

# %%
spectrum = PowerLaw(s=2.0, a=2.0, n_modes=256)
params = linear.Params(spectrum, lr=0.3, batch=4, noise=0.01)
steps = jnp.array([1, 3, 10, 30, 100, 300, 1000])


def run(key):
    return simulate.trajectory(linear, params, key, steps=steps)[1].loss


losses = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), N_SEEDS))
predicted = theory.sgd_loss(spectrum, lr=0.3, batch=4, noise=0.01, steps=steps)
print("simulated mean:", losses.mean(0))
print("exact SGD     :", predicted)

# %% [markdown]
# ## One plot

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
sem = losses.std(0) / jnp.sqrt(losses.shape[0])
ax.errorbar(steps, losses.mean(0), yerr=sem, fmt="o", label="simulation (mean ± SEM)")
ax.plot(steps, predicted, "k-", label="exact recursion (theory.sgd_loss)")
ax.set(xscale="log", yscale="log", xlabel="step", ylabel="loss")
ax.legend()
plt.show()

# %% [markdown]
# ## The same check as a verdict table
# `compare` sweeps a grid of Params with seeds and tests a predictor of the same Params: here
# the exact recursion at step 300 for three learning rates. The tolerance is the margin you argue
# the theorem must meet (5 % here: the recursion is exact, so only Monte Carlo noise remains).


# %%
def make(lr):
    return linear.Params(spectrum, lr=lr, batch=4, noise=0.01)


def simulate_one(p, key):
    return dict(loss=simulate.trajectory(linear, p, key, steps=[300])[1].loss[0])


def predict(p):
    return theory.sgd_loss(p.spectrum, lr=p.lr, batch=4, noise=0.01, steps=[300])[0]


grid = sweep.Grid(product=dict(lr=[0.1, 0.2, 0.3]), n_seeds=N_SEEDS // 2)
report = compare.compare(simulate_one, make, grid, predict, observable="loss", tolerance=0.05,
                         name="quickstart", options=sweep.Options(progress=False))  # fmt: skip
print(report.table())
