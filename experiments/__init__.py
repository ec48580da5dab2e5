"""The experiments, one module per question. Each has a frozen dataclass `Config` whose fields
all have defaults (including `quick: bool = False`, a CPU-minute version of the run) and
`run(cfg: Config, options: spectral_sim.sweep.Options | None = None) -> Report`, which runs its
grids through `options.run(...)` (the sweep engine: devices, memory budget, resumable chunk
files); `spectral-sim run NAME` runs one.
"""

import contextlib
import contextvars
import dataclasses
import importlib
from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any, TypeVar

__all__ = [
    "EXPERIMENTS",
    "claims",
    "describe",
    "explicit",
    "listed",
    "load",
    "quick",
]

EXPERIMENTS: tuple[str, ...] = (
    "learning_curves",
    "scaling_laws",
    "attention_clusters",
    "self_improvement",
    "spectral_edge",
    "compression",
    "latent_number",
    "real_spectra",
)

C = TypeVar("C")


def load(name: str) -> ModuleType:
    """The module `experiments.<name>`; ValueError listing the valid names for an unknown one."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid names: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{name}")


def describe(name: str) -> str:
    """The first paragraph of the experiment module's docstring, on one line (imports the
    module)."""
    doc = (load(name).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def claims(name: str) -> dict[str, str]:
    """The experiment's claims (its `CLAIMS` table): id pattern (fnmatch; ids may name a data
    set or an optimizer) -> what the claim tests. Imports the module."""
    table = getattr(load(name), "CLAIMS", {})
    listing = getattr(table, "listing", None)
    return listing() if listing else dict(table)


_EXPLICIT: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "explicit", default=frozenset()
)


@contextlib.contextmanager
def explicit(fields: Iterable[str]) -> Iterator[None]:
    """Within this block, `quick` leaves `fields` alone even where they equal their defaults:
    they were chosen by the user (the CLI marks every Config flag given on its command line)."""
    token = _EXPLICIT.set(frozenset(fields))
    try:
        yield
    finally:
        _EXPLICIT.reset(token)


def quick(cfg: C, values: Mapping[str, Any]) -> C:
    """The effective config: with `cfg.quick`, the fields still at their defaults take `values`
    (so a user's explicit choice survives --quick; one equal to the default survives inside
    `explicit`)."""
    if not cfg.quick:  # pyright: ignore[reportAttributeAccessIssue]
        return cfg
    default, chosen = type(cfg)(), _EXPLICIT.get()
    changed = {
        k: v
        for k, v in values.items()
        if k not in chosen and getattr(cfg, k) == getattr(default, k)
    }
    return dataclasses.replace(cfg, **changed)  # pyright: ignore[reportArgumentType]


def listed(values) -> str:
    """The values of an array or DataArray as "v1, v2, ..." for a claim's statement."""
    return ", ".join(f"{float(v):g}" for v in getattr(values, "values", values))
