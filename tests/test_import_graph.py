"""The package's import graph: no cycles, and imports point only down the layers of DESIGN.md.

Every ``import``/``from ... import`` of an ``mmada_bench`` module counts, at module level or inside a
function (a lazy import is still a dependency), except under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mmada_bench"

#: Top to bottom: a module may import its own layer or any layer below it, never above.
LAYERS = [
    {"cli"},
    {"runner", "reports", "toy"},
    {"backends"},
    {"engine"},
    {"tasks", "train"},
    {"scorers"},
    {"results"},
    {"adapters"},
    {"sampling"},
    {"model"},
    {"provenance", "hashing", "jsonio", "errors", "__init__"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module}: top-level name {top!r} has no layer in LAYERS")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mmada_bench"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmada_bench"):
            # `from pkg import sub` depends on the submodule when there is one, else on pkg itself
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in _imports(path):
            while target not in modules and "." in target:  # `from mod import name`: name is not a module
                target = target.rsplit(".", 1)[0]
            if target != name and target in modules:
                targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_only_point_down_the_layers():
    upward = [f"{src} -> {dst}" for src, targets in _graph().items() for dst in targets if _layer(dst) < _layer(src)]
    assert not upward, "upward imports: " + "; ".join(sorted(upward))


def test_the_checker_sees_lazy_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from mmada_bench.runner import run_suite\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mmada_bench.cli\n")
    assert _imports(source) == {"mmada_bench.runner.run_suite"}
