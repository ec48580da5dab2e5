"""docs/: every public module has an API page in the navigation, and `mkdocs build --strict`
(what `make docs` runs) passes, failing on a broken link or cross-reference."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

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


def test_the_docs_build_strictly(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "spectral_sim.sweep.html").is_file()


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


def test_the_guides_code_runs(tmp_path):
    """Each Python block of concepts, numerics and accelerators runs as written (in a fresh
    namespace, in an empty working directory; one process for all, to import JAX once). Blocks
    that are scripts taking command-line arguments are left to the text; extending.md's example
    adds files to the package and was checked in a scratch copy."""
    blocks = []
    for page in ("concepts", "numerics", "accelerators"):
        text = (ROOT / "docs" / "guide" / f"{page}.md").read_text()
        found = re.findall(r"```python\n(.*?)```", text, re.S)
        assert found, page
        blocks += [f"# {page}.md\n{b}" for b in found if "sys.argv" not in b]
    env = {"PATH": os.environ["PATH"], "MPLBACKEND": "Agg", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", RUNNER, *blocks], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
