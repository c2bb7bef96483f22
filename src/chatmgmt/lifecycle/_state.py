"""The chat state machine, as a table (in the style of ``h11/_state.py``).

:data:`TRANSITIONS` maps ``(reception mode, state, event)`` to the next state; an entry that is
missing is a transition the rules forbid. :func:`transition` is the one function that looks a
transition up and turns a missing entry into :class:`~chatmgmt.errors.InvalidTransitionError`.
The diagrams in ``docs/lifecycle.md`` are drawn from the same table (see
:mod:`chatmgmt.lifecycle._diagram`), so they cannot drift from the code.

Ending a chat carries a reason; :data:`END_REASONS` says which :class:`~chatmgmt.model.EndReason`
fits which ``(mode, state)``, and :func:`check_end` applies both tables.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from ..errors import InvalidTransitionError
from ..model import ChatState, EndReason, ReceptionMode

__all__ = [
    "END_REASONS",
    "TRANSITIONS",
    "ChatEvent",
    "allowed_end_reasons",
    "allowed_events",
    "check_end",
    "initial_state",
    "is_terminal",
    "transition",
]


class ChatEvent(str, enum.Enum):
    """Something that happens to a chat and may change its state."""

    QUEUE = "queue"
    """Real-Time: a queued chat is (re)placed in a queue, e.g. it overflowed to another group."""
    ASSIGN = "assign"
    """An agent takes the chat (from the queue or the unassigned pool)."""
    TRANSFER = "transfer"
    """The chat moves from its agent to another agent (manual or automatic transfer)."""
    REQUEUE = "requeue"
    """Real-Time: the chat leaves its agent and goes back to the queue."""
    UNASSIGN = "unassign"
    """Always On: the chat leaves its agent and goes back to the unassigned pool."""
    END = "end"
    """The chat ends; the reason is checked against :data:`END_REASONS`."""
    ABANDON = "abandon"
    """Real-Time: the customer leaves the queue before an agent took the chat."""
    LEAVE_MESSAGE = "leave_message"
    """Real-Time: the customer leaves a message (submission) instead of waiting."""
    REOPEN = "reopen"
    """Always On: an ended conversation is opened again (``reopen()``, the customer's message,
    an admin's assignment), into the unassigned pool; a reopen to an agent assigns it from
    there in the same unit of work."""
    CUSTOMER_MESSAGE = "customer_message"
    """The customer writes. In an ended Always On chat this reopens it."""
    AGENT_MESSAGE = "agent_message"
    """The agent holding the chat writes."""
    OFFER = "offer"
    """Offers on: the chat is offered to an agent, who holds its slot while the offer runs."""
    ACCEPT = "accept"
    """The agent accepts the offer: the chat is theirs (timers of an active chat start now)."""
    DECLINE = "decline"
    """The agent declines the offer: the chat waits again (and is offered to the next agent
    in the same unit of work when one is free); it never goes back to that agent."""
    EXPIRE = "expire"
    """The offer ran out (``offers.timeout_s``): as ``decline``, with the agent excluded too."""
    HOLD = "hold"
    """The agent puts the active chat on hold (waiting for the customer or a third party): it
    stays ``active`` with its agent; its inactivity deadlines stop (see ``docs/lifecycle.md``)."""
    RESUME = "resume"
    """The held chat resumes: explicitly (``resume_chat``) or when the customer writes."""
    HANDOFF = "handoff"
    """The bot hands the chat to a human: it waits like a new chat (and is routed in the same
    unit of work), with the bot's context in the explanation."""


_Q = ChatState.QUEUED
_U = ChatState.UNASSIGNED
_A = ChatState.ACTIVE
_O = ChatState.OFFERED
_E = ChatState.ENDED
_L = ChatState.LEFT_MESSAGE
_X = ChatState.ABANDONED
_B = ChatState.BOT

_RT: dict[ChatState, dict[ChatEvent, ChatState]] = {
    _Q: {
        ChatEvent.QUEUE: _Q,
        ChatEvent.ASSIGN: _A,
        ChatEvent.OFFER: _O,
        ChatEvent.CUSTOMER_MESSAGE: _Q,
        ChatEvent.LEAVE_MESSAGE: _L,
        ChatEvent.ABANDON: _X,
        ChatEvent.END: _E,
    },
    _O: {
        ChatEvent.ACCEPT: _A,
        ChatEvent.DECLINE: _Q,
        ChatEvent.EXPIRE: _Q,
        ChatEvent.CUSTOMER_MESSAGE: _O,
        ChatEvent.ABANDON: _X,
        ChatEvent.END: _E,
    },
    _A: {
        ChatEvent.TRANSFER: _A,
        ChatEvent.REQUEUE: _Q,
        ChatEvent.CUSTOMER_MESSAGE: _A,
        ChatEvent.AGENT_MESSAGE: _A,
        ChatEvent.HOLD: _A,
        ChatEvent.RESUME: _A,
        ChatEvent.END: _E,
    },
    _B: {
        ChatEvent.HANDOFF: _Q,
        ChatEvent.CUSTOMER_MESSAGE: _B,
        ChatEvent.ABANDON: _X,
        ChatEvent.END: _E,
    },
    _E: {},
    _L: {},
    _X: {},
}

_AO: dict[ChatState, dict[ChatEvent, ChatState]] = {
    _U: {
        ChatEvent.ASSIGN: _A,
        ChatEvent.OFFER: _O,
        ChatEvent.CUSTOMER_MESSAGE: _U,
        ChatEvent.END: _E,
    },
    _O: {
        ChatEvent.ACCEPT: _A,
        ChatEvent.DECLINE: _U,
        ChatEvent.EXPIRE: _U,
        ChatEvent.CUSTOMER_MESSAGE: _O,
        ChatEvent.END: _E,
    },
    _A: {
        ChatEvent.TRANSFER: _A,
        ChatEvent.UNASSIGN: _U,
        ChatEvent.CUSTOMER_MESSAGE: _A,
        ChatEvent.AGENT_MESSAGE: _A,
        ChatEvent.HOLD: _A,
        ChatEvent.RESUME: _A,
        ChatEvent.END: _E,
    },
    _B: {
        ChatEvent.HANDOFF: _U,
        ChatEvent.CUSTOMER_MESSAGE: _B,
        ChatEvent.END: _E,
    },
    # an ended chat opens again only into the pool's state; a reopen to an agent (reopen(to=
    # "last_agent"), an admin's assign) is ``reopen`` then ``assign`` in the same unit of work
    _E: {
        ChatEvent.REOPEN: _U,
        ChatEvent.CUSTOMER_MESSAGE: _U,
    },
}


def _freeze(
    table: Mapping[ChatState, Mapping[ChatEvent, ChatState]],
) -> Mapping[ChatState, Mapping[ChatEvent, ChatState]]:
    return MappingProxyType({s: MappingProxyType(dict(e)) for s, e in table.items()})


TRANSITIONS: Mapping[ReceptionMode, Mapping[ChatState, Mapping[ChatEvent, ChatState]]] = (
    MappingProxyType(
        {
            ReceptionMode.REAL_TIME: _freeze(_RT),
            ReceptionMode.ALWAYS_ON: _freeze(_AO),
        }
    )
)
"""``TRANSITIONS[mode][state][event]`` is the next state; a missing entry is not allowed.

A state that does not appear under a mode does not exist in that mode (Always On has no
``QUEUED``, ``LEFT_MESSAGE`` or ``ABANDONED``; Real-Time has no ``UNASSIGNED``). A state present
with no events is terminal.
"""

_INITIAL: Mapping[ReceptionMode, ChatState] = MappingProxyType(
    {ReceptionMode.REAL_TIME: _Q, ReceptionMode.ALWAYS_ON: _U}
)

END_REASONS: Mapping[ReceptionMode, Mapping[ChatState, frozenset[EndReason]]] = MappingProxyType(
    {
        ReceptionMode.REAL_TIME: MappingProxyType(
            {
                # A customer who gives up while queued abandons (ABANDON), they do not "end".
                _Q: frozenset({EndReason.QUEUE_TIMEOUT, EndReason.SYSTEM}),
                # an offered chat is not served yet: the customer who leaves abandons it
                _O: frozenset({EndReason.SYSTEM}),
                _A: frozenset(
                    {
                        EndReason.AGENT,
                        EndReason.CUSTOMER,
                        EndReason.CUSTOMER_INACTIVITY,
                        EndReason.AGENT_LEFT,
                        EndReason.SYSTEM,
                        EndReason.HOLD_TIMEOUT,
                    }
                ),
                # the bot stage: the bot (or the host) ends it, or the customer went silent;
                # a customer who leaves it abandons it, as from the queue
                _B: frozenset({EndReason.BOT, EndReason.CUSTOMER_INACTIVITY, EndReason.SYSTEM}),
            }
        ),
        ReceptionMode.ALWAYS_ON: MappingProxyType(
            {
                # Always On chats never time out, and an agent who leaves returns the chat to
                # the pool (UNASSIGN) instead of ending it.
                _U: frozenset({EndReason.CUSTOMER, EndReason.SYSTEM}),
                _O: frozenset({EndReason.CUSTOMER, EndReason.SYSTEM}),
                _A: frozenset({EndReason.AGENT, EndReason.CUSTOMER, EndReason.SYSTEM}),
                _B: frozenset({EndReason.BOT, EndReason.CUSTOMER, EndReason.SYSTEM}),
            }
        ),
    }
)
"""``END_REASONS[mode][state]``: the end reasons allowed when a chat in ``state`` ends."""


_FAST: dict[tuple[ReceptionMode, ChatState, ChatEvent], ChatState] = {
    (m, st, ev): nxt
    for m, states in TRANSITIONS.items()
    for st, events in states.items()
    for ev, nxt in events.items()
}
_END_FAST: dict[tuple[ReceptionMode, ChatState, EndReason], ChatState] = {
    (m, st, reason): _FAST[(m, st, ChatEvent.END)]
    for m, states in END_REASONS.items()
    for st, reasons in states.items()
    for reason in reasons
    if (m, st, ChatEvent.END) in _FAST
}
"""check_end's allowed cases, as :data:`_FAST` (no enum call per argument)."""


def initial_state(mode: ReceptionMode) -> ChatState:
    """The state a new chat starts in: ``QUEUED`` (Real-Time) or ``UNASSIGNED`` (Always On).

    A Real-Time chat that finds an agent at once still starts ``QUEUED`` and takes ``ASSIGN``
    in the same unit of work; that keeps one path through the table.
    """
    state = _INITIAL.get(mode)  # a member (or its value) finds it without the enum's call
    return state if state is not None else _INITIAL[ReceptionMode(mode)]


def allowed_events(mode: ReceptionMode, state: ChatState) -> tuple[ChatEvent, ...]:
    """The events ``state`` accepts in ``mode``, in declaration order (empty when terminal)."""
    events = TRANSITIONS[ReceptionMode(mode)].get(ChatState(state), {})
    return tuple(e for e in ChatEvent if e in events)


def is_terminal(mode: ReceptionMode, state: ChatState) -> bool:
    """True when ``state`` accepts no event in ``mode`` (or does not exist in that mode)."""
    return not allowed_events(mode, state)


def transition(chat_id: str, mode: ReceptionMode, state: ChatState, event: ChatEvent) -> ChatState:
    """The state after ``event``; raise :class:`~chatmgmt.errors.InvalidTransitionError`.

    The error names the chat, its state and the event, and lists the events the state would
    accept (none for a terminal state, or for a state that does not exist in ``mode``).

    >>> from chatmgmt.model import ChatState, ReceptionMode
    >>> transition("c1", ReceptionMode.REAL_TIME, ChatState.QUEUED, ChatEvent.ASSIGN)
    <ChatState.ACTIVE: 'active'>
    """
    nxt = _FAST.get((mode, state, event))  # members hash like their values: str keys work too
    if nxt is not None:
        return nxt
    mode = ReceptionMode(mode)
    state = ChatState(state)
    event = ChatEvent(event)
    nxt = TRANSITIONS[mode].get(state, {}).get(event)
    if nxt is None:
        raise InvalidTransitionError(
            chat_id,
            state.value,
            event.value,
            [e.value for e in allowed_events(mode, state)],
        )
    return nxt


def allowed_end_reasons(mode: ReceptionMode, state: ChatState) -> frozenset[EndReason]:
    """The end reasons a chat in ``state`` may end with in ``mode`` (empty: it cannot end)."""
    return END_REASONS[ReceptionMode(mode)].get(ChatState(state), frozenset())


def check_end(chat_id: str, mode: ReceptionMode, state: ChatState, reason: EndReason) -> ChatState:
    """Check that the chat may end for ``reason`` now and return the new state (``ENDED``).

    Raises :class:`~chatmgmt.errors.InvalidTransitionError` with the event ``end:<reason>``
    when the state cannot end at all, or not for that reason (e.g. ``customer_inactivity`` in
    Always On Mode, ``queue_timeout`` of an active chat).
    """
    nxt = _END_FAST.get((mode, state, reason))  # as transition's _FAST
    if nxt is not None:
        return nxt
    mode = ReceptionMode(mode)
    state = ChatState(state)
    reason = EndReason(reason)
    nxt = transition(chat_id, mode, state, ChatEvent.END)
    allowed = allowed_end_reasons(mode, state)
    if reason not in allowed:
        raise InvalidTransitionError(
            chat_id,
            state.value,
            f"end:{reason.value}",
            [f"end:{r.value}" for r in EndReason if r in allowed],
        )
    return nxt
