from collections.abc import Callable, Iterable
from typing import Any

def normalize(
    text: str,
    fold: bytes | None,
    fold_astral: dict[int, int] | None,
    classes: bytes,
    astral: tuple[tuple[int, int, int], ...],
    options: int,
    /,
) -> str | tuple[str, bytes, bytes]: ...
def check(
    text: str,
    fold: bytes | None,
    fold_astral: dict[int, int] | None,
    classes: bytes,
    astral: tuple[tuple[int, int, int], ...],
    options: int,
    scan: Callable[[Any], Iterable[tuple[int, int]]],
    as_bytes: bool,
    shift: int,
    patterns: Patterns,
    hit_type: type[tuple[Any, ...]],
    longest: bool,
    /,
) -> tuple[tuple[Any, ...], Any] | None: ...

class Matches:
    """A hyperscan match_event_handler recording (to, id) for check()."""

    def __call__(self, id: int, start: int, to: int, flags: int, context: object, /) -> None: ...
    def __len__(self) -> int: ...

class Patterns:
    """What check() reads per pattern of a filter and role, in one record each."""

    def __init__(self, meta: bytes, hit4s: tuple[Any, ...], /) -> None: ...
    def __len__(self) -> int: ...
