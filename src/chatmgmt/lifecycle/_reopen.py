"""Reopening an ended Always On chat, pure: may it reopen now, and what it keeps.

* :func:`check_reopen` — the rules, in order: the chat's mode (Real-Time chats end for good),
  its state (only ``ENDED`` reopens), its retention (a chat whose retention ran out is purged,
  or about to be: never back), and for a customer's message the ``reopen`` section
  (``on_customer_message``, ``window_s``); each refusal is a
  :class:`~chatmgmt.errors.ReopenRefusedError` naming the chat, its mode and the reason;
* :func:`reopened` — the chat open again, in the unassigned pool's state (``UNASSIGNED``, the
  table's ``reopen`` event) with what belonged to the ended period reset: the end, the fired
  deadlines (the active chat's timers restart), the sticky wait, the inactive mark, the count
  of satisfaction invitations (the rating of the ended period stays; a new period may be
  invited again at its end, by the satisfaction rules).
"""

from __future__ import annotations

from typing import Any

from ..errors import ReopenRefusedError
from ..model import Chat, ChatState, ReceptionMode, evolve
from ..ports import retention_start
from ..settings import ChatSettings, resolve
from ..settings._reopen import ReopenSettings
from ._deadlines import track
from ._state import ChatEvent, transition

__all__ = ["check_reopen", "reopened"]


def check_reopen(
    settings: ChatSettings, chat: Chat, now: float, *, customer: bool
) -> ReopenSettings:
    """The chat's effective ``reopen`` section when ``chat`` may be reopened at ``now`` (by its
    customer's message when ``customer``, else by a person's :meth:`reopen`); raise
    :class:`~chatmgmt.errors.ReopenRefusedError` otherwise."""

    def refuse(reason: str, detail: str) -> ReopenRefusedError:
        return ReopenRefusedError(chat.id, chat.state.value, chat.mode.value, reason, detail)

    if chat.mode is not ReceptionMode.ALWAYS_ON:
        raise refuse("real_time", "only Always On chats reopen; a Real-Time chat ends for good")
    if chat.state is not ChatState.ENDED:
        raise refuse("not_ended", "it is not ended")
    keep = settings.retention.ended_chats_s
    start = retention_start(chat)
    if keep > 0 and start is not None and start < now - keep:  # as purge() picks them
        raise refuse("retention", f"its retention ({keep:g}s, retention.ended_chats_s) ran out")
    section = resolve(settings.reopen, channel=chat.channel, group=chat.skill_group or None)
    if customer:
        if not section.on_customer_message:
            raise refuse("setting", "reopen.on_customer_message is off")
        ended = chat.ended_at
        if section.window_s and ended is not None and now - ended > section.window_s:
            raise refuse(
                "window",
                f"it ended {now - ended:g}s ago, more than reopen.window_s ({section.window_s:g}s)",
            )
    return section


def reopened(chat: Chat, now: float) -> Chat:
    """``chat`` (``ENDED``) open again and waiting for an agent (``UNASSIGNED``, no agent),
    with what belonged to the ended period reset (see the module's doc)."""
    state = transition(chat.id, chat.mode, chat.state, ChatEvent.REOPEN)
    changes: dict[str, Any] = track(chat, ChatEvent.REOPEN, now)
    satisfaction = chat.satisfaction
    if satisfaction and satisfaction.get("invitations"):
        # a new period: no invitation yet, and its own one reminder to come
        satisfaction = {**satisfaction, "invitations": 0}
        satisfaction.pop("reminded_at", None)
    return evolve(
        chat,
        state=state,
        agent_id=None,
        ended_at=None,
        end_reason=None,
        ended_by=None,
        inactive=False,
        sticky_waited=False,
        timers_fired={},
        satisfaction=satisfaction,
        reopened_at=now,  # a new wait for a person starts (first_arrival)
        **changes,
    )
