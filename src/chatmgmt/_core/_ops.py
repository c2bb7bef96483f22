"""Typed port calls: the orchestration yields :class:`Op` values built from a port's method.

An operation is a generator. ``result = yield from call(ChatStore.get, chat_id)`` yields one
:class:`Op` naming the Protocol's own method, so ``mypy --strict`` checks the arguments and the
result type against the port's signature; the driver (sync or async manager, the interleaving
explorer) resolves the method on the storage it drives through one table, :data:`PORTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Concatenate, NamedTuple, TypeVar

from typing_extensions import ParamSpec

from ..ports import (
    AgentStore,
    AsyncStorage,
    ChatStore,
    CustomerStore,
    EventSink,
    MessageSink,
    Outbox,
    QueueStore,
    RateCounter,
    Storage,
    TimerStore,
)
from ._pick import Picker

__all__ = ["PORTS", "Eff", "Op", "call", "resolve"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_NO_KWARGS: dict[str, Any] = {}


class Op(NamedTuple):
    """One port call: ``fn`` is the Protocol's method (unbound), called with ``args``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def name(self) -> str:
        """``"<port>.<method>"``, e.g. ``"chats.get"`` (``"apply"`` for the unit of work)."""
        port = PORTS[self.fn.__qualname__.partition(".")[0]]
        return f"{port}.{self.fn.__name__}" if port else self.fn.__name__


_new_op = tuple.__new__

Eff = Generator[Op, Any, T]
"""An operation: yields port calls, receives their results, returns ``T``."""


def call(fn: Callable[Concatenate[Any, P], R], *args: P.args, **kwargs: P.kwargs) -> Eff[R]:
    """Yield one call of the port method ``fn`` and return its result, typed as ``fn``'s."""
    # tuple.__new__: the NamedTuple's own __new__ is a Python function (one call less per op)
    result: R = yield _new_op(Op, (fn, args, kwargs or _NO_KWARGS))
    return result


PORTS: dict[str, str] = {
    Storage.__name__: "",
    CustomerStore.__name__: "customers",
    AgentStore.__name__: "agents",
    ChatStore.__name__: "chats",
    QueueStore.__name__: "queues",
    Outbox.__name__: "outbox",
    TimerStore.__name__: "timers",
    RateCounter.__name__: "counters",
    EventSink.__name__: "sink",
    MessageSink.__name__: "sink",
    Picker.__name__: "sink",
}
"""The one table from a port's Protocol to where a driver finds it: the storage's attribute
(``""``: the storage itself, for :meth:`Storage.apply`) or ``"sink"`` (the host's side: its
sinks, and the call of a custom strategy, :mod:`._pick`)."""


def resolve(fn: Callable[..., Any], storage: Storage | AsyncStorage, sinks: Any) -> Any:
    """The bound method that performs ``fn`` on ``storage`` (sync or async) or ``sinks``."""
    port = PORTS[fn.__qualname__.partition(".")[0]]
    if port == "sink":
        target: Any = sinks
    elif port:
        target = getattr(storage, port)
    else:
        target = storage
    return getattr(target, fn.__name__)
