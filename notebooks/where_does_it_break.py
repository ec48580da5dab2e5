# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
# ---

# %% [markdown]
# # Where does it break? The momentum rule over (learning rate, momentum)
#
# `prototype_a_theorem` tests a folk theorem on three learning rates at one momentum. The
# theorem says that heavy-ball SGD at learning rate eta and momentum beta behaves like plain SGD
# at eta / (1 - beta).
#
# Here `spectral_sim.validity.search` maps the same claim over a box of (eta, beta):
# - it samples the box;
# - it decides every point with the claim engine (the seed mean of the loss against the exact
#   SGD recursion at the effective rate, within 10 %);
# - it spends the rest of its budget on the boundary between the points where the rule holds
#   and those where it fails.
#
# The map is whatever the simulations say.

# %%
import dataclasses
import os

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from spectral_sim import PowerLaw, runtime, simulate, theory, validity  # noqa: E402

runtime.configure()  # float64 for the predictors, full-precision float32 matmuls
from spectral_sim.models import linear  # noqa: E402

SMOKE = os.environ.get("SPECTRAL_SIM_SMOKE") == "1"  # the test suite's small-scale run
STEPS = [100, 1000]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Momentum:
    """linear.Params for SGD, and the heavy-ball momentum beta: both searchable axes."""

    sgd: linear.Params
    beta: float = 0.9


template = Momentum(linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=256), batch=4, noise=0.01))


def heavy_ball(point, key):
    """models.linear's one-pass gradients fed to optax's momentum SGD."""
    momentum = linear.optimizer(lambda p: optax.sgd(p.lr, momentum=point.beta))
    return dict(loss=simulate.trajectory(momentum, point.sgd, key, steps=STEPS)[1].loss)


def effective_lr_rule(point):
    """The folk theorem: the exact SGD recursion at eta / (1 - beta)."""
    sgd = point.sgd
    return theory.sgd_loss(sgd.spectrum, lr=sgd.lr / (1 - point.beta), batch=sgd.batch,
                           noise=sgd.noise, steps=STEPS)  # fmt: skip


# %% [markdown]
# ## The search: eta from 0.001 to 0.3 (log), beta from 0 to 0.95

# %%
found = validity.search(
    heavy_ball, template, {"sgd.lr": (0.001, 0.3, "log"), "beta": (0.0, 0.95)},
    effective_lr_rule, observable="loss", tolerance=0.1, n_seeds=8 if SMOKE else 64,
    budget=32 if SMOKE else 128,
)  # fmt: skip
report = found.report(id="momentum.effective_lr", source="folk theorem",
                      statement="heavy-ball SGD at (eta, beta) has the loss of SGD at "
                      "eta / (1 - beta), within 10 %, at every point of the box")  # fmt: skip
print(report.table())
print("\n".join(report.notes))

# %% [markdown]
# ## The map, beside SGD's stability limit at the effective rate
#
# The dashed curve is eta = eta_crit (1 - beta). On it the effective learning rate reaches the
# critical rate of one-pass SGD, where the mean-square loss of the recursion stops converging
# (`theory.sgd_critical_lr`).

# %%
critical = float(theory.sgd_critical_lr(template.sgd.spectrum, batch=template.sgd.batch))
beta = np.linspace(0.0, 0.95, 100)
_, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
found.figure(ax=ax)
ax.plot(critical * (1 - beta), beta, "k--", lw=1, label="eta / (1 - beta) = critical lr")
ax.set(xlim=(0.001, 0.3))
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Read the map next to the curve:
# - A FAIL means the simulated heavy-ball loss is significantly more than 10 % away from the
#   effective-rate prediction.
# - The worst point printed above is the counterexample.
# - `found.samples` holds every point with its verdict, its ratio
#   (error + z SE) / tolerance and its seeds. `report.save("results/momentum_map")` writes
#   them, the figure and the verdict.
# - Change the box, the tolerance or the predictor and rerun both cells.
