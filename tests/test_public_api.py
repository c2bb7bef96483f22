"""The public API: every exported name resolves, is documented, and is exported once.

"Exported once": an object is listed in the ``__all__`` of at most one public unit — a
subpackage (its ``__init__`` and its public submodules count as one unit, e.g.
``chatmgmt.storage`` and ``chatmgmt.storage.memory``) or a flat public module
(``chatmgmt.errors``, ``chatmgmt.model``, ...) — plus, optionally, the top-level ``chatmgmt``.
Private modules (a ``_`` in the dotted path) never count. The checks are generic, so they keep
working as subpackages gain names.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
from collections import defaultdict
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import chatmgmt

PACKAGES = [
    "chatmgmt",
    "chatmgmt.assignment",
    "chatmgmt.customers",
    "chatmgmt.ports",
    "chatmgmt.storage",
    "chatmgmt.testing",
    "chatmgmt.webhook",
    "chatmgmt.delivery",
    "chatmgmt.moderation",
    "chatmgmt.lifecycle",
    "chatmgmt.simulation",
]
SRC = Path(chatmgmt.__file__).parent
_PLAIN = (str, bytes, int, float, bool, type(None), tuple, frozenset)


@cache
def public_modules() -> dict[str, ModuleType]:
    """Every public module of the package (no ``_`` component), imported."""
    out = {"chatmgmt": chatmgmt}
    for info in pkgutil.walk_packages(chatmgmt.__path__, "chatmgmt."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts):
            continue
        out[info.name] = importlib.import_module(info.name)
    return out


def _unit(module_name: str) -> str:
    return ".".join(module_name.split(".")[:2])


def _exports(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} has no __all__"
    return list(names)


@cache
def documented_assignments() -> frozenset[str]:
    """Names assigned at module level somewhere in the package and followed by a docstring."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = tree.body
        for node, nxt in itertools.pairwise(body):
            if not (
                isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
                and nxt.value.value.strip()
            ):
                continue
            if isinstance(node, ast.Assign):
                found.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                found.add(node.target.id)
    return frozenset(found)


def _has_docstring(name: str, obj: Any) -> bool:
    if inspect.isclass(obj):
        return bool((vars(obj).get("__doc__") or "").strip())
    if inspect.isroutine(obj) or inspect.ismodule(obj) or hasattr(obj, "__wrapped__"):
        return bool((obj.__doc__ or "").strip())
    # constants, NewTypes, type aliases, strategy instances: an attribute docstring
    return name in documented_assignments()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves_and_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    names = _exports(module)
    assert len(names) == len(set(names)), f"{package}.__all__ lists a name twice"
    assert (module.__doc__ or "").strip(), f"{package} has no module docstring"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{package}.__all__ names missing attributes: {missing}"
    undocumented = [n for n in names if not _has_docstring(n, getattr(module, n))]
    assert not undocumented, f"{package}: no docstring for {undocumented}"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_init_only_re_exports(package: str) -> None:
    """A public ``__init__`` defines no function or class of its own: it only re-exports."""
    module = importlib.import_module(package)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    defined = [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        # a module __getattr__ is a lazy re-export (PEP 562), not a definition
        and node.name != "__getattr__"
    ]
    assert not defined, f"{package}/__init__.py defines {defined}; move them to a module"


def test_every_public_module_has_all_and_documents_its_names() -> None:
    problems = []
    for name, module in public_modules().items():
        if not hasattr(module, "__all__"):
            problems.append(f"{name}: no __all__")
            continue
        for export in module.__all__:
            if not hasattr(module, export):
                problems.append(f"{name}.{export}: does not resolve")
            elif not _has_docstring(export, getattr(module, export)):
                problems.append(f"{name}.{export}: no docstring")
    assert not problems, "\n".join(problems)


def test_each_object_is_exported_by_one_unit_at_most() -> None:
    homes: dict[int, set[str]] = defaultdict(set)
    labels: dict[int, set[str]] = defaultdict(set)
    for name, module in public_modules().items():
        if name == "chatmgmt":
            continue
        for export in getattr(module, "__all__", ()):
            obj = getattr(module, export, None)
            if obj is None or isinstance(obj, _PLAIN):
                continue
            homes[id(obj)].add(_unit(name))
            labels[id(obj)].add(f"{name}.{export}")
    duplicated = sorted(sorted(labels[k]) for k, units in homes.items() if len(units) > 1)
    assert not duplicated, f"exported by several units: {duplicated}"


def test_top_level_names_have_a_home() -> None:
    """``chatmgmt`` re-exports names whose home is a public unit; it defines nothing itself."""
    homed: set[int] = set()
    for name, module in public_modules().items():
        if name != "chatmgmt":
            homed.update(id(getattr(module, n)) for n in getattr(module, "__all__", ()))
    orphans = [
        n
        for n in chatmgmt.__all__
        if not isinstance(getattr(chatmgmt, n), _PLAIN) and id(getattr(chatmgmt, n)) not in homed
    ]
    assert not orphans, f"chatmgmt exports names no public unit lists: {orphans}"


def test_one_public_name_means_one_object() -> None:
    """``from chatmgmt import X`` and ``from chatmgmt.sub import X`` must be the same X."""
    seen: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, module in public_modules().items():
        for export in getattr(module, "__all__", ()):
            obj = getattr(module, export, None)
            if obj is not None and not isinstance(obj, _PLAIN):
                seen[export][id(obj)].append(name)
    clashes = {
        n: sorted(m for ms in objs.values() for m in ms)
        for n, objs in seen.items()
        if len(objs) > 1
    }
    assert not clashes, f"one name, different objects: {clashes}"


def test_checks_would_catch_a_duplicate() -> None:
    """Self-test of the helpers: an object listed by two units is reported."""
    fake = ModuleType("chatmgmt.fake")
    fake.__all__ = ["ChatManager"]  # type: ignore[attr-defined]
    fake.ChatManager = chatmgmt.ChatManager  # type: ignore[attr-defined]
    units = {_unit("chatmgmt.manager"), _unit("chatmgmt.fake")}
    assert len(units) == 2
    assert _unit("chatmgmt.storage.memory") == _unit("chatmgmt.storage")
    assert not _has_docstring("nothing_documents_this_name", object())
    assert _has_docstring("AgentId", object())  # documented by an attribute docstring
