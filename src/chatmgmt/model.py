"""Value types: agents, customers, chats, messages, events.

Every type is an ``attrs`` frozen class validated at construction; a bad value raises
:class:`~chatmgmt.errors.ValidationError` naming the field. Closed sets are enums; open sets
(channels, skill groups, categories) are plain strings.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Mapping
from typing import Any, NewType, TypeVar, cast

import attrs

from . import _text
from ._sla_state import ChatSla, SlaClock
from .errors import ValidationError

__all__ = [
    "Agent",
    "AgentId",
    "AgentLoad",
    "AgentStatus",
    "Channel",
    "Chat",
    "ChatId",
    "ChatSla",
    "ChatState",
    "Customer",
    "CustomerInfo",
    "EndReason",
    "Event",
    "Message",
    "MessageId",
    "MessageRole",
    "RankKey",
    "Ranking",
    "ReceptionMode",
    "SkillGroup",
    "SlaClock",
    "Sticky",
    "Timer",
]

AgentId = NewType("AgentId", str)
"""The host's id of an agent."""
ChatId = NewType("ChatId", str)
"""The id of a chat (conversation)."""
MessageId = NewType("MessageId", str)
"""The id of a message."""
SkillGroup = str
"""A skill group's name, an open string. ``""`` means "any agent": no group restriction."""


class Channel(str):
    """A channel is an open string; the usual ones are class attributes.

    >>> Channel.WEB == "web"
    True
    """

    WEB: Channel
    MOBILE_WEB: Channel
    APP: Channel
    WECHAT: Channel
    EMAIL: Channel
    API: Channel

    __slots__ = ()


Channel.WEB = Channel("web")
Channel.MOBILE_WEB = Channel("mobile_web")
Channel.APP = Channel("app")
Channel.WECHAT = Channel("wechat")
Channel.EMAIL = Channel("email")
Channel.API = Channel("api")


class AgentStatus(str, enum.Enum):
    """An agent's presence. Only ``ONLINE`` agents receive chats."""

    ONLINE = "online"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"


class ReceptionMode(str, enum.Enum):
    """Real-Time Reception Mode (queue, timeouts, leave a message) or Always On Mode."""

    REAL_TIME = "real_time"
    ALWAYS_ON = "always_on"


class ChatState(str, enum.Enum):
    """Where a chat is in its life; the transition table lives in :mod:`chatmgmt.lifecycle`."""

    QUEUED = "queued"
    """Real-time mode: waiting in its skill group's queue."""
    UNASSIGNED = "unassigned"
    """Always On mode: open, waiting in the unassigned pool."""
    OFFERED = "offered"
    """Offers on (``assignment.offers``): the chat is offered to one agent, who holds its slot
    until they accept (``ACTIVE``), decline or let the offer expire (the chat goes on to the
    next agent, or back to where it waited)."""
    ACTIVE = "active"
    """An agent holds the chat."""
    BOT = "bot"
    """A bot handles the chat (``open_chat(..., bot=...)``): its messages are recorded and
    moderated, it is not routed and takes no agent's capacity, until ``handoff()`` routes it
    (or the bot or the customer ends it)."""
    ENDED = "ended"
    """Closed; in Always On mode the customer may reopen it."""
    LEFT_MESSAGE = "left_message"
    """Real-time mode: the customer left a message instead of waiting."""
    ABANDONED = "abandoned"
    """Real-time mode: the customer left the queue."""

    @property
    def is_open(self) -> bool:
        """True while the chat can still be served."""
        return self in _OPEN_STATES

    @property
    def holds_slot(self) -> bool:
        """True when the chat's agent holds a slot for it: ``ACTIVE``, and ``OFFERED`` (a
        pending offer counts toward the agent's reception limit)."""
        return self is ChatState.ACTIVE or self is ChatState.OFFERED


_OPEN_STATES = frozenset(
    {ChatState.QUEUED, ChatState.UNASSIGNED, ChatState.OFFERED, ChatState.ACTIVE, ChatState.BOT}
)


class EndReason(str, enum.Enum):
    """Why a chat ended."""

    AGENT = "agent"
    CUSTOMER = "customer"
    CUSTOMER_INACTIVITY = "customer_inactivity"
    AGENT_LEFT = "agent_left"
    SYSTEM = "system"
    QUEUE_TIMEOUT = "queue_timeout"
    HOLD_TIMEOUT = "hold_timeout"
    """The chat stayed on hold longer than ``end_of_chat.hold_close_after_s``."""
    BOT = "bot"
    """The bot ended the chat in its bot stage (it needed no agent)."""


class MessageRole(str, enum.Enum):
    """Who wrote a message."""

    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"
    BOT = "bot"
    WHISPER = "whisper"
    """A supervisor's note for the agent: stored and evented (``supervisor.whispered``), never
    delivered to the customer, never the agent's reply (see ``docs/monitoring.md``)."""


def _non_empty(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{attribute.name}: must be a non-empty string, got {value!r}")


def _non_negative_int(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{attribute.name}: must be an integer >= 0, got {value!r}")


def _opt_str(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{attribute.name}: must be a string or None, got {value!r}")


def _str_mapping(value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):  # a dict: no ABC check
        raise ValidationError(f"custom_fields: must be a mapping, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValidationError(f"custom_fields.{key}: keys and values must be strings")
        out[key] = item
    return out


def _channel_ints(name: str, value: Any, lowest: int) -> dict[str, int]:
    """``Agent.channel_limits`` / ``channel_weights`` as a plain dict of channel ids to integers
    >= ``lowest`` (a bad entry raises naming it)."""
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):  # a dict: no ABC check
        raise ValidationError(f"{name}: must be a mapping of channel to integer, got {value!r}")
    out: dict[str, int] = {}
    for channel, item in value.items():
        _text.check_id(f"{name} key", channel)
        if isinstance(item, bool) or not isinstance(item, int) or item < lowest:
            raise ValidationError(f"{name}.{channel}: must be an integer >= {lowest}, got {item!r}")
        out[channel] = item
    return out


def _channel_limits(value: Any) -> dict[str, int]:
    return _channel_ints("channel_limits", value, 0)


def _channel_weights(value: Any) -> dict[str, int]:
    return _channel_ints("channel_weights", value, 1)


def _groups(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    try:
        groups = frozenset(value)
    except TypeError:
        raise ValidationError(f"skill_groups: must be strings, got {value!r}") from None
    if not all(isinstance(g, str) for g in groups):
        raise ValidationError(f"skill_groups: must be strings, got {value!r}")
    return groups


@attrs.frozen
class Agent:
    """An agent who receives chats.

    ``reception_limit`` is how many chats the agent holds at once; ``tier`` ranks agents for the
    priority-tier strategy (higher first); ``account_order`` breaks ties (older accounts first).

    Capacity per channel (both optional; empty: every chat costs one slot, as without them):
    ``channel_weights`` maps a channel to how many units of ``reception_limit`` one of its chats
    takes (default 1; e.g. ``{"whatsapp": 2}``); ``channel_limits`` maps a channel to the most
    chats of that channel the agent holds at once (``0``: none of that channel).
    """

    id: AgentId = attrs.field(validator=_text.validate_id)
    display_name: str = attrs.field(default="", validator=_text.validate_text)
    skill_groups: frozenset[str] = attrs.field(default=frozenset(), converter=_groups)
    reception_limit: int = attrs.field(default=5, validator=_non_negative_int)
    tier: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    account_order: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    status: AgentStatus = attrs.field(default=AgentStatus.OFFLINE, converter=AgentStatus)
    channel_limits: Mapping[str, int] = attrs.field(factory=dict, converter=_channel_limits)
    channel_weights: Mapping[str, int] = attrs.field(factory=dict, converter=_channel_weights)


@attrs.frozen
class AgentLoad:
    """An agent's live load as the store keeps it.

    ``chats`` are the chats that count toward the limit; ``inactive`` those that went inactive
    and (by setting) no longer count. ``last_assigned_at`` and ``idle_since`` feed the rankings.
    ``version`` counts changes of the agent's configuration (status, limit, groups, tier): an
    update is a compare-and-set on it, so two concurrent changes never undo each other. Claims
    and releases do not move it.

    ``channels`` maps each held chat to its channel, kept only for an agent with capacity per
    channel (``Agent.channel_weights`` or ``channel_limits``) when it took the chat; a held
    chat not in it costs one unit and counts toward no channel limit. ``recent`` holds the times
    of the agent's latest assignments (oldest first), kept only while a fairness cap is set
    (``assignment.fairness``), for as long as its longest window.
    """

    agent: Agent
    chats: frozenset[ChatId] = frozenset()
    inactive: frozenset[ChatId] = frozenset()
    last_assigned_at: float = 0.0
    idle_since: float = 0.0
    tiebreak: float = 0.0
    version: int = 0
    channels: Mapping[ChatId, str] = attrs.field(factory=dict)
    recent: tuple[float, ...] = ()

    @property
    def active(self) -> int:
        """Chats that count toward the reception limit."""
        return len(self.chats)

    @property
    def used(self) -> int:
        """Units of the reception limit the counted chats take: each chat's channel weight
        (``Agent.channel_weights``, default 1); without weights, :attr:`active`."""
        weights = self.agent.channel_weights
        if not weights:
            return len(self.chats)
        channels = self.channels
        return sum(weights.get(channels.get(c, ""), 1) for c in self.chats)

    @property
    def free(self) -> int:
        """Units left below the reception limit (slots, without channel weights)."""
        return max(0, self.agent.reception_limit - self.used)

    @property
    def saturation(self) -> float:
        """Units used over the reception limit (1.0 when the limit is 0)."""
        limit = self.agent.reception_limit
        return self.used / limit if limit else 1.0


RANK_FIELDS = frozenset(
    {
        "active",
        "saturation",
        "free",
        "last_assigned_at",
        "idle_since",
        "tier",
        "account_order",
        "tiebreak",
    }
)


@attrs.frozen
class RankKey:
    """One key of a ranking: a field of :class:`AgentLoad` and its direction."""

    field: str = attrs.field()
    descending: bool = False

    @field.validator
    def _check(self, _attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in RANK_FIELDS:
            raise ValidationError(f"rank field {value!r} unknown; one of {sorted(RANK_FIELDS)}")


@attrs.frozen
class Ranking:
    """A ranking of agents given as data: keys compared in order, smallest first.

    Storage adapters receive it as data (fields and directions), never as code, so an index
    (a sorted list in memory, a sorted set in Redis, ``ORDER BY`` in SQLite) can answer a pick
    in O(log n). ``agent.id`` is the last, implicit tie-break, so picks are deterministic.
    """

    name: str
    keys: tuple[RankKey, ...]

    def key(self, load: AgentLoad) -> tuple[float, ...]:
        """The sort key of ``load`` under this ranking (smaller ranks first)."""
        seen = _KEY_FUNCTIONS.get(id(self))
        if seen is None or seen[0] is not self:
            seen = _key_function(self)
        return seen[1](load)


def entry_function(ranking: Ranking) -> Callable[[AgentLoad], tuple[Any, ...]]:
    """``lambda load: (*ranking.key(load), load.agent.id)`` as one generated function: a
    ranking index's entry, flat (see :func:`chatmgmt.assignment._load.rank_entry_function`)."""
    parts = _key_parts(ranking)
    scope: dict[str, Any] = {}
    exec(f"def entry(load):\n    return ({''.join(p + ', ' for p in parts)}load.agent.id)", scope)
    entry: Callable[[AgentLoad], tuple[Any, ...]] = scope["entry"]
    return entry


def _key_parts(ranking: Ranking) -> list[str]:
    """The expressions of ``ranking``'s key values, in order (``float(load.<field>)``, negated
    where descending)."""
    parts = []
    for k in ranking.keys:
        if k.field not in RANK_FIELDS:  # RankKey validates this; a generated name must be one
            raise ValidationError(f"rank field {k.field!r} unknown")
        owner = "load.agent" if k.field in _AGENT_FIELDS else "load"
        parts.append(f"{'-' if k.descending else ''}float({owner}.{k.field})")
    return parts


_AGENT_FIELDS = frozenset({"tier", "account_order"})
"""Rank fields read from the load's :class:`Agent`; the others are the load's own."""
_KEY_FUNCTIONS: dict[int, tuple[Ranking, Callable[[AgentLoad], tuple[float, ...]]]] = {}


def _key_function(ranking: Ranking) -> tuple[Ranking, Callable[[AgentLoad], tuple[float, ...]]]:
    """``Ranking.key`` as one generated expression (a tuple of ``float(...)``, negated where
    descending), built once per ranking value: no loop and no ``getattr`` per key on the hot
    path of every index update. The entry holds the ranking, so its id stays its own."""
    parts = _key_parts(ranking)
    scope: dict[str, Any] = {}
    exec(f"def key(load):\n    return ({''.join(p + ', ' for p in parts)})", scope)
    if len(_KEY_FUNCTIONS) >= 1024:
        _KEY_FUNCTIONS.clear()
    entry = _KEY_FUNCTIONS[id(ranking)] = (ranking, scope["key"])
    return entry


@attrs.frozen
class Sticky:
    """The last agent who served a customer, and when and how (``"closed"`` or ``"offline"``)."""

    partner_id: str
    agent_id: AgentId
    at: float
    kind: str


@attrs.frozen
class Timer:
    """A deadline kept in the timer store. ``key`` is unique; scheduling it again replaces it."""

    key: str
    due_at: float
    chat_id: str
    kind: str
    version: int = 0
    payload: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class CustomerInfo:
    """What a chat request says about its customer.

    ``partner_id`` is the host's external user id; without it the visitor stays anonymous.
    Empty strings mean "not given" and never erase a known value.
    """

    partner_id: str | None = attrs.field(default=None, validator=_text.validate_optional_id)
    channel: str = attrs.field(default=Channel.WEB, validator=_text.validate_id)
    name: str = attrs.field(default="", validator=_text.validate_text)
    email: str = attrs.field(default="", validator=_text.validate_text)
    phone: str = attrs.field(default="", validator=_text.validate_text)
    vip_level: int = attrs.field(default=0, validator=_non_negative_int)
    ip: str = attrs.field(default="", validator=_text.validate_text)
    custom_fields: Mapping[str, str] = attrs.field(
        factory=dict, converter=_str_mapping, validator=_text.validate_text_mapping
    )


@attrs.frozen
class Customer:
    """A customer record in the CRM (the :class:`~chatmgmt.ports.CustomerStore`)."""

    partner_id: str = attrs.field(validator=_non_empty)
    name: str = ""
    email: str = ""
    phone: str = ""
    vip_level: int = 0
    ip: str = ""
    custom_fields: Mapping[str, str] = attrs.field(factory=dict, converter=_str_mapping)
    channels: frozenset[str] = frozenset()
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0
    last_invited_at: float | None = None
    """When the customer was last invited to rate a chat (``satisfaction.min_interval_s``)."""


def _mode(value: ReceptionMode | str) -> ReceptionMode:
    # a member passes as it is (the enum's own call costs several times more)
    return value if type(value) is ReceptionMode else ReceptionMode(value)


def _state(value: ChatState | str) -> ChatState:
    return value if type(value) is ChatState else ChatState(value)


@attrs.frozen
class Chat:
    """A conversation between a customer and (eventually) an agent.

    Changed only by compare-and-set on ``version``. ``excluded`` are agents the chat must never
    go back to automatically (they timed out on it); ``served_by`` is every agent who held it.

    ``attributes`` belong to the host alone: the library never reads or writes a key there. What
    the library keeps about a chat has its own fields: ``queue`` (the queue or pool it waits
    in), ``queued_at`` (when it last entered one), ``leave_message`` (why the leave-a-message
    form is offered), ``submission`` (the left message: mode, fields, time), ``satisfaction``
    (invitations and rating, :class:`~chatmgmt.lifecycle.SatisfactionState` as plain values),
    ``escalation`` (the auto-transfer round, :class:`~chatmgmt.lifecycle.Escalation` as plain
    values), ``timers_fired`` (deadline kind -> the basis it fired for), ``sticky_waited``
    (the chat already waited for its sticky agent), ``unverified_partner_id`` (a partner id
    whose signature did not verify), ``observers`` (supervisors watching it), ``tags`` (labels
    added and removed during the chat with ``tag_chat`` / ``untag_chat``; routing rules' ``tags``
    condition sees them), ``sla`` (the SLA policy that applies and its clocks, a
    :class:`ChatSla`; None without one),
    ``hold`` (the agent's last hold in the current assignment,
    :class:`~chatmgmt.lifecycle.Hold` as plain values; on hold until ``resumed_at`` is set),
    ``position_event`` (``(position, time)`` of its last ``chat.queue_position`` event),
    ``offer_expires_at`` (when the pending offer of an ``OFFERED`` chat expires) and ``bot``
    (the bot stage: ``{"id", "since"}``, ``"replied"`` once the bot wrote, ``"handoff"``
    ``{"reason", "fields", "by", "at"}`` once handed off; None for a chat without one) and
    ``reopened_at`` (when an Always On chat was last reopened, the start of its new wait for
    a person, which orders it in its queue and starts its SLA clocks; None if it never was).
    """

    id: ChatId = attrs.field(validator=_non_empty)
    customer: CustomerInfo
    channel: str = attrs.field(validator=_non_empty)
    skill_group: str = ""
    mode: ReceptionMode = attrs.field(default=ReceptionMode.REAL_TIME, converter=_mode)
    state: ChatState = attrs.field(default=ChatState.QUEUED, converter=_state)
    agent_id: AgentId | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    assigned_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None
    ended_by: str | None = None
    last_customer_message_at: float | None = None
    last_agent_message_at: float | None = None
    agent_replied: bool = False
    inactive: bool = False
    priority: int = 0
    excluded: frozenset[AgentId] = frozenset()
    served_by: tuple[AgentId, ...] = ()
    route_reason: Mapping[str, Any] = attrs.field(factory=dict)
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    queue: str | None = None
    queued_at: float | None = None
    leave_message: str | None = None
    submission: Mapping[str, Any] | None = None
    satisfaction: Mapping[str, Any] | None = None
    escalation: Mapping[str, Any] | None = None
    timers_fired: Mapping[str, Any] = attrs.field(factory=dict)
    sticky_waited: bool = False
    unverified_partner_id: str | None = None
    observers: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    sla: ChatSla | None = None
    hold: Mapping[str, Any] | None = None
    position_event: tuple[int, float] | None = None
    offer_expires_at: float | None = None
    bot: Mapping[str, Any] | None = None
    reopened_at: float | None = None
    event_seq: int = 0
    version: int = 0


@attrs.frozen
class Message:
    """A message in a chat. ``text`` is what was delivered (masked when moderation masked it)."""

    id: MessageId = attrs.field(validator=_text.validate_id)
    chat_id: ChatId = attrs.field(validator=_text.validate_id)
    role: MessageRole = attrs.field(converter=MessageRole)
    sender: str = attrs.field(validator=_text.validate_text)
    text: str = attrs.field(validator=_text.validate_text)
    time: float
    flags: frozenset[str] = frozenset()


@attrs.frozen
class Event:
    """One event for the outbox and the webhooks.

    ``seq`` is the per-chat sequence number (0 for events not tied to a chat); ``data`` is the
    JSON-ready payload; ``schema`` is the payload's version for its ``type``.
    """

    id: str
    type: str
    timestamp: float
    data: Mapping[str, Any]
    chat_id: str | None = None
    seq: int = 0
    schema: int = 1

    def envelope(self) -> dict[str, Any]:
        """The JSON envelope: ``{"type", "timestamp", "data", "id", "chat_id", "seq", ...}``."""
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": _iso(self.timestamp),
            "schema": self.schema,
            "chat_id": self.chat_id,
            "seq": self.seq,
            "data": dict(self.data),
        }


_COPIERS: dict[tuple[Any, ...], Callable[[Any, dict[str, Any]], Any]] = {}
_T = TypeVar("_T")


def _copier(cls: type, changed: tuple[str, ...]) -> Callable[[Any, dict[str, Any]], Any]:
    # one generated function per class and set of changed fields. A slotted class is copied
    # through its mutable twin (below): plain attribute stores, the interpreter's fastest
    # path, and then the copy becomes an instance of ``cls``; no validator runs, no "is it
    # changed?" test per field
    fields = attrs.fields(cls)
    names = [a.name for a in fields]
    unknown = [name for name in changed if name not in names]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    twin = _twin(cls, names)
    scope: dict[str, Any] = {"new_": object.__new__, "cls": cls, "twin": twin}
    lines = ["def copy(inst, ch):"]
    if twin is not None:
        lines.append("    new = new_(twin)")
        for name in names:
            value = f"ch[{name!r}]" if name in changed else f"inst.{name}"
            lines.append(f"    new.{name} = {value}")
        lines.append("    new.__class__ = cls")
    else:
        lines.append("    new = new_(cls)")
        for name in names:
            value = f"ch[{name!r}]" if name in changed else f"inst.{name}"
            lines.append(f"    set_(new, {name!r}, {value})")
    lines.append("    return new")
    scope["set_"] = object.__setattr__
    exec("\n".join(lines), scope)
    copier: Callable[[Any, dict[str, Any]], Any] = scope["copy"]
    return copier


_TWINS: dict[type, type | None] = {}


def _twin(cls: type, names: list[str]) -> type | None:
    """A subclass of ``cls`` that adds nothing but plain (unfrozen) attribute setting, so a
    copy can be filled in with ordinary stores and then given ``cls`` as its class (the
    layouts are the same); None when a field is not a slot of ``cls``."""
    if cls in _TWINS:
        return _TWINS[cls]
    twin: type | None = None
    slotted = all(
        isinstance(
            next((k.__dict__[n] for k in cls.__mro__ if n in k.__dict__), None),
            types.MemberDescriptorType,
        )
        for n in names
    )
    if slotted and "__dict__" not in dir(cls):
        twin = type(
            f"_{cls.__name__}Copy",
            (cls,),
            {
                "__slots__": (),
                "__setattr__": object.__setattr__,
                "__delattr__": object.__delattr__,
                "__module__": cls.__module__,
            },
        )
    _TWINS[cls] = twin
    return twin


def maker(cls: type[_T], *, defaults: bool = False) -> Callable[..., _T]:
    """A constructor of ``cls`` taking every field in order, for hot paths that build many
    values (with ``defaults=True`` the trailing fields with a plain default value may be left
    out and the others named by keyword): it skips attrs' ``__init__`` (ordinary stores
    through the class's mutable twin), so only a class without validators, converters or
    ``__attrs_post_init__`` may have one (TypeError otherwise).

    >>> maker(Sticky)("u", AgentId("a"), 1.0, "closed") == Sticky("u", AgentId("a"), 1.0, "closed")
    True
    """
    fields = attrs.fields(cast(Any, cls))
    names = [a.name for a in fields]
    twin = _twin(cls, names)
    checked = any(a.validator is not None or a.converter is not None for a in fields)
    if twin is None or checked or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} validates or converts its fields: use its constructor")
    scope: dict[str, Any] = {"new_": object.__new__, "cls": cls, "twin": twin}
    params = list(names)
    # ``defaults``: the trailing fields whose default is a plain value keep it, so a caller
    # names only the fields it sets, by keyword (a field added later breaks no such caller);
    # without, every field must be given (a positional caller then fails loudly, not wrongly)
    for i in range(len(fields) - 1, -1, -1) if defaults else ():
        default = fields[i].default
        if default is attrs.NOTHING or isinstance(default, cast(Any, attrs.Factory)):
            break
        scope[f"d_{i}"] = default
        params[i] = f"{names[i]}=d_{i}"
    lines = [f"def make({', '.join(params)}):", "    new = new_(twin)"]
    lines += [f"    new.{name} = {name}" for name in names]
    lines += ["    new.__class__ = cls", "    return new"]
    exec("\n".join(lines), scope)
    make: Callable[..., _T] = scope["make"]
    return make


def copier(cls: type[_T], *names: str) -> Callable[..., _T]:
    """A copy function of ``cls`` for one call site that always changes the same fields:
    ``copy(inst, *values)`` is ``evolve(inst, **dict(zip(names, values)))`` without the
    keyword dict and the per-call lookup of the generated code (the hot paths' fixed
    changes). Same rules as :func:`evolve`: no validator runs; an unknown name raises
    :class:`TypeError` here, once.

    >>> again = copier(Sticky, "agent_id", "at")
    >>> again(Sticky("u", AgentId("a"), 1.0, "closed"), AgentId("b"), 2.0).agent_id
    'b'
    """
    fields = attrs.fields(cast(Any, cls))
    all_names = [a.name for a in fields]
    unknown = [name for name in names if name not in all_names]
    if unknown or len(set(names)) != len(names):
        raise TypeError(f"{cls.__name__}: fields {names!r} are not distinct fields of the class")
    twin = _twin(cls, all_names)
    if twin is None:
        raise TypeError(f"{cls.__name__} is not slotted: use evolve")
    params = {name: f"v{i}" for i, name in enumerate(names)}
    lines = [f"def copy(inst, {', '.join(params.values())}):", "    new = new_(twin)"]
    lines += [f"    new.{name} = {params.get(name, f'inst.{name}')}" for name in all_names]
    lines += ["    new.__class__ = cls", "    return new"]
    scope: dict[str, Any] = {"new_": object.__new__, "cls": cls, "twin": twin}
    exec("\n".join(lines), scope)
    copy: Callable[..., _T] = scope["copy"]
    return copy


def evolve(inst: _T, **changes: Any) -> _T:
    """A copy of a frozen model value with ``changes``, without re-running validators.

    The library's hot paths use it for values it built itself (a chat's new state, an agent's
    new load); ``attrs.evolve`` (which validates) stays the tool for values from outside.
    A change naming a field the class does not have raises :class:`TypeError`.

    >>> evolve(Sticky("u", AgentId("a"), 1.0, "closed"), agent="b")
    Traceback (most recent call last):
    TypeError: Sticky has no field 'agent'
    """
    key = (type(inst), *changes)
    copier = _COPIERS.get(key)
    if copier is None:
        copier = _copier(type(inst), tuple(changes))
        if len(_COPIERS) < 4096:  # call sites name their fields: a bounded set
            _COPIERS[key] = copier
    result: _T = copier(inst, changes)
    return result


_BLANK_SYSTEM = Message(MessageId("blank"), ChatId("blank"), MessageRole.SYSTEM, "system", "", 0.0)
_system_copy = copier(Message, "id", "chat_id", "text", "time")


def system_message(message_id: MessageId, chat_id: ChatId, text: str, time: float) -> Message:
    """``Message(message_id, chat_id, MessageRole.SYSTEM, "system", text, time)`` (a prompt the
    library stores), with the same checks of ``message_id``, ``chat_id`` and ``text`` and the
    same errors, without the role's conversion and the frozen class's stores (a copy of a
    blank system message).

    >>> system_message(MessageId("m1"), ChatId("c1"), "bye", 1.0) == Message(
    ...     MessageId("m1"), ChatId("c1"), MessageRole.SYSTEM, "system", "bye", 1.0
    ... )
    True
    """
    _text.check_id("id", message_id)
    _text.check_id("chat_id", chat_id)
    _text.check_text("text", text)
    return _system_copy(_BLANK_SYSTEM, message_id, chat_id, text, time)


_STAMP = (
    Chat.__dict__["version"].__set__,
    Chat.__dict__["event_seq"].__set__,
    Chat.__dict__["updated_at"].__set__,
)


def stamp(chat: Chat, version: int, event_seq: int, updated_at: float) -> Chat:
    """Set ``chat``'s version, event sequence and update time **in place** and return it.

    Only for a chat value nobody else holds yet: one a planner has just built for the change
    being committed (:attr:`chatmgmt._plan.Plan.owned`). It saves the copy
    ``evolve(chat, version=..., event_seq=..., updated_at=...)`` would make."""
    set_version, set_seq, set_updated = _STAMP
    set_version(chat, version)
    set_seq(chat, event_seq)
    set_updated(chat, updated_at)
    return chat


def _iso(ts: float) -> str:
    import datetime as _dt

    return (
        _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
