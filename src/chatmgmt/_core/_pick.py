"""Custom strategies as a step the driver performs: sync, async, external.

The core does not call a custom strategy itself: it yields ``call(Picker.pick, strategy,
eligible, chat, timeout_s)`` like any port call. The sync manager runs :func:`pick_sync`, the
async manager awaits :func:`pick_async` (an ``async def`` strategy, or one returning an
awaitable, is awaited within ``timeout_s``), and the interleaving explorer runs the sync one
inline. A strategy that raises or times out gives a :class:`PickFailed` value, never an
exception: what to do then (the fallback) is the core's rule, written once in
:mod:`._targets`. An async strategy handed to a sync manager is a mistake of the host and
raises :class:`~chatmgmt.errors.ValidationError`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from ..errors import ValidationError
from ..model import AgentLoad, Chat, Ranking

__all__ = [
    "PickFailed",
    "Picker",
    "check_sync_strategies",
    "is_async_strategy",
    "pick_async",
    "pick_sync",
]

log = logging.getLogger("chatmgmt")
_TIMEOUT: Any = getattr(asyncio, "timeout", None)  # asyncio.timeout, Python 3.11+


@attrs.frozen
class PickFailed:
    """A custom strategy raised (``why="error"``) or took longer than its timeout
    (``why="timeout"``); ``detail`` says what happened, for the explanation of the decision."""

    why: str
    detail: str


class Picker(Protocol):
    """The driver's call of a custom strategy (not a storage port: the host's own code)."""

    def pick(
        self, strategy: Any, eligible: Sequence[AgentLoad], chat: Chat, timeout_s: float
    ) -> AgentLoad | PickFailed | None:
        """The strategy's pick among ``eligible``, None for no pick, or why it failed."""
        ...


def is_async_strategy(strategy: object) -> bool:
    """Whether calling ``strategy`` gives a coroutine (an ``async def`` function, method,
    callable object or a ``functools.partial`` of one)."""
    while isinstance(strategy, functools.partial):
        strategy = strategy.func
    if inspect.iscoroutinefunction(strategy):
        return True
    call = getattr(type(strategy), "__call__", None)  # noqa: B004 (a callable object's method)
    return not inspect.isfunction(strategy) and inspect.iscoroutinefunction(call)


def _async_refused(group: str) -> ValidationError:
    return ValidationError(
        f"strategies[{group!r}] is an async strategy: a sync ChatManager cannot await it; "
        "use AsyncChatManager (it awaits the strategy within "
        "assignment.custom_strategy.timeout_s) or give a sync callable"
    )


def check_sync_strategies(strategies: Mapping[str, object] | None) -> None:
    """ValidationError naming the group when a sync manager is given an async strategy."""
    for group, strategy in (strategies or {}).items():
        if not isinstance(strategy, Ranking) and is_async_strategy(strategy):
            raise _async_refused(group)


def _failed(exc: BaseException, strategy: Any) -> PickFailed:
    name = getattr(strategy, "__name__", type(strategy).__name__)
    log.warning("custom strategy %s failed: %r; using the fallback", name, exc)
    return PickFailed("error", f"{type(exc).__name__}: {exc}"[:200])


def pick_sync(
    strategy: Any, eligible: Sequence[AgentLoad], chat: Chat, timeout_s: float
) -> AgentLoad | PickFailed | None:
    """Call a sync strategy (the timeout cannot interrupt a sync call and is not applied)."""
    try:
        result = strategy(eligible, chat)
    except Exception as exc:
        return _failed(exc, strategy)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: no "coroutine was never awaited" warning
        raise _async_refused(chat.skill_group or "*")
    return _checked(result, eligible, strategy)


async def pick_async(
    strategy: Any, eligible: Sequence[AgentLoad], chat: Chat, timeout_s: float
) -> AgentLoad | PickFailed | None:
    """Call a strategy and await its result when it gives an awaitable, within
    ``timeout_s`` (0: no limit); a timeout cancels the strategy's task."""
    try:
        result = strategy(eligible, chat)
        if inspect.isawaitable(result):
            if timeout_s <= 0:
                result = await result
            elif _TIMEOUT is not None:  # 3.11+: no task wrapped around the strategy
                async with _TIMEOUT(timeout_s):
                    result = await result
            else:
                result = await asyncio.wait_for(result, timeout_s)
    except asyncio.TimeoutError:
        log.warning("custom strategy timed out after %ss; using the fallback", timeout_s)
        return PickFailed("timeout", f"no answer within {timeout_s:g}s")
    except Exception as exc:
        return _failed(exc, strategy)
    return _checked(result, eligible, strategy)


def _checked(
    result: object, eligible: Sequence[AgentLoad], strategy: Any
) -> AgentLoad | PickFailed | None:
    """The pick must be None or one of the eligible agents, as its load or its id (an external
    router may answer with anything: a name it made up counts as a failure, not a crash)."""
    if result is None:
        return None
    wanted = result.agent.id if isinstance(result, AgentLoad) else result
    if isinstance(wanted, str):
        for load in eligible:
            if load.agent.id == wanted:
                return load
    return _failed(
        ValueError(f"the pick {result!r:.80} is not one of the eligible agents"), strategy
    )
