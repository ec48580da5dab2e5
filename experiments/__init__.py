"""The experiments, one module per question. Each has a frozen dataclass `Config` whose fields
all have defaults (including `quick: bool = False`, a CPU-minute version of the run) and
`run(cfg: Config, options: spectral_sim.sweep.Options | None = None) -> Report`, which runs its
grids through `options.run(...)` (the sweep engine: devices, memory budget, resumable chunk
files); `spectral-sim run NAME` runs one.
"""

import importlib
from types import ModuleType

__all__ = ["EXPERIMENTS", "describe", "load"]

EXPERIMENTS: tuple[str, ...] = ("learning_curves",)


def load(name: str) -> ModuleType:
    """The module `experiments.<name>`; ValueError listing the valid names for an unknown one."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid names: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{name}")


def describe(name: str) -> str:
    """The first line of the experiment module's docstring (imports the module)."""
    doc = (load(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
