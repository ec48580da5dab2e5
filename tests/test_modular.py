"""The modular-arithmetic training harness (models.modular): a vmapped batch of networks trains,
the Gram window follows the real updates, and bad input is rejected."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked

from spectral_sim import simulate
from spectral_sim.diagnostics import gram, grokking
from spectral_sim.models import modular


@pytest.mark.slow
def test_a_vmapped_batch_fits_its_training_pairs():
    """p = 7, 4 seeds, AdamW: every network fits its training pairs within 600 steps; the
    records are finite once the window is full; the detector runs on the recorded curves."""
    params = modular.Params(p=7, width=8, hidden=32, lr=1e-2, weight_decay=0.1, window=4)

    def run(key):
        return simulate.trajectory(modular, params, key, n_records=6, every=100)[1]

    obs = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 4))
    assert np.all(np.asarray(obs.train_accuracy[:, -1]) == 1.0)
    names = ("train_loss", "test_loss", "gap_ratio", "centred_gap_ratio", "adiabatic_rel",
             "adiabatic_rot")  # fmt: skip
    for name in names:
        assert np.all(np.isfinite(np.asarray(getattr(obs, name)))), name
    assert np.all((np.asarray(obs.k_star) >= 1) & (np.asarray(obs.k_star) <= 3))
    centred = np.asarray(obs.centred_k_star)  # rank W - 1 = 3: k* in {1, 2}
    assert np.all((centred >= 1) & (centred <= 2))
    steps = np.arange(100, 601, 100)
    found = grokking.event(obs.train_accuracy, obs.test_accuracy, steps, delay=200)
    assert found.grokked.shape == (4,)


@pytest.mark.slow  # trains to a fit (19 s)
def test_a_two_layer_transformer_fits_under_muon():
    """p = 7, 2 seeds: the 2-layer transformer fits all its training pairs within 300 steps under
    Muon (every weight matrix 2-d; at lr 1e-2 one pair of the 24 may flip back and forth
    afterwards); its groups are the embeddings, positions, each layer and the readout."""
    params = modular.Params(p=7, model="transformer", width=16, hidden=32, layers=2, lr=1e-2,
                            weight_decay=0.1, window=4, optimizer="muon")  # fmt: skip

    def run(key):
        return simulate.trajectory(modular, params, key, n_records=3, every=100)[1]

    obs = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(3), 2))
    train = np.asarray(obs.train_accuracy)
    assert np.all(train.max(1) == 1.0) and np.all(train[:, -1] >= 23 / 24)
    assert set(obs.group_k_star) == {"embed", "position", "layer1", "layer2", "out"}


@pytest.mark.slow
def test_the_window_holds_the_optimiser_updates():
    """After three steps the window's rows are the flattened parameter changes."""
    params = modular.Params(p=5, width=4, hidden=8, window=3, lr=1e-2)
    state = modular.init(params, jax.random.key(1))
    history = [gram.ravel(state.weights)]
    step = jax.jit(modular.step)
    for _ in range(3):
        state, _ = step(params, state, None)
        history.append(gram.ravel(state.weights))
    updates = np.diff(np.stack(history), axis=0)
    np.testing.assert_allclose(state.window.updates, updates, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        gram.chronological(state.window), updates @ updates.T, rtol=1e-4, atol=1e-9
    )
    assert float(state.train.sum()) == round(0.5 * 25)


def test_b2_is_adamws_second_moment_decay():
    """After one update with gradient 2 the second moment is (1 - b2) 4 (optax's AdamW)."""
    tree = {"w": jnp.ones(3, jnp.float32)}
    for b2 in (0.98, 0.5):
        optimizer = modular._optimizer(modular.Params(b2=b2))
        _, state = optimizer.update({"w": jnp.full(3, 2.0, jnp.float32)},
                                    optimizer.init(tree), tree)  # fmt: skip
        np.testing.assert_allclose(state[0].nu["w"], (1 - b2) * 4, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(p=2), "p"),
        (dict(train_fraction=1.0), "train_fraction"),
        (dict(train_fraction=0.0), "train_fraction"),
        (dict(window=2), "window"),
        (dict(op="/"), "op"),
        (dict(model="cnn"), "model"),
        (dict(model="transformer", layers=3), "layers"),
        (dict(model="transformer", width=30, heads=4), "width"),
        (dict(optimizer="lion"), "optimizer"),
        (dict(lr=-1.0), "lr"),
        (dict(b2=1.0), "b2"),
    ],
)
def test_bad_input_is_rejected_before_tracing(kwargs, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        modular.Params(**kwargs)


@pytest.mark.slow
def test_groups_and_gradients_windows():
    """Per-group windows hold each top-level module's updates (their Grams sum to the whole
    model's); with plain SGD (no decay) the gradient window is the update window / lr^2."""
    base = dict(p=5, width=4, hidden=8, window=3, optimizer="sgd", lr=0.1, weight_decay=0.0)
    key = jax.random.key(2)
    states = {}
    for track in ("updates", "gradients"):
        params = modular.Params(**base, track=track)
        state = modular.init(params, key)
        step = jax.jit(modular.step)
        for _ in range(4):
            state, obs = step(params, state, None)
        states[track] = state
    updates = states["updates"]
    assert set(updates.groups) == {"embed", "hidden", "out"}
    total = sum(w.gram for w in updates.groups.values())
    np.testing.assert_allclose(total, updates.window.gram, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(
        states["gradients"].window.gram * 0.1**2, updates.window.gram, rtol=1e-4, atol=1e-10
    )
    assert set(obs.group_k_star) == {"embed", "hidden", "out"}
