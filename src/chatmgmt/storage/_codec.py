"""(De)serialization of the model values for the durable adapters (SQLite, Redis).

JSON through a cattrs converter: enums as their values, frozensets as sorted lists, tuples as
lists. Floats survive exactly (``repr`` round-trips), so a value read back compares equal to the
value stored. Free-form mappings (``Chat.attributes``, ``Event.data``, ...) must be JSON-ready,
as the webhook envelope already requires.
"""

from __future__ import annotations

from typing import Any, TypeVar

from cattrs.preconf.json import make_converter

from ..model import Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer

__all__ = ["decode", "encode"]

_T = TypeVar("_T")

_converter = make_converter()
_converter.register_unstructure_hook(frozenset, lambda value: sorted(value))


def encode(value: Any) -> str:
    """One model value (Chat, Customer, AgentLoad, Agent, Event, Timer, Message, Sticky) as JSON."""
    return _converter.dumps(value)


def decode(data: str | bytes, cls: type[_T]) -> _T:
    """The value of type ``cls`` that :func:`encode` turned into ``data``."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return _converter.loads(data, cls)


# Warm the converter's generated code for the hot types once, at import.
for _cls in (Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer):
    _converter.get_structure_hook(_cls)
    _converter.get_unstructure_hook(_cls)
