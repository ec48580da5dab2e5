"""Sweeps: a grid of named axes run as one compiled `jit(vmap(vmap(...)))` per compile group,
chunked under a memory budget, sharded over the local devices, resumable, returned as xarray.

A point of the grid is a dict of axis values; `make(**point)` builds its Params and
`simulate(params, key)` returns a pytree of arrays (e.g. an Obs with a records axis). Axes that
change the Params' static fields (shapes) split the grid into compile groups; the others are
traced and vmapped. The key of (point, seed) is fold_in(fold_in(key(seed0), i), seed) with i
the point's index in the whole grid (or fold_in(key(seed0), seed) with common random numbers),
so results do not depend on chunking, devices or processes.
"""

import dataclasses
import functools
import hashlib
import importlib.metadata
import inspect
import itertools
import json
import math
import os
import pathlib
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spectral_sim.report import provenance

__all__ = ["Grid", "Options", "Plan", "load", "make_from", "plan", "run", "save"]

DEFAULT_BUDGET = 2 * 2**30  # bytes of memory a chunk may use on each device
MANIFEST = "manifest.json"
MIN_PER_DEVICE = 2
# jaxlib's CPU LAPACK kernels (eigh, Cholesky, SVD, QR, ...) before this version split a batch
# over the intra-op thread pool and block until it is done; several CPU devices running such
# kernels at once exhaust the pool and hang (reproduced with 2 to 8 host devices on jaxlib
# 0.10.2; the parallel path is compiled out of open-source jaxlib by 0.11.2).
LAPACK_POOL_FIXED = (0, 11, 2)


@dataclasses.dataclass(frozen=True)
class Grid:
    """Named axes: `product` axes combine as an outer product (one dim each), `zipped` axes vary
    together along one dim named `zip`; `n_seeds` seeds per point (dim `seed`)."""

    product: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)
    zipped: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)
    n_seeds: int = 1

    def __post_init__(self):
        object.__setattr__(self, "product", {k: list(v) for k, v in self.product.items()})
        object.__setattr__(self, "zipped", {k: list(v) for k, v in self.zipped.items()})
        for name, values in {**self.product, **self.zipped}.items():
            if len(values) == 0:
                raise ValueError(f"sweep axis {name!r} is empty; give it at least one value")
        both = set(self.product) & set(self.zipped)
        if both:
            raise ValueError(f"axes {sorted(both)} are both product and zipped axes")
        lengths = {len(v) for v in self.zipped.values()}
        if len(lengths) > 1:
            raise ValueError(f"zipped axes must have equal lengths; got {self.zipped_lengths()}")
        if not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise ValueError(f"n_seeds must be an integer >= 1; got {self.n_seeds!r}")

    def zipped_lengths(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.zipped.items()}

    @property
    def names(self) -> list[str]:
        return [*self.product, *self.zipped]

    @property
    def dims(self) -> dict[str, int]:
        """Grid dims and sizes, outermost first: the product axes, then `zip` if any."""
        dims = {k: len(v) for k, v in self.product.items()}
        if self.zipped:
            dims["zip"] = len(next(iter(self.zipped.values())))
        return dims

    def points(self) -> list[dict[str, Any]]:
        """Every point, in grid order (row-major over dims)."""
        rows = list(zip(*self.zipped.values(), strict=True)) if self.zipped else [()]
        out = []
        for combo in itertools.product(*self.product.values(), rows):
            point = dict(zip(self.product, combo[:-1], strict=True))
            point.update(zip(self.zipped, combo[-1], strict=True))
            out.append(point)
        return out

    def describe(self) -> dict:
        return dict(product=self.product, zipped=self.zipped, n_seeds=self.n_seeds)


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

    def __post_init__(self):
        if self.devices is not None and (not isinstance(self.devices, int) or self.devices < 1):
            raise ValueError(f"devices must be an integer >= 1; got {self.devices!r}")
        if self.chunk_budget is not None and not self.chunk_budget > 0:
            raise ValueError(f"chunk_budget must be > 0 bytes; got {self.chunk_budget!r}")

    def run(self, name: str, simulate: Callable, make: Callable, grid: "Grid", **kwargs):
        """`run(simulate, make, grid, **kwargs)` with these options; chunk files in out/name."""
        out = None if self.out is None else pathlib.Path(self.out) / name
        return run(
            simulate, make, grid, devices=self.devices, chunk_budget=self.chunk_budget, out=out,
            overwrite=self.overwrite, progress=self.progress, **kwargs,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Group:
    """Grid points sharing the static axis values `static` (one compiled program)."""

    static: dict[str, Any]
    indices: np.ndarray  # global point indices, in grid order


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a sweep will do: compile groups, chunk size and count, devices and memory."""

    grid: Grid
    static_axes: tuple[str, ...]
    groups: tuple[Group, ...]
    chunk: int  # points per chunk (a multiple of the device count, >= 2 per device)
    devices: tuple[Any, ...]
    bytes_per_point: float  # estimated device memory per point (and its seeds)
    bytes_per_device: float | None = None  # measured from the compiled programs, if compiled

    @property
    def n_chunks(self) -> int:
        return sum(math.ceil(g.indices.size / self.chunk) for g in self.groups)

    @property
    def traced_axes(self) -> tuple[str, ...]:
        return tuple(a for a in self.grid.names if a not in self.static_axes)

    @functools.cached_property
    def points(self) -> list[dict[str, Any]]:
        return self.grid.points()

    @property
    def mesh(self) -> Mesh:
        return Mesh(np.asarray(self.devices), ("grid",))

    def with_chunk(self, chunk: int, devices: tuple | None = None) -> "Plan":
        return dataclasses.replace(self, chunk=chunk, devices=devices or self.devices)

    def summary(self) -> str:
        points = sum(g.indices.size for g in self.groups)
        n_dev = len(self.devices)
        if self.bytes_per_device is None:
            memory = f"~{self.bytes_per_point * self.chunk / n_dev / 2**20:.1f} MiB (estimated)"
        else:
            memory = f"{self.bytes_per_device / 2**20:.1f} MiB (compiled)"
        return (
            f"{points} points x {self.grid.n_seeds} seeds in {len(self.groups)} compile "
            f"group(s), {self.n_chunks} chunk(s) of {self.chunk} points on {n_dev} device(s), "
            f"{memory} per device"
        )


# --- planning --------------------------------------------------------------------------------


def _field_paths(params, prefix: str = "") -> list[str]:
    """Dotted paths of a dataclass's fields and of its nested dataclasses' fields."""
    paths = []
    for field in dataclasses.fields(params):
        path = f"{prefix}{field.name}"
        paths.append(path)
        value = getattr(params, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            paths += _field_paths(value, f"{path}.")
    return paths


def _replace(params, path: list[str], value):
    head, *rest = path
    new = _replace(getattr(params, head), rest, value) if rest else value
    return dataclasses.replace(params, **{head: new})


def make_from(template) -> Callable:
    """A `make` for `run` whose axes are the fields of a Params `template`, nested ones dotted
    ("spectrum.s", "lr", "batch"): each point is the template with those fields replaced (and
    validated by the Params). An axis naming no field is refused before anything compiles."""
    fields = _field_paths(template)

    def make(**values):
        params = template
        for name, value in values.items():
            params = _replace(params, name.split("."), value)
        return params

    make.fields = fields  # pyright: ignore[reportFunctionMemberAccess]
    make.template = template  # pyright: ignore[reportFunctionMemberAccess]
    make.__qualname__ = f"make_from({type(template).__qualname__})"
    return make


def _check_axes(make: Callable, grid: Grid) -> None:
    fields = getattr(make, "fields", None)
    if fields is not None:  # from make_from
        unknown = [name for name in grid.names if name not in fields]
        if unknown:
            raise ValueError(
                f"sweep axes {unknown} do not match a field of the Params; valid: {fields}"
            )
        return
    try:
        parameters = inspect.signature(make).parameters
    except (TypeError, ValueError):  # a builtin such as dict: takes any keyword
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [name for name in grid.names if name not in parameters and not takes_any]
    if unknown:
        raise ValueError(
            f"sweep axes {unknown} are not arguments of {getattr(make, '__name__', 'make')}; "
            f"valid names: {[n for n in parameters]}"
        )


def _static_axes(make: Callable, grid: Grid) -> tuple[str, ...]:
    """The axes whose values change the Params' tree structure (static fields): vary one axis at
    a time from the first point and compare tree definitions. A one-value axis is static too:
    there is nothing to vmap over, and it may set a shape."""
    first = grid.points()[0]
    reference = jax.tree.structure(make(**first))
    static = []
    for name, values in {**grid.product, **grid.zipped}.items():
        if len(values) == 1:
            static.append(name)
        for value in values[1:]:
            if jax.tree.structure(make(**{**first, name: value})) != reference:
                static.append(name)
                break
    return tuple(static)


def _groups(grid: Grid, static_axes: Sequence[str]) -> tuple[Group, ...]:
    keyed: dict[tuple, list[int]] = {}
    for index, point in enumerate(grid.points()):
        keyed.setdefault(tuple(point[a] for a in static_axes), []).append(index)
    return tuple(
        Group(dict(zip(static_axes, key, strict=True)), np.asarray(idx))
        for key, idx in keyed.items()
    )


# PRNGs whose vmapped draws take a batch's bits from its first key: results would depend on
# how the grid is chunked (checked with jax.random.normal under vmap, JAX 0.10.2).
BATCH_DEPENDENT_PRNGS = ("rbg", "unsafe_rbg")


def _prng_impl() -> str:
    return str(jax.random.key_impl(jax.random.key(0)))


def plan(
    make: Callable,
    grid: Grid,
    *,
    simulate: Callable | None = None,
    chunk_budget: float | None = None,
    chunk_size: int | None = None,
    devices: int | Sequence | None = None,
) -> Plan:
    """Validate a sweep and work out its compile groups and chunk size, before any compile.

    The chunk size is `chunk_size` if given, else the largest multiple of the device count
    whose estimated memory per device (eval_shape of one point's outputs and Params, times the
    seeds, with a 4x allowance for scan carries and temporaries) fits `chunk_budget` bytes;
    `run` then checks the compiled programs' own memory analysis and shrinks the chunk if needed.
    """
    _check_axes(make, grid)
    if _prng_impl() in BATCH_DEPENDENT_PRNGS:
        raise ValueError(
            f"jax_default_prng_impl = {_prng_impl()!r} draws a vmapped batch's bits from its "
            "first key, so sweep results would depend on the chunking; use threefry2x32 (the "
            "default) or philox4x32"
        )
    if chunk_budget is not None and not chunk_budget > 0:
        raise ValueError(f"chunk_budget must be > 0 bytes; got {chunk_budget!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}")
    local = jax.local_devices()
    if devices is None:
        chosen = tuple(local)
    elif isinstance(devices, int):
        if not 1 <= devices <= len(local):
            raise ValueError(f"devices must be in [1, {len(local)}]; got {devices}")
        chosen = tuple(local[:devices])
    else:
        chosen = tuple(devices)
    static = _static_axes(make, grid)
    groups = _groups(grid, static)
    if simulate is not None and _lapack_pool_hazard(make, simulate, grid, groups, chosen):
        warnings.warn(
            f"this sweep calls CPU LAPACK kernels, which deadlock across several CPU devices on "
            f"jaxlib < {'.'.join(map(str, LAPACK_POOL_FIXED))}; running on 1 device, not "
            f"{len(chosen)}",
            RuntimeWarning,
            stacklevel=2,
        )
        chosen = chosen[:1]
    per_point = _bytes_per_point(make, simulate, grid) if simulate is not None else 0.0
    n_dev = len(chosen)
    largest = max(g.indices.size for g in groups)
    if chunk_size is None:
        budget = DEFAULT_BUDGET if chunk_budget is None else chunk_budget
        fits = n_dev * int(budget // per_point) if per_point > 0 else largest
        chunk_size = max(1, min(fits, largest))
    # At least 2 points per device: XLA compiles a size-1 vmap axis into different kernels, which
    # changed results by 1 ulp (5.6e-17 measured) against every size >= 2, breaking the promise
    # that results do not depend on chunk size or device count.
    chunk = n_dev * max(MIN_PER_DEVICE, math.ceil(chunk_size / n_dev))
    return Plan(grid, static, groups, chunk, chosen, per_point)


def _jaxlib_version() -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", importlib.metadata.version("jaxlib"))[:3])


def _lapack_pool_hazard(make, simulate, grid: Grid, groups, devices: tuple) -> bool:
    """Whether running the groups on `devices` meets the jaxlib LAPACK thread-pool deadlock:
    several CPU devices, an affected jaxlib and a LAPACK call in some group's program (found in
    the lowered text of its first point, which is cheap: nothing compiles)."""
    if len(devices) < 2 or any(d.platform != "cpu" for d in devices):
        return False
    if _jaxlib_version() >= LAPACK_POOL_FIXED:
        return False
    points = grid.points()
    key = jax.random.key(0)
    for group in groups:
        params = make(**points[group.indices[0]])
        traced = jax.jit(simulate).trace(params, key)
        if "lapack_" in traced.lower(lowering_platforms=("cpu",)).as_text():
            return True
    return False


def _bytes_per_point(make: Callable, simulate: Callable, grid: Grid) -> float:
    point = grid.points()[0]
    params = make(**point)
    shapes = jax.eval_shape(simulate, params, jax.random.key(0))
    leaves = jax.tree.leaves(shapes) + jax.tree.leaves(jax.eval_shape(lambda: params))
    nbytes = sum(math.prod(x.shape) * x.dtype.itemsize for x in leaves)
    return 4.0 * nbytes * grid.n_seeds


# --- execution -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _chunk_program(make, simulate, static, traced_axes, n_seeds, common, mesh):
    """jit(vmap over points of vmap over seeds), sharded along the points axis; `static` is a
    tuple of (axis, value) pairs. Cached, so a repeated sweep reuses its compiled programs."""

    def one_point(values, index, key):
        params = make(**dict(static), **values)
        base = key if common else jax.random.fold_in(key, index)
        seeds = jnp.arange(n_seeds)
        return jax.vmap(lambda s: simulate(params, jax.random.fold_in(base, s)))(seeds)

    sharded = NamedSharding(mesh, PartitionSpec("grid"))
    replicated = NamedSharding(mesh, PartitionSpec())
    program = jax.vmap(one_point, in_axes=({k: 0 for k in traced_axes}, 0, None))
    return jax.jit(program, in_shardings=(sharded, sharded, replicated), out_shardings=sharded)


def _inputs(the_plan: Plan, index: np.ndarray, key) -> tuple:
    """A chunk's axis values, global point indices (padded to the chunk by repeating them;
    the repeats are dropped after the call) and the key, placed on the plan's mesh: under
    jax.distributed, jit refuses host arrays with a sharding."""
    padded = np.resize(index, the_plan.chunk)
    values = {a: np.asarray([the_plan.points[i][a] for i in padded]) for a in the_plan.traced_axes}
    mesh = the_plan.mesh
    grid_sharded = jax.device_put((values, padded), NamedSharding(mesh, PartitionSpec("grid")))
    return (*grid_sharded, jax.device_put(key, NamedSharding(mesh, PartitionSpec())))


def _program(make, simulate, the_plan: Plan, group: Group, common: bool):
    """The group's jitted chunk program for the plan's devices."""
    return _chunk_program(
        make, simulate, tuple(group.static.items()), the_plan.traced_axes, the_plan.grid.n_seeds,
        common, the_plan.mesh,
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


def _fit_budget(chunk_bytes, the_plan: Plan, budget: float) -> Plan:
    """Compile every group at the planned chunk; if the compiled memory per device exceeds the
    budget, shrink the chunk in proportion (memory grows linearly with it) and recompile."""
    n_dev = len(the_plan.devices)
    for _ in range(2):
        used = max(chunk_bytes(the_plan, g) for g in the_plan.groups)
        the_plan = dataclasses.replace(the_plan, bytes_per_device=used)
        per_device = the_plan.chunk // n_dev
        fits = int(per_device * budget // used) if used > budget else per_device
        if fits >= per_device:
            return the_plan
        if per_device == MIN_PER_DEVICE:
            break
        the_plan = the_plan.with_chunk(n_dev * max(MIN_PER_DEVICE, fits))
    raise ValueError(
        f"chunk_budget = {budget:.4g} bytes is below the {the_plan.bytes_per_device:.4g} bytes "
        f"per device that {MIN_PER_DEVICE} points of {the_plan.grid.n_seeds} seeds need"
    )


def _code(fn: Callable) -> str:
    """What identifies a function's code across runs: its name and, where Python can find it,
    its source (so an edited simulate in a user's script is a different sweep)."""
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):  # builtins, partials, functions typed into a REPL
        source = ""
    return f"{name}:{source}{getattr(fn, 'template', '')!r}"


def _program_digest(make: Callable, simulate: Callable, the_plan: Plan) -> str:
    """A digest of what each compile group computes: the jaxpr of `simulate` at the group's first
    point with its captured constants, and that point's Params. An edited model, predictor or
    optimizer (in the package or in a user's own module) is another sweep, never resumed from
    stale chunks; an edit that computes the same thing (a docstring) is not."""
    digest = hashlib.sha256()
    key = jax.random.key(0)
    for group in the_plan.groups:
        params = make(**the_plan.points[int(group.indices[0])])
        closed = jax.make_jaxpr(simulate)(params, key)
        digest.update(re.sub(r" at 0x[0-9a-f]+", "", str(closed.jaxpr)).encode())
        for value in [*closed.consts, *jax.tree.leaves(params)]:
            array = np.asarray(value)
            digest.update(f"{array.dtype}{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()[:16]


def _fingerprint(
    the_plan: Plan, seed: int, common: bool, config: Mapping | None, simulate, make
) -> str:
    from spectral_sim import __version__

    record = dict(
        grid=the_plan.grid.describe(), seed=seed, common_random_numbers=common, config=config,
        simulate=_code(simulate), make=_code(make), package_version=__version__,
        program=_program_digest(make, simulate, the_plan),
        default_float=str(jnp.result_type(float)),  # x64 on or off changes every result
        prng=_prng_impl(),  # so do the PRNG and threefry's partitionable mode
        threefry_partitionable=bool(jax.config.jax_threefry_partitionable),  # pyright: ignore
        platforms=sorted({d.platform for d in the_plan.devices}),  # CPU and GPU chunks differ
        matmul_precision=str(jax.config.jax_default_matmul_precision),  # pyright: ignore
    )  # fmt: skip
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _writable(out) -> pathlib.Path | None:
    if out is None:
        return None
    path = pathlib.Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, delete=True)
        probe.close()
    except OSError as error:
        raise ValueError(f"out directory {str(path)!r} is not writable: {error}") from None
    return path


def _stored_manifest(path: pathlib.Path, fingerprint: str, overwrite: bool) -> dict | None:
    """The manifest (chunk size, measured memory) of a stored sweep with this fingerprint, to
    resume; else None after refusing (or with `overwrite`, clearing) what the directory holds."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        return None
    old = json.loads(manifest_path.read_text())
    if old.get("fingerprint") == fingerprint and not overwrite:
        return old
    if not overwrite:
        raise ValueError(
            f"{path} holds a sweep with another config or code version "
            f"(fingerprint {old.get('fingerprint')} != {fingerprint}); "
            "choose another out directory or pass overwrite=True (--overwrite)"
        )
    for stale in path.glob("chunk-*.npz"):
        stale.unlink()
    return None


def _resumed(the_plan: Plan, manifest: Mapping) -> Plan:
    """The plan with a stored chunk size, on as many devices as divide it evenly, and the
    memory measured when that chunk size was chosen."""
    chunk = int(manifest["chunk"])
    usable = [
        d for d in range(1, len(the_plan.devices) + 1)
        if chunk % d == 0 and (chunk // d >= MIN_PER_DEVICE or d == 1)
    ]  # fmt: skip
    resumed = the_plan.with_chunk(chunk, the_plan.devices[: max(usable)])
    same = manifest.get("devices") == len(resumed.devices)  # else the measurement does not hold
    return dataclasses.replace(
        resumed, bytes_per_device=manifest.get("bytes_per_device") if same else None
    )


def _barrier(name: str) -> None:
    """Wait for every process of a multi-process (jax.distributed) sweep."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"spectral_sim.sweep.{name}")


def _atomic_write(path: pathlib.Path, payload: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _save_chunk(path: pathlib.Path, leaves: list[np.ndarray]) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, *leaves)
    _atomic_write(path, buffer.getvalue())


def _load_chunk(path: pathlib.Path) -> list[np.ndarray]:
    with np.load(path) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]


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
) -> xr.Dataset:
    """Run `simulate(make(**point), key)` for every grid point and seed; an xarray Dataset with
    dims (grid dims..., seed, output dims...) and provenance attrs.

    With `out`, each finished chunk is written atomically with a manifest; rerunning the same
    sweep computes only the missing chunks (a different config or code version is refused
    unless `overwrite`). `dims` names the trailing axes of each output leaf (e.g.
    {"loss": ("step",)}) and `coords` gives them coordinates. Non-finite outputs are flagged per
    point and seed in the `nonfinite` variable, never fatal.
    """
    the_plan = plan(
        make, grid, simulate=simulate, chunk_budget=chunk_budget, chunk_size=chunk_size,
        devices=devices,
    )  # fmt: skip
    process, n_processes = jax.process_index(), jax.process_count()
    if n_processes > 1 and out is None:
        raise ValueError("a multi-process sweep needs `out` (a directory every process sees)")
    fingerprint = _fingerprint(the_plan, seed, common_random_numbers, config, simulate, make)
    path = _writable(out)
    key = jax.random.key(seed)

    def program(the_plan: Plan, group: Group):
        return _program(make, simulate, the_plan, group, common_random_numbers)

    def chunk_bytes(the_plan: Plan, group: Group) -> float:
        inputs = _inputs(the_plan, group.indices[: the_plan.chunk], key)
        return _device_bytes(program(the_plan, group), inputs)

    if process == 0:  # decides the chunking (resumed, or fitted to the budget) for everyone
        stored = None if path is None else _stored_manifest(path, fingerprint, overwrite)
        if stored is not None:  # the memory measured when the chunk size was chosen
            the_plan = _resumed(the_plan, stored)
        elif chunk_size is None:
            budget = DEFAULT_BUDGET if chunk_budget is None else chunk_budget
            the_plan = _fit_budget(chunk_bytes, the_plan, budget)
        if path is not None:
            manifest = dict(fingerprint=fingerprint, chunk=the_plan.chunk,
                            bytes_per_device=the_plan.bytes_per_device,
                            devices=len(the_plan.devices))  # fmt: skip
            _atomic_write(path / MANIFEST, json.dumps(manifest).encode())
    _barrier("prepared")
    if process != 0 and path is not None:  # the same plan and attrs as process 0's
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest["fingerprint"] != fingerprint:
            raise ValueError(f"process {process} runs another sweep than process 0 in {path}")
        the_plan = _resumed(the_plan, manifest)
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
            file = None if path is None else path / f"chunk-{this:06d}.npz"
            if file is not None and file.exists():
                results[this] = _load_chunk(file)
            else:
                output = program(the_plan, group)(*_inputs(the_plan, index, key))
                leaves, treedef = jax.tree.flatten(output)
                results[this] = [np.asarray(leaf)[: index.size] for leaf in leaves]
                if file is not None:
                    _save_chunk(file, results[this])
            bar.set_postfix_str(f"chunk {this + 1}/{the_plan.n_chunks}", refresh=False)
            bar.update(index.size)
    bar.close()
    if treedef is None:  # every chunk came from disk (or another process): get the structure
        shapes = jax.eval_shape(simulate, make(**the_plan.points[0]), key)
        treedef = jax.tree.structure(shapes)
    if n_processes > 1:  # every process assembles the whole grid from all chunk files
        _barrier("computed")
        assert path is not None
        results = {i: _load_chunk(path / f"chunk-{i:06d}.npz") for i in range(the_plan.n_chunks)}
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


def _leaf_names(treedef) -> list[str]:
    """Names for the output leaves: NamedTuple fields / dict keys, joined with '.'."""
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
    names = _leaf_names(treedef)
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


def save(data: xr.Dataset, path: str | os.PathLike) -> pathlib.Path:
    """Write a sweep's dataset to netCDF (h5netcdf) atomically: a temporary file, then rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".nc")
    os.close(handle)
    try:
        data.to_netcdf(temporary, engine="h5netcdf")
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> xr.Dataset:
    """Reopen a dataset written by `save` (loaded into memory; the file is closed)."""
    return xr.load_dataset(path, engine="h5netcdf")
