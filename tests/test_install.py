"""spectral_sim as a user installs it: the wheel in a fresh environment outside the repository
(data files included, no top-level `experiments` package), and a third-party experiment package
found through the entry-point group `spectral_sim.experiments` and run by `spectral-sim run`.

Offline: the scratch environments see this environment's site-packages (JAX, xarray, ...) through
a .pth line and get only the package under test installed into their own, without build
isolation; the installed copy comes first on their path."""

import pathlib
import site
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pip(*args: str, python: pathlib.Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", "--no-build-isolation", *args],
                   check=True, capture_output=True, text=True, timeout=300)  # fmt: skip


def _scratch_env(path: pathlib.Path) -> pathlib.Path:
    """A venv at `path` whose own site-packages comes first, then this environment's (as plain
    path entries: its .pth files, the editable install of the working tree among them, are not
    run, so nothing resolves to the repository)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)  # fmt: skip
    own = next(path.glob("lib/python*/site-packages"))
    ours = [p for p in site.getsitepackages() if pathlib.Path(p).is_dir()]
    (own / "_outer.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")
    return path / "bin"


def _run(program: pathlib.Path, *args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{program.parent}:/usr/bin:/bin", "HOME": str(cwd), "MPLBACKEND": "Agg",
           "SPECTRAL_SIM_CACHE": "off"}  # fmt: skip
    return subprocess.run(
        [str(program), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """The wheel, built from a copy of the repository's files that git does not ignore (the
    build leaves nothing in the working tree)."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", str(out), str(source)], check=True,
                   capture_output=True, text=True, timeout=300)  # fmt: skip
    (built,) = out.glob("spectral_sim-*.whl")
    return built


def test_the_wheel_ships_the_data_and_no_top_level_experiments(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    sources = {
        f"spectral_sim/{p.relative_to(ROOT / 'spectral_sim')}"
        for p in (ROOT / "spectral_sim").rglob("*.py")
    }
    sources |= {f"spectral_sim/experiments/{p.name}" for p in (ROOT / "experiments").glob("*.py")}
    assert sources <= set(names), sorted(sources - set(names))  # every module, every package
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"spectral_sim"}
    shipped = ("experiments/real_spectra.py", "data/tinyshakespeare.txt",
               "data/chinchilla_figure4_points.csv", "registry.py")  # fmt: skip
    for path in shipped:
        assert f"spectral_sim/{path}" in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    )
    assert b"[spectral_sim.experiments]" in entry_points
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"License-Expression: Apache-2.0" in metadata
    assert any(n.endswith("licenses/LICENSE") for n in names)


@pytest.mark.slow  # builds and installs a wheel (15 s)
def test_the_installed_wheel_lists_and_runs_a_data_experiment(wheel, tmp_path):
    bin = _scratch_env(tmp_path / "venv")
    _pip(str(wheel), python=bin / "python")
    work = tmp_path / "work"  # outside the repository: nothing resolves to the working tree
    work.mkdir()
    where = _run(bin / "python", "-c", "import spectral_sim, spectral_sim.data as d; "
                 "print(spectral_sim.__file__); print(len(d.shakespeare()))", cwd=work)  # fmt: skip
    assert where.returncode == 0, where.stderr
    path, size = where.stdout.split()
    assert pathlib.Path(path).is_relative_to(tmp_path / "venv") and int(size) > 1_000_000
    assert _run(bin / "python", "-c", "import experiments", cwd=work).returncode != 0

    listed = _run(bin / "spectral-sim", "list", cwd=work)
    assert listed.returncode == 0, listed.stderr
    assert "real_spectra" in listed.stdout and "learning_curves" in listed.stdout

    # real_spectra on the text shipped in the wheel, smaller than --quick: seconds, not minutes
    ran = _run(bin / "spectral-sim", "run", "real_spectra", "--quick", "--sets", "words",
               "--kernels", "linear", "--samples", "8", "12", "16", "24", "32", "--n-seeds", "8",
               "--networks-on", "--spectrum-boot", "10", "--invert-boot", "0",
               "--text-block", "4096", "--out", "out", cwd=work)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (work / "out" / "report.json").is_file()


TINY = '''
"""A coin that lands heads half the time: the smallest complete experiment."""

import dataclasses

import jax
import xarray as xr

from spectral_sim import claims, sweep
from spectral_sim.report import Report


@dataclasses.dataclass(frozen=True)
class Config:
    n_seeds: int = 256
    quick: bool = False


def flip(params, key):
    return dict(heads=jax.random.bernoulli(key, params["p"]).astype(float))


CLAIMS = claims.Table(
    claims.Spec("coin.fair", "folklore", "the coin lands heads half the time within 0.2",
                claims.seed_mean,
                lambda data: dict(samples=data.heads, predicted=0.5, tolerance=0.2)),
)


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    options = options or sweep.Options()
    grid = sweep.Grid(product=dict(p=[0.5]), n_seeds=cfg.n_seeds)
    data = options.run("flips", flip, dict, grid, config=dataclasses.asdict(cfg))
    data = xr.Dataset(dict(heads=data.heads))
    return Report("coin", CLAIMS.evaluate(data), data, config=cfg)
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "coin-experiment"
version = "0.1"
dependencies = ["spectral_sim"]

[project.entry-points."spectral_sim.experiments"]
coin = "coin_experiment"
"""


@pytest.mark.slow  # installs a plugin package (7 s)
def test_a_third_party_experiment_runs_through_the_cli(wheel, tmp_path):
    package = tmp_path / "coin"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "coin_experiment.py").write_text(textwrap.dedent(TINY))
    bin = _scratch_env(tmp_path / "venv")
    _pip(str(wheel), str(package), python=bin / "python")
    work = tmp_path / "work"
    work.mkdir()

    listed = _run(bin / "spectral-sim", "list", "coin", cwd=work)
    assert listed.returncode == 0, listed.stderr
    assert "coin  A coin that lands heads half the time" in listed.stdout
    assert "coin.fair" in listed.stdout

    ran = _run(bin / "spectral-sim", "run", "coin", "--n-seeds", "128", "--out", "out", cwd=work)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "coin.fair" in ran.stdout and "PASS" in ran.stdout
    assert (work / "out" / "report.json").is_file()
