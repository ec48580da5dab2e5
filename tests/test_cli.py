"""The `spectral-sim` command, driven in-process against fake experiments registered for the test
(the real ones are too slow for a CLI test)."""

import dataclasses
import json
import pathlib
import re
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
import xarray as xr

from spectral_sim import claims, cli, registry, sweep
from spectral_sim.report import Report


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 3
    s: tuple[float, ...] = (1.0, 2.0)
    quick: bool = False

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1; got {self.n}")


@dataclasses.dataclass(frozen=True)
class PaperConfig(Config):
    """A Config with the third scale: `paper` takes PAPER's n."""

    paper: bool = False


PAPER = dict(n=8)


def draw(params, key):
    return dict(u=params["s"] * jax.random.normal(key))


def fake_experiment(name: str, measured: float, seen: list) -> types.ModuleType:
    """A module shaped like an experiment: Config, run(cfg) -> Report, a one-line docstring."""
    module = types.ModuleType(f"fake_experiments.{name}")
    module.__doc__ = f"The {name} experiment.\n\nDetails that `list` leaves out."

    def run(cfg: Config, options: sweep.Options | None = None) -> Report:
        cfg = registry.scaled(cfg, dict(n=4), PAPER if isinstance(cfg, PaperConfig) else None)
        seen.append(cfg)
        if cfg.n == 13:
            raise ValueError("n = 13 is not a valid grid size")
        grid = sweep.Grid(product=dict(s=cfg.s), n_seeds=cfg.n)
        options = options or sweep.Options()
        draws = options.run("draws", draw, dict, grid, config=dataclasses.asdict(cfg))
        data = xr.Dataset({"x": ("n", np.arange(cfg.n, dtype=float)), "u": draws.u})
        return Report(name, table.evaluate(data), data, config=cfg, seed=cfg.n)

    table = claims.Table(
        claims.Spec("c", "eq. (1)", "n is positive", claims.exact,
                    lambda data: dict(measured=measured, predicted=1.0, tolerance=0.5)),
    )  # fmt: skip
    module.Config = PaperConfig if name == "fake2" else Config  # type: ignore[attr-defined]
    module.run, module.CLAIMS = run, table  # type: ignore[attr-defined]
    return module


# main() sets the numeric policy globally: the suite's is put back after each test.
pytestmark = pytest.mark.usefixtures("jax_policy")


@pytest.fixture
def seen(monkeypatch) -> list:
    """Registers experiments `fake` (a PASS) and `fake2` (a FAIL); collects the configs run."""
    configs: list = []
    registered = {name: f"fake_experiments.{name}" for name in ("fake", "fake2")}
    monkeypatch.setattr(registry, "_entry_points", lambda: registered)
    for name, measured in (("fake", 1.25), ("fake2", 3.0)):
        monkeypatch.setitem(sys.modules, registered[name], fake_experiment(name, measured, configs))
    return configs


def test_list(seen, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "fake   The fake experiment." in out and "fake2  The fake2 experiment." in out
    assert "    c  n is positive [exact, judgement tolerance]" in out  # each experiment's claims
    assert "Details" not in out


def test_list_some(seen, capsys):
    assert cli.main(["list", "fake2"]) == 0
    out = capsys.readouterr().out
    assert "fake2  The fake2 experiment." in out and "fake " not in out
    assert cli.main(["list", "nope"]) == 2
    assert "unknown experiment 'nope'; valid names: fake, fake2" in capsys.readouterr().err


def test_run_applies_config_flags_and_writes_the_report(seen, capsys, tmp_path):
    assert (
        cli.main(["run", "fake", "--quick", "--n", "5", "--s", "1.5", "3", "--out", str(tmp_path)])
        == 0
    )
    assert seen == [Config(n=5, s=(1.5, 3.0), quick=True)]
    out = capsys.readouterr().out
    assert "| c " in out and "PASS" in out and str(tmp_path / "report.md") in out
    record = json.loads((tmp_path / "report.json").read_text())
    assert record["config"] == {"n": 5, "s": [1.5, 3.0], "quick": True}
    assert record["provenance"]["seed"] == 5
    assert xr.load_dataset(tmp_path / "data.nc", engine="h5netcdf")["x"].size == 5


def test_quick_keeps_the_flags_given_even_at_their_defaults(seen, tmp_path):
    assert cli.main(["run", "fake", "--quick", "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["run", "fake", "--quick", "--n", "3", "--out", str(tmp_path / "b")]) == 0
    assert [cfg.n for cfg in seen] == [4, 3]  # quick's n, then the default given explicitly
    with registry.explicit({"n"}):
        assert registry.quick(Config(quick=True), dict(n=4)).n == 3
    assert registry.quick(Config(quick=True), dict(n=4)).n == 4


def test_three_scales(seen, capsys, tmp_path):
    """--scale quick is --quick, --scale paper sets Config.paper (PAPER's sizes, a flag given
    kept), full is the defaults; a Config without `paper` has no paper scale, and one scale is
    given at most: both refused before anything runs."""
    for i, args in enumerate((["--scale", "quick"], ["--quick"], [], ["--scale", "paper"],
                              ["--scale", "paper", "--n", "3"])):  # fmt: skip
        assert cli.main(["run", "fake2", *args, "--out", str(tmp_path / str(i))]) == 0
    assert [cfg.n for cfg in seen] == [4, 4, 3, 8, 3]
    assert [registry.scale(cfg) for cfg in seen] == ["quick", "quick", "full", "paper", "paper"]
    assert "running fake2 (paper) ..." in capsys.readouterr().out
    assert cli.main(["run", "fake", "--scale", "paper", "--out", str(tmp_path / "x")]) == 2
    assert "fake has no paper scale (its Config has no `paper` field)" in capsys.readouterr().err
    assert cli.main(["run", "fake2", "--quick", "--scale", "paper"]) == 2
    assert "--quick is --scale quick; give one scale" in capsys.readouterr().err
    assert len(seen) == 5
    with pytest.raises(ValueError, match="set at most one"):
        registry.scale(PaperConfig(quick=True, paper=True))
    with pytest.raises(ValueError, match="no paper sizes"):
        registry.scaled(PaperConfig(paper=True), dict(n=4))
    assert registry.scaled(PaperConfig(), dict(n=4), PAPER) == PaperConfig()


def test_quick_runs_compile_fast_and_full_runs_optimized(tmp_path):
    """--compile auto (the default) gives the sweeps compile="fast" at --scale quick, where
    compiling is most of a run, and "optimized" at full and paper scale; a choice given wins."""
    cases = [(dict(quick=True), "fast"), (dict(scale="quick"), "fast"), ({}, "optimized"),
             (dict(scale="paper"), "optimized"), (dict(quick=True, compile="optimized"),
             "optimized"), (dict(compile="fast"), "fast")]  # fmt: skip
    for kwargs, expected in cases:
        assert cli.RunOptions(**kwargs).sweep(tmp_path).compile == expected, kwargs
    # An experiment that sets QUICK_COMPILE = "optimized" (spectral_edge) keeps it at auto only.
    assert cli.RunOptions(quick=True).sweep(tmp_path, "optimized").compile == "optimized"
    assert cli.RunOptions(quick=True, compile="fast").sweep(tmp_path, "optimized").compile == "fast"


def test_run_defaults_to_results_dir(seen, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "fake2"]) == 0  # a FAIL verdict is a result, not an error
    assert seen == [PaperConfig()]
    assert (tmp_path / "results" / "fake2" / "report.json").is_file()


def test_run_all(seen, capsys, tmp_path):
    assert cli.main(["run", "all", "--quick", f"--out={tmp_path}"]) == 0
    assert [cfg.quick for cfg in seen] == [True, True]
    for name in ("fake", "fake2"):
        assert (tmp_path / name / "report.md").is_file()
    out = capsys.readouterr().out
    assert "all: 1 PASS, 1 FAIL, 0 INCONCLUSIVE in 2 experiment(s)" in out
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert "[c](fake/report.md)" in summary and "[c](fake2/report.md)" in summary
    assert "1 PASS, 1 FAIL, 0 INCONCLUSIVE in 2 experiments" in summary


def test_report_prints_a_saved_table(seen, capsys, tmp_path):
    cli.main(["run", "fake", "--out", str(tmp_path)])
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path)]) == 0
    assert "| c " in capsys.readouterr().out


def test_x64_flag(seen, tmp_path):
    assert cli.main(["run", "fake", "--no-x64", "--out", str(tmp_path)]) == 0
    assert not jax.config.values["jax_enable_x64"]
    assert json.loads((tmp_path / "report.json").read_text())["provenance"]["x64"] is False


def test_matmul_precision_flag(seen, tmp_path, capsys):
    assert cli.main(["run", "fake", "--out", str(tmp_path / "a")]) == 0
    provenance = json.loads((tmp_path / "a" / "report.json").read_text())["provenance"]
    assert provenance["matmul_precision"] == "highest"  # the default: full float32 products
    assert cli.main(["run", "fake", "--matmul-precision", "high", "--out", str(tmp_path)]) == 0
    assert jax.config.values["jax_default_matmul_precision"] == "high"
    assert cli.main(["run", "fake", "--matmul-precision=fast"]) == 2
    assert "--matmul-precision must be one of default, high, highest; got 'fast'" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nope"], "unknown experiment 'nope'; valid names: fake, fake2"),
        (["run"], "needs an experiment name"),
        (["run", "all", "--n", "3"], "run all takes only"),
        (["run", "fake", "--out"], "'--out'"),  # tyro: "Missing value for argument '--out'"
        (["run", "fake", "--n", "13"], "n = 13 is not a valid grid size"),  # raised by run()
        (["frobnicate"], "unknown command"),
        (["report", "/nonexistent"], "no report.json"),
        ([], "usage"),
    ],
)
def test_usage_errors_exit_nonzero_with_a_message(seen, capsys, argv, message):
    assert cli.main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sweep_options_resume_refuse_and_overwrite(seen, capsys, tmp_path):
    run = ["run", "fake", "--out", str(tmp_path), "--devices", "2", "--chunk-budget", "1M"]
    assert cli.main(run) == 0
    chunks = sorted((tmp_path / "sweeps" / "draws").glob("chunk-*.npz"))
    assert len(chunks) == 1  # 2 points of s, chunks of 2 devices x 2 points
    mtime = chunks[0].stat().st_mtime_ns
    assert cli.main([*run, "--resume"]) == 0
    assert chunks[0].stat().st_mtime_ns == mtime  # reused, not recomputed
    capsys.readouterr()
    assert cli.main([*run, "--n", "4"]) == 2  # another config in the same out dir
    assert "another config or code version" in capsys.readouterr().err
    assert cli.main([*run, "--n", "4", "--overwrite"]) == 0
    data = xr.load_dataset(tmp_path / "data.nc", engine="h5netcdf")
    assert dict(data.u.sizes) == dict(s=2, seed=4)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--chunk-budget", "-1"], "--chunk-budget must be a positive size"),
        (["--chunk-budget", "lots"], "--chunk-budget must be a positive size"),
        (["--devices", "0"], "--devices must be an integer >= 1"),
        (["--devices", "99"], "devices must be in [1, 8]"),
        (["--coordinator", "localhost:1"], "give either --distributed or all of"),
        (["--distributed", "--process-id", "0"], "give either --distributed or all of"),
    ],
)
def test_bad_run_options_exit_nonzero(seen, capsys, flags, message, tmp_path):
    assert cli.main(["run", "fake", *flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("flags", [["--n", "x"], ["--n", "0"], ["--bogus", "1"]])
def test_bad_config_values_exit_nonzero(seen, capsys, flags, tmp_path):
    assert cli.main(["run", "fake", *flags, "--out", str(tmp_path)]) == 2
    assert seen == []
    assert not (tmp_path / "report.json").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_help(seen, capsys):
    assert cli.main(["--help"]) == 0
    assert "spectral-sim run NAME" in capsys.readouterr().out
    assert cli.main(["run", "fake", "--help"]) == 0
    assert "--n INT" in capsys.readouterr().out


def test_compilation_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECTRAL_SIM_CACHE", str(tmp_path))
    assert cli.compilation_cache_dir() == tmp_path
    monkeypatch.setenv("SPECTRAL_SIM_CACHE", "off")
    assert cli.compilation_cache_dir() is None
    monkeypatch.delenv("SPECTRAL_SIM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.compilation_cache_dir() == pathlib.Path(tmp_path) / "spectral_sim" / "jax"


def test_show_prints_a_saved_table(seen, capsys, tmp_path):
    cli.main(["run", "fake", "--out", str(tmp_path)])
    capsys.readouterr()
    assert cli.main(["show", str(tmp_path)]) == 0
    assert "| c " in capsys.readouterr().out


def test_unexpected_errors_are_one_line_unless_debug(seen, capsys, monkeypatch, tmp_path):
    def broken(cfg, options=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sys.modules["fake_experiments.fake"], "run", broken)
    assert cli.main(["run", "fake", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "RuntimeError: disk on fire" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="disk on fire"):
        cli.main(["--debug", "run", "fake", "--out", str(tmp_path)])


@pytest.mark.slow
def test_a_closed_pipe_is_not_an_error():
    """`spectral-sim ... | head` stops reading early: no error line, exit 0."""
    script = pathlib.Path(sys.executable).with_name("spectral-sim")
    many = " ".join(["learning_curves"] * 1000)  # about 400 kB, more than a pipe buffer
    result = subprocess.run(f"'{script}' list {many} | head -n 1; exit ${{PIPESTATUS[0]}}",
                            shell=True, executable="/bin/bash", capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.stdout.startswith("learning_curves") and result.stdout.count("\n") == 1
    assert result.returncode == 0 and result.stderr == ""


def test_a_run_whose_pipe_closes_stops_with_an_error(seen, monkeypatch, tmp_path, capsys):
    """`spectral-sim run all | head -1` must not end as a silent success with experiments
    skipped."""

    def closed(*args, **kwargs):
        raise BrokenPipeError

    monkeypatch.setattr(cli, "_run", closed)
    assert cli.main(["run", "all", "--out", str(tmp_path)]) == 1
    assert "the output pipe closed" in capsys.readouterr().err


def test_run_options_help_and_resume_alias(seen, capsys, tmp_path):
    assert cli.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--chunk-budget SIZE" in out and "--no-overwrite" in out
    assert cli.main(["run", "fake", "--resume", "--out", str(tmp_path)]) == 0


def test_the_builtin_experiments_are_registered_entry_points():
    """spectral_sim's own experiments come from its entry points, as a user's package's do."""
    names = registry.names()
    assert {"learning_curves", "real_spectra", "compression"} <= set(names)
    assert registry.load("compression").__name__ == "spectral_sim.experiments.compression"


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "must define a dataclass Config"),
        ("@dataclasses.dataclass\nclass Config:\n    n: int\n    quick: bool = False\n",
         "every Config field needs a default"),
        ("@dataclasses.dataclass\nclass Config:\n    n: int = 1\n", "`quick: bool = False`"),
        ("@dataclasses.dataclass\nclass Config:\n    quick: bool = False\n", "must define run"),
    ],
)  # fmt: skip
def test_a_module_that_breaks_the_protocol_is_refused_by_name(monkeypatch, body, message):
    module = types.ModuleType("broken_experiment")
    exec("import dataclasses\n" + body, module.__dict__)
    monkeypatch.setitem(sys.modules, "broken_experiment", module)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"broken": "broken_experiment"})
    with pytest.raises(TypeError, match=re.escape(message)):
        registry.load("broken")


def test_a_name_registered_twice_is_an_error(monkeypatch):
    points = [types.SimpleNamespace(name="a", value=v) for v in ("pkg1.a", "pkg2.a")]
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: points)
    with pytest.raises(ValueError, match="registered twice.*pkg1.a and pkg2.a"):
        registry.names()


SEARCH_FILE = """
import dataclasses

import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Bend:
    x: float = 0.5


def bent(params, key):  # relative error x against the prediction 1, plus noise
    return dict(value=1 + params.x + 0.01 * jax.random.normal(key, (2,)))


SEARCH = dict(simulator=bent, template=Bend(), space={"x": (0.0, 1.0)},
              predict=lambda p: jnp.ones(2), observable="value", tolerance=0.3, n_seeds=8,
              budget=64, id="bend.box", source="a test")
"""


def test_map_runs_a_search_file_writes_its_report_and_resumes(tmp_path, capsys):
    """`map FILE` runs the file's SEARCH with the flags' changes (--budget), saves the report
    with its id and source, and a second run reads every round back from DIR/sweeps: nothing
    is compiled or simulated again, and the verdicts are the same."""
    from benchmarks.compiles import counting

    (tmp_path / "bend.py").write_text(SEARCH_FILE)
    argv = ["map", str(tmp_path / "bend.py"), "--budget", "16", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "bend.box" in printed and "boundary along x" in printed
    first = json.loads((tmp_path / "out" / "report.json").read_text())
    assert first["claims"][0]["id"] == "bend.box" and first["claims"][0]["entries"] <= 16
    assert len(list((tmp_path / "out" / "sweeps").iterdir())) == 8  # one sweep per round
    jax.clear_caches()
    with counting() as compiles:
        assert cli.main(argv) == 0
    assert compiles.names["jit(one_point)"] == 0  # every chunk read back
    again = json.loads((tmp_path / "out" / "report.json").read_text())
    assert again["claims"] == first["claims"]


@pytest.mark.parametrize(
    ("body", "flags", "message"),
    [
        (None, [], "no search file"),
        ("X = 1\n", [], "must define SEARCH"),
        (SEARCH_FILE, ["--tolerance", "-1"], "tolerance must be > 0"),
        (SEARCH_FILE, ["--budget", "lots"], "budget"),
        (SEARCH_FILE.replace('"x": (0.0, 1.0)', '"y": (0.0, 1.0)'), [], "'y'"),
    ],
)
def test_map_usage_errors_exit_2_with_one_line(tmp_path, capsys, body, flags, message):
    file = tmp_path / "search.py"
    if body is not None:
        file.write_text(body)
    assert cli.main(["map", str(file), "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
