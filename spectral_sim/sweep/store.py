"""What a sweep keeps on disk: its datasets as netCDF (`save`, `load`) and, while it runs with
`out`, one .npz file per finished chunk beside a manifest that says which sweep they belong to
(its `fingerprint`) and how it was chunked, so that a rerun resumes. Every file is written
atomically: readers see the old file or the new one, never a partial one."""

import contextlib
import hashlib
import inspect
import json
import os
import pathlib
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim.provenance import package_version
from spectral_sim.sweep.planning import Plan, prng_impl

__all__ = [
    "CHUNK_FILES", "MANIFEST", "atomic_write", "chunk_file", "fingerprint", "load", "load_chunk",
    "read_manifest", "save", "save_chunk", "stored_manifest", "writable", "write_manifest",
]  # fmt: skip

MANIFEST = "manifest.json"
CHUNK_FILES = "chunk-*.npz"  # the chunk files' names, * their number


@contextlib.contextmanager
def atomic_write(path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A temporary path in `path`'s directory for the caller to write; when the block ends
    without an error the file is flushed to disk and renamed over `path`, else removed."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(handle)
    temporary = pathlib.Path(name)
    try:
        yield temporary
        with temporary.open("rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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


def fingerprint(
    the_plan: Plan, seed: int, common: bool, config: Mapping | None, simulate, make
) -> str:
    """What identifies a sweep's results: its grid, seed, config, code (`simulate` and `make`,
    and the programs they trace to), package version and every JAX setting that changes the
    numbers. Stored chunks are resumed only under the same fingerprint."""
    record = dict(
        grid=the_plan.grid.describe(), seed=seed, common_random_numbers=common, config=config,
        simulate=_code(simulate), make=_code(make), package_version=package_version(),
        program=_program_digest(make, simulate, the_plan),
        default_float=str(jnp.result_type(float)),  # x64 on or off changes every result
        prng=prng_impl(),  # so do the PRNG and threefry's partitionable mode
        threefry_partitionable=bool(jax.config.jax_threefry_partitionable),  # pyright: ignore
        platforms=sorted({d.platform for d in the_plan.devices}),  # CPU and GPU chunks differ
        matmul_precision=str(jax.config.jax_default_matmul_precision),  # pyright: ignore
    )  # fmt: skip
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def writable(out) -> pathlib.Path | None:
    """`out` as a directory, created if need be, once a file could be made in it (None for
    None); ValueError if it cannot."""
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


def stored_manifest(path: pathlib.Path, fingerprint: str, overwrite: bool) -> dict | None:
    """The manifest (chunk size, measured memory) of a stored sweep with this fingerprint, to
    resume; else None after refusing (or with `overwrite`, clearing) what the directory holds."""
    if not (path / MANIFEST).exists():
        return None
    old = read_manifest(path)
    if old.get("fingerprint") == fingerprint and not overwrite:
        return old
    if not overwrite:
        raise ValueError(
            f"{path} holds a sweep with another config or code version "
            f"(fingerprint {old.get('fingerprint')} != {fingerprint}); "
            "choose another out directory or pass overwrite=True (--overwrite)"
        )
    for stale in path.glob(CHUNK_FILES):
        stale.unlink()
    return None


def write_manifest(path: pathlib.Path, fingerprint: str, the_plan: Plan) -> None:
    """Record in `path` which sweep its chunk files hold and how it was chunked: the
    fingerprint, chunk size, device count and measured memory per device."""
    manifest = dict(fingerprint=fingerprint, chunk=the_plan.chunk,
                    bytes_per_device=the_plan.bytes_per_device,
                    devices=len(the_plan.devices))  # fmt: skip
    with atomic_write(path / MANIFEST) as temporary:
        temporary.write_text(json.dumps(manifest))


def read_manifest(path: pathlib.Path) -> dict:
    """The manifest `write_manifest` left in `path`."""
    return json.loads((path / MANIFEST).read_text())


def chunk_file(path: pathlib.Path, number: int) -> pathlib.Path:
    """Where chunk `number` (counted over the compile groups in order) is kept in `path`."""
    return path / CHUNK_FILES.replace("*", f"{number:06d}")


def save_chunk(path: pathlib.Path, leaves: list[np.ndarray]) -> None:
    """Write a chunk's output leaves (points first) to `path` atomically, as .npz."""
    with atomic_write(path) as temporary, temporary.open("wb") as stream:
        np.savez(stream, *leaves)


def load_chunk(path: pathlib.Path) -> list[np.ndarray]:
    """The leaves `save_chunk` wrote, in order."""
    with np.load(path) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]


def save(data: xr.Dataset, path: str | os.PathLike) -> pathlib.Path:
    """Write a sweep's dataset to netCDF (h5netcdf) atomically (`atomic_write`)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as temporary:
        data.to_netcdf(temporary, engine="h5netcdf")
    return path


def load(path: str | os.PathLike) -> xr.Dataset:
    """Reopen a dataset written by `save` (loaded into memory; the file is closed)."""
    return xr.load_dataset(path, engine="h5netcdf")
