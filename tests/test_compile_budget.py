"""Compile budgets: each experiment, run at the scale of its own tests (the CONFIG of
tests/test_<experiment>.py), compiles at most BUDGETS[name] XLA programs, counted from cold
(in-memory caches cleared) by `benchmarks.compiles.counting`. A count, not a time: it does not
depend on the machine's load. A new eager jnp call on arrays of a new shape, a jit per value or a
Python loop that traces once per config shows up here as programs past the budget
(`python -m benchmarks.compiles` names them, per function)."""

import json
import math
import pathlib
import sys

import jax
import numpy as np
import pytest
import test_attention_clusters
import test_compression
import test_latent_number
import test_learning_curves
import test_real_spectra
import test_scaling_laws
import test_self_improvement
import test_spectral_edge
from conftest import quick_benchmark

from spectral_sim import sweep
from spectral_sim.experiments import (
    attention_clusters,
    compression,
    latent_number,
    learning_curves,
    real_spectra,
    scaling_laws,
    self_improvement,
    spectral_edge,
)

# The repository root, where the benchmarks live (on the path already under `python -m pytest`).
sys.path.append(str(pathlib.Path(__file__).parent.parent))
from benchmarks.compiles import MAX_COMPILES, QUICK_SUBSET, counting  # noqa: E402

# Budgets: the count measured at this scale (8 virtual CPU devices, float64, JAX 0.10.2, the
# in-memory caches cleared first) plus 2 programs of headroom (4 from 30 programs on), so that
# a JAX upgrade moving a program or two passes but a compile per grid point, record, fit or
# shape fails. Most of each count is the sweeps' programs, one per compile group (a static
# field: a shape, a residual form), which cannot be shared; the rest is one program per jitted
# analysis function, and two for the PRNG key the sweep engine draws to check its generator.
BUDGETS = {
    "learning_curves": 11,  # measured 9: 2 sweep programs, lr, divergence x2, GF window, curves
    "compression": 13,  # measured 11: 3 sweep programs, pruning, regimes, evolution fits, zeta
    "latent_number": 16,  # measured 14: 6 sweep programs (one per N), GF/GD per rho x2, risks
    "attention_clusters": 14,  # measured 12: 8 sweep programs, the fixed P, the collapse bound
    "scaling_laws": 40,  # measured 36: 29 sweep programs (mode counts and widths are static)
    "real_spectra": 15,  # measured 13: 4 sweep programs, per kernel a bootstrap and a risk
    "spectral_edge": 7,  # measured 5: 2 sweep programs, the grokking read-out
    # measured 76: 8 sweep programs and its closed forms, SGD predictor and figure bands
    # evaluated eagerly (an operation per program); lower this with them
    "self_improvement": 80,
}
EXPERIMENTS = {
    "learning_curves": (learning_curves, test_learning_curves.CONFIG),
    "compression": (compression, test_compression.CONFIG),
    "latent_number": (latent_number, test_latent_number.CONFIG),
    "attention_clusters": (attention_clusters, test_attention_clusters.CONFIG),
    "scaling_laws": (scaling_laws, test_scaling_laws.CONFIG),
    "real_spectra": (real_spectra, test_real_spectra.CONFIG),
    "spectral_edge": (spectral_edge, test_spectral_edge.CONFIG),
    "self_improvement": (self_improvement, test_self_improvement.CONFIG),
}
# The experiments whose test-scale run takes over 30 s on 2 cores (53 s).
SLOW = {"scaling_laws"}


def _case(name: str):
    marks = [pytest.mark.slow] if name in SLOW else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_case(name) for name in EXPERIMENTS])
def test_experiment_compiles_within_its_budget(name):
    module, config = EXPERIMENTS[name]
    jax.clear_caches()  # cold: what earlier tests compiled in this process is compiled again
    with counting() as compiles:
        module.run(config, sweep.Options(progress=False))
    assert compiles.count > 0  # the counter hears JAX's compile events
    most = ", ".join(f"{f} x{n}" for f, n in compiles.names.most_common(5))
    assert compiles.count <= BUDGETS[name], (
        f"{name} compiled {compiles.count} XLA programs at test scale, budget {BUDGETS[name]} "
        f"(most: {most})"
    )


def test_counter_counts_each_new_program_once():
    double = jax.jit(lambda x: 2 * x)
    jax.clear_caches()
    with counting() as compiles:
        for n in (3, 4, 5, 5, 4):  # three shapes: three programs, two cache hits
            double(np.ones(n))
    assert compiles.count == 3 and compiles.names == {"jit(<lambda>)": 3}
    assert compiles.seconds > 0
    double(np.ones(6))  # after the block: not counted
    assert compiles.count == 3


@pytest.mark.slow
def test_quick_compile_benchmark_reports_finite_ratios():
    done = quick_benchmark("compiles")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "compiles"
    rows = result["experiments"]
    assert [row["experiment"] for row in rows] == list(QUICK_SUBSET)
    for row in rows:
        assert 0 < row["compile_share"] < 1 and math.isfinite(row["compile_share"])
        assert row["compiles_per_budget"] == row["compiles"] / MAX_COMPILES > 0
    assert "quick run: results file not updated" in done.stderr
