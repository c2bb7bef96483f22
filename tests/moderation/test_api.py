"""The public face of ``chatmgmt.moderation``."""

from __future__ import annotations

import inspect

import chatmgmt.moderation as moderation


def test_every_public_name_exported_once_with_a_docstring() -> None:
    names = moderation.__all__
    assert len(names) == len(set(names))
    for required in (
        "SensitiveWordFilter",
        "Action",
        "Hit",
        "Verdict",
        "Normalization",
        "WordList",
    ):
        assert required in names
    for name in names:
        obj = getattr(moderation, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (
                    inspect.isfunction(member) or isinstance(member, property)
                ):
                    assert inspect.getdoc(member), f"{name}.{attr}"
