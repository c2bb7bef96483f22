"""A bad ``now`` or ``monitor()`` argument is refused with a typed error at the public boundary,
stores nothing, and the manager serves the next caller as before."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from chatmgmt import AsyncChatManager, ChatManager
from chatmgmt.errors import ValidationError
from chatmgmt.model import CustomerInfo

BAD_NOW = ["x", True, math.nan, math.inf, -math.inf, [1.0]]


@pytest.mark.parametrize("now", BAD_NOW, ids=repr)
def test_a_bad_now_is_refused_and_stores_nothing(now: Any) -> None:
    m = ChatManager()
    with pytest.raises(ValidationError, match=r"^now: must be a"):
        m.open_chat(CustomerInfo(channel="web"), now=now)
    assert m.storage.chats.list() == []
    chat = m.open_chat(CustomerInfo(channel="web"), now=1000)  # an int is a time
    assert chat.created_at == 1000
    with pytest.raises(ValidationError, match=r"^now: "):
        m.end_chat(chat.id, now=now)
    assert m.storage.chats.get(chat.id) == chat


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alerts": "x"}, "^alerts: must be an integer >= 0"),
        ({"alerts": -1}, "^alerts: must be an integer >= 0"),
        ({"alerts": True}, "^alerts: must be an integer >= 0"),
        ({"on_hold": "yes"}, "^on_hold: must be True or False"),
        ({"now": math.nan}, "^now: must be a finite number"),
    ],
)
def test_bad_monitor_arguments_are_refused_on_both_managers(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ChatManager().monitor(**kwargs)

    async def run() -> None:
        with pytest.raises(ValidationError, match=message):
            await AsyncChatManager().monitor(**kwargs)

    asyncio.run(run())
    assert ChatManager().monitor(alerts=0, on_hold=True).agents == []
