"""The one copy of the orchestration, shared by the sync and the async manager.

Every manager operation is a generator that yields typed port calls (:mod:`._ops`) and
receives their results. :class:`~chatmgmt.ChatManager` runs the generators against sync ports,
:class:`~chatmgmt.AsyncChatManager` awaits async ports, and the interleaving explorer of
:mod:`chatmgmt.testing` steps several of them call by call. Business rules live in the pure
modules (``assignment``, ``customers``, ``lifecycle``, ``moderation``, ``webhook``); these
modules plan each change of a chat and apply it as one unit of work (:mod:`._base`):

* :mod:`._base` — shared state, :class:`Plan`, the one effect (``commit``) and the one
  compare-and-set retry loop (``update``);
* :mod:`._customers` — the CRM upsert; :mod:`._satisfaction` — invitations and ratings;
* :mod:`._ending` — the end of a chat as a plan; :mod:`._routing` — targets, overflow, the
  queue, draining; :mod:`._chat` — open, end, transfer, assign, (in)active;
  :mod:`._offers` — accept, decline and expiry of offers; :mod:`._pull` — ``take_chat``;
* :mod:`._messages` — messages and moderation; :mod:`._submission` — leave a message;
* :mod:`._agents` — agent changes; :mod:`._deadlines` — ``tick``; :mod:`._retention` —
  ``purge`` (and the purge ``tick`` does); :mod:`._repair` — ``reconcile``;
  :mod:`._supervision` — the live snapshot and the supervisor's actions; :mod:`._tags` —
  the chat's tags; :mod:`._hold` — hold, resume and the inactivity release;
* :mod:`._pick` — a custom strategy's call, a step the driver performs (sync, or awaited).
"""

from __future__ import annotations

from ._hold import Holding
from ._ops import PORTS, Eff, Op, call, resolve
from ._retention import Retention
from ._status import QueueStatus
from ._supervision import Supervision
from ._tags import Tagging

__all__ = ["PORTS", "Core", "Eff", "Op", "QueueStatus", "call", "resolve"]


class Core(Supervision, Retention, Tagging, Holding):
    """Settings, randomness, the moderation filter and custom strategies, plus every
    operation of the managers."""
