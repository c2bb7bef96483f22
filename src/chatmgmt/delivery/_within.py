"""A total deadline over one awaitable exchange."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["within"]

T = TypeVar("T")


async def within(exchange: Coroutine[Any, Any, T], seconds: float) -> T:
    """Run ``exchange`` under a total deadline (no extra task where ``asyncio.timeout``
    exists); raises :class:`asyncio.TimeoutError` when it passes."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10
        return await asyncio.wait_for(exchange, seconds)
    async with timeout(seconds):
        return await exchange
