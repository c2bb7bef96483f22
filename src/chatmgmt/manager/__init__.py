"""``ChatManager`` (sync) and ``AsyncChatManager`` (async): the library's front door.

Both run the same orchestration (:mod:`chatmgmt._core`), which yields port calls; the sync
manager calls sync ports, the async one awaits async ports. No business rule exists twice: the
public arguments become the core's call in one place (``_calls``), the managers' shared state is
``_base``, and each face (``_sync``, ``_async``) only drives the core's port calls.

>>> from chatmgmt import ChatManager, Agent, AgentStatus, CustomerInfo
>>> manager = ChatManager()
>>> _ = manager.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=2))
>>> chat = manager.open_chat(CustomerInfo(partner_id="u_1", name="Ada"))
>>> chat.state.value, chat.agent_id
('active', 'ann')
"""

from __future__ import annotations

from .._clock import SystemClock
from .._core import QueueStatus
from ._async import AsyncChatManager
from ._sync import ChatManager

__all__ = ["AsyncChatManager", "ChatManager", "QueueStatus", "SystemClock"]
