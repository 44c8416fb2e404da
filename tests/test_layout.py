"""The source tree's shape: no import cycles, one owner per file kind."""

from __future__ import annotations

import ast
from pathlib import Path

from paths import ROOT

SRC = ROOT / "src" / "vaelab"


def _module(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the vaelab modules it imports, at any depth of the file (function-level imports too)."""
    files = {_module(p, src): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            # a parent package is already being imported when its module runs: not an edge
            deps |= {t for t in targets if t in files and t != name and not name.startswith(t + ".")}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "vaelab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("from .a import y\n")
    assert cycles(import_graph(pkg)) == [["vaelab.a", "vaelab.b"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def _calls(name: str) -> set[str]:
    """Modules that call a function `name` (as name(...) or x.name(...))."""
    out = set()
    for p in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                    out.add(str(p.relative_to(SRC)))
    return out


def test_one_call_site_writes_checkpoints_and_file_names_have_one_owner():
    assert _calls("save_checkpoint") == {"training/epochs.py"}
    named = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if any(f'"{f}"' in p.read_text() for f in
                                                    ("metrics.jsonl", "config.toml", "eval.json",
                                                     "checkpoint.safetensors", "model.safetensors"))}
    assert named == {"runs/folder.py"}
