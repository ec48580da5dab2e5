"""The sweep engine: results independent of devices and chunking, resumable after SIGKILL,
one compile per group, clear errors before any compile."""

import dataclasses
import functools
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectral_sim import PowerLaw, simulate, sweep
from spectral_sim.models import linear

STEPS = [1, 10, 40]


def make(s, lr, batch=1, noise=0.0):
    return linear.Params(PowerLaw(s=s, a=2.0, n_modes=32), lr=lr, noise=noise, batch=batch)


def run_sgd(params, key):
    return simulate.trajectory(linear, params, key, steps=STEPS)[1]


GRID = sweep.Grid(product=dict(s=[1.5, 2.0, 3.0], lr=[0.1, 0.3], batch=[1, 4]), n_seeds=3)


def _sweep(**kwargs):
    kwargs = dict(dims={"loss": ("step",)}, coords={"step": STEPS}, progress=False) | kwargs
    return sweep.run(run_sgd, make, GRID, **kwargs)


@pytest.fixture(scope="module")
def reference():
    return _sweep(devices=1)


def test_divergent_points_are_flagged_not_fatal():
    def long_run(params, key):
        return simulate.trajectory(linear, params, key, steps=[10, 1000])[1]

    grid = sweep.Grid(product=dict(s=[2.0], lr=[0.1, 100.0]), n_seeds=2)
    data = sweep.run(long_run, make, grid, progress=False)
    assert not data.nonfinite.sel(lr=0.1).any() and data.nonfinite.sel(lr=100.0).all()
    assert np.isfinite(data.loss.sel(lr=0.1)).all()


def test_save_and_load_round_trip(reference, tmp_path):
    path = sweep.save(reference, tmp_path / "sweep.nc")
    assert sweep.load(path).identical(reference)


def test_dataset_layout_and_provenance(reference):
    assert dict(reference.loss.sizes) == dict(s=3, lr=2, batch=2, seed=3, step=3)
    np.testing.assert_array_equal(reference.batch, [1, 4])
    assert not reference.nonfinite.any()
    for key in ("package_version", "git_commit", "jax_version", "devices", "process_count"):
        assert key in reference.attrs
    assert reference.attrs["compile_groups"] == 2  # batch sets a shape: one group per value
    # A point equals the same config run on its own with the key the engine derives.
    point = reference.loss.sel(s=2.0, lr=0.3, batch=4).values
    keys = [jax.random.fold_in(jax.random.key(0), seed) for seed in range(3)]
    alone = np.stack([run_sgd(make(2.0, 0.3, 4), k).loss for k in keys])
    np.testing.assert_allclose(point, alone, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [dict(devices=8), dict(devices=1, chunk_size=1), dict(devices=1, chunk_size=7),
     dict(devices=3, chunk_size=4), dict(devices=8, chunk_size=100)],
)  # fmt: skip
@pytest.mark.slow_cases
def test_results_do_not_depend_on_devices_or_chunks(reference, kwargs):
    np.testing.assert_array_equal(_sweep(**kwargs).loss.values, reference.loss.values)


@pytest.mark.slow
def test_zipped_axes_and_independent_keys():
    grid = sweep.Grid(product=dict(lr=[0.1, 0.2]), zipped=dict(s=[1.5, 3.0], batch=[1, 2]))
    data = sweep.run(run_sgd, make, grid, common_random_numbers=False, progress=False)
    assert dict(data.sizes) == dict(lr=2, zip=2, seed=1, **{"loss_dim0": 3})
    np.testing.assert_array_equal(data.s, [1.5, 3.0])


def test_a_zipped_axis_holding_one_value_is_static(reference):
    """batch sets a shape: zipped beside s with the same value at every point it is one compile
    group's static value (it used to be vmapped, and the Params refused a traced batch)."""
    grid = sweep.Grid(product=dict(lr=[0.1, 0.3]), zipped=dict(s=[1.5, 3.0], batch=[4, 4]),
                      n_seeds=3)  # fmt: skip
    the_plan = sweep.plan(make, grid)
    assert the_plan.static_axes == ("batch",) and len(the_plan.groups) == 1
    data = sweep.run(run_sgd, make, grid, devices=1, progress=False)
    expected = reference.loss.sel(s=[1.5, 3.0], batch=4).transpose("lr", "s", "seed", "step")
    np.testing.assert_array_equal(data.loss.values, expected.values)


def test_static_axes_are_found_making_each_distinct_value_once():
    """Zipped axes repeat their values; planning builds one Params per distinct value of an
    axis (1 + 2 distinct s + 1 other batch + 1 other lr here, not one per point), and still
    finds batch static (a shape) and s, lr traced."""
    calls = []

    def counted(s, lr, batch):
        calls.append((s, lr, batch))
        return make(s, lr, batch)

    grid = sweep.Grid(
        zipped=dict(s=[1.5, 2.0, 3.0] * 4, lr=[0.1, 0.3] * 6, batch=[1] * 6 + [4] * 6)
    )
    assert sweep.plan(counted, grid).static_axes == ("batch",)
    assert len(calls) == 5


@pytest.mark.slow
def test_axes_can_be_params_fields(reference):
    template = make(2.0, 0.1)
    grid = sweep.Grid(
        product={"spectrum.s": [1.5, 2.0, 3.0], "lr": [0.1, 0.3], "batch": [1, 4]}, n_seeds=3
    )
    data = sweep.run(run_sgd, sweep.make_from(template), grid, devices=2, progress=False)
    assert data.attrs["compile_groups"] == 2
    np.testing.assert_array_equal(data.loss.values, reference.loss.values)


@pytest.mark.slow
def test_a_changed_jax_config_is_not_served_a_stale_program():
    grid = sweep.Grid(product=dict(s=[1.5, 2.0], lr=[0.1]), n_seeds=2)
    key = jax.random.fold_in(jax.random.key(0), 1)  # seed 1 of point (1.5, 0.1)
    before, runs = jax.config.values["jax_threefry_partitionable"], []
    try:
        for partitionable in (before, not before):  # changes the bits of every normal draw
            jax.config.update("jax_threefry_partitionable", partitionable)
            runs.append(sweep.run(run_sgd, make, grid, progress=False).loss.values[0, 0, 1])
            alone = jax.jit(run_sgd)(make(1.5, 0.1), key).loss
            # vmapped vs unbatched programs differ by a few ulp; other random bits by O(1).
            np.testing.assert_allclose(runs[-1], alone, rtol=1e-12)
    finally:
        jax.config.update("jax_threefry_partitionable", before)
    assert not np.allclose(*runs, rtol=1e-3)


def test_fast_compile_reaches_the_program_and_agrees_with_the_optimized_one(reference, monkeypatch):
    """Options(compile="fast") compiles the chunk programs with FAST_CPU (other code generation,
    the same operations), which this XLA accepts: the values are the optimized program's (the
    reference, batch 1; common random numbers give a point the same keys in any grid) to float64
    rounding (40 steps: a reordered product or sum moves them by ~1e-15 relative)."""
    options = []
    chunk_program = sweep.execute._chunk_program

    def recording(*args):
        options.append(args[-1])
        return chunk_program(*args)

    monkeypatch.setattr(sweep.execute, "_chunk_program", recording)
    grid = sweep.Grid(product=dict(s=[1.5, 3.0], lr=[0.1, 0.3]), n_seeds=3)
    fast = sweep.Options(devices=1, progress=False, compile="fast").run("fast", run_sgd, make, grid)
    assert options and set(options) == {sweep.FAST_CPU}
    optimized = reference.loss.sel(s=[1.5, 3.0], batch=1).values
    np.testing.assert_allclose(fast.loss.values, optimized, rtol=1e-10)
    assert sweep.execute._compiler_options("optimized", jax.local_devices()) == ()


def test_one_compile_per_group():
    # 2 compile groups + 1 shape evaluation per call: the second call reuses both programs.
    traced = chex.assert_max_traces(run_sgd, n=4)
    for _ in range(2):
        sweep.run(traced, make, GRID, chunk_size=2, devices=1, progress=False)
    chex.clear_trace_counter()


def _eigh(params, key):
    features = jax.random.normal(key, (32, 16))
    kernel = features.T @ (params.spectrum.eigenvalues()[:, None] * features)
    return dict(mu=jnp.linalg.eigh(kernel)[0])


def test_lapack_sweeps_avoid_the_cpu_thread_pool_deadlock():
    """jaxlib < 0.11.2 can hang running batched eigh on several CPU devices at once (see
    sweep.LAPACK_POOL_FIXED): such a sweep runs on one device, says so, and gives the same
    numbers; a sweep without LAPACK calls keeps every device."""
    grid = sweep.Grid(product=dict(s=[1.5, 2.0, 3.0], lr=[0.1]), n_seeds=8)
    if jax.local_device_count() > 1 and sweep.planning._jaxlib_version() < sweep.LAPACK_POOL_FIXED:
        with pytest.warns(RuntimeWarning, match="LAPACK"):
            assert len(sweep.plan(make, grid, simulate=_eigh).devices) == 1
    assert len(sweep.plan(make, grid, simulate=run_sgd).devices) == jax.local_device_count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        runs = [sweep.run(_eigh, make, grid, progress=False).mu.values for _ in range(3)]
    # Seed 5 of s = 2 (common random numbers: key fold_in(key(0), 5)); vmapped vs unbatched
    # programs differ by a few ulp.
    alone = jax.jit(_eigh)(make(2.0, 0.1), jax.random.fold_in(jax.random.key(0), 5))["mu"]
    np.testing.assert_allclose(runs[0][1, 0, 5], alone, rtol=1e-12)
    for other in runs[1:]:
        np.testing.assert_array_equal(other, runs[0])


def test_resume_computes_only_missing_chunks(reference, tmp_path):
    first = _sweep(devices=1, chunk_size=4, out=tmp_path)
    chunks = sorted(tmp_path.glob("chunk-*.npz"))
    assert len(chunks) == 4  # 2 compile groups of 6 points, chunks of 4
    mtimes = {c: c.stat().st_mtime_ns for c in chunks}
    chunks[1].unlink()
    again = _sweep(devices=1, chunk_size=4, out=tmp_path)
    assert chunks[1].exists()
    assert all(c.stat().st_mtime_ns == mtimes[c] for c in (chunks[0], chunks[2]))
    np.testing.assert_array_equal(again.loss.values, first.loss.values)
    np.testing.assert_array_equal(first.loss.values, reference.loss.values)


def test_a_resumed_sweep_keeps_the_measured_memory(tmp_path):
    """The manifest keeps the memory measured when the chunk size was fitted, so a resumed
    sweep (and every process of a multi-process one) carries the same attrs."""
    kwargs = dict(common_random_numbers=False, devices=1, progress=False, out=tmp_path)
    first = sweep.run(big_temporary, make, GRID, chunk_budget=16 * 2**20, **kwargs)
    again = sweep.run(big_temporary, make, GRID, chunk_budget=16 * 2**20, **kwargs)
    assert 0 < first.attrs["bytes_per_device"] == again.attrs["bytes_per_device"]
    assert first.attrs["chunk"] == again.attrs["chunk"]
    # Resumed on another device count, the stored measurement no longer holds: unknown (-1).
    the_plan = sweep.plan(make, GRID, devices=8)
    stored = dict(chunk=4, bytes_per_device=5.0, devices=8)
    assert len(sweep.planning.resumed(the_plan, stored).devices) == 2
    assert sweep.planning.resumed(the_plan, stored).bytes_per_device is None
    assert sweep.planning.resumed(the_plan, stored | dict(devices=2)).bytes_per_device == 5.0


def test_changed_config_in_same_out_dir_is_refused(tmp_path):
    _sweep(devices=1, out=tmp_path, config=dict(version=1))
    with pytest.raises(ValueError, match="another config or code version"):
        _sweep(devices=1, out=tmp_path, config=dict(version=2))
    _sweep(devices=1, out=tmp_path, config=dict(version=2), overwrite=True)

    def run_sgd(params, key):  # same name, other code: another sweep
        return simulate.trajectory(linear, params, key, steps=STEPS[:2])[1]

    with pytest.raises(ValueError, match="another config or code version"):
        sweep.run(run_sgd, make, GRID, devices=1, out=tmp_path, config=dict(version=2))


MODEL = """
import jax.numpy as jnp

def run(params, key):
    return dict(loss=jnp.asarray(params.lr) * {factor})
"""


def test_an_edited_model_is_another_sweep(tmp_path, monkeypatch):
    """The fingerprint digests what is computed (the jaxpr and its constants), so a model edited
    in a user's own module, committed or not, refuses the stored chunks instead of resuming."""
    import importlib

    (tmp_path / "user_model.py").write_text(MODEL.format(factor=1.0))
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_model  # type: ignore[import-not-found]

    _sweep_with = functools.partial(sweep.run, make=make, grid=GRID, devices=1, progress=False,
                                    out=tmp_path / "out")  # fmt: skip
    _sweep_with(user_model.run)
    _sweep_with(user_model.run)  # unchanged: resumed
    (tmp_path / "user_model.py").write_text(MODEL.format(factor=2.0))
    importlib.reload(user_model)
    with pytest.raises(ValueError, match="another config or code version"):
        _sweep_with(user_model.run)


@pytest.mark.slow
def test_closures_over_other_optimizers_are_other_sweeps(tmp_path):
    """Two simulators from one factory (same code, other optimizer) do not share chunks."""
    import optax

    sgd = linear.optimizer()
    adam = linear.optimizer(lambda p: optax.adam(p.lr))

    def runner(model):
        return lambda params, key: simulate.trajectory(model, params, key, steps=STEPS)[1]

    sweep.run(runner(sgd), make, GRID, devices=1, progress=False, out=tmp_path)
    with pytest.raises(ValueError, match="another config or code version"):
        sweep.run(runner(adam), make, GRID, devices=1, progress=False, out=tmp_path)


JOB = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
from spectral_sim import PowerLaw, simulate, sweep
from spectral_sim.models import linear

def make(s, lr):
    return linear.Params(PowerLaw(s=s, a=2.0, n_modes=64), lr=lr, noise=0.01, batch=4)

def run_sgd(params, key):
    return simulate.trajectory(linear, params, key, steps=[2000])[1]

GRID = sweep.Grid(product=dict(s=[1.5, 2.0, 2.5, 3.0], lr=[0.05, 0.1, 0.15, 0.2]), n_seeds=64)

def main(out, progress=False):
    return sweep.run(run_sgd, make, GRID, out=out, chunk_size=2, devices=1, progress=progress)

if __name__ == "__main__":  # run as the module the test imports, so the fingerprints match
    from sweep_job import main as imported_main

    imported_main(sys.argv[1])
"""


@pytest.mark.slow  # three processes, one killed (33 s)
def test_sigkill_mid_sweep_then_resume_is_bitwise_identical(tmp_path, monkeypatch):
    (tmp_path / "sweep_job.py").write_text(textwrap.dedent(JOB))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=str(tmp_path))
    job = subprocess.Popen([sys.executable, "-m", "sweep_job", str(out)], env=env)
    deadline = time.monotonic() + 120
    while len(list(out.glob("chunk-*.npz"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    done = sorted(out.glob("chunk-*.npz"))
    assert 2 <= len(done) < 8, "the job must be killed mid-way"
    mtimes = {c: c.stat().st_mtime_ns for c in done}

    import sweep_job

    resumed = sweep_job.main(out)
    assert all(c.stat().st_mtime_ns == mtimes[c] for c in done)  # finished work was kept
    assert len(list(out.glob("chunk-*.npz"))) == 8 and not list(out.glob(".tmp-*"))
    fresh = sweep_job.main(tmp_path / "fresh")
    np.testing.assert_array_equal(resumed.loss.values, fresh.loss.values)


DISTRIBUTED_JOB = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
port, process_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
from spectral_sim import sweep
from test_sweep import GRID, make, run_sgd
data = sweep.run(run_sgd, make, GRID, out=out, chunk_size=2, progress=False)
assert data.attrs["process_count"] == 2
sweep.save(data, f"{out}/process-{process_id}.nc")
"""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # two processes under jax.distributed (10 s)
def test_two_processes_under_jax_distributed_equal_one(reference, tmp_path):
    (tmp_path / "job.py").write_text(textwrap.dedent(DISTRIBUTED_JOB))
    tests = str(pathlib.Path(__file__).parent)  # the job imports this module's sweep
    env = dict(os.environ, PYTHONPATH=tests, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    port, out = str(_free_port()), tmp_path / "out"
    jobs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "job.py"), port, str(i), str(out)], env=env
        )
        for i in range(2)
    ]
    assert [job.wait(timeout=300) for job in jobs] == [0, 0]
    assert len(list(out.glob("chunk-*.npz"))) == 4  # 2 groups of 6 points, chunks of 2 x 2
    for i in range(2):  # each process assembled the whole grid
        data = sweep.load(out / f"process-{i}.nc")
        np.testing.assert_array_equal(data.loss.values, reference.loss.values)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sweep.Grid(product=dict(s=[])), "axis 's' is empty"),
        (lambda: sweep.Grid(zipped=dict(s=[1.0], lr=[1.0, 2.0])), "equal lengths"),
        (lambda: sweep.plan(make, sweep.Grid(product=dict(s=[1.5], eta=[0.1]))), "eta"),
        (lambda: sweep.plan(make, sweep.Grid(product=dict(s=[1.5])), chunk_budget=-1), "budget"),
        (lambda: sweep.plan(make, GRID, devices=99), "devices"),
        (
            lambda: sweep.plan(sweep.make_from(make(2.0, 0.1)), sweep.Grid({"spectrum.q": [1]})),
            r"\['spectrum.q'\] do not match a field of the Params; valid: \['spectrum', ",
        ),
        (
            lambda: sweep.plan(sweep.make_from(make(2.0, 0.1)), sweep.Grid({"lr": [0.1, -1.0]})),
            "lr must be finite and > 0",
        ),
        (lambda: sweep.plan(make, sweep.Grid(product=dict(s=[-1.0], lr=[0.1]))), "PowerLaw.s"),
    ],
)
def test_bad_input_is_rejected_before_any_compile(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_batch_dependent_prngs_are_refused():
    before = jax.config.values["jax_default_prng_impl"]
    try:
        jax.config.update("jax_default_prng_impl", "rbg")
        with pytest.raises(ValueError, match="draws a vmapped batch's bits from its first key"):
            sweep.plan(make, GRID)
    finally:
        jax.config.update("jax_default_prng_impl", before)


def test_unwritable_out_dir_is_rejected(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="not writable"):
        _sweep(out=blocker / "sub")


def big_temporary(params, key):
    """A scalar output whose computation needs a 384 x 384 matrix per seed: eval_shape of the
    outputs cannot see that memory, the compiled program's memory analysis can."""
    x = jax.random.normal(key, (384, 384)) * params.lr
    return dict(value=jnp.sum(x @ x))


def test_compiled_memory_shrinks_the_chunk_to_the_budget():
    # Independent keys, so each point draws its own matrices: 7.1 MB per point (measured).
    kwargs = dict(common_random_numbers=False, devices=1, progress=False)
    budget = 16 * 2**20
    estimated = sweep.plan(make, GRID, simulate=big_temporary, chunk_budget=budget, devices=1)
    assert estimated.chunk == 6  # the estimate would run whole groups at once
    data = sweep.run(big_temporary, make, GRID, chunk_budget=budget, **kwargs)
    assert data.attrs["chunk"] < 6 and 0 < data.attrs["bytes_per_device"] <= budget
    with pytest.raises(ValueError, match="chunk_budget"):
        sweep.run(big_temporary, make, GRID, chunk_budget=4 * 2**20, **kwargs)


def test_the_budget_is_fitted_largest_group_first():
    """fit_budget measures the group with the largest static values first, so the chunk shrinks
    before the other groups compile: each group compiles once, the largest twice (the old fit
    compiled every group at the first chunk, then all again at the shrunk one: 8 compiles for
    these 4 groups). Memory here is chunk x width MiB per device: the width-8 group needs 8 MiB
    per point, so a 20 MiB budget holds 2 of its points."""
    grid = sweep.Grid(product=dict(width=[1, 2, 4, 8], x=[0.0, 1.0, 2.0, 3.0]))
    the_plan = sweep.plan(lambda width, x: dict(width=width, x=x), grid, chunk_size=4, devices=1)
    # width is not static for a dict's tree; group the grid by it as a shape would.
    groups = tuple(sweep.Group(dict(width=w), np.arange(4 * i, 4 * i + 4))
                   for i, w in enumerate([1, 2, 4, 8]))  # fmt: skip
    the_plan = dataclasses.replace(the_plan, static_axes=("width",), groups=groups)
    measured = []

    def chunk_bytes(the_plan, group):
        measured.append((group.static["width"], the_plan.chunk))
        return the_plan.chunk * group.static["width"] * 2**20

    fitted = sweep.planning.fit_budget(chunk_bytes, the_plan, 20 * 2**20)
    assert the_plan.chunk == 4 and fitted.chunk == 2
    assert measured == [(8, 4), (8, 2), (4, 2), (2, 2), (1, 2)]
    assert fitted.bytes_per_device == 16 * 2**20
    with pytest.raises(ValueError, match="chunk_budget = .* below"):
        sweep.planning.fit_budget(chunk_bytes, the_plan, 10 * 2**20)


def test_a_cpu_chunk_is_cut_to_the_cache(monkeypatch):
    # big_temporary's chunk of 6 points measures 7.1 MB per point; a 16 MiB "cache" (8 MiB at
    # CACHE_SHARE = 0.5) fits one point, so the cut chunk is the floor of 2 points per device,
    # without an error, and the results are those of the uncut chunk, up to the rounding of
    # XLA's batched matmul at another batch size (3e-15 measured; 1e-12 leaves room).
    kwargs = dict(common_random_numbers=False, devices=1, progress=False)
    whole = sweep.run(big_temporary, make, GRID, chunk_size=6, **kwargs)
    monkeypatch.setattr(sweep.planning, "cache_bytes", lambda: 16 * 2**20)
    # The largest group (6 points, 43 MB) needs fewer than CUT_VOLUME = 64 caches: not cut.
    assert sweep.run(big_temporary, make, GRID, **kwargs).attrs["chunk"] == 6
    monkeypatch.setattr(sweep.planning, "CUT_VOLUME", 2)  # 2 caches (32 MiB): cut
    cut = sweep.run(big_temporary, make, GRID, **kwargs)
    assert cut.attrs["chunk"] == sweep.MIN_PER_DEVICE
    np.testing.assert_allclose(cut.value, whole.value, rtol=1e-12)
    monkeypatch.setattr(sweep.planning, "cache_bytes", lambda: 2**30)  # room for every point
    assert sweep.run(big_temporary, make, GRID, **kwargs).attrs["chunk"] == 6


def test_the_cache_size_is_read_or_unknown():
    size = sweep.planning.cache_bytes()
    assert size is None or (isinstance(size, int) and size >= 2**16)


def test_memory_budget_sets_the_chunk():
    small = sweep.plan(make, GRID, simulate=run_sgd, chunk_budget=1, devices=1)
    large = sweep.plan(make, GRID, simulate=run_sgd, devices=1)
    assert small.chunk == sweep.MIN_PER_DEVICE and large.chunk == 6
    assert small.bytes_per_point > 0


def test_every_public_name_resolves():
    """The package's `__all__` (what `spectral_sim.sweep` was as one module, and its
    submodules) and the names the experiments, benchmarks, notebooks and docs use."""
    for name in sweep.__all__:
        assert getattr(sweep, name) is not None, name
    for module in (sweep.grid, sweep.planning, sweep.execute, sweep.store):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    used = ["Grid", "Options", "Plan", "Group", "run", "plan", "make_from", "save", "load",
            "leaf_names", "DEFAULT_BUDGET", "MANIFEST", "MIN_PER_DEVICE", "LAPACK_POOL_FIXED",
            "BATCH_DEPENDENT_PRNGS"]  # fmt: skip
    assert set(used) <= set(sweep.__all__)
    assert sweep.plan is sweep.planning.plan and sweep.run is sweep.execute.run
