import functools
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked

from spectral_sim import PowerLaw, simulate
from spectral_sim._types import Simulator
from spectral_sim.models import linear


def _params(s=2.0, a=2.0, lr=0.3, batch=2):
    return linear.Params(PowerLaw(s=s, a=a, n_modes=32), lr=lr, noise=0.01, batch=batch)


def test_trajectory_does_not_depend_on_the_record_schedule(key):
    params = _params()
    _, every_step = simulate.trajectory(linear, params, key, n_records=40)
    state, sparse = simulate.trajectory(linear, params, key, steps=[3, 17, 40])
    np.testing.assert_array_equal(sparse.loss, every_step.loss[np.array([2, 16, 39])])
    assert int(state.t) == 40


def test_recording_every_step_traces_the_step_once(key):
    """With a record at every step there is nothing to run between records: the program holds
    the step once (inside the scan over records), not also in an inner loop of zero trips,
    which XLA compiled all the same (about 20 % of a small attention program's compile)."""

    def loops(**schedule):
        jaxpr = jax.make_jaxpr(lambda k: simulate.trajectory(linear, _params(), k, **schedule))
        return str(jaxpr(key)).count("while[")

    assert loops(n_records=8) == 0  # the scan over records only
    assert loops(n_records=4, every=2) == 1  # an inner fori_loop between records


def test_record_steps_and_log_steps():
    np.testing.assert_array_equal(simulate.record_steps(n_records=3, every=5), [5, 10, 15])
    steps = simulate.log_steps(10_000, 30)
    assert steps[0] == 1 and steps[-1] == 10_000 and np.all(np.diff(steps) > 0)
    for bad in ([0, 1], [2, 2], [], [1.5]):
        with unchecked(), pytest.raises(ValueError, match="steps"):
            simulate.record_steps(steps=bad)
    with pytest.raises(ValueError, match="n_records"):
        simulate.record_steps(n_records=0)


def test_divergence_flags_the_first_bad_record():
    loss = jnp.array([[1.0, 2.0, 3.0], [1.0, jnp.nan, 1.0], [1.0, 0.5, 50.0]])
    diverged, step = simulate.divergence(loss, jnp.array([10, 20, 30]), limit=10.0)
    np.testing.assert_array_equal(diverged, [False, True, True])
    np.testing.assert_array_equal(step, [-1, 20, 30])


def test_new_grid_values_reuse_the_compiled_program(key):
    """Swept fields are traced leaves: a new (s, a, lr) grid must not retrace."""

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(s, a, lr, keys):
        params = jax.vmap(lambda s, a, lr: _params(s, a, lr))(s, a, lr)
        one = functools.partial(simulate.trajectory, linear, n_records=4, every=5)
        over_seeds = jax.vmap(one, in_axes=(None, 0))
        return jax.vmap(over_seeds, in_axes=(0, None))(params, keys)[1].loss

    keys = jax.random.split(key, 3)
    first = run(jnp.array([1.5, 2.0]), jnp.array([2.0, 3.0]), jnp.array([0.1, 0.2]), keys)
    second = run(jnp.array([2.5, 3.0]), jnp.array([1.5, 2.5]), jnp.array([0.3, 0.05]), keys)
    chex.assert_shape([first, second], (2, 3, 4))
    chex.assert_tree_all_finite(second)


def test_as_simulator_takes_a_simulator_or_a_model_module():
    from_module = simulate.as_simulator(linear)
    assert type(from_module) is Simulator
    assert from_module == Simulator(linear.init, linear.step, linear.draw, linear.step_with)
    # a `draw` without its `step_with` (another meaning of the name) is not the split step
    half = types.SimpleNamespace(init=linear.init, step=linear.step, draw=lambda *a: 1 / 0)
    assert simulate.as_simulator(half) == Simulator(linear.init, linear.step)
    assert type(simulate.as_simulator(linear.gd)) is Simulator  # a Simulator subclass, as plain
    assert simulate.as_simulator(linear.gd) == linear.gd()
    for bad in (jax, linear.Params, 3.0):
        with pytest.raises(TypeError, match="is not a model"):
            simulate.as_simulator(bad)
    with pytest.raises(TypeError, match="is not a model"):
        simulate.trajectory(jax.numpy, _params(), None, steps=[1])


@pytest.mark.slow_cases
@pytest.mark.parametrize("steps", [[1, 2, 70, 200], [130, 131, 500]])
def test_drawing_blocks_of_steps_at_once_keeps_the_stream(steps, monkeypatch):
    """A Simulator with draw and step_with has its steps' random inputs drawn in blocks of up to
    simulate.BLOCK at once (with steps between blocks and records drawn one by one): the same
    draws as step's, so the same trajectory as the step-by-step Simulator(init, step), to the
    rounding of XLA fusing the two programs differently (measured 4e-16 in float64). Blocks
    are drawn from BLOCK_MIN_DRAWS random numbers per run on (here from 0, so that the test's
    small run uses them)."""
    monkeypatch.setattr(simulate, "BLOCK_MIN_DRAWS", 0)
    params = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=16), lr=0.3, noise=0.01, batch=2)
    key = jax.random.key(3)
    blocked = simulate.trajectory(linear.sgd(), params, key, steps=steps)
    one_by_one = simulate.trajectory(Simulator(linear.init, linear.step), params, key, steps=steps)
    chex.assert_trees_all_close(blocked, one_by_one, rtol=1e-12)
    assert simulate._block(np.diff(steps, prepend=0)) in range(
        simulate.BLOCK // 2, simulate.BLOCK + 1
    )
    assert simulate._block(np.array([125] * 4)) == 62  # 124 free steps: two blocks of 62


def test_float32_casts_floating_leaves_and_keeps_the_others():
    params = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=8), lr=0.1, batch=4)
    cast = simulate.float32(params)
    floats = [leaf for leaf in jax.tree.leaves(cast) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert floats and all(leaf.dtype == jnp.float32 for leaf in floats)
    tree = simulate.float32(dict(x=np.arange(3), m=np.ones(2, bool), y=np.ones(2)))
    assert (tree["x"].dtype, tree["m"].dtype, tree["y"].dtype) == (
        jnp.int64,
        jnp.bool_,
        jnp.float32,
    )
