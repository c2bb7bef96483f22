"""``chatmgmt.webhook`` is the pure part of webhooks: none of its modules imports a module that
does network, thread or file I/O, nor the I/O package ``chatmgmt.delivery`` or the storage
adapters. (``verify`` reads the wall clock only when the receiver passes no ``now``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import chatmgmt.webhook

IO_MODULES = {
    "socket", "ssl", "http", "urllib.request", "asyncio", "threading", "concurrent",
    "selectors", "subprocess", "multiprocessing", "aiohttp", "httpx", "httpcore", "pathlib",
    "chatmgmt.delivery", "chatmgmt.storage",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
            elif node.level == 2:  # from ..x import y: a sibling package of webhook
                names.add(f"chatmgmt.{node.module}" if node.module else "chatmgmt")
    return names


def test_webhook_modules_import_no_io() -> None:
    package = Path(chatmgmt.webhook.__file__).parent
    found = {}
    for path in sorted(package.glob("*.py")):
        bad = {
            name
            for name in _imports(path)
            if any(name == m or name.startswith(m + ".") for m in IO_MODULES)
        }
        if bad:
            found[path.name] = sorted(bad)
    assert not found, f"I/O imports in chatmgmt.webhook: {found}"
