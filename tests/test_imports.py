"""No import circle in the package, and every module imports on its own.

The static check reads every module's top-level imports (those inside functions, and those
under ``if TYPE_CHECKING:``, run later or never) and asserts that the graph has no cycle.
Importing a submodule imports its parent packages first, so an import of ``a.b.c`` is an edge
to ``a.b`` and ``a.b.c``, except to the importer's own ancestors (already being imported). The
dynamic check imports each module first, in a fresh interpreter state, so that a circle the
static view misses still shows as an ``ImportError`` of a partly initialized module. (Every
``chatmgmt.X`` imported first imports the package ``chatmgmt`` first, so the modules that
import loads share one fresh state; each other module gets its own.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import chatmgmt

SRC = Path(chatmgmt.__file__).parent
ROOT = "chatmgmt"


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node.test):
            stack += node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                stack += handler.body


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules its top-level imports run."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: list[str] = []
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            else:
                base = _resolve(module, is_package, node)
                targets.append(base)
                targets += [f"{base}.{alias.name}" for alias in node.names]
        ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in modules and name not in ancestors and name != module:
                    graph[module].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_and_submodule_imports() -> None:
    graph = import_graph()
    assert "chatmgmt.ports" in graph["chatmgmt.delivery._core"]
    assert "chatmgmt.webhook" in graph["chatmgmt.delivery._core"]  # from ..webhook import ...
    assert "chatmgmt.webhook._plan" in graph["chatmgmt.delivery._core"]  # ..., _plan
    assert "chatmgmt" not in graph["chatmgmt.webhook._plan"]  # an ancestor: no edge


def test_no_import_circle_in_the_package() -> None:
    found = cycles(import_graph())
    assert not found, "import circles (break them; no late imports to hide them):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


_IMPORT_EACH_FIRST = """
import importlib, sys


def fresh():
    for loaded in [m for m in sys.modules if m == "chatmgmt" or m.startswith("chatmgmt.")]:
        del sys.modules[loaded]


failed = []
# Importing any chatmgmt.X first imports the package chatmgmt first: the same import, in the same
# order, for every X. A module that import loads already was imported exactly as it would be
# first (its own import is then a no-op), so one fresh import of the package covers all of them;
# every other module gets a fresh state of its own.
covered = set()
for name in ["chatmgmt", *sys.argv[1:]]:
    if name in covered:
        continue
    fresh()
    try:
        importlib.import_module(name)
    except ImportError as exc:
        if "partially initialized" in str(exc) or "circular" in str(exc):
            failed.append(f"{name}: {exc}")
    if name == "chatmgmt":
        covered = {m for m in sys.modules if m == "chatmgmt" or m.startswith("chatmgmt.")}
print("\\n".join(failed))
"""


def test_every_module_imports_first_in_a_fresh_state() -> None:
    names = sorted(_modules())
    # two interpreters, each taking every other module (the machine has two cores)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _IMPORT_EACH_FIRST, *names[start::2]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, 1)
    ]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert stdout.strip() == "", stdout
