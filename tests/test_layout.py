"""The package's layout is its architecture: a few sub-packages, each one concept, whose imports run
one way (down `LAYERS`), with no circle, and modules short enough to read."""

import ast
import pathlib

from helpers import ROOT

PACKAGE = ROOT / "mipnerf"
# The top of the package, in import order: each may import only those before it (or itself).
LAYERS = ("errors", "metrics", "store", "cameras", "datasets", "model", "training", "render", "viewer", "export",
          "commands")


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, name: str) -> str:
    """`module.name` when that is a module or package of ours (`from mipnerf.x import y`), else `module`."""
    path = ROOT.joinpath(*f"{module}.{name}".split("."))
    return f"{module}.{name}" if path.with_suffix(".py").exists() or path.is_dir() else module


def imports(path: pathlib.Path) -> set[str]:
    """The mipnerf modules and packages that the module at `path` imports, wherever in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mipnerf"):
            found |= {resolve(node.module, a.name) for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mipnerf")}
    return found


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return LAYERS.index(top) if top in LAYERS else -1


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_the_top_holds_at_most_12_entries_and_each_package_at_most_14_modules():
    top = [p for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(top) <= 12, sorted(p.name for p in top)
    assert {p.stem for p in top} - {"__init__"} == set(LAYERS)
    for package in (p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        entries = [p for p in package.iterdir() if p.name != "__pycache__"]
        assert len(entries) <= 14, (package, len(entries))


def test_no_module_is_over_600_lines():
    long = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert max(long.values()) <= 600, {k: v for k, v in long.items() if v > 600}


def test_imports_run_one_way_between_packages():
    upward = []
    for name, path in MODULES.items():
        for target in imports(path):
            if layer(target) > layer(name):
                upward.append(f"{name} -> {target}")
    assert not upward, upward


def test_no_circle_of_imports():
    graph = {name: {t for t in imports(path) if t in MODULES and t != name} for name, path in MODULES.items()}
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", " -> ".join(trail + [node])
        state[node] = "open"
        for target in graph[node]:
            visit(target, trail + [node])
        state[node] = "done"

    for node in graph:
        visit(node, [])
