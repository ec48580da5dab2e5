"""What a sweep covers: a `Grid` of named axes (product and zipped) and seeds, and `make_from`,
which turns a Params template into the `make(**point)` that builds each point's Params."""

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spectral_sim.checks import all_of

__all__ = ["Grid", "make_from"]


@dataclasses.dataclass(frozen=True)
class Grid:
    """Named axes: `product` axes combine as an outer product (one dim each), `zipped` axes vary
    together along one dim named `zip`; `n_seeds` seeds per point (dim `seed`)."""

    product: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)
    zipped: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)
    n_seeds: int = 1

    def __post_init__(self):
        with all_of() as check:
            for field in ("product", "zipped"):
                axes = getattr(self, field)
                if check.that(isinstance(axes, Mapping), f"{field} must map axis names to "
                              f"values; got {type(axes).__name__}"):  # fmt: skip
                    for name, values in axes.items():
                        check.that(isinstance(name, str), f"{field} axis names must be strings; "
                                   f"got {name!r}")  # fmt: skip
                        if check.that(_sequence(values), f"sweep axis {name!r} must be a "
                                      f"sequence of values; got {values!r}"):  # fmt: skip
                            check.that(len(values) > 0, f"sweep axis {name!r} is empty; give it "
                                       "at least one value")  # fmt: skip
            check.count("n_seeds", self.n_seeds)
        object.__setattr__(self, "product", {k: list(v) for k, v in self.product.items()})
        object.__setattr__(self, "zipped", {k: list(v) for k, v in self.zipped.items()})
        with all_of() as check:
            both = set(self.product) & set(self.zipped)
            check.that(not both, f"axes {sorted(both)} are both product and zipped axes")
            lengths = {len(v) for v in self.zipped.values()}
            check.that(len(lengths) <= 1, f"zipped axes must have equal lengths; got "
                       f"{self.zipped_lengths()}")  # fmt: skip

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


def _sequence(values: object) -> bool:
    """Whether an axis' values are a sequence of points (a list, tuple, range or an array, whose
    leading axis is the points; not a string or a single number)."""
    if isinstance(values, str | bytes):
        return False
    return isinstance(values, Sequence | range) or getattr(values, "ndim", 0) >= 1


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
    if not dataclasses.is_dataclass(template) or isinstance(template, type):
        raise TypeError(f"make_from needs a Params instance (a dataclass) as its template; got "
                        f"{type(template).__name__}")  # fmt: skip
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
