"""The package's layering (docs/guide/architecture.md), checked on the import graph read from the
source: every import of a spectral_sim module goes to the same layer or a lower one, the graph
has no cycles, no module uses another module's private name, and the library never imports the
application (the experiments) except through the entry points."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Lowest first; a module belongs to the first layer with a prefix matching its name.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "spectral_sim._types",
            "spectral_sim.checks",
            "spectral_sim.runtime",
            "spectral_sim.provenance",
        ),
    ),
    ("spectra", ("spectral_sim.spectra",)),
    ("diagnostics", ("spectral_sim.diagnostics",)),
    ("models", ("spectral_sim.models", "spectral_sim.simulate")),
    ("theory", ("spectral_sim.theory",)),
    ("data", ("spectral_sim.data",)),
    ("sweep", ("spectral_sim.sweep",)),
    ("statistics", ("spectral_sim.fit",)),
    ("claims", ("spectral_sim.claims", "spectral_sim.report")),
    (
        "tools",
        (
            "spectral_sim.compare",
            "spectral_sim.gallery",
            "spectral_sim.registry",
            "spectral_sim.validity",
        ),
    ),
    ("experiments", ("spectral_sim.experiments",)),
    ("command line", ("spectral_sim.cli",)),
    ("package", ("spectral_sim",)),  # spectral_sim/__init__.py: the public face
)


def _modules() -> dict[str, pathlib.Path]:
    """Every module's dotted name -> its file (experiments/ installs as
    spectral_sim.experiments)."""
    found = {}
    for base, package in ((ROOT / "spectral_sim", "spectral_sim"),
                          (ROOT / "experiments", "spectral_sim.experiments")):  # fmt: skip
        for path in base.rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def layer(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and the guide")


def _resolve(name: str) -> str | None:
    """The module a dotted import name refers to (a module, or a name inside one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _nodes(tree: ast.Module):
    """Every node, except those of an `if __name__ == "__main__":` block (a script's entry, which
    may hand over to the command line)."""
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            continue
        yield from ast.walk(node)


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _raw_imports(module: str) -> list[tuple[str, str, int]]:
    """(module or package imported from, name or "", line) as written, relative imports made
    absolute."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:  # `from spectral_sim import fit`: the module fit
                    found.append((full, "", node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return found


def _source(package: str, name: str) -> str:
    """The module a package's __init__ takes the re-exported `name` from (the package itself if
    it defines the name)."""
    for target, imported, _ in _raw_imports(package):
        if imported == name and target in MODULES and target != package:
            return _source(target, name) if target == _resolve(target) else target
    return package


def _imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, name imported from it or "", line) for every spectral_sim import of the
    module, at module level or inside a function; a name a package re-exports counts as an
    import of the module that defines it."""
    out = []
    for target, name, line in _raw_imports(module):
        if target == "experiments" or target.startswith("experiments."):
            out.append((target, name, line))  # the application's top-level name: refused below
        elif target.startswith("spectral_sim"):
            resolved = _resolve(target)
            if resolved is not None and name and MODULES[resolved].name == "__init__.py":
                resolved = _source(resolved, name)
            if resolved is not None and resolved != module:
                out.append((resolved, name, line))
    return out


GRAPH = {module: _imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_imports_go_down_the_layers():
    upward = [
        f"{module} ({LAYERS[layer(module)][0]}) imports {target} ({LAYERS[layer(target)][0]}) "
        f"at line {line}"
        for module, edges in GRAPH.items()
        for target, _, line in edges
        if not target.startswith("experiments") and layer(target) > layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycles():
    """Depth-first search over the module graph (function-level imports included: an import
    that only works because it runs late is still a cycle)."""
    edges = {m: sorted({t for t, _, _ in GRAPH[m] if t in MODULES}) for m in MODULES}
    # A package's __init__ re-exporting its submodules is not a cycle with them.
    edges = {m: [t for t in ts if not (m.startswith(t + ".") or t.startswith(m + "."))]
             for m, ts in edges.items()}  # fmt: skip
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in edges[node]:
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_no_imports_hidden_in_functions():
    """Every spectral_sim import is at a module's top level, where a reader sees it (a script's
    `if __name__ == "__main__":` block aside); TYPE_CHECKING blocks count as top level."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for node in tree.body if not isinstance(node, ast.FunctionDef | ast.ClassDef)
               for n in ast.walk(node)}  # fmt: skip
        for node in _nodes(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                names = [getattr(node, "module", None) or "", *(a.name for a in node.names)]
                if any(n.startswith("spectral_sim") for n in names) or getattr(node, "level", 0):
                    found.append(f"{module}:{node.lineno} {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_no_private_names_across_modules():
    """`from spectral_sim.x import _name` and `x._name` reach into another module's internals;
    a package's own `_private.py` helper modules are shared within that package only."""
    found = []
    for module, edges in GRAPH.items():
        for target, name, line in edges:
            if name.startswith("_") and not name.startswith("__"):
                found.append(f"{module}:{line} imports {target}.{name}")
            private = [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            if private and target.rpartition(".")[0] != _package(module):
                if not (private == ["_types"]):  # the shared type vocabulary
                    found.append(f"{module}:{line} imports {target}")
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {a.asname or a.name.split(".")[-1]
                   for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for a in node.names
                   if f"{node.module}.{a.name}" in MODULES}  # fmt: skip
        for node in _nodes(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):  # fmt: skip
                found.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not found, "\n".join(found)


def test_the_library_does_not_import_the_experiments():
    """The CLI and the gallery find experiments through the entry points (spectral_sim.registry);
    a top-level `experiments` package is never imported."""
    found = [
        f"{module}:{line} imports {target}"
        for module, edges in GRAPH.items()
        for target, _, line in edges
        if target.split(".")[0] == "experiments"
        or (
            target.startswith("spectral_sim.experiments")
            and not module.startswith("spectral_sim.experiments")
        )
    ]
    assert not found, "\n".join(found)


FIRST_IMPORTS = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "spectral_sim"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
sys.exit("\\n".join(failed) or None)
"""


@pytest.mark.slow  # a process per module (7 s)
def test_each_module_imports_first():
    """Whatever is imported first, the import works (no cycle that only import order hides):
    each module is imported with no spectral_sim module loaded before it (one process, so JAX
    is imported once)."""
    result = subprocess.run([sys.executable, "-c", FIRST_IMPORTS, *sorted(MODULES)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
