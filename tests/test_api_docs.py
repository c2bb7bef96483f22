"""The API reference: every public method of the managers and dispatchers has a docstring, and
the reference page (docs/api.md, built by ``make docs`` with mkdocstrings) covers them."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from chatmgmt.delivery import AsyncDispatcher, Dispatcher
from chatmgmt.manager import AsyncChatManager, ChatManager

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = [ChatManager, AsyncChatManager, Dispatcher, AsyncDispatcher]


def _public_methods(cls: type) -> list[str]:
    return [
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    ]


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring(cls: type) -> None:
    missing = [n for n in _public_methods(cls) if not inspect.getdoc(getattr(cls, n))]
    assert not missing, f"{cls.__name__}: no docstring on {missing}"
    assert inspect.getdoc(cls)


def test_the_reference_page_names_the_documented_modules() -> None:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for cls in DOCUMENTED:
        module = (
            cls.__module__.rsplit(".", 1)[0]
            if cls.__module__.endswith(("._sync", "._async"))
            else cls.__module__
        )
        assert f"::: {module}" in page or f"::: {module}.{cls.__name__}" in page, cls
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "api.md" in config and "strict: true" in config
