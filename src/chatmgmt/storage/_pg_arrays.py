"""One-dimensional PostgreSQL arrays of a known element type, dumped in binary without
looking at their elements first.

psycopg dumps a Python ``list`` by inspecting its elements to choose the array's type, then
each element through its own dumper: for the ~20 array parameters of a unit of work's write
call that was about a fifth of the client's CPU per open and end (cProfile). A list of one of
the classes below says its type itself; its dumper writes the binary array format (``ndim``,
null flag, element oid, size and lower bound, then each element as length + bytes) in one
``struct`` call for fixed-size elements.

The dumpers are registered on psycopg's global adapters for these classes only (nothing a host
passes is affected); a connection created before :func:`register` ran dumps them as the plain
lists they also are (same values, psycopg's own way).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import Any, ClassVar

__all__ = ["Bools", "Bytes", "Floats", "Ints", "Longs", "Texts", "register"]


class _Array(list[Any]):
    """A list that knows its PostgreSQL array type."""

    array_oid: ClassVar[int]
    element_oid: ClassVar[int]


class Floats(_Array):
    """``float8[]``."""

    array_oid, element_oid = 1022, 701


class Ints(_Array):
    """``integer[]``."""

    array_oid, element_oid = 1007, 23


class Longs(_Array):
    """``bigint[]``."""

    array_oid, element_oid = 1016, 20


class Bools(_Array):
    """``boolean[]``."""

    array_oid, element_oid = 1000, 16


class Texts(_Array):
    """``text[]`` (``str`` elements, encoded as the connection's client encoding)."""

    array_oid, element_oid = 1009, 25


class Bytes(_Array):
    """``bytea[]`` (``bytes`` elements)."""

    array_oid, element_oid = 1001, 17


_EMPTY = struct.Struct(">iiI")  # ndim 0, no nulls, element oid
_HEAD = struct.Struct(">iiIii")  # ndim 1, has nulls, element oid, size, lower bound 1
_LEN = struct.Struct(">i")
_FIXED: dict[type[_Array], tuple[str, int]] = {
    Floats: ("d", 8),
    Ints: ("i", 4),
    Longs: ("q", 8),
    Bools: ("?", 1),
}


def dump_fixed(cls: type[_Array], items: Sequence[Any]) -> bytes:
    """The binary array of ``items`` (numbers or booleans; None is NULL)."""
    n = len(items)
    if n == 0:
        return _EMPTY.pack(0, 0, cls.element_oid)
    code, size = _FIXED[cls]
    if None in items:
        return dump_variable(cls, items, struct.Struct(">" + code).pack)
    return _HEAD.pack(1, 0, cls.element_oid, n, 1) + _body(code, n).pack(
        *chain.from_iterable(zip(repeat(size), items))
    )


_BODIES: dict[tuple[str, int], struct.Struct] = {}


def _body(code: str, n: int) -> struct.Struct:
    """The ``struct`` of ``n`` elements of type ``code``, each after its length."""
    body = _BODIES.get((code, n))
    if body is None:
        body = _BODIES[code, n] = struct.Struct(f">{('i' + code) * n}")
    return body


def dump_variable(cls: type[_Array], items: Sequence[Any], encode: Callable[[Any], bytes]) -> bytes:
    """The binary array of ``items``, each element's bytes from ``encode`` (None is NULL)."""
    n = len(items)
    if n == 0:
        return _EMPTY.pack(0, 0, cls.element_oid)
    parts = [b""]
    nulls = 0
    for item in items:
        if item is None:
            parts.append(b"\xff\xff\xff\xff")
            nulls = 1
        else:
            data = encode(item)
            parts.append(_LEN.pack(len(data)))
            parts.append(data)
    parts[0] = _HEAD.pack(1, nulls, cls.element_oid, n, 1)
    return b"".join(parts)


_registered: list[bool] = []


def register() -> None:
    """Register the dumpers on psycopg's global adapters (once; psycopg must be importable)."""
    if _registered:
        return
    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    def fixed(cls: type[_Array]) -> type[Any]:
        class _FixedDumper(Dumper):
            format = Format.BINARY
            oid = cls.array_oid

            def dump(self, obj: Any) -> bytes:
                return dump_fixed(cls, obj)

        return _FixedDumper

    class _TextsDumper(Dumper):
        format = Format.BINARY
        oid = Texts.array_oid

        def __init__(self, cls: type, context: Any = None) -> None:
            super().__init__(cls, context)
            conn = self.connection
            self._encoding = "utf-8" if conn is None else conn.info.encoding

        def dump(self, obj: Any) -> bytes:
            encoding = self._encoding
            return dump_variable(Texts, obj, lambda item: item.encode(encoding))

    class _BytesDumper(Dumper):
        format = Format.BINARY
        oid = Bytes.array_oid

        def dump(self, obj: Any) -> bytes:
            return dump_variable(Bytes, obj, bytes)

    for cls in _FIXED:
        psycopg.adapters.register_dumper(cls, fixed(cls))
    psycopg.adapters.register_dumper(Texts, _TextsDumper)
    psycopg.adapters.register_dumper(Bytes, _BytesDumper)
    _registered.append(True)
