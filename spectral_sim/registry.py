"""The experiments spectral-sim knows, and the protocol an experiment follows.

An experiment is a module registered in the entry-point group `spectral_sim.experiments`
(name -> module) by any installed distribution; spectral_sim registers its own eight there, so a
user's package is found the same way:

    # pyproject.toml of the user's package
    [project.entry-points."spectral_sim.experiments"]
    my_question = "my_package.my_question"

The module has a frozen dataclass `Config` whose fields all have defaults, one of them
`quick: bool` (the CPU-minute version of the run), and `run(cfg, options=None)` returning a
`spectral_sim.report.Report`; a claim table `CLAIMS` (a `spectral_sim.claims.Table`) is
optional and is what `spectral-sim list` shows.

An experiment has up to three scales (`SCALES`): the Config's defaults are the full scale; a
module that keeps its CPU-minute sizes in a dict `QUICK` and, with a field `paper: bool`, the
sizes of the papers it tests (meant for a GPU) in a dict `PAPER` starts `run` with
`cfg = scaled(cfg, QUICK, PAPER)` (as spectral_sim's own do), which applies them to the fields
the user left at their defaults; its claims are then listed at the quick and full scales.
"""

import contextlib
import contextvars
import dataclasses
import importlib
import importlib.metadata
from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any, TypeVar

__all__ = [
    "GROUP", "SCALES", "claims", "defaults", "describe", "explicit", "load", "names", "quick",
    "scale", "scaled",
]  # fmt: skip

GROUP = "spectral_sim.experiments"
"""The entry-point group experiments are registered in."""

SCALES = ("quick", "full", "paper")
"""An experiment's sizes: CPU minutes (`--quick`), at most 30 minutes on 2 CPU cores (the
Config's defaults), and the sizes of the papers it tests (`--scale paper`, meant for a GPU)."""

C = TypeVar("C")


def _entry_points() -> dict[str, str]:
    """name -> module path, in the order the installed distributions list them; a name that two
    distributions register for different modules is an error naming both."""
    found: dict[str, str] = {}
    for point in importlib.metadata.entry_points(group=GROUP):
        if found.setdefault(point.name, point.value) != point.value:
            raise ValueError(
                f"experiment {point.name!r} is registered twice in the entry-point group {GROUP}: "
                f"{found[point.name]} and {point.value}; uninstall one of the two packages"
            )
    return found


def names() -> tuple[str, ...]:
    """The registered experiments' names (spectral_sim's own first, in its listed order)."""
    return tuple(_entry_points())


def load(name: str) -> ModuleType:
    """The experiment module registered as `name`, checked against the protocol; ValueError
    listing the valid names for an unknown one."""
    registered = _entry_points()
    if name not in registered:
        valid = ", ".join(registered) or f"none: no package registers the group {GROUP}"
        raise ValueError(f"unknown experiment {name!r}; valid names: {valid}")
    module = importlib.import_module(registered[name])
    _check(name, module)
    return module


def _check(name: str, module: ModuleType) -> None:
    """The experiment protocol: a dataclass `Config` with every field defaulted, `quick` among
    them, and a callable `run`."""
    where = f"experiment {name!r} ({module.__name__})"
    config = getattr(module, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise TypeError(f"{where} must define a dataclass Config")
    fields = {f.name: f for f in dataclasses.fields(config)}
    missing = [
        f.name
        for f in fields.values()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise TypeError(f"{where}: every Config field needs a default; {missing} have none")
    if "quick" not in fields:
        raise TypeError(f"{where}: Config needs a field `quick: bool = False`")
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{where} must define run(cfg, options=None) returning a Report")


def describe(name: str) -> str:
    """The first paragraph of the experiment module's docstring, on one line (imports it)."""
    doc = (load(name).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def claims(name: str) -> dict[str, str]:
    """The experiment's claims (its optional `CLAIMS` table): id pattern (fnmatch; ids may name
    a data set or an optimizer) -> what the claim tests, each Config field a statement names
    shown with its default and, where `QUICK` changes it, its --quick value. Imports the
    module."""
    module = load(name)
    table = getattr(module, "CLAIMS", {})
    listing = getattr(table, "listing", None)
    if not listing:
        return dict(table)
    values = getattr(module, "QUICK", None)
    fast = None if values is None else quick(module.Config(quick=True), values)
    return listing(module.Config(), fast)


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


def scale(cfg: Any) -> str:
    """The scale of an experiment's config: "quick", "paper" (a `paper` field set) or "full";
    ValueError if both `quick` and `paper` are set."""
    quick, paper = bool(getattr(cfg, "quick", False)), bool(getattr(cfg, "paper", False))
    if quick and paper:
        raise ValueError("quick and paper are two scales; set at most one of them")
    return "quick" if quick else "paper" if paper else "full"


def scaled(cfg: C, quick: Mapping[str, Any], paper: Mapping[str, Any] | None = None) -> C:
    """The effective config at `scale(cfg)`: at the quick scale the fields still at their
    defaults take `quick`'s values, at the paper scale `paper`'s (so a user's explicit choice
    survives; one equal to the default survives inside `explicit`); the full scale is the
    Config's defaults. ValueError for a paper config without `paper` values."""
    at = scale(cfg)
    if at == "paper" and paper is None:
        raise ValueError(f"{type(cfg).__name__} has a paper field but no paper sizes")
    return defaults(cfg, {"quick": quick, "paper": paper or {}, "full": {}}[at])


def defaults(cfg: C, values: Mapping[str, Any]) -> C:
    """`cfg` with the fields still at their defaults set to `values` (a field chosen inside
    `explicit` keeps its value even where it equals the default): one scale's sizes, or an
    experiment's sizes for one of its models."""
    default, chosen = type(cfg)(), _EXPLICIT.get()
    changed = {
        k: v
        for k, v in values.items()
        if k not in chosen and getattr(cfg, k) == getattr(default, k)
    }
    return dataclasses.replace(cfg, **changed)  # pyright: ignore[reportArgumentType]


def quick(cfg: C, values: Mapping[str, Any]) -> C:
    """`scaled(cfg, values)` for an experiment with two scales (quick and full)."""
    return scaled(cfg, values)
