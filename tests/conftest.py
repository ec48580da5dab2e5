"""Numeric policy for the test suite (docs/guide/numerics.md): float64 on, rank promotion raises, an
8-device CPU platform so sharded code paths run, hypothesis without deadlines. The annotated
shapes and dtypes of spectral_sim are checked at every call (jaxtyping with beartype, installed
before anything imports spectral_sim by `--jaxtyping-packages` in pyproject.toml's addopts).

One persistent compilation cache per test run, shared by the pytest workers and by the
processes the tests start (the CLI, the benchmarks' smoke runs): $SPECTRAL_SIM_TEST_CACHE, which
`make test` points into .venv so that it also outlives the run, else a temporary directory that
the run removes. The first process to compile a program writes it; the others read it."""

import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
# Set here, before JAX is imported, so that the workers (started by the controller after this
# file is loaded) and every subprocess inherit the same directory.
if not os.environ.get("SPECTRAL_SIM_TEST_CACHE"):
    os.environ["SPECTRAL_SIM_TEST_CACHE"] = tempfile.mkdtemp(prefix="spectral_sim_tests_")
    _OWN_CACHE = True
else:
    _OWN_CACHE = False
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["SPECTRAL_SIM_TEST_CACHE"]
# runtime.CACHE_MIN_COMPILE_SECONDS, as the CLI sets it (not imported: JAX is not up yet)
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402
import jaxtyping  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# The repository root, where the benchmarks live (on the path already under `python -m pytest`).
sys.path.append(str(pathlib.Path(__file__).parent.parent))
from benchmarks.compiles import Compiles, counting  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("spectral_sim", deadline=None, max_examples=50)
settings.load_profile("spectral_sim")


def pytest_unconfigure(config):
    """The temporary cache goes with the run that made it (the controller's, not a worker's)."""
    if _OWN_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ["SPECTRAL_SIM_TEST_CACHE"], ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.slow_cases` on a parametrized check: its first case runs in `make test`, its
    other cases with the tests marked slow (`make test-all`). Runs before `-m` deselects."""
    seen = set()
    for item in items:
        if item.get_closest_marker("slow_cases") is None:
            continue
        family = (item.path, getattr(item, "originalname", item.name))
        if family in seen:
            item.add_marker(pytest.mark.slow)
        seen.add(family)


# Identity checks (one quantity computed two ways): relative tolerance by dtype.
RTOL = {"float64": 1e-10, "float32": 1e-5}


@contextlib.contextmanager
def unchecked():
    """The jaxtyping checks off inside the block: for tests of the error that a caller without
    them gets from an argument outside its annotation (the library's own ValueError naming the
    field), which the checks would refuse first with a TypeCheckError."""
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", before)


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def jax_policy():
    """For tests of code that sets the numeric policy globally (the CLI's main(), a script run
    in the test's process): the suite's float width and matmul precision put back after it."""
    x64 = jax.config.values["jax_enable_x64"]
    precision = jax.config.values["jax_default_matmul_precision"]
    yield
    jax.config.update("jax_enable_x64", x64)
    jax.config.update("jax_default_matmul_precision", precision)


def quick_benchmark(module: str) -> subprocess.CompletedProcess:
    """`python -m benchmarks.<module> --quick` in its own process, without this file's 8 virtual
    devices (the benchmark smoke tests)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--quick"],
        cwd=pathlib.Path(__file__).parent.parent, env=env, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip


# Compile budgets: each experiment, run at the scale of its own tests (the CONFIG of
# tests/test_<experiment>.py), compiles at most COMPILE_BUDGETS[name] XLA programs, counted from
# cold by `run_counted`. A count, not a time: it does not depend on the machine's load. A new
# eager jnp call on arrays of a new shape, a jit per value or a Python loop that traces once per
# config shows up as programs past the budget (`python -m benchmarks.compiles` names them, per
# function). Each budget is the count measured at this scale (8 virtual CPU devices, float64,
# JAX 0.10.2) plus 2 programs of headroom (4 from 30 programs on), so that a JAX upgrade moving a
# program or two passes but a compile per grid point, record, fit or shape fails. Most of each
# count is the sweeps' programs, one per compile group (a static field: a shape, a residual
# form), which cannot be shared; the rest is one program per jitted analysis function, and two
# for the PRNG key the sweep engine draws to check its generator.
COMPILE_BUDGETS = {
    "learning_curves": 11,  # measured 9: 2 sweep programs, lr, divergence x2, GF window, curves
    "compression": 13,  # measured 11: 3 sweep programs, pruning, regimes, evolution fits, zeta
    "latent_number": 11,  # measured 9: 1 sweep program (N traced), GF/GD per rho x2, risks
    "attention_clusters": 14,  # measured 12: 8 sweep programs, the fixed P, the collapse bound
    "scaling_laws": 31,  # measured 29: 22 sweep programs (mode counts and width buckets static)
    # measured 16: 6 sweep programs (per kernel its curve and its data resamples'; 2 networks),
    # per kernel a bootstrap and a risk, the profile along s, the inversion
    "real_spectra": 18,
    "spectral_edge": 7,  # measured 5: 2 sweep programs, the grokking read-out
    # measured 23: 8 sweep programs, the closed form per regime x4, figure bands, SGD predictor
    "self_improvement": 25,
    # measured 35: per search (2 P, pruning, softmax; SGD's two boxes share one) its round
    # program, the deterministic ones' ascent, per family the predictor's vmap; P and its
    # spectrum, the stationary check, the critical lr, E q, a few eager reads of the samples
    "validity_maps": 39,
    # measured 14: one sweep program per model (linear, random features; the methods are rows
    # of one table), the exact predictor per model at the simulations' size and at the fits'
    # (float64), four frontier buckets, the folk rule's curves and SGD's critical lr, the PRNG
    # key's
    "momentum_scaling": 16,
}
COMPILES: dict[str, Compiles] = {}


def run_counted(module, config):
    """`module.run(config)` (no progress bars) from cold, its XLA compilations counted into
    COMPILES[<experiment>]: JAX's in-memory caches are cleared first, so what earlier tests in
    this process compiled is compiled again; a program read from the persistent cache counts
    as one. The experiment test files' fixture, checked by `assert_within_budget`."""
    from spectral_sim import sweep

    jax.clear_caches()
    with counting() as compiles:
        report = module.run(config, sweep.Options(progress=False, compile="fast"))
    COMPILES[report.experiment] = compiles
    return report


def assert_within_budget(name: str) -> None:
    """The experiment's fixture (`run_counted`) compiled at most COMPILE_BUDGETS[name] programs."""
    compiles = COMPILES[name]
    assert compiles.count > 0  # the counter hears JAX's compile events
    most = ", ".join(f"{f} x{n}" for f, n in compiles.names.most_common(5))
    assert compiles.count <= COMPILE_BUDGETS[name], (
        f"{name} compiled {compiles.count} XLA programs at test scale, budget "
        f"{COMPILE_BUDGETS[name]} (most: {most})"
    )
