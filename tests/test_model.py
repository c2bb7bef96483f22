"""Model values: validation at construction, channels, agent load."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chatmgmt.errors import ValidationError
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Channel,
    Chat,
    ChatId,
    ChatState,
    Customer,
    CustomerInfo,
    Event,
    Message,
    MessageRole,
    Ranking,
    RankKey,
    ReceptionMode,
    system_message,
)
from chatmgmt.settings import ChatSettings


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Agent(""), "id"),
        (lambda: Agent(None), "id"),  # type: ignore[arg-type]
        (lambda: Agent("a", reception_limit=-1), "reception_limit"),
        (lambda: Agent("a", reception_limit=True), "reception_limit"),
        (lambda: Agent("a", reception_limit=1.5), "reception_limit"),  # type: ignore[arg-type]
        (lambda: Agent("a", skill_groups=[1, 2]), "skill_groups"),  # type: ignore[arg-type]
        (lambda: CustomerInfo(partner_id=42), "partner_id"),  # type: ignore[arg-type]
        (lambda: CustomerInfo(channel=""), "channel"),
        (lambda: CustomerInfo(vip_level=-1), "vip_level"),
        (lambda: CustomerInfo(custom_fields={"plan": 3}), "custom_fields"),  # type: ignore[dict-item]
        (lambda: CustomerInfo(custom_fields=["a"]), "custom_fields"),  # type: ignore[arg-type]
        (lambda: Customer(partner_id=""), "partner_id"),
        (lambda: Chat(ChatId(""), CustomerInfo(), "web"), "id"),
        (lambda: Chat(ChatId("c"), CustomerInfo(), ""), "channel"),
        (lambda: Message("", ChatId("c"), MessageRole.CUSTOMER, "u", "hi", 0.0), "id"),
        (lambda: Message("m", "", MessageRole.CUSTOMER, "u", "hi", 0.0), "chat_id"),  # type: ignore[arg-type]
        (lambda: RankKey("height"), "height"),
    ],
)
def test_validation_names_the_field(build: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()  # type: ignore[operator]
    assert field in str(info.value)


def test_bad_enum_values_are_refused() -> None:
    with pytest.raises(ValueError):
        Agent("a", status="sleeping")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Message("m", ChatId("c"), "robot", "x", "hi", 0.0)  # type: ignore[arg-type]


def test_values_are_frozen_and_converted() -> None:
    agent = Agent("a", skill_groups=["sales", "vip"], status="online")  # type: ignore[arg-type]
    assert agent.skill_groups == frozenset({"sales", "vip"})
    assert agent.status is AgentStatus.ONLINE
    assert Agent("a", skill_groups="sales").skill_groups == frozenset({"sales"})  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        agent.reception_limit = 9  # type: ignore[misc]
    info = CustomerInfo(custom_fields=None)  # type: ignore[arg-type]
    assert info.custom_fields == {}
    chat = Chat(ChatId("c"), CustomerInfo(), "web", mode="always_on", state="unassigned")  # type: ignore[arg-type]
    assert chat.mode is ReceptionMode.ALWAYS_ON and chat.state is ChatState.UNASSIGNED


def test_defaults() -> None:
    agent = Agent(AgentId("a"))
    assert agent.status is AgentStatus.OFFLINE and agent.reception_limit == 5
    info = CustomerInfo()
    assert info.partner_id is None and info.channel == Channel.WEB
    chat = Chat(ChatId("c"), info, "web")
    assert chat.state is ChatState.QUEUED and chat.version == 0 and chat.agent_id is None


def test_channel_constants_are_open_strings() -> None:
    assert Channel.WEB == "web"
    assert Channel.MOBILE_WEB == "mobile_web"
    assert Channel.APP == "app"
    assert Channel.WECHAT == "wechat"
    assert Channel.EMAIL == "email"
    assert Channel.API == "api"
    for c in (Channel.WEB, Channel.MOBILE_WEB, Channel.APP, Channel.WECHAT, Channel.EMAIL):
        assert isinstance(c, str) and isinstance(c, Channel)
    # open set: any channel name works wherever a channel is expected
    assert CustomerInfo(channel="kiosk").channel == "kiosk"
    assert Channel("kiosk") == "kiosk"


def test_chat_state_is_open() -> None:
    assert {s for s in ChatState if s.is_open} == {
        ChatState.QUEUED,
        ChatState.UNASSIGNED,
        ChatState.OFFERED,
        ChatState.ACTIVE,
        ChatState.BOT,
    }
    assert {s for s in ChatState if s.holds_slot} == {ChatState.OFFERED, ChatState.ACTIVE}


def _load(limit: int, chats: int, inactive: int = 0) -> AgentLoad:
    return AgentLoad(
        Agent("a", reception_limit=limit),
        chats=frozenset(ChatId(f"c{i}") for i in range(chats)),
        inactive=frozenset(ChatId(f"i{i}") for i in range(inactive)),
    )


@pytest.mark.parametrize(
    ("limit", "chats", "free", "saturation"),
    [(4, 0, 4, 0.0), (4, 1, 3, 0.25), (4, 4, 0, 1.0), (2, 3, 0, 1.5), (0, 0, 0, 1.0)],
)
def test_agent_load_free_and_saturation(
    limit: int, chats: int, free: int, saturation: float
) -> None:
    load = _load(limit, chats)
    assert load.active == chats
    assert load.free == free
    assert load.saturation == pytest.approx(saturation)


def test_inactive_chats_do_not_count() -> None:
    load = _load(3, 1, inactive=2)
    assert load.active == 1 and load.free == 2
    assert load.saturation == pytest.approx(1 / 3)


def test_ranking_key_orders_by_fields_and_direction() -> None:
    busy, idle = _load(4, 3), _load(4, 1)
    by_active = Ranking("least_busy", (RankKey("active"),))
    assert by_active.key(idle) < by_active.key(busy)
    by_free_desc = Ranking("most_free", (RankKey("free", descending=True),))
    assert by_free_desc.key(idle) < by_free_desc.key(busy)
    tier = Ranking("tier", (RankKey("tier", descending=True),))
    high = AgentLoad(Agent("h", tier=2))
    low = AgentLoad(Agent("l", tier=1))
    assert tier.key(high) < tier.key(low)


def test_event_envelope() -> None:
    event = Event("evt_1", "chat.ended", 0.0, {"x": 1}, chat_id="c", seq=3)
    env = event.envelope()
    assert env["type"] == "chat.ended"
    assert env["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert env["data"] == {"x": 1} and env["seq"] == 3 and env["chat_id"] == "c"
    assert env["schema"] == 1 and env["id"] == "evt_1"


@given(
    st.from_type(Agent),
    st.from_type(CustomerInfo),
    st.from_type(Chat),
)
@hsettings(max_examples=30)
def test_hypothesis_plugin_registers_the_model_types(
    agent: Agent, info: CustomerInfo, chat: Chat
) -> None:
    """The ``hypothesis`` entry point makes ``st.from_type`` produce valid library values."""
    assert isinstance(agent, Agent) and agent.id
    assert isinstance(info, CustomerInfo) and info.channel
    assert isinstance(chat, Chat)
    assert (chat.agent_id is not None) == (chat.state is ChatState.ACTIVE)


@given(st.from_type(ChatSettings))
@hsettings(max_examples=5, deadline=None)
def test_hypothesis_plugin_registers_settings(s: ChatSettings) -> None:
    assert isinstance(s, ChatSettings)


def test_maker_with_defaults_builds_what_the_constructor_builds() -> None:
    # maker(defaults=True) lets a hot path name only the fields it sets (the core builds its
    # routing Plan this way): the value must equal the one attrs' __init__ builds, whatever
    # fields are left at their defaults, and an unknown name must still fail
    from chatmgmt._plan import Plan
    from chatmgmt.model import maker

    make = maker(Plan, defaults=True)
    chat = Chat(ChatId("c1"), CustomerInfo(), "web")
    assert make(chat) == Plan(chat)
    assert make(chat, [("chat.started", {})], require_empty="queue/g", owned=True) == Plan(
        chat, [("chat.started", {})], require_empty="queue/g", owned=True
    )
    assert type(make(chat)) is Plan
    with pytest.raises(TypeError):
        make(chat, not_a_field=1)
    with pytest.raises(TypeError):
        maker(Plan)(chat)  # without defaults every field must be given


_CHAT_FIELDS = sorted(attrs.fields_dict(Chat))


@given(st.from_type(Chat), st.from_type(Chat), st.sets(st.sampled_from(_CHAT_FIELDS)))
@hsettings(max_examples=40)
def test_copier_copies_what_evolve_copies(chat: Chat, other: Chat, names: set[str]) -> None:
    # model.copier serves the hot paths that always change the same fields: its copy must
    # equal evolve's with the same changes, be a real Chat, and leave the original alone
    from chatmgmt.model import copier, evolve

    fields = sorted(names)
    values = [getattr(other, name) for name in fields]
    copy = copier(Chat, *fields)(chat, *values)
    assert copy == evolve(chat, **dict(zip(fields, values, strict=True)))
    assert type(copy) is Chat and copy is not chat
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        copy.version = 9  # type: ignore[misc]


def test_copier_refuses_unknown_or_repeated_fields() -> None:
    from chatmgmt.model import copier

    with pytest.raises(TypeError):
        copier(Chat, "state", "not_a_field")
    with pytest.raises(TypeError):
        copier(Chat, "state", "state")


_RANK_FIELDS = ("active", "saturation", "free", "last_assigned_at", "idle_since", "tiebreak")


@given(
    st.lists(
        st.tuples(st.sampled_from((*_RANK_FIELDS, "tier", "account_order")), st.booleans()),
        max_size=4,
    ),
    st.integers(0, 5),
    st.integers(0, 5),
    st.floats(0, 1e6),
    st.integers(0, 3),
)
@hsettings(max_examples=60)
def test_ranking_key_is_each_field_as_a_float_negated_when_descending(
    keys: list[tuple[str, bool]], limit: int, chats: int, at: float, tier: int
) -> None:
    # Ranking.key runs as generated code (one expression per ranking): the same values as
    # reading every field in turn, on the load or (tier, account_order) on its agent
    ranking = Ranking("r", tuple(RankKey(f, descending=d) for f, d in keys))
    agent = Agent(AgentId("a"), reception_limit=limit, tier=tier, account_order=7)
    load = AgentLoad(
        agent,
        chats=frozenset(ChatId(f"c{i}") for i in range(chats)),
        last_assigned_at=at,
        idle_since=at / 2,
        tiebreak=0.25,
    )
    expected = []
    for name, descending in keys:
        owner = agent if name in ("tier", "account_order") else load
        value = float(getattr(owner, name))
        expected.append(-value if descending else value)
    assert ranking.key(load) == tuple(expected)
    assert Ranking("r", ranking.keys).key(load) == tuple(expected)  # an equal value, its own


@pytest.mark.parametrize(
    ("message_id", "chat_id", "text"),
    [
        ("m1", "c1", "bye"),
        ("m1", "c1", ""),
        ("", "c1", "bye"),
        ("m\n1", "c1", "bye"),
        ("m1", "c\x00", "bye"),
        ("m1", 7, "bye"),
        ("m1", "c1", "b\x00ye"),
        ("m1", "c1", "\ud800"),
    ],
)
def test_system_message_is_the_constructors_message_or_its_error(
    message_id: object, chat_id: object, text: object
) -> None:
    def built(make: object) -> object:
        try:
            return make(message_id, chat_id, text)  # type: ignore[operator]
        except ValidationError as exc:
            return ("error", str(exc))

    by_constructor = built(lambda i, c, t: Message(i, c, MessageRole.SYSTEM, "system", t, 2.0))
    fast = built(lambda i, c, t: system_message(i, c, t, 2.0))
    assert fast == by_constructor
    if not isinstance(fast, tuple):
        assert type(fast) is Message
        assert attrs.asdict(fast) == attrs.asdict(by_constructor)  # type: ignore[arg-type]
