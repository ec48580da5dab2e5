"""Planning a sweep before anything compiles: which axes change the Params' shapes (and so split
the grid into compile groups), how many points a chunk holds under a memory budget and on which
devices; `Plan` records it, `plan` makes it, `fit_budget` corrects it once the compiled programs
report their memory (and on CPU cuts it to the cache) and `resumed` adopts the chunk size of a
stored sweep."""

import dataclasses
import difflib
import functools
import importlib.metadata
import inspect
import math
import pathlib
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from spectral_sim.sweep.grid import Grid

__all__ = [
    "BATCH_DEPENDENT_PRNGS", "CACHE_SHARE", "CUT_VOLUME", "DEFAULT_BUDGET", "LAPACK_POOL_FIXED",
    "MIN_PER_DEVICE", "Group", "Plan", "cache_bytes", "check_axes", "fit_budget", "plan",
    "prng_impl", "resumed",
]  # fmt: skip

DEFAULT_BUDGET = 2 * 2**30  # bytes of memory a chunk may use on each device
MIN_PER_DEVICE = 2
# On CPU a chunk whose compiled working set exceeds this share of the last-level cache is cut
# down to it: a loop over steps then streams its state from cache, not DRAM, and a product is
# consumed from cache. On a 2-core CPU with a 32 MiB cache (benchmarks/sweep.py W3, 10^4 configs
# x 10^4 modes): the exact GF loss went from chunks of 10^4 points to 4 (16 MiB) and from 25 %
# to 41 % of the exp peak; the exact SGD recursion ran at 21.5 % of copy bandwidth in chunks of
# 256 points against 9.5 % in one chunk.
CACHE_SHARE = 0.5
# ... but only where a group's points need at least this many caches' worth of memory: below it
# the second compile the cut costs outweighs the time it saves (scaling_laws --quick: its exact
# GF sweep, 6 groups of 600 MiB, would compile 6 programs more to save under a second; its
# random-feature frontier, 42 caches in its largest group, cut to chunks of 2 points compiled 6
# programs more and ran 0.1 to 2.6 s slower in all than uncut).
CUT_VOLUME = 64
# jaxlib's CPU LAPACK kernels (eigh, Cholesky, SVD, QR, ...) before this version split a batch
# over the intra-op thread pool and block until it is done; several CPU devices running such
# kernels at once exhaust the pool and hang (reproduced with 2 to 8 host devices on jaxlib
# 0.10.2; the parallel path is compiled out of open-source jaxlib by 0.11.2).
LAPACK_POOL_FIXED = (0, 11, 2)


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


def _suggest(unknown: list[str], valid: list[str]) -> str:
    """The hint ` (did you mean ...?)`: the valid names an unknown one is the last part of (`s`
    for `spectrum.s`) or close to; "" if none."""
    close = [v for name in unknown for v in valid if v.rsplit(".", 1)[-1] == name]
    close = close or [v for name in unknown for v in difflib.get_close_matches(name, valid, 2)]
    return f" (did you mean {', '.join(map(repr, dict.fromkeys(close)))}?)" if close else ""


def check_axes(make: Callable, grid: Grid) -> None:
    """ValueError naming the grid's axes that `make` cannot take: for `make_from(template)`, the
    names that are no (dotted) field of the template; for a function, the names that are not
    its arguments (unless it takes **kwargs). Nothing is built or traced."""
    fields = getattr(make, "fields", None)
    if fields is not None:  # from make_from
        unknown = [name for name in grid.names if name not in fields]
        if unknown:
            raise ValueError(f"sweep axes {unknown} do not match a field of the Params; valid: "
                             f"{fields}{_suggest(unknown, fields)}")  # fmt: skip
        return
    try:
        parameters = inspect.signature(make).parameters
    except (TypeError, ValueError):  # a builtin such as dict: takes any keyword
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [name for name in grid.names if name not in parameters and not takes_any]
    if unknown:
        valid = list(parameters)
        raise ValueError(f"sweep axes {unknown} are not arguments of "
                         f"{getattr(make, '__name__', 'make')}; valid names: {valid}"
                         f"{_suggest(unknown, valid)}")  # fmt: skip


def _static_axes(make: Callable, grid: Grid) -> tuple[str, ...]:
    """The axes whose values change the Params' tree structure (static fields): vary one axis at
    a time from the first point and compare tree definitions. An axis holding one value (once,
    or repeated: a zipped axis that stays put while the others vary) is static too: there is
    nothing to vmap over, and it may set a shape."""
    first = grid.points()[0]
    reference = jax.tree.structure(make(**first))
    static = []
    for name, values in {**grid.product, **grid.zipped}.items():
        if all(_same(value, values[0]) for value in values[1:]):
            static.append(name)
            continue
        tried = {_fingerprint(values[0])}  # a repeated value (zipped axes repeat) is made once
        for value in values[1:]:
            if (key := _fingerprint(value)) in tried:
                continue
            tried.add(key)
            if jax.tree.structure(make(**{**first, name: value})) != reference:
                static.append(name)
                break
    return tuple(static)


def _fingerprint(value: object) -> object:
    """A hashable stand-in for an axis value, equal only for values `_same` finds equal: the
    value itself when hashable (2 == 2.0), else its array's shape, dtype and bytes; the object's
    identity for anything without a numeric array form."""
    try:
        hash(value)
        return ("value", value)
    except TypeError:  # unhashable: an array, a list
        pass
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged
        return ("id", id(value))
    if array.dtype == object:
        return ("id", id(value))
    return ("array", array.shape, array.dtype.str, array.tobytes())


def _same(a: object, b: object) -> bool:
    """Whether two axis values are equal: element-wise for numbers and arrays (of one shape),
    by == for anything else (strings, None)."""
    if isinstance(a, str | bytes) or isinstance(b, str | bytes) or a is None or b is None:
        return a == b
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):  # ragged sequences, objects without an array form
        return a is b


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


def prng_impl() -> str:
    """The name of JAX's default PRNG implementation (e.g. "threefry2x32")."""
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
    check_axes(make, grid)
    if prng_impl() in BATCH_DEPENDENT_PRNGS:
        raise ValueError(
            f"jax_default_prng_impl = {prng_impl()!r} draws a vmapped batch's bits from its "
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


@functools.cache
def cache_bytes() -> int | None:
    """This host's last-level CPU cache in bytes (Linux sysfs: the highest cache level of cpu0),
    None where it cannot be read."""
    sizes, units = {}, {"K": 2**10, "M": 2**20, "G": 2**30}
    for index in pathlib.Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if size[-1:] in units and size[:-1].isdigit():
            sizes[level] = int(size[:-1]) * units[size[-1]]
        elif size.isdigit():
            sizes[level] = int(size)
    return sizes[max(sizes)] if sizes else None


def fit_budget(chunk_bytes, the_plan: Plan, budget: float) -> Plan:
    """Compile the groups one by one at the current chunk (`chunk_bytes(plan, group)`: the
    compiled program's memory per device); where one exceeds the budget, shrink the chunk in
    proportion (memory grows linearly with it) and compile that group again. A group compiled
    before a shrink is compiled once more at run time, so the groups go largest static values
    first (`_largest_first`): shapes grow with them, and the chunk usually shrinks at the first
    group. On CPU the chunk may then be cut to the cache (`_fit_cache`)."""
    n_dev = len(the_plan.devices)
    used = 0.0  # the largest memory per device so far, at the current chunk
    for group in _largest_first(the_plan.groups):
        while (measured := chunk_bytes(the_plan, group)) > budget:
            per_device = the_plan.chunk // n_dev
            if per_device == MIN_PER_DEVICE:
                raise ValueError(
                    f"chunk_budget = {budget:.4g} bytes is below the {measured:.4g} bytes per "
                    f"device that {MIN_PER_DEVICE} points of {the_plan.grid.n_seeds} seeds need "
                    f"(a chunk holds every seed of its points): raise it (--chunk-budget) or use "
                    f"fewer seeds"
                )  # fmt: skip
            fits = max(MIN_PER_DEVICE, int(per_device * budget // measured))
            used *= fits / per_device
            the_plan = the_plan.with_chunk(n_dev * fits)
        used = max(used, measured)
    return _fit_cache(dataclasses.replace(the_plan, bytes_per_device=used))


def _largest_first(groups: Sequence[Group]) -> list[Group]:
    """The groups by their static values, the largest numbers first (a stable sort; a value
    that is not a number, such as a variant's name, does not order them)."""

    def size(value: object) -> float:
        if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        ):
            return -float(value)
        return 0.0

    return sorted(groups, key=lambda g: [size(v) for v in g.static.values()])


def _fit_cache(the_plan: Plan) -> Plan:
    """On CPU, the plan with its chunk cut (never below MIN_PER_DEVICE) so that its compiled
    memory, scaled in proportion, fits CACHE_SHARE of the last-level cache. Unchanged where the
    cut would not halve the chunk, or where the largest group needs less than CUT_VOLUME caches
    of memory in all: the cut costs each group a second compile (it was compiled at the first
    size to measure it), which only pays on a sweep that long."""
    size, used = cache_bytes(), the_plan.bytes_per_device
    if size is None or not used or any(d.platform != "cpu" for d in the_plan.devices):
        return the_plan
    n_dev = len(the_plan.devices)
    per_point = used / (the_plan.chunk // n_dev)
    fits = max(MIN_PER_DEVICE, int(CACHE_SHARE * size // per_point))
    volume = per_point * max(g.indices.size for g in the_plan.groups) / n_dev
    if 2 * fits > the_plan.chunk // n_dev or volume < CUT_VOLUME * size:
        return the_plan
    return dataclasses.replace(the_plan.with_chunk(n_dev * fits), bytes_per_device=per_point * fits)


def resumed(the_plan: Plan, manifest: Mapping) -> Plan:
    """The plan with a stored chunk size, on as many devices as divide it evenly, and the
    memory measured when that chunk size was chosen."""
    chunk = int(manifest["chunk"])
    usable = [
        d for d in range(1, len(the_plan.devices) + 1)
        if chunk % d == 0 and (chunk // d >= MIN_PER_DEVICE or d == 1)
    ]  # fmt: skip
    adopted = the_plan.with_chunk(chunk, the_plan.devices[: max(usable)])
    same = manifest.get("devices") == len(adopted.devices)  # else the measurement does not hold
    return dataclasses.replace(
        adopted, bytes_per_device=manifest.get("bytes_per_device") if same else None
    )
