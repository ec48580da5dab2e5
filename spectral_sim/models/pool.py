"""Learning curves on a finite data set taken as the population (eigenlearning's protocol,
THEORY.md §2.7): n training points are drawn with replacement from a pool of P points, a model
is fitted to them, and its mean squared error is measured over the whole pool, the population
whose kernel spectrum the omnibus predictor is given, and over the pool points not drawn
(held out).

The draws are the first n_samples of `capacity` (static: a shape) drawn from the key, so
n_samples is traced: a whole learning curve vmaps in one compiled program, and on a common key
the training sets of a curve are nested.

`resample` (P indices into the pool, with repeats; traced) makes the population a bootstrap
resample of the pool: the training points are drawn from it, the errors averaged over it (a point
drawn twice counts twice) and the targets centred on it. A bootstrap over data points is then a
grid axis: every resample's learning curve in the same compiled program.

model="kernel": kernel ridge f = K(., X_n)(K_nn + delta I)^-1 y_n with the pool's kernel
matrix (THEORY.md §2.7's delta: not divided by n). model="rf": the same on `width` random ReLU
features sqrt(2/width) relu(W x), W iid N(0, 1), whose kernel tends to the arc-cosine kernel of
order 1 as width grows (`spectral_sim.data.kernel_matrix(kind="arccos")`). model="mlp": a
one-hidden-layer ReLU network (flax NNX, `width` units) trained full-batch with Adam (optax)
for `steps` steps on the squared error, in float32.
"""

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from spectral_sim._types import Array, Float, Int, Key, Leaf, Swept
from spectral_sim.checks import all_of

__all__ = ["MLP", "MODELS", "Obs", "Params", "Pool", "fit"]

MODELS = ("kernel", "rf", "mlp")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Pool:
    """P points: inputs x (P x d), the kernel matrix among them (P x P; used by "kernel") and
    the targets y (P,)."""

    x: Float[Leaf, "points dim"]
    kernel: Float[Leaf, "points points"]
    y: Float[Leaf, " points"]

    def __post_init__(self):
        x, kernel, y = (getattr(a, "shape", None) for a in (self.x, self.kernel, self.y))
        if x is None or kernel is None or y is None:
            return
        p = y[0] if len(y) == 1 else -1
        if len(x) != 2 or x[0] != p or kernel != (p, p):
            raise ValueError(
                f"Pool needs x (P, d), kernel (P, P) and y (P,) for one P; got shapes "
                f"{x}, {kernel}, {y}"
            )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """The pool (traced arrays), the model, capacity (the most draws: a shape), width (random
    features or hidden units) and steps (MLP) are static; the training-set size n_samples
    (1..capacity), ridge (kernel, rf), lr (MLP) and resample (None: the pool itself) are
    traced."""

    pool: Pool
    model: Literal["kernel", "rf", "mlp"] = dataclasses.field(
        default="kernel", metadata=dict(static=True)
    )
    n_samples: int | Int[Leaf, "*grid"] = 64
    capacity: int = dataclasses.field(default=256, metadata=dict(static=True))
    width: int = dataclasses.field(default=1024, metadata=dict(static=True))
    steps: int = dataclasses.field(default=500, metadata=dict(static=True))
    ridge: Swept = 0.0
    lr: Swept = 1e-2
    resample: Int[Leaf, " points"] | None = None

    def __post_init__(self):
        with all_of() as check:
            check.one_of("model", self.model, MODELS)
            shape = getattr(self.resample, "shape", None)
            size = getattr(getattr(self.pool, "y", None), "shape", None)
            if shape is not None and size is not None and check.that(
                shape == size, f"resample must hold P = {size[0]} indices into the pool; got "
                f"shape {shape}"):  # fmt: skip
                check.range("resample", self.resample, ge=0, lt=size[0], integer=True)
            if check.count("capacity", self.capacity):
                check.range("n_samples", self.n_samples, ge=1, le=self.capacity)
            check.count("width", self.width)
            check.count("steps", self.steps)
            check.range("ridge", self.ridge, ge=0)
            check.range("lr", self.lr, gt=0)


class Obs(NamedTuple):
    """Mean squared errors over the whole pool (the population), over the points not drawn
    and over the training draws."""

    mse: Float[Array, ""]
    heldout_mse: Float[Array, ""]
    train_mse: Float[Array, ""]


class MLP(nnx.Module):
    """d -> width ReLU units -> 1."""

    def __init__(self, dim: int, width: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(dim, width, rngs=rngs)
        self.out = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))[..., 0]


def _ridge_predict(gram, cross, y, ridge, active):
    """cross (K_nn + delta I)^-1 y on the active draws: the inactive rows and columns of the
    (capacity x capacity) system are replaced by the identity, with a zero right-hand side, so
    their weights are exactly 0."""
    both = active[:, None] * active[None]
    system = gram * both + jnp.diag(ridge * active + (1 - active))
    return cross @ jnp.linalg.solve(system, y * active)


def _mlp_predict(params: Params, index, active, key):
    x = params.pool.x.astype(jnp.float32)
    y = params.pool.y.astype(jnp.float32)[index]
    weight = active.astype(jnp.float32) / jnp.sum(active)
    graphdef, weights = nnx.split(MLP(x.shape[1], params.width, rngs=nnx.Rngs(key)))
    optimizer = optax.adam(jnp.asarray(params.lr, jnp.float32))

    def loss(w):
        return 0.5 * weight @ (nnx.merge(graphdef, w)(x[index]) - y) ** 2

    def body(carry, _):
        w, state = carry
        updates, state = optimizer.update(jax.grad(loss)(w), state, w)
        return (optax.apply_updates(w, updates), state), None

    (weights, _), _ = jax.lax.scan(body, (weights, optimizer.init(weights)), None,
                                   length=params.steps)  # fmt: skip
    return nnx.merge(graphdef, weights)(x)


def fit(params: Params, key: Key[Array, ""]) -> Obs:
    """Draw n_samples points of the population (the pool, or its resample) with replacement
    from key, fit the model, measure."""
    pool = params.pool
    k_draw, k_model = jax.random.split(key)
    size = pool.y.shape[0]
    population, y = jnp.arange(size), pool.y
    if params.resample is not None:
        population = params.resample
        y = y - jnp.mean(y[population])
    index = population[jax.random.randint(k_draw, (params.capacity,), 0, size)]
    active = (jnp.arange(params.capacity) < params.n_samples).astype(y.dtype)
    if params.model == "kernel":
        predicted = _ridge_predict(pool.kernel[index][:, index], pool.kernel[:, index], y[index],
                                   params.ridge, active)  # fmt: skip
    elif params.model == "rf":
        w = jax.random.normal(k_model, (pool.x.shape[1], params.width), pool.x.dtype)
        phi = jnp.sqrt(2.0 / params.width) * jax.nn.relu(pool.x @ w)
        predicted = _ridge_predict(phi[index] @ phi[index].T, phi @ phi[index].T, y[index],
                                   params.ridge, active)  # fmt: skip
    else:
        predicted = _mlp_predict(params, index, active, k_model).astype(y.dtype)
    error = (predicted - y) ** 2
    left = 1 - jnp.zeros(size, y.dtype).at[index].max(active)[population]  # 1: not drawn
    return Obs(
        jnp.mean(error[population]),
        left @ error[population] / jnp.sum(left),
        active @ error[index] / jnp.sum(active),
    )
