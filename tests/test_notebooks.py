"""The notebooks: each percent-format .py runs end to end at its small scale, and its paired
.ipynb holds the same cells with the outputs stripped."""

import os
import pathlib
import runpy

import jupytext
import matplotlib
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.py"))
# make test runs the README's first notebook; the others run with the slow tests (make test-all)
FAST = ("quickstart",)


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS] == [
        "prototype_a_theorem", "quickstart", "sweeps_at_scale", "where_does_it_break",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [p if p.stem in FAST else pytest.param(p, marks=pytest.mark.slow) for p in NOTEBOOKS],
    ids=lambda p: p.stem,
)
@pytest.mark.usefixtures("jax_policy")
def test_notebook_runs(path, monkeypatch):
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    monkeypatch.setenv("SPECTRAL_SIM_SMOKE", "1")  # the notebooks' small scale
    # sweeps_at_scale asks for virtual CPU devices before JAX starts (too late here, where the
    # suite's 8 devices are up): keep its setting out of later tests' subprocesses
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    try:  # a notebook may choose its float width (jax_policy puts the suite's back)
        runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_paired_and_stripped(path):
    script = jupytext.read(path)
    paired = jupytext.read(path.with_suffix(".ipynb"))
    assert [(c.cell_type, c.source) for c in paired.cells] == [
        (c.cell_type, c.source) for c in script.cells
    ], f"{path.with_suffix('.ipynb')} is out of date: jupytext --sync {path}"
    for cell in paired.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip the outputs"
