"""The package's shape: imports only point down the layers, and no module imports itself back.

Layers, bottom to top (docs/architecture.md, "Where things are"): a package may import only
packages of a lower rank. Every import counts, also those inside functions: a function-local
import that closes a circle is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "spexphormer"

RANK = {
    "errors": 0,
    "utils": 1,
    "graph": 2, "data": 2,
    "artifact_checks": 3, "nn": 3,
    "scores": 4, "train": 4,
    "sampling": 5,
    "distributed": 6, "config": 6,
    "presets": 7, "pipeline": 7, "config_files": 7,
    "analysis": 8,
    "cli": 9,
    "__main__": 10,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ``spexphormer`` modules a file imports (``from pkg import name`` counts as ``pkg.name``
    when that is a module, else as ``pkg``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("spexphormer"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spexphormer"):
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            modules = {sub for sub in subs if _file_of(sub) is not None}
            found.update(modules)
            if len(modules) < len(subs):  # some names come from the package's own namespace
                found.add(node.module)
    return found


def _file_of(module: str) -> Path | None:
    base = SRC.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): {m for m in _imports(p) if _file_of(m) is not None} for p in SRC.rglob("*.py")}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_rank():
    packages = {_package(m) for m in _graph()} - {"__init__"}
    assert packages <= set(RANK), f"give these a layer in RANK: {sorted(packages - set(RANK))}"


def test_imports_only_point_down():
    upward = []
    for module, targets in _graph().items():
        source = _package(module)
        for target in targets:
            dest = _package(target)
            if source == "__init__" or dest == "__init__" and target == "spexphormer":
                continue  # the root package re-exports the errors and the version only
            if dest != source and RANK[dest] >= RANK[source]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, "import circle: " + " -> ".join(cycle)
