"""Sweeps: a grid of named axes run as one compiled `jit(vmap(vmap(...)))` per compile group,
chunked under a memory budget, sharded over the local devices, resumable, returned as xarray.

A point of the grid is a dict of axis values; `make(**point)` builds its Params and
`simulate(params, key)` returns a pytree of arrays (e.g. an Obs with a records axis). Axes that
change the Params' static fields (shapes) split the grid into compile groups; the others are
traced and vmapped. The key of (point, seed) is fold_in(fold_in(key(seed0), i), seed) with i
the point's index in the whole grid (or fold_in(key(seed0), seed) with common random numbers),
so results do not depend on chunking, devices or processes.

The modules, in the order a sweep uses them: `grid` (the `Grid` and `make_from`), `planning`
(compile groups, chunk size and devices: `plan`, `Plan`), `execute` (`run`, `Options`) and
`store` (chunk files, manifest and fingerprint of a resumable sweep; `save` / `load` of its
dataset). Every name below is importable from `spectral_sim.sweep` itself.
"""

from spectral_sim.sweep import execute, grid, planning, store
from spectral_sim.sweep.execute import (
    COMPILE,
    FAST_CPU,
    Compile,
    Options,
    check_outputs,
    leaf_names,
    run,
)
from spectral_sim.sweep.grid import Grid, make_from
from spectral_sim.sweep.planning import (
    BATCH_DEPENDENT_PRNGS,
    DEFAULT_BUDGET,
    LAPACK_POOL_FIXED,
    MIN_PER_DEVICE,
    Group,
    Plan,
    check_axes,
    plan,
)
from spectral_sim.sweep.store import MANIFEST, load, save

__all__ = [
    "BATCH_DEPENDENT_PRNGS", "COMPILE", "DEFAULT_BUDGET", "FAST_CPU", "LAPACK_POOL_FIXED",
    "MANIFEST", "MIN_PER_DEVICE", "Compile", "Grid", "Group", "Options", "Plan", "check_axes",
    "check_outputs", "execute", "grid", "leaf_names", "load", "make_from", "plan", "planning",
    "run", "save", "store",
]  # fmt: skip
