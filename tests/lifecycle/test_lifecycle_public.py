"""The public surface of chatmgmt.lifecycle: every name exported once, documented, importable."""

from __future__ import annotations

import importlib
import inspect

import chatmgmt.lifecycle as lifecycle

PRIVATE = (
    "_state",
    "_deadlines",
    "_forms",
    "_satisfaction",
    "_mermaid",
    "_diagram",
    "_plans",
    "_offers",
    "_sla",
    "_reopen",
    "_hold",
    "_invitations",
)


def test_every_public_name_is_exported_once() -> None:
    names = lifecycle.__all__
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(set(names))
    for name in names:
        assert hasattr(lifecycle, name), name
    exported_by_modules: list[str] = []
    for mod in PRIVATE:
        module = importlib.import_module(f"chatmgmt.lifecycle.{mod}")
        if mod != "_diagram":
            exported_by_modules.extend(module.__all__)
    assert sorted(exported_by_modules) == sorted(names)


def test_every_public_name_has_a_docstring() -> None:
    for name in lifecycle.__all__:
        obj = getattr(lifecycle, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    assert inspect.getdoc(member), f"{name}.{attr}"
