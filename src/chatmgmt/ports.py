"""The ports: every piece of I/O the library does goes through these protocols.

The host implements them or uses a shipped adapter (:mod:`chatmgmt.storage.memory`, the default;
``storage.sqlite``; ``storage.redis``). Each protocol's docstring is its contract: what is
atomic, what raises, what is idempotent. ``chatmgmt.testing`` exports the contract suites that
check an adapter keeps them.

**One unit of work per operation.** Every change of a chat reaches storage as one
:class:`Change`, applied by :meth:`Storage.apply` atomically: the chat's compare-and-set on its
version, the slot claimed (for a named agent, or the first eligible agent of a group by a
ranking, picked by the store inside the unit) or released, the queue entry pushed or removed,
the timers set or cancelled, the message, the sticky mark and the events. All of it commits or
none of it; a failed precondition raises :class:`~chatmgmt.errors.PreconditionFailed` saying
which. Indexes (slots, queue entries, rank entries, timers) never move in a step of their own,
so no interleaving of operations, and no crash between two of them, leaves a chat and its
indexes disagreeing.

**Retention** is the one write outside the unit of work: :meth:`ChatStore.purge` deletes chats
that are over (:func:`retention_start`) whole, with their messages, after the retention time
(``retention.ended_chats_s``). It never touches an open chat, a queue, a slot or the outbox.

Every adapter is created for one ``namespace`` (a tenant); no operation sees another's data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .errors import ValidationError
from .model import (
    Agent,
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Event,
    Message,
    Ranking,
    Sticky,
    Timer,
    copier,
    evolve,
)

__all__ = [
    "CENSUS_MARKS",
    "PICKED",
    "AgentStore",
    "Applied",
    "AsyncAgentStore",
    "AsyncChatStore",
    "AsyncCustomerStore",
    "AsyncDeliveryStore",
    "AsyncOutbox",
    "AsyncQueueStore",
    "AsyncRateCounter",
    "AsyncStorage",
    "AsyncTimerStore",
    "AsyncTransport",
    "Attempt",
    "BufferedEvent",
    "Census",
    "Change",
    "ChatStore",
    "Claim",
    "Clock",
    "CustomerStore",
    "Delivery",
    "DeliveryStatus",
    "DeliveryStore",
    "EndpointHealth",
    "EventSink",
    "GroupCensus",
    "HttpRequest",
    "HttpResponse",
    "MessageSink",
    "Outbox",
    "OutboxEntry",
    "QueueHead",
    "QueuePush",
    "QueueStore",
    "RankedClaim",
    "RateCounter",
    "Storage",
    "TimerStore",
    "Transport",
    "retention_start",
]


# --------------------------------------------------------------------------- clock and sinks


@runtime_checkable
class Clock(Protocol):
    """Where the library reads the time: Unix seconds as a float. Injected, never global."""

    def now(self) -> float:
        """The current time in Unix seconds."""
        ...


class EventSink(Protocol):
    """Receives events as they happen (monitoring hits, alerts) in addition to the outbox.

    Called after the change committed; an exception in the sink is logged and swallowed.
    """

    def emit(self, event: Event) -> None:
        """Take one event."""
        ...


class MessageSink(Protocol):
    """Receives system messages (prompts, warnings) the host must show in a chat.

    Called after the message was stored; an exception in the sink is logged and swallowed.
    """

    def deliver(self, message: Message) -> None:
        """Show ``message`` to the chat's participants."""
        ...


# --------------------------------------------------------------------------- values


@attrs.frozen
class OutboxEntry:
    """An event claimed from the outbox; ``id`` is the adapter's cursor, used to ack it."""

    id: str
    event: Event
    deliveries: int = 0


@attrs.frozen
class Census:
    """How a group's agents stand right now (``""``: every agent).

    ``eligible``: ONLINE and below the limit; ``full``: ONLINE at the limit; ``busy``, ``away``,
    ``offline`` by status; ``capacity``: the sum of ONLINE agents' limits; ``load``: the chats
    ONLINE agents hold. With channel weights (``Agent.channel_weights``) "below the limit"
    means a unit of the limit left (``AgentLoad.used < reception_limit``); ``load`` still
    counts chats.
    """

    eligible: int = 0
    full: int = 0
    busy: int = 0
    away: int = 0
    offline: int = 0
    capacity: int = 0
    load: int = 0

    @property
    def online(self) -> int:
        """ONLINE agents, eligible or full."""
        return self.eligible + self.full

    @property
    def total(self) -> int:
        """Every agent of the group."""
        return self.eligible + self.full + self.busy + self.away + self.offline


@attrs.frozen
class GroupCensus(Census):
    """A group's :class:`Census` with what the live monitor shows besides
    (:meth:`AgentStore.censuses`): ``held``, the chats its agents hold (counted and inactive,
    whatever their status); ``free``, the slots below the limit of its ONLINE agents (an agent
    above its limit counts 0, so it may exceed ``capacity - load``; units of the limit for an
    agent with channel weights: ``AgentLoad.free``)."""

    held: int = 0
    free: int = 0


@attrs.frozen
class QueueHead:
    """A queue at a glance (:meth:`QueueStore.heads`): how many chats wait in ``queue``, the
    ``first`` (the next to be served, by score then insertion) and the ``oldest`` (the entry
    pushed longest ago and still there; with priorities it need not be the first) and
    ``oldest_at``, when that chat started waiting (its ``queued_at``, its ``created_at`` when
    unset), so the monitor reads no chat. All three are None for an empty queue."""

    queue: str
    length: int = 0
    first: ChatId | None = None
    oldest: ChatId | None = None
    oldest_at: float | None = None


@attrs.frozen
class HttpRequest:
    """One webhook request: the body is already serialized and signed."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout_s: float = 15.0


@attrs.frozen
class HttpResponse:
    """What a transport got back; ``body`` holds at most the first 20 kB."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_s: float


# --------------------------------------------------------------------------- the unit of work

PICKED: AgentId = AgentId("\x00picked")
"""Placeholder for the agent a :class:`RankedClaim` picks inside the unit of work.

The plan names the agent it cannot know yet with this value (agent ids never contain NUL): in
``chat.agent_id``, in ``chat.served_by``, and as ``data["agent_id"]`` of its events. The store
replaces every such occurrence by the agent it picked (:meth:`Change.bind`); in serialized JSON
the placeholder is the string ``"\\u0000picked"``, so a script can substitute it textually.
"""

CENSUS_MARKS: Mapping[str, str] = {
    field: f"\x00census:{field}" for field in ("eligible", "full", "busy", "away", "offline")
}
"""Placeholders for the counts of a :class:`Census` that the store reads inside the unit of
work (:attr:`Change.census`), by field name.

A plan that explains itself with the census of the group it claims in (``route_reason``'s
``eligible`` and ``ineligible``) cannot know those counts before the unit runs; it writes these
strings instead, at any depth of the chat's ``route_reason``, of its events' ``data`` and of
its timers' ``payload``. The store replaces every value equal to a mark by that field of the
census it read (:meth:`Change.bind`); in serialized JSON a mark is the string
``"\\u0000census:eligible"`` (quotes included), replaced by the bare integer.
"""


@attrs.frozen
class Claim:
    """Claim a slot of one named agent for the chat.

    Precondition: the agent exists and may take one more chat of ``channel`` at the change's
    ``now`` (``fits`` in ``chatmgmt.assignment._load``: ONLINE, the chat's channel weight fits
    below its reception limit, below its limit for that channel, and fewer than ``cap``
    assignments within the last ``window_s`` seconds when ``cap`` > 0), or already holds the
    chat (claims are idempotent per chat); otherwise ``agent_unavailable``. ``force`` (repair
    only, :meth:`chatmgmt.ChatManager.reconcile`): the agent exists; the slot is taken whatever
    its status and load, because the chat is already active with that agent.

    ``channel`` is the chat's channel (recorded with the slot at an agent with capacity per
    channel; ``""``: none, a chat of weight 1); ``keep_s`` > 0 records the assignment's time for
    the fairness cap, keeping that many seconds of them (``claimed`` there).
    """

    agent_id: AgentId
    force: bool = False
    channel: str = ""
    cap: int = 0
    window_s: float = 0.0
    keep_s: float = 0.0


@attrs.frozen
class RankedClaim:
    """Claim a slot of the first agent of ``group`` by ``ranking`` that is ONLINE, below its
    limit and not in ``excluded``; the store picks it inside the unit (O(log n) plus the
    excluded agents skipped). None eligible: ``no_agent``.

    ``channel``, ``cap``, ``window_s`` and ``keep_s`` are those of :class:`Claim`: the pick is
    the first agent of the index that also ``fits`` the chat (agents
    whose channel is full or who reached the fairness cap are skipped like excluded ones).

    ``hold=False`` picks without taking a slot (a left message is handed to an agent but holds
    no live capacity): the pick still counts as an assignment for the ranking
    (:func:`chatmgmt.assignment.touched`), so round robin stays fair across chats and
    messages."""

    group: str
    ranking: Ranking
    excluded: frozenset[AgentId] = frozenset()
    hold: bool = True
    channel: str = ""
    cap: int = 0
    window_s: float = 0.0
    keep_s: float = 0.0


@attrs.frozen
class QueuePush:
    """Put the chat in ``queue`` at ``score`` (smaller first, then insertion order).

    A chat already in that queue keeps its entry and its place (a transfer back, a retry)."""

    queue: str
    score: float


@attrs.frozen
class Change:
    """Everything one operation changes about one chat, applied atomically by
    :meth:`Storage.apply`.

    Preconditions (checked before anything is written; the first that fails is raised as
    :class:`~chatmgmt.errors.PreconditionFailed`):

    * ``expected_version is None``: the chat must not exist (``exists``), ``chat`` is created;
      otherwise the stored chat must exist (``missing``) at that version (``version``);
    * ``require_empty``: that queue holds no chat but this one (``queue_not_empty``) — a new
      chat does not overtake chats already waiting;
    * ``claim``: see :class:`Claim` and :class:`RankedClaim`.

    Effects, in this order, all in the same unit:

    1. ``release``: the slot ``chat_id`` holds at that agent is freed (idempotent);
    2. ``claim``: the slot is taken; with a :class:`RankedClaim` the picked agent replaces
       :data:`PICKED` in ``chat`` and ``events`` (:meth:`bind`);
    3. ``inactive``: ``(agent, flag)`` moves the held chat between counted and inactive
       (uncounted) chats of that agent (idempotent);
    4. ``remove`` (queue names, idempotent), then ``push``;
    5. ``cancel`` (timer keys, idempotent), then ``schedule`` (replacing timers of those keys);
    6. ``chat`` replaces the stored chat (None: the chat is unchanged, the change only repairs
       its indexes under the version guard); ``message`` is appended to its messages, then
       ``more_messages`` in order (a unit that stores several, e.g. the end prompt and the
       rating invitation); ``sticky`` is recorded for its customer; ``events`` are appended
       to the outbox.

    ``chat.version`` must be ``expected_version + 1`` (``0`` when created). ``now`` and
    ``tiebreak`` feed the load rules (:mod:`chatmgmt.assignment`): ``last_assigned_at``,
    ``idle_since`` and the random tie-break of the slot operations.

    **Reports** (what the store reads inside the same unit, so the caller needs no read of its
    own before or after): ``census`` names a group whose :class:`Census` is read before any
    effect (:attr:`Applied.census`; also :attr:`~chatmgmt.errors.PreconditionFailed.census`
    when the claim fails), and fills the :data:`CENSUS_MARKS`; ``watch`` names queues whose
    heads are read after the effects (:attr:`Applied.heads`), with the released agent's load
    (:attr:`Applied.released`). Every store must read the census and fill its marks (the
    events commit with them); the heads are optional (``Applied.heads`` None: the caller reads
    them itself), and every shipped adapter reports them.
    """

    chat_id: ChatId
    expected_version: int | None
    now: float
    chat: Chat | None = None
    claim: Claim | RankedClaim | None = None
    release: AgentId | None = None
    inactive: tuple[AgentId, bool] | None = None
    require_empty: str | None = None
    remove: tuple[str, ...] = ()
    push: QueuePush | None = None
    cancel: tuple[str, ...] = ()
    schedule: tuple[Timer, ...] = ()
    message: Message | None = None
    sticky: Sticky | None = None
    events: tuple[Event, ...] = ()
    tiebreak: float = 0.0
    owned: bool = False
    """``chat``, ``events`` and the ``schedule``'s timers were built for this change alone
    (nobody else holds them): an adapter that writes nothing after the pick may fill in the
    picked agent in place (:meth:`bound` with ``in_place=True``) instead of copying them."""
    more_messages: tuple[Message, ...] = ()
    """Messages appended after ``message``, in this order, in the same unit (empty for
    nearly every change: one unit usually stores at most one message)."""
    census: str | None = None
    """A skill group (``""``: every agent) whose :class:`Census` the store reads inside the
    unit before any effect — exactly what :meth:`AgentStore.census` returns at that point —
    and reports in :attr:`Applied.census` (and in
    :attr:`~chatmgmt.errors.PreconditionFailed.census` when the claim fails); its counts
    replace the :data:`CENSUS_MARKS` in the chat, the events and the timers."""
    watch: tuple[str, ...] = ()
    """Queues whose heads the store reads inside the unit after the effects and reports in
    :attr:`Applied.heads` (one :class:`QueueHead` each, in this order, exactly what
    :meth:`QueueStore.heads` returns right after the commit): the queues a freed slot may
    drain, so that an end needs no read after its unit."""

    def check(self) -> None:
        """Raise :class:`~chatmgmt.errors.ValidationError` when the change is malformed: a
        ``chat`` whose id is not ``chat_id`` or whose version is not ``expected_version + 1``
        (``0`` when created). Every adapter calls it before it touches its data.

        ``chat=None`` with ``expected_version=None`` is well formed: it changes indexes only,
        guarded by "this chat does not exist" (a repair of an index naming a chat that is
        gone, or a timer that belongs to no chat: an agent's leave grace time, a queue's
        position events or live overflow check, kept under a pseudo chat id that holds a
        control character, which no chat id does)."""
        chat = self.chat
        if chat is None:
            return
        if chat.id != self.chat_id:
            raise ValidationError(f"change of chat {self.chat_id!r} carries chat {chat.id!r}")
        want = 0 if self.expected_version is None else self.expected_version + 1
        if chat.version != want:
            raise ValidationError(
                f"change of chat {self.chat_id!r}: chat.version must be {want}, got {chat.version}"
            )

    def bind(self, agent_id: AgentId | None, census: Census | None = None) -> Change:
        """This change with the picked ``agent_id`` in place of :data:`PICKED` — in the chat's
        agent, its ``served_by`` and ``route_reason`` values, the events' ``data["agent_id"]``
        and the scheduled timers' payload values (and the items of list or tuple values) — and
        with ``census``'s counts in place of the :data:`CENSUS_MARKS` (at any depth of the
        chat's ``route_reason``, the events' data and the timers' payloads). None: nothing of
        that kind to fill in."""
        chat, events, schedule = self.bound(agent_id, census)
        return evolve(self, chat=chat, events=events, schedule=schedule)

    def bound(
        self, agent_id: AgentId | None, census: Census | None = None, *, in_place: bool = False
    ) -> tuple[Chat | None, tuple[Event, ...], tuple[Timer, ...]]:
        """The chat, events and timers of :meth:`bind` (without copying the change itself).

        ``in_place`` (only for an :attr:`owned` change, applied once): the chat, the events'
        data and the timers' payloads are changed themselves and returned, no copy is made.
        """
        if census is None:
            if agent_id is None:
                return self.chat, self.events, self.schedule
            return self._bound_agent(agent_id, in_place)
        if agent_id is None:
            bound = self.chat, self.events, self.schedule
        else:
            bound = self._bound_agent(agent_id, in_place)
        return _fill_census(*bound, census, in_place)

    def _bound_agent(
        self, agent_id: AgentId, in_place: bool
    ) -> tuple[Chat | None, tuple[Event, ...], tuple[Timer, ...]]:
        """:meth:`bound` of the picked agent alone."""
        if in_place:
            return self._bound_in_place(agent_id)
        chat = self.chat
        if chat is not None:
            reason = chat.route_reason
            if PICKED in reason.values():
                reason = {k: agent_id if v == PICKED else v for k, v in reason.items()}
            served = chat.served_by
            if PICKED in served:
                served = tuple(agent_id if a == PICKED else a for a in served)
            agent = agent_id if chat.agent_id == PICKED else chat.agent_id
            if type(chat) is Chat:  # the fixed-field copy (no keyword dict)
                chat = _COPY_BOUND_CHAT(chat, agent, served, reason)
            else:
                chat = evolve(chat, agent_id=agent, served_by=served, route_reason=reason)
        events = self.events
        for i, event in enumerate(events):
            if event.data.get("agent_id") == PICKED:
                events = (
                    *events[:i],
                    *(
                        _bound_event(e, agent_id) if e.data.get("agent_id") == PICKED else e
                        for e in events[i:]
                    ),
                )
                break
        schedule = self.schedule
        for i, timer in enumerate(schedule):
            if _payload_holds_picked(timer.payload):
                schedule = (
                    *schedule[:i],
                    *(
                        evolve(
                            t, payload={k: _bind_value(v, agent_id) for k, v in t.payload.items()}
                        )
                        if any(_holds_picked(v) for v in t.payload.values())
                        else t
                        for t in schedule[i:]
                    ),
                )
                break
        return chat, events, schedule

    def _bound_in_place(
        self, agent_id: AgentId
    ) -> tuple[Chat | None, tuple[Event, ...], tuple[Timer, ...]]:
        """:meth:`bound` with ``in_place=True``: the same replacements, made in the chat, the
        events' data and the timers' payloads themselves (one pass each, no call per value)."""
        chat = self.chat
        if chat is not None:
            reason = chat.route_reason
            if PICKED in reason.values():
                _bind_items(reason, agent_id)  # type: ignore[arg-type]
            served = chat.served_by
            if PICKED in served:
                served = tuple([agent_id if a == PICKED else a for a in served])
                _SET_SERVED(chat, served)
            if chat.agent_id == PICKED:
                _SET_AGENT(chat, agent_id)
        events = self.events
        for event in events:
            data = event.data
            if data.get("agent_id") == PICKED:
                data["agent_id"] = agent_id  # type: ignore[index]
        schedule = self.schedule
        last = None
        for timer in schedule:
            payload = timer.payload
            if payload is last:  # timers planned from one basis share their payload
                continue
            last = payload
            for key, value in payload.items():
                if value == PICKED or (isinstance(value, (tuple, list)) and PICKED in value):
                    payload[key] = _bind_value(value, agent_id)  # type: ignore[index]
        return chat, events, schedule


def _bound_event(event: Event, agent_id: AgentId) -> Event:
    """A copy of ``event`` whose ``data["agent_id"]`` is ``agent_id``."""
    data = {**event.data, "agent_id": agent_id}
    if type(event) is Event:
        return _COPY_EVENT_DATA(event, data)
    return evolve(event, data=data)


_COPY_BOUND_CHAT = copier(Chat, "agent_id", "served_by", "route_reason")
_COPY_EVENT_DATA = copier(Event, "data")
_SET_AGENT = Chat.__dict__["agent_id"].__set__
_SET_SERVED = Chat.__dict__["served_by"].__set__


def _census_counts(census: Census) -> dict[str, int]:
    """Each :data:`CENSUS_MARKS` placeholder -> the count of ``census`` it stands for."""
    return {mark: getattr(census, field) for field, mark in CENSUS_MARKS.items()}


def _fill_census(
    chat: Chat | None,
    events: tuple[Event, ...],
    schedule: tuple[Timer, ...],
    census: Census,
    in_place: bool,
) -> tuple[Chat | None, tuple[Event, ...], tuple[Timer, ...]]:
    """The chat, events and timers with ``census``'s counts in place of its marks."""
    counts = _census_counts(census)
    if in_place:
        seen: set[int] = set()  # one explanation is shared by the chat and its events
        if chat is not None:
            _fill_dict(chat.route_reason, counts, seen)  # type: ignore[arg-type]
        for event in events:
            _fill_dict(event.data, counts, seen)  # type: ignore[arg-type]
        for timer in schedule:
            _fill_dict(timer.payload, counts, seen)  # type: ignore[arg-type]
        return chat, events, schedule
    if chat is not None:
        reason = _filled(chat.route_reason, counts)
        if reason is not chat.route_reason:
            chat = evolve(chat, route_reason=reason)
    events = tuple(
        e if (data := _filled(e.data, counts)) is e.data else evolve(e, data=data) for e in events
    )
    schedule = tuple(
        t if (payload := _filled(t.payload, counts)) is t.payload else evolve(t, payload=payload)
        for t in schedule
    )
    return chat, events, schedule


#: classes of the values that hold no mark and nothing to walk into, but ``str`` (a mark is
#: an exact ``str``)
_ATOMS = frozenset({int, float, bool, type(None)})


def _fill_dict(values: dict[str, object], counts: Mapping[str, int], seen: set[int]) -> None:
    """Replace the census marks in ``values`` (at any depth), in place."""
    if id(values) in seen:
        return
    seen.add(id(values))
    for key, value in values.items():
        # ``type(x)``, not ``x.__class__``: a specialized call where the attribute is not
        kind = type(value)
        if kind is str:
            if value in counts:
                values[key] = counts[value]  # type: ignore[index]
        elif kind in _ATOMS:
            continue
        elif isinstance(value, (dict, list, tuple)):
            if isinstance(value, dict):
                _fill_dict(value, counts, seen)
            else:
                filled = _filled(value, counts)
                if filled is not value:
                    values[key] = filled


def _filled(value: Any, counts: Mapping[str, int]) -> Any:
    """``value`` with the census marks replaced at any depth; ``value`` itself when it holds
    none (so an unchanged value is never copied)."""
    kind = type(value)
    if kind is tuple or kind is list:  # of atoms and no mark (a deadline's basis): itself
        for item in value:
            kind = type(item)
            if kind is str:
                if item in counts:
                    break
            elif kind not in _ATOMS:
                break
        else:
            return value
    if isinstance(value, str):
        return counts.get(value, value)
    if isinstance(value, Mapping):
        out = {k: _filled(v, counts) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(value, (list, tuple)):
        items = [_filled(v, counts) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    return value


def _bind_items(values: dict[str, object], agent_id: AgentId) -> None:
    """``values`` with the picked ``agent_id`` in place of :data:`PICKED`, changed in place."""
    for key, value in values.items():
        if _holds_picked(value):
            values[key] = _bind_value(value, agent_id)


def _payload_holds_picked(payload: Mapping[str, object]) -> bool:
    for value in payload.values():
        if value == PICKED or (isinstance(value, (tuple, list)) and PICKED in value):
            return True
    return False


def _holds_picked(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return PICKED in value
    return value == PICKED


def _bind_value(value: object, agent_id: AgentId) -> object:
    if value == PICKED:
        return agent_id
    if isinstance(value, (tuple, list)):
        return type(value)(agent_id if v == PICKED else v for v in value)
    return value


def retention_start(chat: Chat) -> float | None:
    """When the retention time of ``chat`` starts to run, or None while it must be kept.

    * ``ENDED`` and ``ABANDONED`` chats: from their last change (``updated_at``: the end, or a
      later rating);
    * ``LEFT_MESSAGE`` chats an agent answered (``last_agent_message_at`` set): from their last
      change (the last reply);
    * every other chat (open ones, and left messages nobody answered yet): None, never purged.

    An adapter stores this value with the chat on every :meth:`Storage.apply` (an index ordered
    by it) so that :meth:`ChatStore.purge` finds the oldest first without a scan.
    """
    state = chat.state
    if state is _ENDED or state is _ABANDONED:
        return chat.updated_at
    if state is _LEFT_MESSAGE and chat.last_agent_message_at is not None:
        return chat.updated_at
    return None


# read on every unit of work: module globals (3.11 does not specialize class attributes)
_ENDED, _ABANDONED = ChatState.ENDED, ChatState.ABANDONED
_LEFT_MESSAGE = ChatState.LEFT_MESSAGE


@attrs.frozen
class Applied:
    """What :meth:`Storage.apply` committed: the chat as stored (None when the change left it
    unchanged), the agent whose slot the claim took (None without a claim), and the events as
    appended (with the picked agent filled in)."""

    chat: Chat | None
    agent_id: AgentId | None = None
    events: tuple[Event, ...] = ()
    census: Census | None = None
    """The census of :attr:`Change.census`'s group, read before the effects (None without)."""
    heads: tuple[QueueHead, ...] | None = None
    """One head per :attr:`Change.watch` queue, read after the effects (``()`` without
    ``watch``); None: the store does not report heads, nor :attr:`released` — the caller
    reads them itself."""
    released: AgentLoad | None = None
    """With :attr:`Change.release` and reported :attr:`heads`: the released agent's load after
    the unit (None: that agent is not registered)."""


# --------------------------------------------------------------------------- sync storage


class CustomerStore(Protocol):
    """The CRM: customer records keyed by ``partner_id``.

    * :meth:`create` and :meth:`replace` are atomic with their ``events``.
    * :meth:`create` raises :class:`~chatmgmt.errors.ConflictError` when the partner_id exists,
      so two concurrent first messages give one record: the loser re-reads and merges.
    * :meth:`replace` is a compare-and-set: it stores ``customer`` (whose ``version`` is
      ``expected_version + 1``) only if the stored version is ``expected_version``, else raises
      :class:`~chatmgmt.errors.ConflictError`.
    """

    def get(self, partner_id: str) -> Customer | None:
        """The record, or None."""
        ...

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """Insert a new record; ConflictError if it exists."""
        ...

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """Compare-and-set on ``version``; ConflictError when it lost."""
        ...


class AgentStore(Protocol):
    """Agents and their live load.

    * Slots (which chats an agent holds) change only inside :meth:`Storage.apply`, with the
      chat they belong to; the rules are :mod:`chatmgmt.assignment`'s load functions.
    * :meth:`put` is a compare-and-set on the agent's configuration ``version``: with
      ``expected_version`` it stores ``agent`` only if the stored version is that one (None: the
      agent must not exist), else raises :class:`~chatmgmt.errors.ConflictError`; so a status
      change and a limit change made at once never undo each other. Its load is kept.
    * ``tiebreak`` is a fresh random number the caller drew from its injected RNG; a new agent
      keeps it as ``AgentLoad.tiebreak`` for rankings that break ties at random.
    """

    def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """Register (``expected_version=None``) or update an agent (status, limit, groups,
        tier) by compare-and-set; returns the stored load. A new agent starts with
        ``idle_since = now``."""
        ...

    def census(self, group: str) -> Census:
        """Counts of the group's agents by availability; O(1) or a cheap aggregate."""
        ...

    def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """One :class:`GroupCensus` per name of ``groups``, in that order, read at once (the
        live monitor's bulk read; an unknown group is all zeros). Memory answers from its
        counters, O(1) per group; an adapter may aggregate over the groups' agents."""
        ...

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """An agent and its load, or None."""
        ...

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """Every agent (of ``group`` when given), in account order."""
        ...


class ChatStore(Protocol):
    """Chats, their messages and the sticky-agent marks (read side; every write is a
    :class:`Change` given to :meth:`Storage.apply`)."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """The chat, or None."""
        ...

    def messages(self, chat_id: ChatId) -> list[Message]:
        """A chat's messages in the order they were stored."""
        ...

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """Chats, filtered by state and/or agent (a maintenance query, not a hot path)."""
        ...

    def sticky(self, partner_id: str) -> Sticky | None:
        """The last sticky mark recorded for a customer, or None."""
        ...

    def purge(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` chats whose retention started before ``before``
        (:func:`retention_start` < ``before``), oldest first; returns how many.

        Each chat goes whole, atomically (memory: under the lock; SQL: one transaction per
        call; Redis: one script per call): the record, its messages, its entries in the chat
        lists, and its customer's sticky mark when that mark was recorded before ``before``.
        An open chat, a left message nobody answered, a chat that changed since (its retention
        start is no longer before ``before``) is never touched. Queue entries, slots and
        timers are not touched either (an ended chat has none; one left over by a broken
        adapter is removed by ``reconcile()`` or dropped when it fires); nor is the outbox
        (unacknowledged events belong to the dispatcher). ``limit <= 0`` purges nothing.
        """
        ...


class QueueStore(Protocol):
    """Ordered waiting lines: the real-time queue and the Always On pool, per skill group
    (read side; entries move only inside :meth:`Storage.apply`).

    Entries are ordered by ``score`` (smaller first), then by insertion.
    """

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """The first ``limit`` chats with their scores, in order."""
        ...

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """0-based position of ``chat_id``, or None."""
        ...

    def length(self, queue: str) -> int:
        """How many chats wait in ``queue``."""
        ...

    def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """One :class:`QueueHead` per name of ``queues``, in that order, read at once (the
        live monitor's bulk read; an unknown queue is empty). Memory answers in O(1) per
        queue; an adapter may cost O(log n) or, for ``oldest``, O(length) per queue, never a
        scan of every chat."""
        ...


class Outbox(Protocol):
    """The durable event log the webhook dispatcher consumes, at least once.

    * Events are appended by the other ports' mutating methods (same unit of work) or by
      :meth:`append` for events no state change caused.
    * :meth:`claim` leases up to ``limit`` unacknowledged entries, oldest first, that no other
      consumer holds a live lease on; a lease that expires (the consumer died) makes the entry
      claimable again. :meth:`ack` is idempotent.
    """

    def append(self, events: Sequence[Event]) -> None:
        """Append events on their own."""
        ...

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """Lease the oldest unacknowledged entries."""
        ...

    def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries: they are never claimed again."""
        ...

    def pending(self) -> int:
        """How many entries are not acknowledged yet."""
        ...


class TimerStore(Protocol):
    """Deadlines, keyed by chat and kind; set and cancelled inside :meth:`Storage.apply`.

    :meth:`claim_due` leases due timers (their ``due_at`` moves to ``now + lease_s``), so a
    worker that dies before firing leaves them to fire later, and two workers never fire one
    timer at once. It must cost O(k log n) for k due timers, never a scan of all timers.
    """

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """Drop a fired timer's lease; idempotent. With ``due_at``, only if the timer is still
        due then (so a timer the firing rescheduled survives)."""
        ...

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """Lease up to ``limit`` timers due at ``now``, earliest first."""
        ...


class RateCounter(Protocol):
    """Sliding-window counters (e.g. moderation hits per sender).

    Memory stays bounded: a key whose last hit left its window is forgotten (by later hits,
    a bounded number at a time), so one-off senders do not accumulate."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """Record one hit and return the hits for ``key`` within the last ``window_s``."""
        ...


class Storage(Protocol):
    """A bundle of every storage port for one namespace (tenant), and the unit of work."""

    def apply(self, change: Change) -> Applied:
        """Apply ``change`` atomically (see :class:`Change`): all of it or nothing.

        Raises :class:`~chatmgmt.errors.PreconditionFailed` (committing nothing) when a
        precondition does not hold."""
        ...

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        ...

    @property
    def customers(self) -> CustomerStore:
        """The CRM."""
        ...

    @property
    def agents(self) -> AgentStore:
        """Agents and their load."""
        ...

    @property
    def chats(self) -> ChatStore:
        """Chats and messages."""
        ...

    @property
    def queues(self) -> QueueStore:
        """Queues and pools."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The event log."""
        ...

    @property
    def timers(self) -> TimerStore:
        """Deadlines."""
        ...

    @property
    def counters(self) -> RateCounter:
        """Sliding-window counters."""
        ...


class Transport(Protocol):
    """Sends one HTTP POST; never follows redirects; raises DeliveryError on network failure."""

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` and return the response."""
        ...


# --------------------------------------------------------------------------- async mirror


class AsyncCustomerStore(Protocol):
    """Async face of :class:`CustomerStore`, same contract."""

    async def get(self, partner_id: str) -> Customer | None:
        """See :meth:`CustomerStore.get`."""
        ...

    async def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See :meth:`CustomerStore.create`."""
        ...

    async def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See :meth:`CustomerStore.replace`."""
        ...


class AsyncAgentStore(Protocol):
    """Async face of :class:`AgentStore`, same contract."""

    async def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See :meth:`AgentStore.put`."""
        ...

    async def census(self, group: str) -> Census:
        """See :meth:`AgentStore.census`."""
        ...

    async def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See :meth:`AgentStore.censuses`."""
        ...

    async def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See :meth:`AgentStore.get`."""
        ...

    async def list(self, group: str | None = None) -> list[AgentLoad]:
        """See :meth:`AgentStore.list`."""
        ...


class AsyncChatStore(Protocol):
    """Async face of :class:`ChatStore`, same contract."""

    async def get(self, chat_id: ChatId) -> Chat | None:
        """See :meth:`ChatStore.get`."""
        ...

    async def messages(self, chat_id: ChatId) -> list[Message]:
        """See :meth:`ChatStore.messages`."""
        ...

    async def list(
        self, state: ChatState | None = None, agent_id: AgentId | None = None
    ) -> list[Chat]:
        """See :meth:`ChatStore.list`."""
        ...

    async def sticky(self, partner_id: str) -> Sticky | None:
        """See :meth:`ChatStore.sticky`."""
        ...

    async def purge(self, before: float, limit: int) -> int:
        """See :meth:`ChatStore.purge`."""
        ...


class AsyncQueueStore(Protocol):
    """Async face of :class:`QueueStore`, same contract."""

    async def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See :meth:`QueueStore.peek`."""
        ...

    async def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See :meth:`QueueStore.position`."""
        ...

    async def length(self, queue: str) -> int:
        """See :meth:`QueueStore.length`."""
        ...

    async def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See :meth:`QueueStore.heads`."""
        ...


class AsyncOutbox(Protocol):
    """Async face of :class:`Outbox`, same contract."""

    async def append(self, events: Sequence[Event]) -> None:
        """See :meth:`Outbox.append`."""
        ...

    async def claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> list[OutboxEntry]:
        """See :meth:`Outbox.claim`."""
        ...

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """See :meth:`Outbox.ack`."""
        ...

    async def pending(self) -> int:
        """See :meth:`Outbox.pending`."""
        ...


class AsyncTimerStore(Protocol):
    """Async face of :class:`TimerStore`, same contract."""

    async def cancel(self, key: str, due_at: float | None = None) -> None:
        """See :meth:`TimerStore.cancel`."""
        ...

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See :meth:`TimerStore.claim_due`."""
        ...


class AsyncRateCounter(Protocol):
    """Async face of :class:`RateCounter`, same contract."""

    async def hit(self, key: str, now: float, window_s: float) -> int:
        """See :meth:`RateCounter.hit`."""
        ...


class AsyncStorage(Protocol):
    """Async bundle of every storage port for one namespace, and the unit of work."""

    async def apply(self, change: Change) -> Applied:
        """See :meth:`Storage.apply`."""
        ...

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        ...

    @property
    def customers(self) -> AsyncCustomerStore:
        """The CRM."""
        ...

    @property
    def agents(self) -> AsyncAgentStore:
        """Agents and their load."""
        ...

    @property
    def chats(self) -> AsyncChatStore:
        """Chats and messages."""
        ...

    @property
    def queues(self) -> AsyncQueueStore:
        """Queues and pools."""
        ...

    @property
    def outbox(self) -> AsyncOutbox:
        """The event log."""
        ...

    @property
    def timers(self) -> AsyncTimerStore:
        """Deadlines."""
        ...

    @property
    def counters(self) -> AsyncRateCounter:
        """Sliding-window counters."""
        ...


class AsyncTransport(Protocol):
    """Async face of :class:`Transport`, same contract."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` and return the response."""
        ...


# --------------------------------------------------------------------------- webhook delivery
#
# The delivery-state store: where the webhook dispatcher (:mod:`chatmgmt.delivery`) keeps what
# it still has to send; its contract is the docstring of :class:`DeliveryStore`.

RESPONSE_KEEP = 20_000
"""How many bytes of a response body an attempt keeps."""


class DeliveryStatus(str, enum.Enum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@attrs.frozen
class Attempt:
    """One attempt: when, the HTTP status (None: no response), latency, what came back.

    ``response`` holds at most the first 20 kB of the response body; ``error`` says what went
    wrong when there was no (acceptable) response, e.g. ``"timeout"``.
    """

    at: float
    status: int | None
    latency_s: float
    response: bytes = attrs.field(default=b"", repr=False)
    error: str = ""

    @property
    def ok(self) -> bool:
        """True for a 2xx response."""
        return self.status is not None and 200 <= self.status < 300


@attrs.frozen
class Delivery:
    """One webhook message for one endpoint (one event, or a batch of one type).

    ``id`` is the ``webhook-id``: the event id, or for a batch an id derived from its events.
    ``body`` is serialized once; every attempt sends and signs these same bytes. ``chat_keys``
    are the chats it belongs to (for per-chat ordering). ``attempts`` is the whole history;
    ``round_start`` is the index where the current round began (a replay starts a new round, so
    the retry schedule starts again while the old attempts stay visible).
    """

    id: str
    endpoint_id: str
    event_type: str
    event_ids: tuple[str, ...]
    chat_keys: tuple[str, ...]
    body: bytes = attrs.field(repr=False)
    created_at: float
    next_attempt_at: float
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: tuple[Attempt, ...] = ()
    round_start: int = 0
    dead_reason: str = ""
    finished_at: float | None = None

    @property
    def round_attempts(self) -> int:
        """Attempts made in the current round (since creation or the last replay)."""
        return len(self.attempts) - self.round_start


@attrs.frozen
class BufferedEvent:
    """An event waiting in an endpoint's batch buffer since ``buffered_at``."""

    endpoint_id: str
    event: Event
    buffered_at: float


@attrs.frozen
class EndpointHealth:
    """An endpoint's health: failing since when (None: fine), and whether it is disabled."""

    endpoint_id: str
    failing_since: float | None = None
    disabled: bool = False
    disabled_reason: str = ""
    disabled_at: float | None = None


class DeliveryStore(Protocol):
    """Durable delivery state for the webhook dispatcher (:mod:`chatmgmt.delivery`).

    A :class:`Delivery` is one webhook *message* for one endpoint: a stable ``id`` (the
    ``webhook-id`` header, the receiver's idempotency key), the body serialized once, the event
    ids it carries (one, or several for a batch), its next attempt time and every attempt made.
    Deliveries are ``PENDING`` until a 2xx makes them ``DELIVERED`` or they give up and become
    ``DEAD`` (dead letters, which keep their attempts and can be replayed). Adapters:
    ``storage.memory_delivery``, ``storage.sqlite_delivery``, ``storage.redis_delivery``;
    ``chatmgmt.testing.DeliveryStoreContract`` checks one. The contract:

    * :meth:`add` is idempotent per ``(endpoint_id, delivery id)`` and per ``(endpoint_id, event
      id)``: an outbox entry fanned out twice (its lease expired before the ack) creates nothing
      new. It stores each delivery with the status it is given.
    * **Per-chat order.** Deliveries of one endpoint are ordered by the order they were added
      (or sealed, for batches). :meth:`claim_due` hands out a pending delivery only when it is
      due, not leased, and no earlier pending delivery of the same endpoint shares a chat with
      it — so a later event of a chat waits for the earlier one. A delivery that finishes
      (delivered or dead) unblocks the next.
    * :meth:`claim_due` leases what it returns (``lease_s``): a dispatcher that dies mid-send
      leaves the delivery to be claimed again when the lease runs out. It returns nothing for a
      disabled endpoint.
    * :meth:`finish` records one attempt and the outcome atomically, and updates the endpoint's
      health in the same step (success clears ``failing_since``; a failure sets it if unset) and
      returns the new health.
    * :meth:`disable` is atomic and returns True only for the call that disabled the endpoint,
      so exactly one ``endpoint.disabled`` event is emitted per disabling; it moves the
      endpoint's pending deliveries to the dead letters.
    * :meth:`replay` and :meth:`replay_since` move dead letters back to pending (due now, after
      every delivery already queued for their chats), keeping the earlier attempts; the retry
      schedule starts again.
    """

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """Store new deliveries and batch-buffer entries at once; idempotent; returns how many
        were new."""
        ...

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """The endpoint's batch buffer, oldest first."""
        ...

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """Atomically take ``event_ids`` out of the buffer and add ``delivery`` (a batch);
        False (and no change) if any of them is no longer buffered."""
        ...

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """Lease up to ``limit`` due pending deliveries that head their chats, oldest due
        first."""
        ...

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """Record ``attempt`` and the new status (``next_attempt_at`` for a retry, ``reason``
        for a dead letter); update and return the endpoint's health."""
        ...

    def health(self, endpoint_id: str) -> EndpointHealth:
        """The endpoint's health (a fresh healthy record when unknown)."""
        ...

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """Disable the endpoint and dead-letter its pending deliveries; True only if it was
        enabled."""
        ...

    def enable(self, endpoint_id: str) -> None:
        """Enable the endpoint again and forget its failing streak; idempotent."""
        ...

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery, or None."""
        ...

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """Deliveries (of one endpoint, of one status), in the order they were added."""
        ...

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """Dead deliveries (that died at or after ``since``), in the order they died."""
        ...

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """Move one dead letter back to pending, due at ``now``; False if it is not dead."""
        ...

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """Replay every dead letter that died at or after ``since``; returns how many."""
        ...

    def purge(self, before: float) -> int:
        """Forget delivered deliveries finished before ``before``; returns how many."""
        ...


class AsyncDeliveryStore(Protocol):
    """Async face of :class:`DeliveryStore`, same contract."""

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`DeliveryStore.add`."""
        ...

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`DeliveryStore.buffered`."""
        ...

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`DeliveryStore.seal`."""
        ...

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`DeliveryStore.claim_due`."""
        ...

    async def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`DeliveryStore.finish`."""
        ...

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`DeliveryStore.health`."""
        ...

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`DeliveryStore.disable`."""
        ...

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`DeliveryStore.enable`."""
        ...

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`DeliveryStore.get`."""
        ...

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`DeliveryStore.deliveries`."""
        ...

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`DeliveryStore.dead_letters`."""
        ...

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`DeliveryStore.replay`."""
        ...

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`DeliveryStore.replay_since`."""
        ...

    async def purge(self, before: float) -> int:
        """See :meth:`DeliveryStore.purge`."""
        ...
