"""What a sweep covers: a `Grid` of named axes (product and zipped) and seeds, and `make_from`,
which turns a Params template into the `make(**point)` that builds each point's Params."""

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Grid", "make_from"]


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
