"""Running a sweep: `run` compiles one `jit(vmap(vmap(...)))` per compile group, calls it chunk
by chunk on the plan's devices (resuming from stored chunks with `out`), and assembles the
results into an xarray Dataset with provenance attrs; `Options` carries how an experiment runs
its sweeps (devices, memory budget, where chunks go)."""

import dataclasses
import functools
import json
import os
import pathlib
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import NamedSharding, PartitionSpec

from spectral_sim.checks import all_of, check_one_of
from spectral_sim.provenance import provenance
from spectral_sim.sweep import store
from spectral_sim.sweep.grid import Grid
from spectral_sim.sweep.planning import DEFAULT_BUDGET, Group, Plan, fit_budget, plan, resumed

__all__ = ["COMPILE", "FAST_CPU", "Compile", "Options", "check_outputs", "leaf_names", "run"]

Compile = Literal["optimized", "fast"]
COMPILE: tuple[Compile, ...] = ("optimized", "fast")
# compile="fast" on CPU: XLA's loop emitters (its code generator before the fusion emitters) and
# LLVM at -O1 instead of -O2. Measured on 2 cores (JAX 0.10.2, cold cache), the --quick runs
# compiled 1.5 to 2.9 times faster (attention_clusters 11.8 s -> 6.7 s of compiling,
# scaling_laws 28.5 -> 9.8, compression 3.5 -> 2.0) and took less time in all, except
# spectral_edge's minute of training (12 % slower; it keeps the defaults: QUICK_COMPILE); the
# long, bandwidth-bound loops of the benchmarks ran 9 to 75 % slower (W1 +9 %, W2 +24 %, W2 in
# cache-sized chunks +75 %, W3 +13 to +15 %). So: fast for short runs (--quick, the tests),
# optimized (XLA's defaults) for the rest. LLVM at -O0 compiled faster still but ran
# learning_curves --quick 2.5 times slower.
FAST_CPU = (("xla_cpu_use_fusion_emitters", False), ("xla_backend_optimization_level", 1))


@dataclasses.dataclass(frozen=True)
class Options:
    """How an experiment executes its sweeps, never what they compute (the CLI's --devices,
    --chunk-budget, --out, --resume/--overwrite). With `out`, sweep NAME keeps its chunk files
    in out/NAME and resumes from them."""

    devices: int | None = None
    chunk_budget: float | None = None
    out: pathlib.Path | None = None
    overwrite: bool = False
    progress: bool = True
    compile: Compile = "optimized"

    def __post_init__(self):
        with all_of() as check:
            check.one_of("compile", self.compile, COMPILE)
            if self.devices is not None:
                check.count("devices", self.devices)
            if self.chunk_budget is not None:
                check.range("chunk_budget (bytes)", self.chunk_budget, gt=0)

    def run(self, name: str, simulate: Callable, make: Callable, grid: Grid, **kwargs):
        """`run(simulate, make, grid, **kwargs)` with these options; chunk files in out/name."""
        out = None if self.out is None else pathlib.Path(self.out) / name
        return run(
            simulate, make, grid, devices=self.devices, chunk_budget=self.chunk_budget, out=out,
            overwrite=self.overwrite, progress=self.progress, compile=self.compile, **kwargs,
        )  # fmt: skip


@functools.cache
def _fast_cpu() -> tuple:
    """FAST_CPU where this XLA knows those options (a trivial program compiled with them), else
    () with a warning: compiler options come and go between XLA versions."""
    try:
        cpu = jax.local_devices(backend="cpu")[0]
        probe = jax.jit(lambda x: x + 1, compiler_options=dict(FAST_CPU))
        probe.lower(jax.device_put(np.float32(0), cpu)).compile()
    # XLA's error for an option it does not know; a JAX whose jit takes no compiler_options
    except (RuntimeError, TypeError) as error:
        warnings.warn(f"compile='fast' is not available with this XLA ({error}); the sweeps "
                      "compile with XLA's defaults", RuntimeWarning, stacklevel=3)  # fmt: skip
        return ()
    return FAST_CPU


def _compiler_options(compile: Compile, devices: Sequence) -> tuple:
    """The XLA options of a chunk program: FAST_CPU for compile="fast" on CPU devices, else none
    (XLA's defaults; accelerators keep theirs)."""
    if compile == "fast" and all(d.platform == "cpu" for d in devices):
        return _fast_cpu()
    return ()


@functools.lru_cache(maxsize=64)
def _chunk_program(make, simulate, static, traced_axes, n_seeds, common, mesh, options=()):
    """jit(vmap over points of vmap over seeds), sharded along the points axis; `static` is a
    tuple of (axis, value) pairs, `options` of (XLA option, value) pairs. Cached, so a repeated
    sweep reuses its compiled programs."""

    def one_point(values, index, key):
        params = make(**dict(static), **values)
        base = key if common else jax.random.fold_in(key, index)
        seeds = jnp.arange(n_seeds)
        return jax.vmap(lambda s: simulate(params, jax.random.fold_in(base, s)))(seeds)

    sharded = NamedSharding(mesh, PartitionSpec("grid"))
    replicated = NamedSharding(mesh, PartitionSpec())
    program = jax.vmap(one_point, in_axes=({k: 0 for k in traced_axes}, 0, None))
    in_shardings = (sharded, sharded, replicated)
    if not options:  # XLA's defaults, without the argument (a JAX before compiler_options)
        return jax.jit(program, in_shardings=in_shardings, out_shardings=sharded)
    return jax.jit(program, in_shardings=in_shardings, out_shardings=sharded,
                   compiler_options=dict(options))  # fmt: skip


def _inputs(the_plan: Plan, index: np.ndarray, key) -> tuple:
    """A chunk's axis values, global point indices (padded to the chunk by repeating them;
    the repeats are dropped after the call) and the key, placed on the plan's mesh: under
    jax.distributed, jit refuses host arrays with a sharding."""
    padded = np.resize(index, the_plan.chunk)
    values = {a: np.asarray([the_plan.points[i][a] for i in padded]) for a in the_plan.traced_axes}
    mesh = the_plan.mesh
    grid_sharded = jax.device_put((values, padded), NamedSharding(mesh, PartitionSpec("grid")))
    return (*grid_sharded, jax.device_put(key, NamedSharding(mesh, PartitionSpec())))


def _program(make, simulate, the_plan: Plan, group: Group, common: bool, compile: Compile):
    """The group's jitted chunk program for the plan's devices."""
    return _chunk_program(
        make, simulate, tuple(group.static.items()), the_plan.traced_axes, the_plan.grid.n_seeds,
        common, the_plan.mesh, _compiler_options(compile, the_plan.devices),
    )  # fmt: skip


def _device_bytes(program, inputs) -> float:
    """Peak memory of one device running the compiled chunk: arguments, outputs, temporaries.
    (Compiling ahead of time fills JAX's compilation cache: the chunk calls that follow reuse
    the executable, 0.16 s for a program that took 2.9 s to compile.)"""
    stats = program.lower(*inputs).compile().memory_analysis()
    if stats is None:  # a backend without memory analysis: trust the estimate
        return 0.0
    used = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    return float(used - stats.alias_size_in_bytes)


def _barrier(name: str) -> None:
    """Wait for every process of a multi-process (jax.distributed) sweep."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"spectral_sim.sweep.{name}")


def run(
    simulate: Callable,
    make: Callable,
    grid: Grid,
    *,
    seed: int = 0,
    common_random_numbers: bool = True,
    chunk_budget: float | None = None,
    chunk_size: int | None = None,
    devices: int | Sequence | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Sequence] | None = None,
    config: Mapping | None = None,
    progress: bool = True,
    compile: Compile = "optimized",
) -> xr.Dataset:
    """Run `simulate(make(**point), key)` for every grid point and seed; an xarray Dataset with
    dims (grid dims..., seed, output dims...) and provenance attrs.

    With `out`, each finished chunk is written atomically with a manifest; rerunning the same
    sweep computes only the missing chunks (a different config or code version is refused
    unless `overwrite`). `dims` names the trailing axes of each output leaf (e.g.
    {"loss": ("step",)}) and `coords` gives them coordinates. Non-finite outputs are flagged per
    point and seed in the `nonfinite` variable, never fatal.

    `compile="fast"` compiles for less time and runs for more (on CPU: FAST_CPU), for short
    sweeps; the default, "optimized", is XLA's own trade. The values agree to rounding.
    """
    check_one_of("compile", compile, COMPILE)
    the_plan = plan(
        make, grid, simulate=simulate, chunk_budget=chunk_budget, chunk_size=chunk_size,
        devices=devices,
    )  # fmt: skip
    if dims or coords:
        check_outputs(simulate, make, grid, dims or {}, coords or {})
    process, n_processes = jax.process_index(), jax.process_count()
    if n_processes > 1 and out is None:
        raise ValueError("a multi-process sweep needs `out` (a directory every process sees)")
    fingerprint = store.fingerprint(the_plan, seed, common_random_numbers, config, simulate, make)
    path = store.writable(out)
    key = jax.random.key(seed)

    def program(the_plan: Plan, group: Group):
        return _program(make, simulate, the_plan, group, common_random_numbers, compile)

    def chunk_bytes(the_plan: Plan, group: Group) -> float:
        inputs = _inputs(the_plan, group.indices[: the_plan.chunk], key)
        return _device_bytes(program(the_plan, group), inputs)

    if process == 0:  # decides the chunking (resumed, or fitted to the budget) for everyone
        stored = None if path is None else store.stored_manifest(path, fingerprint, overwrite)
        if stored is not None:  # the memory measured when the chunk size was chosen
            the_plan = resumed(the_plan, stored)
        elif chunk_size is None:
            budget = DEFAULT_BUDGET if chunk_budget is None else chunk_budget
            the_plan = fit_budget(chunk_bytes, the_plan, budget)
        if path is not None:
            store.write_manifest(path, fingerprint, the_plan)
    _barrier("prepared")
    if process != 0 and path is not None:  # the same plan and attrs as process 0's
        manifest = store.read_manifest(path)
        if manifest["fingerprint"] != fingerprint:
            raise ValueError(f"process {process} runs another sweep than process 0 in {path}")
        the_plan = resumed(the_plan, manifest)
    if progress and process == 0:
        print(f"sweep: {the_plan.summary()}", file=sys.stderr, flush=True)

    results: dict[int, list[np.ndarray]] = {}  # chunk number -> leaves (points first)
    treedef = None
    bar = _progress_bar(the_plan, progress and process == 0)  # one bar, not one per process
    number = 0
    for group in the_plan.groups:
        for start in range(0, group.indices.size, the_plan.chunk):
            index = group.indices[start : start + the_plan.chunk]
            this, number = number, number + 1
            if this % n_processes != process:
                continue
            file = None if path is None else store.chunk_file(path, this)
            if file is not None and file.exists():
                results[this] = store.load_chunk(file)
            else:
                output = program(the_plan, group)(*_inputs(the_plan, index, key))
                leaves, treedef = jax.tree.flatten(output)
                results[this] = [np.asarray(leaf)[: index.size] for leaf in leaves]
                if file is not None:
                    store.save_chunk(file, results[this])
            bar.set_postfix_str(f"chunk {this + 1}/{the_plan.n_chunks}", refresh=False)
            bar.update(index.size)
    bar.close()
    if treedef is None:  # every chunk came from disk (or another process): get the structure
        shapes = jax.eval_shape(simulate, make(**the_plan.points[0]), key)
        treedef = jax.tree.structure(shapes)
    if n_processes > 1:  # every process assembles the whole grid from all chunk files
        _barrier("computed")
        assert path is not None
        results = {i: store.load_chunk(store.chunk_file(path, i)) for i in range(the_plan.n_chunks)}
    ordered = [results[i] for i in range(the_plan.n_chunks)]
    order = np.concatenate([g.indices for g in the_plan.groups])
    attrs = provenance(seed) | dict(
        grid=json.dumps(grid.describe(), default=str), fingerprint=fingerprint,
        common_random_numbers=int(common_random_numbers), chunk=the_plan.chunk,
        bytes_per_device=the_plan.bytes_per_device or -1.0,
        compile_groups=len(the_plan.groups), config=json.dumps(config or {}, default=str),
    )  # fmt: skip
    return _assemble(grid, treedef, ordered, order, dims or {}, coords or {}, attrs)


def _progress_bar(the_plan: Plan, enabled: bool):
    from tqdm import tqdm

    total = sum(g.indices.size for g in the_plan.groups)
    return tqdm(total=total, unit="pt", disable=not enabled or None, desc="sweep", leave=False)


def check_outputs(
    simulate: Callable, make: Callable, grid: Grid, dims: Mapping, coords: Mapping
) -> None:
    """ValueError, before anything compiles, where `dims` or `coords` do not fit the outputs of
    the grid's first point (by jax.eval_shape, which traces but does not compile): a dims entry
    must name every trailing axis of its output, a dim must have one size in every output, and
    its coords one value per index."""
    shapes = jax.eval_shape(simulate, make(**grid.points()[0]), jax.random.key(0))
    sizes: dict[str, tuple[int, str]] = {}  # dim -> (size, the output it was seen in)
    leaves = jax.tree.leaves(shapes)
    for name, leaf in zip(leaf_names(jax.tree.structure(shapes)), leaves, strict=True):
        if name not in dims:
            continue
        names = tuple(dims[name])
        if len(names) != len(leaf.shape):
            raise ValueError(f"dims[{name!r}] = {names} must name the {len(leaf.shape)} axes of "
                             f"the output {name!r} (shape {leaf.shape})")  # fmt: skip
        for dim, size in zip(names, leaf.shape, strict=True):
            seen, where = sizes.setdefault(dim, (size, name))
            if seen != size:
                raise ValueError(f"dim {dim!r} has size {size} in the output {name!r} but "
                                 f"{seen} in {where!r}")  # fmt: skip
    for dim, values in coords.items():
        if dim in sizes and len(values) != sizes[dim][0]:
            raise ValueError(f"coords[{dim!r}] has {len(values)} values; the dim has size "
                             f"{sizes[dim][0]} in the output {sizes[dim][1]!r}")  # fmt: skip


def leaf_names(treedef) -> list[str]:
    """Names for the output leaves of a tree structure (the variables of `run`'s Dataset):
    NamedTuple fields / dict keys, joined with '.'; "value" for a bare array."""
    dummy = jax.tree.unflatten(treedef, list(range(treedef.num_leaves)))
    named = jax.tree_util.tree_flatten_with_path(dummy)[0]
    names = []
    for path, _ in named:
        parts = [str(getattr(p, "name", getattr(p, "key", getattr(p, "idx", p)))) for p in path]
        names.append(".".join(parts) or "value")
    return names


def _assemble(grid, treedef, chunks, order, dims, coords, attrs) -> xr.Dataset:
    grid_dims = grid.dims
    shape = tuple(grid_dims.values())
    names = leaf_names(treedef)
    variables = {}
    for j, name in enumerate(names):
        stacked = np.concatenate([chunk[j] for chunk in chunks])  # points in `order`
        full = np.empty_like(stacked)
        full[order] = stacked
        trailing = full.shape[2:]
        leaf_dims = tuple(dims.get(name, [f"{name}_dim{i}" for i in range(len(trailing))]))
        if len(leaf_dims) != len(trailing):
            raise ValueError(f"dims[{name!r}] = {leaf_dims} must name {len(trailing)} axes")
        variables[name] = (
            (*grid_dims, "seed", *leaf_dims),
            full.reshape(shape + (grid.n_seeds,) + trailing),
        )
    data = xr.Dataset(variables)
    flags = [~np.isfinite(v[1]) for v in variables.values() if v[1].dtype.kind == "f"]
    if flags:
        nonfinite = np.zeros(shape + (grid.n_seeds,), bool)
        for flag in flags:
            nonfinite |= flag.reshape(flag.shape[: len(shape) + 1] + (-1,)).any(axis=-1)
        data["nonfinite"] = ((*grid_dims, "seed"), nonfinite)
    axis_coords: dict[str, Any] = {k: v for k, v in grid.product.items()}
    axis_coords.update({k: ("zip", v) for k, v in grid.zipped.items()})
    axis_coords["seed"] = np.arange(grid.n_seeds)
    axis_coords.update({k: v for k, v in coords.items()})
    data = data.assign_coords(axis_coords)
    data.attrs = {k: _attr(v) for k, v in attrs.items()}
    return data


def _attr(value):
    """A netCDF-storable attribute: lists and dicts as JSON, booleans as 0/1."""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return int(value) if isinstance(value, bool) else value
