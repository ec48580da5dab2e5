"""Real data sets, offline, as data matrices and kernel matrices whose spectra the estimators in
`spectral_sim.fit` measure (issue: s_data vs s_eff).

- `digits()`: scikit-learn's 1,797 8x8 handwritten digits (shipped inside the package);
- `shakespeare()`: the tiny-Shakespeare corpus, shipped as package data beside this module;
- `chinchilla()`: the 245 (N, C, D, loss) points of the Chinchilla training runs (Hoffmann et
  al. 2022, Figure 4, as extracted by Besiroglu et al. 2024), shipped beside it too;
- `ngram_counts(text, n=, block=, top=)`: bag-of-character-n-gram counts of consecutive text
  blocks (rows: blocks, columns: the `top` most frequent n-grams); `word_counts` the same for
  words;
- `kernel_matrix(x, kind=)`: RBF, Laplace or the arc-cosine kernel of order 1 (the NNGP of an
  infinitely wide one-hidden-layer ReLU network);
- `spectrum(x, y=)` / `kernel_spectrum(k, y=)`: the eigenvalues and the target's power per mode,
  as an `Empirical` spectrum.

Everything validates its input (NaN, constant features, empty text) with an error naming it.
"""

import collections
import pathlib
import re
from typing import TYPE_CHECKING

import jax
import numpy as np

from spectral_sim._types import ArrayLike, Float
from spectral_sim.checks import check_count
from spectral_sim.spectra import Empirical, eigh_descending

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATA",
    "KERNELS",
    "chinchilla",
    "digits",
    "kernel_matrix",
    "kernel_spectrum",
    "ngram_counts",
    "shakespeare",
    "spectrum",
    "word_counts",
]

DATA = pathlib.Path(__file__).resolve().parent
"""The folder of the data files, installed with the package (its README.md says where each one
comes from)."""

KERNELS = ("rbf", "laplace", "arccos")


def digits() -> tuple[np.ndarray, np.ndarray]:
    """(x, y): 1,797 images as rows of 64 pixel intensities in [0, 1], and their labels 0-9."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return np.asarray(x, float) / 16.0, np.asarray(y)


def chinchilla() -> "pd.DataFrame":
    """The Chinchilla training runs as a DataFrame with columns `N` (parameters), `C` (training
    FLOP), `D` = C / (6 N) (tokens) and `loss` (final training loss), one row per run."""
    import pandas as pd

    raw = pd.read_csv(DATA / "chinchilla_figure4_points.csv")
    n, c = raw["Model Size"].to_numpy(float), raw["Training FLOP"].to_numpy(float)
    return pd.DataFrame({"N": n, "C": c, "D": c / (6 * n), "loss": raw["loss"].to_numpy(float)})


def shakespeare(path: str | pathlib.Path | None = None) -> str:
    """The tiny-Shakespeare text (about 1.1 MB)."""
    path = DATA / "tinyshakespeare.txt" if path is None else pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path must name the tiny-Shakespeare text file; {path} is not one")
    return path.read_text(encoding="utf-8")


def _blocks(text: str, block: int) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    check_count("block", block, low=1)
    blocks = [text[i : i + block] for i in range(0, len(text) - block + 1, block)]
    if len(blocks) < 2:
        raise ValueError(f"text must hold at least 2 blocks of {block} characters; got {len(text)}")
    return blocks


def _counts(items_per_row: list[list[str]], top: int, what: str) -> np.ndarray:
    check_count("top", top, low=1)
    frequency = collections.Counter(item for items in items_per_row for item in items)
    if not frequency:
        raise ValueError(f"text must contain at least one {what}")
    vocabulary = {item: j for j, (item, _) in enumerate(frequency.most_common(top))}
    x = np.zeros((len(items_per_row), len(vocabulary)))
    for i, items in enumerate(items_per_row):
        for item in items:
            j = vocabulary.get(item)
            if j is not None:
                x[i, j] += 1
    return x


def ngram_counts(text: str, *, n: int = 2, block: int = 256, top: int = 512) -> np.ndarray:
    """Counts of the `top` most frequent character n-grams in each consecutive block of `block`
    characters: a (blocks x top) data matrix whose covariance is the n-gram co-occurrence
    spectrum of the text."""
    check_count("n", n, low=1)
    blocks = _blocks(text, block)
    return _counts([[b[i : i + n] for i in range(len(b) - n + 1)] for b in blocks], top,
                   f"{n}-gram")  # fmt: skip


def word_counts(text: str, *, block: int = 1024, top: int = 1024) -> np.ndarray:
    """Counts of the `top` most frequent (lower-cased) words in each block of `block`
    characters: a bag-of-words data matrix."""
    blocks = _blocks(text, block)
    return _counts([re.findall(r"[a-z']+", b.lower()) for b in blocks], top, "word")


def _check_matrix(x: ArrayLike, name: str) -> np.ndarray:
    data = np.asarray(x, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"{name} must be a (samples >= 2, features) matrix; got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return data


def _check_features(x: np.ndarray) -> None:
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
    if constant.size:
        raise ValueError(
            f"x must not have constant features (they carry no variance); features "
            f"{constant[:5].tolist()}{'...' if constant.size > 5 else ''} are constant: drop them"
        )


def kernel_matrix(
    x: Float[ArrayLike, "samples dim"], *, kind: str = "rbf", bandwidth: float | None = None
) -> np.ndarray:
    """K_ij = k(x_i, x_j) for kind "rbf" (exp(-|x - x'|^2 / (2 h^2))), "laplace"
    (exp(-|x - x'| / h)), both with the median pairwise distance as the default bandwidth h, or
    "arccos" (order 1: |x||x'| (sin t + (pi - t) cos t) / pi, t the angle between x and x', the
    NNGP of a wide ReLU layer; no bandwidth)."""
    data = _check_matrix(x, "x")  # constant features are harmless here: distances ignore them
    if kind not in KERNELS:
        raise ValueError(f"kind must be one of {KERNELS}; got {kind!r}")
    if bandwidth is not None and not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0; got {bandwidth!r}")
    if kind == "arccos":
        norms = np.linalg.norm(data, axis=1)
        if np.any(norms == 0):
            raise ValueError("x must not have all-zero rows for the arc-cosine kernel")
        cosine = np.clip(data @ data.T / np.outer(norms, norms), -1.0, 1.0)
        angle = np.arccos(cosine)
        return np.outer(norms, norms) * (np.sin(angle) + (np.pi - angle) * cosine) / np.pi
    squared = np.sum(data**2, axis=1)
    distance2 = np.maximum(squared[:, None] + squared[None] - 2 * data @ data.T, 0.0)
    distance = np.sqrt(distance2)
    h = (
        float(np.median(distance[np.triu_indices(len(data), 1)]))
        if bandwidth is None
        else bandwidth
    )
    if kind == "rbf":
        return np.exp(-distance2 / (2 * h**2))
    return np.exp(-distance / h)


def spectrum(x: Float[ArrayLike, "samples dim"], y: ArrayLike | None = None) -> Empirical:
    """The centred covariance spectrum of x (and the target's power per mode, for labels y):
    `Empirical.from_data` after the checks above."""
    data = _check_matrix(x, "x")
    _check_features(data)
    return Empirical.from_data(data, y)


def kernel_spectrum(
    k: Float[ArrayLike, "samples samples"], y: ArrayLike | None = None, *, rtol: float = 1e-10
) -> Empirical:
    """The empirical kernel operator's spectrum: eigenvalues of K / n (descending; numerically
    zero ones dropped) and the target's power per mode v_k^2 = (u_k . y)^2 / n for labels y
    (centred), or the isotropic prior v_k^2 = lambda_k without them."""
    kernel = _check_matrix(k, "k")
    n = kernel.shape[0]
    if kernel.shape != (n, n) or not np.allclose(kernel, kernel.T):
        raise ValueError(f"k must be a symmetric (samples x samples) matrix; got {kernel.shape}")
    lam, vectors = eigh_descending(kernel / n, rtol=rtol)
    if y is None:
        power = lam
    else:
        labels = np.asarray(y, dtype=float)
        if labels.shape != (n,) or not np.all(np.isfinite(labels)):
            raise ValueError(f"y must be a finite vector of shape ({n},); got {labels.shape}")
        power = (vectors.T @ (labels - labels.mean())) ** 2 / n
    return Empirical(*jax.device_put((lam, power)))  # no compile, unlike jnp.asarray
