"""The unit of work: a :class:`Change` (its claim, its queue push) and what it
:class:`Applied`."""

from __future__ import annotations

import attrs

from ..errors import ValidationError
from ..model import (
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    Event,
    Message,
    Ranking,
    Sticky,
    Timer,
    evolve,
)
from ._marks import (
    _COPY_BOUND_CHAT,
    _SET_AGENT,
    _SET_SERVED,
    PICKED,
    _bind_items,
    _bind_value,
    _bound_event,
    _fill_census,
    _holds_picked,
    _payload_holds_picked,
)
from ._reads import Census, QueueHead


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
