"""Synthetic update windows with known spectra (THEORY.md §5.2): W updates u_t in R^P,

    U = C S V^T + Xi,   C in R^(W x r) and V in R^(P x r) orthonormal, Xi iid N(0, sigma_xi^2 / P),

so that for P >> W the Gram matrix U U^T tends to C S^2 C^T + sigma_xi^2 I: sigma_j^2 = s_j^2 +
sigma_xi^2 for j <= r and sigma_xi^2 beyond. `window` draws one (vmap it over keys);
`theory.update_stream` has the predictions and the Wedin bound on the recovered subspace.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, Float, Key, Leaf, Swept
from spectral_sim.checks import all_of, concrete

__all__ = ["Params", "Window", "window"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """W updates of size P with r = len(s) signal directions of strengths s (traced) and noise
    level sigma_xi (traced)."""

    s: Float[Leaf, "*grid r"]
    noise: Swept = 1.0
    W: int = dataclasses.field(default=10, metadata=dict(static=True))
    P: int = dataclasses.field(default=10_000, metadata=dict(static=True))

    def __post_init__(self):
        with all_of() as check:
            window = check.count("W", self.W, low=2)
            if window:
                check.count("P", self.P, low=self.W + 1)
            check.range("noise", self.noise, ge=0)
            s = concrete(self.s)
            if s is not None and window:  # leading axes, if any, are a stacked grid of Params
                if check.that(s.ndim >= 1 and 1 <= s.shape[-1] < self.W,
                              f"s must list 1 to W - 1 = {self.W - 1} strengths; got shape "
                              f"{s.shape}"):  # fmt: skip
                    check.range("s", s, ge=0)


class Window(NamedTuple):
    """U (W x P), its time courses C (W x r), directions V (P x r) and noise Xi."""

    U: Float[Array, "W P"]
    C: Float[Array, "W r"]
    V: Float[Array, "P r"]
    noise: Float[Array, "W P"]


def window(params: Params, key: Key[Array, ""]) -> Window:
    """One window: C, V from QR of Gaussian matrices, then U = C diag(s) V^T + Xi."""
    s = jnp.asarray(params.s)
    r = s.shape[0]
    k_c, k_v, k_xi = jax.random.split(key, 3)
    C = jnp.linalg.qr(jax.random.normal(k_c, (params.W, r), s.dtype))[0]
    V = jnp.linalg.qr(jax.random.normal(k_v, (params.P, r), s.dtype))[0]
    scale = jnp.asarray(params.noise, s.dtype) / jnp.sqrt(jnp.asarray(params.P, s.dtype))
    xi = scale * jax.random.normal(k_xi, (params.W, params.P), s.dtype)
    return Window((C * s[None, :]) @ V.T + xi, C, V, xi)
