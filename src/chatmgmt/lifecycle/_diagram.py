"""Regenerate the diagrams of ``docs/lifecycle.md`` from the transition table.

``python -m chatmgmt.lifecycle._diagram [docs/lifecycle.md]`` rewrites the generated blocks of the
page in place; ``--check`` exits 1 when the page is out of date instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ._mermaid import update_generated

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate (``--check``: verify) the diagrams in a docs page; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0] if paths else "docs/lifecycle.md")
    old = path.read_text(encoding="utf-8")
    new = update_generated(old)
    if check:
        if new != old:
            print(f"{path} is out of date: run python -m chatmgmt.lifecycle._diagram {path}")
            return 1
        return 0
    if new != old:
        path.write_text(new, encoding="utf-8")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
