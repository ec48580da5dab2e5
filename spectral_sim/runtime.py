"""The numeric policy of a run, set once by whoever owns the process: the `spectral-sim` command,
a notebook's first cell, a benchmark's `main`. The library itself never calls `jax.config`.

    from spectral_sim import runtime

    runtime.configure()                # float64 available, full-precision float32 matmuls,
                                       # the persistent compilation cache
    runtime.configure(x64=False, matmul_precision="default", compilation_cache=False)
"""

import os
import pathlib
import sys
from typing import Literal

import jax

__all__ = [
    "CACHE_MIN_COMPILE_SECONDS",
    "PRECISIONS",
    "Precision",
    "compilation_cache_dir",
    "configure",
]

Precision = Literal["default", "high", "highest"]
PRECISIONS: tuple[Precision, ...] = ("default", "high", "highest")
# Programs that took at least this long to compile are written to the persistent cache: all of
# them. JAX's default (1 s) skips most of an experiment's programs on CPU; with 0.2 s a rerun of
# `spectral-sim run learning_curves --quick` still spent 13 % of its time compiling, with 0 s
# 3 % (compression: 2 %), and writing them did not slow the first run measurably.
CACHE_MIN_COMPILE_SECONDS = 0.0


def compilation_cache_dir() -> pathlib.Path | None:
    """Where JAX's persistent compilation cache goes: $SPECTRAL_SIM_CACHE, else
    $XDG_CACHE_HOME/spectral_sim/jax (~/.cache by default); None if SPECTRAL_SIM_CACHE is
    empty, "0" or "off"."""
    chosen = os.environ.get("SPECTRAL_SIM_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "0", "off") else pathlib.Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "spectral_sim" / "jax"


def configure(
    *,
    x64: bool = True,
    matmul_precision: Precision = "highest",
    compilation_cache: bool = True,
) -> None:
    """Set the process's numeric policy.

    - `x64`: float64 available (the predictors' theory checks need it; sweeps still run in
      float32, the dtype their Params are built with).
    - `matmul_precision`: "highest" runs float32 matrix products at full float32 precision;
      GPUs (TF32) and TPUs (bfloat16 passes) round them by default ("default"), well above the
      Monte Carlo tolerances the experiments argue for.
    - `compilation_cache`: keep compiled programs on disk (`compilation_cache_dir()`), those
      that took at least CACHE_MIN_COMPILE_SECONDS to compile, so that a rerun does not compile
      them again; a cache directory the user chose already (JAX_COMPILATION_CACHE_DIR) is left
      alone, with its settings.
    """
    if matmul_precision not in PRECISIONS:
        raise ValueError(
            f"matmul_precision must be one of {', '.join(PRECISIONS)}; got {matmul_precision!r}"
        )
    jax.config.update("jax_enable_x64", bool(x64))
    jax.config.update("jax_default_matmul_precision", matmul_precision)
    if not compilation_cache:
        return
    if jax.config.jax_compilation_cache_dir:  # pyright: ignore[reportAttributeAccessIssue]
        return
    path = compilation_cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a read-only home directory only costs compile time
        print(f"spectral_sim: compilation cache off ({error})", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
