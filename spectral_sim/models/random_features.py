"""Random-feature linear regression trained by one-pass minibatch SGD (THEORY.md §2.4, §2.8).

Model f(x) = theta . (F^T x), F in R^{M x N} with iid N(0, 1/N) entries (N = n_features) drawn
from `feature_seed`, data x = sqrt(lambda) * g, y = x . w* + xi. With z = F^T x:
    theta <- theta - (lr / B) Z^T (Z theta - y)   on fresh samples,
population loss L(theta) = 1/2 (F theta - w*)^T Sigma (F theta - w*).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, Float, Int, Key, Leaf, Swept
from spectral_sim.checks import all_of, check_spectrum, concrete
from spectral_sim.diagnostics import compression
from spectral_sim.spectra import Spectrum

__all__ = ["Obs", "Params", "State", "draw", "features", "init", "loss", "residual", "step"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Random-feature SGD: spectrum, learning rate, label-noise variance sigma^2, the seed of F
    (a traced integer: its own sweep axis, independent of the SGD stream), the number of features
    N and the batch size (both static: they set shapes)."""

    spectrum: Spectrum
    lr: Swept = 0.1
    noise: Swept = 0.0
    feature_seed: int | Int[Leaf, "*grid"] = 0
    n_features: int = dataclasses.field(default=64, metadata=dict(static=True))
    batch: int = dataclasses.field(default=1, metadata=dict(static=True))

    def __post_init__(self):
        check_spectrum("spectrum", self.spectrum)
        with all_of() as check:
            check.range("lr", self.lr, gt=0)
            check.range("noise", self.noise, ge=0)
            seed = concrete(self.feature_seed)
            message = f"feature_seed must be an integer >= 0; got {self.feature_seed!r}"
            if check.that(seed is None or seed.dtype.kind in "iu", message):
                check.range("feature_seed", self.feature_seed, ge=0)
            check.count("n_features", self.n_features)
            check.count("batch", self.batch)


class State(NamedTuple):
    """features: F (modes x features), fixed for the run; theta: the trained readout."""

    features: Float[Array, "modes dim"]
    theta: Float[Array, " dim"]


class Obs(NamedTuple):
    """loss: population excess loss 1/2 (F theta - w*)^T Sigma (F theta - w*) after the step."""

    loss: Float[Array, ""]


def features(params: Params) -> Float[Array, "modes dim"]:
    """F with iid N(0, 1/N) entries from key(feature_seed): the same F for every SGD seed."""
    lam = params.spectrum.eigenvalues()
    key = jax.random.key(params.feature_seed)
    shape = (lam.shape[-1], params.n_features)
    return jax.random.normal(key, shape, lam.dtype) * params.n_features**-0.5


def loss(params: Params, state: State) -> Float[Array, ""]:
    """L = 1/2 sum_k lambda_k ((F theta)_k - w*_k)^2."""
    deviation = state.features @ state.theta - params.spectrum.target()
    return 0.5 * deviation**2 @ params.spectrum.eigenvalues()


def init(params: Params, key: Key[Array, ""] | None) -> State:
    """F from params.feature_seed (not from `key`, so trajectory seeds vary only the SGD stream)
    and theta = 0."""
    del key
    f = features(params)
    return State(f, jnp.zeros(f.shape[-1], f.dtype))


def draw(params: Params, key: Key[Array, ""]) -> tuple[Float[Array, "batch modes"],
                                                        Float[Array, " batch"]]:  # fmt: skip
    """The step's B fresh samples x = sqrt(lambda) g and their label noise xi."""
    lam = params.spectrum.eigenvalues()
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (params.batch, lam.shape[-1]), lam.dtype) * jnp.sqrt(lam)[None]
    return x, jnp.sqrt(params.noise) * jax.random.normal(kn, (params.batch,), lam.dtype)


def residual(params: Params, state: State, drawn) -> tuple[Float[Array, "batch dim"],
                                                            Float[Array, " batch"]]:  # fmt: skip
    """Z = X F and Z theta - y on the drawn samples: the gradient is Z^T (Z theta - y) / B."""
    x, xi = drawn
    z = x @ state.features
    return z, z @ state.theta - (x @ params.spectrum.target() + xi)


def step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    """One SGD step on B fresh samples, theta <- theta - (lr/B) Z^T (Z theta - y), Z = X F."""
    z, r = residual(params, state, draw(params, key))
    theta = state.theta - params.lr / params.batch * z.T @ r
    state = State(state.features, theta)
    return state, Obs(loss(params, state))


def _trained(params: Params, state: State) -> tuple[compression.Quadratic, Float[Array, " dim"]]:
    """The readout theta, mapped to the eigenbasis by A = F (`diagnostics.compression.trained`)."""
    return compression.Quadratic(params.spectrum, state.features), state.theta


compression.register(Params, (State,), _trained)
