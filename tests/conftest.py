"""Numeric policy for the test suite (docs/guide/numerics.md): float64 on, rank promotion raises, an
8-device CPU platform so sharded code paths run, hypothesis without deadlines. The annotated
shapes and dtypes of spectral_sim are checked at every call (jaxtyping with beartype, installed
before anything imports spectral_sim by `--jaxtyping-packages` in pyproject.toml's addopts)."""

import contextlib
import os
import pathlib
import subprocess
import sys

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import jax  # noqa: E402
import jaxtyping  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("spectral_sim", deadline=None, max_examples=50)
settings.load_profile("spectral_sim")

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


def quick_benchmark(module: str) -> subprocess.CompletedProcess:
    """`python -m benchmarks.<module> --quick` in its own process, without this file's 8 virtual
    devices (the benchmark smoke tests)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--quick"],
        cwd=pathlib.Path(__file__).parent.parent, env=env, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip
