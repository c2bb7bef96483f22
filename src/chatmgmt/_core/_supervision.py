"""Chat Monitoring: the live snapshot and the supervisor's actions.

* :meth:`Supervision.monitor` reads every agent's load (in account order), the groups' counters
  (one :meth:`~chatmgmt.ports.AgentStore.censuses`) and the heads of their waiting lines (one
  :meth:`~chatmgmt.ports.QueueStore.heads`, which carries when the oldest chat started
  waiting), and folds them into a :class:`~chatmgmt.monitoring.Snapshot`
  (:func:`~chatmgmt.monitoring.build_snapshot`): three reads, no chat read, no scan.
* The recent moderation alerts come from a ring the core fills as committed events pass its
  one emit step (:class:`~chatmgmt.monitoring.AlertLog`).
* Join (observe), leave, whisper, take over and end: each one unit of work with its
  ``supervisor.*`` event. Who may act is the host's decision: the ``role`` it passes is recorded
  in the event, never checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._plan import Plan
from .._text import check_message_text, check_text
from ..assignment import Target, pool_name, queue_name
from ..errors import AssignmentError, ConflictError, InvalidTransitionError, ValidationError
from ..model import (
    AgentId,
    Chat,
    ChatId,
    ChatState,
    EndReason,
    Event,
    Message,
    MessageId,
    MessageRole,
    ReceptionMode,
    evolve,
)
from ..monitoring._alerts import ALERT_TYPES, AlertLog
from ..monitoring._snapshot import Snapshot, fold_snapshot, with_holds
from ..ports import AgentStore, ChatStore, QueueStore
from ..webhook import _payloads as payloads
from ._base import CAS_RETRIES
from ._ops import Eff, call
from ._repair import Repair

__all__ = ["Supervision"]


def _who(supervisor: str, role: str) -> None:
    check_text("supervisor", supervisor)
    check_text("role", role)
    if not supervisor:
        raise ValidationError("supervisor: must be a non-empty string")


class Supervision(Repair):
    """The live snapshot, the alert ring, and the supervisor's actions."""

    alerts: AlertLog

    def observe(self, events: Sequence[Event]) -> None:
        """Keep the moderation events for the monitor."""
        for event in events:
            if event.type in ALERT_TYPES:  # the others go by without a call
                log = self.__dict__.get("alerts")
                if log is None:
                    log = self.alerts = AlertLog()
                log.record(event)

    # ----------------------------------------------------------------- the snapshot

    def monitor(self, now: float, alerts: int = 20, on_hold: bool = False) -> Eff[Snapshot]:
        """The live snapshot at ``now`` with the last ``alerts`` moderation alerts; with
        ``on_hold``, its on-hold counts too, from the records of the chats the agents hold
        (one chat read each)."""
        loads = yield from call(AgentStore.list, None)
        groups = set(self.settings.assignment.groups)
        groups.update(*[load.agent.skill_groups for load in loads])
        names = sorted(groups)
        censuses = yield from call(AgentStore.censuses, names)
        line = pool_name if self.settings.reception_mode is ReceptionMode.ALWAYS_ON else queue_name
        lines = names if "" in groups else ["", *names]  # "": chats without a group
        heads = yield from call(QueueStore.heads, [line(g) for g in lines])
        oldest = {}
        for head in heads:
            if head.oldest is not None and head.oldest_at is None:  # an adapter that cannot say
                chat = yield from call(ChatStore.get, head.oldest)
                if chat is not None:
                    oldest[head.oldest] = chat
        log = self.__dict__.get("alerts")
        recent = log.recent(alerts) if log is not None and alerts > 0 else ()
        snapshot = fold_snapshot(
            now,
            dict(zip(names, censuses, strict=True)),
            lines,
            heads,
            loads,
            oldest,
            self.settings.assignment.queue.estimate_handle_s,
            recent,
        )
        if not on_hold:
            return snapshot
        held: dict[ChatId, Chat] = {}
        for load in loads:
            for chat_id in sorted(load.chats | load.inactive):
                if chat_id not in held:
                    chat = yield from call(ChatStore.get, chat_id)
                    if chat is not None:
                        held[chat_id] = chat
        return with_holds(snapshot, loads, held)

    # ----------------------------------------------------------------- actions

    def join_chat(
        self, chat_id: ChatId, supervisor: str, role: str, now: float, *, leave: bool = False
    ) -> Eff[Chat]:
        """Add (``leave``: remove) ``supervisor`` to the chat's observers, with its event, in
        one unit; idempotent (nothing changes when it already is or is not there)."""
        _who(supervisor, role)

        def planner(chat: Chat) -> Plan | None:
            present = supervisor in chat.observers
            if present != leave:
                return None
            if not leave and not chat.state.is_open:
                raise InvalidTransitionError(chat.id, chat.state.value, "supervisor_join")
            observers = chat.observers - {supervisor} if leave else chat.observers | {supervisor}
            item = payloads.supervisor_joined(supervisor, role, observers, left=leave)
            return Plan(evolve(chat, observers=observers), [item])

        _old, new = yield from self.update(chat_id, planner, now)
        return new

    def whisper(
        self, chat_id: ChatId, supervisor: str, role: str, text: str, now: float
    ) -> Eff[Message]:
        """Store a note for the agent only (role ``whisper``) with its event, in one unit: the
        chat's timers, ``agent_replied`` and inactivity do not move; the message sink never
        gets it (it is not a system message)."""
        _who(supervisor, role)
        if not isinstance(text, str):
            raise ValidationError(f"text: must be a string, got {type(text).__name__}")
        check_message_text(text, self.settings.limits.max_message_chars)
        message_id = MessageId(self.new_id("msg"))
        message = Message(message_id, chat_id, MessageRole.WHISPER, supervisor, text, now)

        def planner(chat: Chat) -> Plan:
            if not chat.state.is_open:
                raise InvalidTransitionError(chat.id, chat.state.value, "supervisor_whisper")
            item = payloads.supervisor_whispered(supervisor, role, message_id, chat.agent_id, text)
            return Plan(chat, [item], message=message)

        yield from self.update(chat_id, planner, now)
        return message

    def take_over(self, chat_id: ChatId, supervisor: str, role: str, now: float) -> Eff[Chat]:
        """The supervisor takes the chat: an active chat is transferred to them (the old
        agent's slot released), a waiting one assigned to them, in one unit with
        ``supervisor.took_over``. The supervisor must be a registered agent, ONLINE and below
        its limit (AssignmentError otherwise)."""
        _who(supervisor, role)
        agent_id = AgentId(supervisor)
        yield from self.require_agent(agent_id)
        for _ in range(CAS_RETRIES):
            chat = yield from self.get_chat(chat_id)
            old_agent = chat.agent_id if chat.state is ChatState.ACTIVE else None
            if old_agent == agent_id:
                raise AssignmentError(f"chat {chat_id!r} is already with agent {supervisor!r}")
            if not chat.state.is_open:
                raise InvalidTransitionError(chat.id, chat.state.value, "supervisor_take_over")
            probe = evolve(chat, excluded=chat.excluded - {agent_id})
            item = payloads.supervisor_took_over(supervisor, role, old_agent)
            before = chat.version
            done = yield from self.try_target(
                Target("agent", agent_id, "take_over"),
                chat,
                probe,
                now,
                items=[item],
                fresh=False,
                transfer=supervisor if old_agent is not None else None,
                release=old_agent,
                offer=False,  # the supervisor takes it: no offer to accept
            )
            if done is None:
                raise AssignmentError(
                    f"agent {supervisor!r} cannot take chat {chat_id!r} now "
                    "(not online or at the reception limit)"
                )
            if done.version != before + 1 or done.agent_id != agent_id:
                continue  # the chat moved on meanwhile: plan again from what it is now
            if old_agent is not None:
                yield from self.drain_for_agent(old_agent, now)
            return done
        raise ConflictError("chat", chat_id)

    def supervisor_end(self, chat_id: ChatId, supervisor: str, role: str, now: float) -> Eff[Chat]:
        """End the chat (reason ``system``, ended by the supervisor) in one unit with
        ``supervisor.ended``; frees the slot and drains like any end."""
        _who(supervisor, role)
        chat = yield from self.get_chat(chat_id)
        item = payloads.supervisor_ended(supervisor, role, chat.agent_id)
        return (yield from self.end_chat(chat_id, EndReason.SYSTEM, supervisor, now, extra=[item]))
