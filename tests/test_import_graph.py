"""The import graph of clbench/, methods/ and tasks/ has no cycle, counting imports inside
functions too (issue 18): a cycle is where a newcomer reading one module has to go back
and forth, and a lazy import only hides it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folder -> the package it installs as (pyproject.toml, package-dir)
PACKAGES = {"clbench": "clbench", "methods": "clbench.methods", "tasks": "clbench.tasks"}


def modules() -> dict[str, Path]:
    out = {}
    for folder, pkg in PACKAGES.items():
        for p in (ROOT / folder).rglob("*.py"):
            rel = p.relative_to(ROOT / folder).with_suffix("").parts
            out[".".join((pkg, *rel)).removesuffix(".__init__")] = p
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Our modules that `path` imports anywhere in its body; `from a import b` counts as
    a import of `a` and, where `a.b` is a module, of `a.b`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_import_graph_has_no_cycle():
    mods = modules()
    assert {"clbench.runner", "clbench.context", "clbench.methods.es",
            "clbench.tasks.countdown.scoring", "clbench.leaderboard.verify"} <= set(mods)
    graph = {m: imports_of(p, set(mods)) - {m} for m, p in mods.items()}
    assert "clbench.population_ray" in graph["clbench.backends"]  # imports inside functions count
    assert "clbench.methods.es" in graph["clbench.methods.es_sparse"]
    assert cycles(graph) == []
