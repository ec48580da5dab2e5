"""docs/: every public module has an API page in the navigation, and `mkdocs build --strict`
(what `make docs` runs) passes, failing on a broken link or cross-reference."""

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import xarray as xr

from spectral_sim import cli, registry
from spectral_sim.report import Report

ROOT = pathlib.Path(__file__).resolve().parent.parent


def public_modules() -> list[str]:
    """spectral_sim's and experiments' modules, less private ones and the CLI."""
    names = []
    for package in ("spectral_sim", "experiments"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if package == "experiments" and len(parts) > 1:
                continue  # one page for the registry; each experiment's docstring is its README
            if any(p.startswith("_") for p in parts) or parts[-1] == "cli":
                continue
            names.append(".".join(parts))
    return names


def build(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    mkdocs = pathlib.Path(sys.executable).with_name("mkdocs")
    return subprocess.run(
        [str(mkdocs), "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True, text=True, cwd=config.parent, timeout=300,
    )  # fmt: skip


def test_every_public_module_has_an_api_page_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in public_modules():
        page = ROOT / "docs" / "api" / f"{name}.md"
        assert page.is_file(), f"no API page for {name}: add {page.relative_to(ROOT)}"
        assert f"::: {name}" in page.read_text(), f"{page.name} does not render {name}"
        assert f"api/{name}.md" in nav, f"mkdocs.yml's nav leaves out api/{name}.md"


@pytest.mark.slow
def test_the_docs_build_strictly(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "spectral_sim.sweep.html").is_file()


@pytest.mark.slow  # a second strict docs build (9 s)
def test_a_broken_reference_fails_the_build(tmp_path):
    """The check above can fail: a dead link and a cross-reference to a name that does not exist
    each stop the build, named in its warnings."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "mkdocs.yml").write_text(
        (ROOT / "mkdocs.yml").read_text().replace("paths: [.]", f"paths: [{ROOT}]")
    )
    broken = "See [the missing page](missing.md) and [`nope`][spectral_sim.sweep.NoSuchThing]."
    (tmp_path / "docs" / "index.md").write_text(f"# spectral_sim\n\n{broken}\n")
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stderr and "spectral_sim.sweep.NoSuchThing" in result.stderr


RUNNER = """
import sys
for i, block in enumerate(sys.argv[1:]):
    if "jax" in sys.modules:  # each block starts from JAX's defaults, as in its own process
        sys.modules["jax"].config.update("jax_enable_x64", False)
    try:
        exec(compile(block, f"block {i}", "exec"), {"__name__": "__main__"})
    except Exception as error:
        raise SystemExit(f"block {i} failed: {type(error).__name__}: {error}\\n{block}")
"""


@pytest.mark.slow  # every Python block of the docs in one process (75 s)
def test_the_guides_code_runs(tmp_path):
    """Each Python block of README, the experiment pages, concepts, numerics, accelerators and
    validity runs as written (in a fresh namespace, in an empty working directory; one process
    for all, to import JAX once). Blocks that are scripts taking command-line arguments are left
    to the text; extending.md's prototype has a test of its own, and its package example adds
    files to the package and was checked in a scratch copy."""
    blocks = []
    guide = ROOT / "docs" / "guide"
    pages = [
        ROOT / "README.md",
        *(guide / f"{p}.md" for p in ("concepts", "numerics", "accelerators", "validity")),
    ]
    pages += sorted((ROOT / "docs" / "experiments").glob("*.md"))
    for page in pages:
        found = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
        assert found or page.parent.name == "experiments", page
        blocks += [f"# {page.name}\n{b}" for b in found if "sys.argv" not in b]
    env = {"PATH": os.environ["PATH"], "MPLBACKEND": "Agg", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", RUNNER, *blocks], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


# --- the front page and references --------------------------------------------------------------

# Names the docs use for files that are not in a clone under that name: the theory spec is
# docs/theory.md, cited as THEORY.md; SUMMARY.md and report.md are what runs write.
ALIASES = {"THEORY.md", "SUMMARY.md"}
# Outputs of the project's own commands: a fresh clone does not have them until they run.
OUTPUTS = ("results/", "results-full/", "runs/", "site/", ".venv/")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
BARE = re.compile(r"(?<![\w./-])([A-Z][A-Z_]*\.md)\b")
ROOTED = re.compile(r"`((?:spectral_sim|experiments|docs|benchmarks|tests|notebooks)/[^`\s]*)`")


def tracked(*suffixes: str) -> list[pathlib.Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    return [ROOT / p for p in listed.stdout.split() if p.endswith(suffixes)]


def dangling(path: pathlib.Path, text: str) -> list[str]:
    """References in `text` (of the file `path`) to files a clone does not have: a relative
    Markdown link, a `dir/file` path rooted at a top folder (in a README), or an upper-case
    *.md name (anywhere, code included) that is neither a file nor one of ALIASES."""

    def exists(ref: str) -> bool:
        return (path.parent / ref).exists() or (ROOT / ref).exists()

    bad = [name for name in BARE.findall(text) if name not in ALIASES and not exists(name)]
    if path.suffix == ".md":
        bad += [ref for ref in LINK.findall(text) if "://" not in ref and not exists(ref)]
    if path.name == "README.md":
        placeholder = re.compile(r"[*<]")  # a pattern or a <name> stands for files
        bad += [ref for ref in ROOTED.findall(text) if not ref.startswith(OUTPUTS)
                and not placeholder.search(ref) and not exists(ref)]  # fmt: skip
    return bad


def test_no_reference_to_a_file_a_clone_does_not_have():
    found = {}
    for path in tracked(".md", ".py", ".toml", ".yml", ".cff", "Makefile"):
        bad = dangling(path, path.read_text())
        if bad:
            found[str(path.relative_to(ROOT))] = sorted(set(bad))
    assert not found, f"references to files a clone does not have: {found}"


def test_the_reference_check_can_fail(tmp_path):
    page = tmp_path / "README.md"
    missing = "PLAN" + ".md"  # split, so that this file does not cite it itself
    abstract = "pap" + "ers/P0-spectral.txt"  # a source folder a clone does not have
    text = (f"See {missing}, [the abstract]({abstract}), `docs/missing.md` and "
            "THEORY.md §2; outputs go to `results/x/report.md`.")  # fmt: skip
    assert dangling(page, text) == [missing, abstract, "docs/missing.md"]


def test_the_readme_is_a_front_page():
    """At most about two screens, no results in it (they live in docs/), and it leads into the
    guide: install, the first command, the papers, the findings."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "results:begin" not in text
    for needed in ("Python 3.11", "pip install -e .", '".[cuda]"', "make run", "make test",
                   "spectral-sim run learning_curves --quick", "docs/guide/extending.md",
                   "docs/findings.md", "docs/papers.md", "**P0**", "**P3**"):  # fmt: skip
        assert needed in text, needed


def commands(page: pathlib.Path) -> list[list[str]]:
    """The `spectral-sim` command lines of a page's bash blocks (comments dropped), less those
    sent to the background (the multi-process example, which tests/test_sweep.py runs)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.splitlines():
            line = re.split(r"\s#\s", line)[0].strip()
            command = line.startswith(("spectral-sim ", ".venv/bin/spectral-sim "))
            if command and not line.endswith("&"):
                found.append(shlex.split(line)[1:])
    return found


@pytest.mark.usefixtures("jax_policy")
def test_the_commands_of_the_readme_and_the_docs_run(monkeypatch, tmp_path, capsys):
    """Every `spectral-sim` command in README, the experiment pages and the guide runs as written,
    in order, in an empty directory: the real CLI and each experiment's real Config, with each
    experiment's `run` replaced by one that records its Config and returns an empty report (the
    experiments' own tests run them). Commands for an experiment a guide page builds itself
    (extending.md's) are left out."""
    ran = []

    def recorder(name: str):
        def run(cfg, options=None):
            ran.append((name, cfg))
            return Report(name, [], xr.Dataset(), config=cfg)

        return run

    for name in registry.names():
        monkeypatch.setattr(registry.load(name), "run", recorder(name))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRAL_SIM_CACHE", "off")
    pages = [ROOT / "README.md", *sorted((ROOT / "docs" / "experiments").glob("*.md")),
             *sorted((ROOT / "docs" / "guide").glob("*.md"))]  # fmt: skip
    tried = 0
    for page in pages:
        for argv in commands(page):
            if argv[0] == "run" and argv[1] not in (*registry.names(), "all", "--help"):
                continue
            try:
                code = cli.main(argv)
            except SystemExit as exit:  # --help
                code = exit.code
            assert code in (0, None), (page.name, argv, capsys.readouterr().err)
            tried += 1
    assert tried >= 20 and {name for name, _ in ran} == set(registry.names())
    quick = [cfg for name, cfg in ran if name == "learning_curves" and cfg.s == (1.5, 2.0)]
    assert quick and quick[0].quick  # README's "--quick --s 1.5 2" reached the Config


@pytest.mark.slow
@pytest.mark.usefixtures("jax_policy")
def test_the_prototype_in_ones_own_file_decides_as_the_guide_says(monkeypatch, tmp_path):
    """extending.md's first script runs as written (in an empty directory) and PASSes, and the
    same script with the noise term dropped from its formula FAILs."""
    page = (ROOT / "docs" / "guide" / "extending.md").read_text()
    section = page.split("## Prototype in your own file")[1].split("\n## ")[0]
    (script,) = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    broken = script.replace("target()[None] ** 2 + noise)", "target()[None] ** 2)")
    assert broken != script
    verdicts = []
    for text in (script, broken):
        namespace = {"__name__": "__main__"}
        exec(compile(text, "noisy_gd_check.py", "exec"), namespace)
        verdicts.append(namespace["report"].claims[0].verdict)
    assert verdicts == ["PASS", "FAIL"]
    assert (tmp_path / "runs" / "noisy_gd_check" / "report.json").is_file()
