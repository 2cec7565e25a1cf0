"""The packages' import graphs, read with ast: no module of bridge/, server/, blender_addon/ or
resolve_scripts/ reaches itself again, even through imports inside functions (which only hide a
cycle)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str, known: set[str]) -> set[str]:
    """The project modules `path` imports, anywhere in it (relative imports resolved)."""
    here = _module(path)
    base = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                origin = ".".join(anchor + ([origin] if origin else []))
            # `from pkg import mod` imports the submodule; the package itself only counts when a
            # name in it is not a module (a package's parent is always imported first anyway)
            subs = [f"{origin}.{a.name}" for a in node.names]
            names = [n for n in subs if n in known] or [origin]
            if any(n not in known for n in subs) and origin not in names:
                names.append(origin)
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != here and name.startswith(package):
                found.add(name)
    return found


def _cycles(package: str) -> list[list[str]]:
    files = [p for p in (ROOT / package).rglob("*.py") if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))]
    known = {_module(p) for p in (ROOT / package).rglob("*.py")}
    graph = {_module(p): _imports(p, package, known) for p in files}
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"
    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


@pytest.mark.parametrize("package", ["bridge", "server", "blender_addon", "resolve_scripts"])
def test_no_package_has_import_cycles(package):
    assert _cycles(package) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "loop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from loop import b\n")
    (pkg / "b.py").write_text("from .a import f\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _cycles("loop") == [["loop.a", "loop.b", "loop.a"]]


def test_bridge_imports_itself_relatively():
    """So it can be vendored under another name (Blender's takebridge_bridge, Resolve's folder)
    without rewriting its source."""
    absolute = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            absolute += [f"{path.relative_to(ROOT)}: {n}" for n in names if n == "bridge" or n.startswith("bridge.")]
    assert absolute == []
