"""Satisfaction: schemes, invitations, ratings, the agent-facing view."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt.errors import FormValidationError, RatingRefusedError, ValidationError
from chatmgmt.lifecycle import (
    InviteRefusal,
    InviteTrigger,
    Rating,
    SatisfactionState,
    agent_view,
    attributed_agent,
    invitation_refusal,
    invite,
    rate,
    resolve_scheme,
    satisfaction_of,
    validate_rating,
)
from chatmgmt.model import AgentId, Chat, ChatId, ChatState, CustomerInfo, EndReason
from chatmgmt.settings import SatisfactionScheme, SatisfactionSettings, SecondRating

END = InviteTrigger.CHAT_END
AGENT = InviteTrigger.AGENT
DAY = 24 * 3600.0

THREE = SatisfactionScheme(
    levels=3,
    labels=("Bad", "OK", "Good"),
    tags={"1": ("slow", "rude"), "3": ("fast",)},
    ask_resolved=False,
    comment_required_below=2,
    comment_max_length=20,
)
SETTINGS = SatisfactionSettings(groups={"vip": THREE})


def ended(**kw: Any) -> Chat:
    base: dict[str, Any] = {
        "id": ChatId("c1"),
        "customer": CustomerInfo(),
        "channel": "web",
        "state": ChatState.ENDED,
        "agent_id": None,
        "served_by": (AgentId("a1"), AgentId("a2")),
        "ended_at": 1000.0,
        "end_reason": EndReason.AGENT,
        "agent_replied": True,
        "last_agent_message_at": 900.0,
    }
    base.update(kw)
    return Chat(**base)


INVITED = SatisfactionState(invitations=1, last_invited_at=1000.0)


# --------------------------------------------------------------------------- schemes


def test_resolve_scheme() -> None:
    assert resolve_scheme(SETTINGS, "vip") is THREE
    assert resolve_scheme(SETTINGS, "other") == SatisfactionScheme()
    assert resolve_scheme(SETTINGS, None) == SatisfactionScheme()
    assert resolve_scheme(SETTINGS, "") == SatisfactionScheme()


def test_attribution_to_the_last_agent_who_served() -> None:
    assert attributed_agent(ended()) == "a2"
    assert attributed_agent(ended(agent_id=AgentId("a3"))) == "a3"
    assert attributed_agent(ended(served_by=())) is None


# --------------------------------------------------------------------------- invitations


def test_automatic_invitation_at_end_for_chosen_reasons() -> None:
    s0 = SatisfactionState()
    assert invitation_refusal(SETTINGS, ended(), s0, trigger=END, now=1000.0) is None
    assert invite(SETTINGS, ended(), s0, trigger=END, now=1000.0) == INVITED
    timeout = ended(end_reason=EndReason.CUSTOMER_INACTIVITY)
    assert invitation_refusal(SETTINGS, timeout, s0, trigger=END, now=1000.0) == "end_reason"
    assert invite(SETTINGS, timeout, s0, trigger=END, now=1000.0) is None
    custom = attrs.evolve(SETTINGS, invite_on_end_reasons=(EndReason.CUSTOMER_INACTIVITY,))
    assert invitation_refusal(custom, timeout, s0, trigger=END, now=1000.0) is None


def test_agent_invitation() -> None:
    active = ended(state=ChatState.ACTIVE, agent_id=AgentId("a2"), ended_at=None, end_reason=None)
    s0 = SatisfactionState()
    assert invitation_refusal(SETTINGS, active, s0, trigger=AGENT, now=500.0) is None
    # An active chat is not "ended for a chosen reason".
    assert (
        invitation_refusal(SETTINGS, active, s0, trigger=END, now=500.0) is InviteRefusal.END_REASON
    )
    no = attrs.evolve(SETTINGS, agent_may_invite=False)
    assert invitation_refusal(no, active, s0, trigger=AGENT, now=500.0) is (
        InviteRefusal.AGENT_MAY_NOT_INVITE
    )


def test_not_sent_when_the_agent_never_replied() -> None:
    silent = ended(agent_replied=False, last_agent_message_at=None)
    s0 = SatisfactionState()
    assert invitation_refusal(SETTINGS, silent, s0, trigger=END, now=1000.0) is (
        InviteRefusal.AGENT_NEVER_REPLIED
    )
    lax = attrs.evolve(SETTINGS, skip_if_agent_never_replied=False)
    assert invitation_refusal(lax, silent, s0, trigger=END, now=1000.0) is None


@pytest.mark.parametrize(
    "chat",
    [
        ended(served_by=()),
        ended(state=ChatState.QUEUED),
        ended(state=ChatState.LEFT_MESSAGE),
        ended(state=ChatState.ABANDONED),
    ],
)
def test_not_sent_for_unserved_chats(chat: Chat) -> None:
    assert invitation_refusal(SETTINGS, chat, SatisfactionState(), trigger=AGENT, now=1.0) is (
        InviteRefusal.NOT_SERVED
    )


def test_repeated_invitations_up_to_max() -> None:
    assert invitation_refusal(SETTINGS, ended(), INVITED, trigger=AGENT, now=1001.0) is (
        InviteRefusal.MAX_INVITATIONS
    )
    three = attrs.evolve(SETTINGS, max_invitations=3)
    state = SatisfactionState()
    for n in range(1, 4):
        nxt = invite(three, ended(), state, trigger=AGENT, now=1000.0 + n)
        assert nxt is not None and nxt.invitations == n and nxt.last_invited_at == 1000.0 + n
        state = nxt
    assert invite(three, ended(), state, trigger=AGENT, now=2000.0) is None


def test_no_reinvitation_after_a_refused_second_rating() -> None:
    three = attrs.evolve(SETTINGS, max_invitations=3)
    rated = rate(three, ended(), INVITED, level=5, now=1001.0)
    assert invitation_refusal(three, ended(), rated, trigger=AGENT, now=1002.0) is (
        InviteRefusal.ALREADY_RATED
    )
    over = attrs.evolve(three, second_rating=SecondRating.OVERWRITE)
    assert invitation_refusal(over, ended(), rated, trigger=AGENT, now=1002.0) is None


def test_invitation_window_and_disabled() -> None:
    late = 1000.0 + 14 * DAY + 1
    assert invitation_refusal(SETTINGS, ended(), SatisfactionState(), trigger=AGENT, now=late) is (
        InviteRefusal.WINDOW_CLOSED
    )
    off = attrs.evolve(SETTINGS, enabled=False)
    assert invitation_refusal(off, ended(), SatisfactionState(), trigger=END, now=1000.0) is (
        InviteRefusal.DISABLED
    )


# --------------------------------------------------------------------------- ratings


def test_rate() -> None:
    state = rate(
        SETTINGS, ended(), INVITED, level=4, tags=(), resolved=True, comment=" ok ", now=1100.0
    )
    assert state.invitations == 1
    assert state.rating == Rating(
        level=4,
        levels=5,
        label="Satisfied",
        tags=(),
        resolved=True,
        comment="ok",
        agent_id="a2",
        submitted_at=1100.0,
        revision=0,
    )


def test_group_scheme_is_used() -> None:
    state = rate(SETTINGS, ended(skill_group="vip"), INVITED, level=3, tags=["fast"], now=1100.0)
    assert state.rating is not None
    assert (state.rating.levels, state.rating.label, state.rating.tags) == (3, "Good", ("fast",))


def test_rating_needs_an_invitation_unless_customer_initiated() -> None:
    with pytest.raises(RatingRefusedError) as info:
        rate(SETTINGS, ended(), SatisfactionState(), level=5, now=1100.0)
    assert info.value.chat_id == "c1"
    open_ = attrs.evolve(SETTINGS, customer_initiated=True)
    assert rate(open_, ended(), SatisfactionState(), level=5, now=1100.0).rating is not None


def test_second_rating_refused_with_the_message() -> None:
    once = rate(SETTINGS, ended(), INVITED, level=5, now=1100.0)
    with pytest.raises(RatingRefusedError) as info:
        rate(SETTINGS, ended(), once, level=1, comment="bad", now=1200.0)
    assert info.value.reason == SETTINGS.refuse_message
    assert isinstance(info.value, ValueError)


def test_second_rating_overwrites() -> None:
    over = attrs.evolve(SETTINGS, second_rating=SecondRating.OVERWRITE)
    once = rate(over, ended(), INVITED, level=5, now=1100.0)
    twice = rate(over, ended(), once, level=2, now=1200.0)
    assert twice.rating is not None
    assert (twice.rating.level, twice.rating.revision, twice.rating.submitted_at) == (2, 1, 1200.0)


def test_ratings_only_within_the_window() -> None:
    assert rate(SETTINGS, ended(), INVITED, level=5, now=1000.0 + 14 * DAY).rating is not None
    with pytest.raises(RatingRefusedError):
        rate(SETTINGS, ended(), INVITED, level=5, now=1000.0 + 14 * DAY + 0.5)
    # An active chat (agent invited mid-chat) has no window yet.
    active = ended(state=ChatState.ACTIVE, agent_id=AgentId("a1"), ended_at=None)
    assert rate(SETTINGS, active, INVITED, level=5, now=9e9).rating is not None


@pytest.mark.parametrize(
    "chat",
    [ended(served_by=()), ended(state=ChatState.LEFT_MESSAGE), ended(state=ChatState.QUEUED)],
)
def test_unserved_chats_cannot_be_rated(chat: Chat) -> None:
    with pytest.raises(RatingRefusedError):
        rate(SETTINGS, chat, INVITED, level=5, now=1100.0)


def test_disabled_refuses() -> None:
    with pytest.raises(RatingRefusedError):
        rate(attrs.evolve(SETTINGS, enabled=False), ended(), INVITED, level=5, now=1100.0)


def test_validate_rating_lists_every_bad_part() -> None:
    with pytest.raises(FormValidationError) as info:
        validate_rating(THREE, level=1, tags=["fast", "nope"], comment="", resolved=True)
    assert set(info.value.fields) == {"tags", "comment", "resolved"}
    with pytest.raises(FormValidationError) as info:
        validate_rating(THREE, level=4)
    assert set(info.value.fields) == {"level"}
    with pytest.raises(FormValidationError) as info:
        validate_rating(THREE, level=3, comment="x" * 21, tags=["fast", "fast"])
    assert set(info.value.fields) == {"comment", "tags"}
    with pytest.raises(FormValidationError):
        validate_rating(THREE, level=True)  # type: ignore[arg-type]
    with pytest.raises(FormValidationError):
        validate_rating(THREE, level=2, tags="fast")
    assert validate_rating(THREE, level=1, tags=["rude"], comment=" why ") == (
        1,
        ("rude",),
        "why",
        None,
    )
    assert validate_rating(THREE, level=2) == (2, (), "", None)


def test_comment_rule_boundaries() -> None:
    always = attrs.evolve(THREE, comment_required_below=4)
    with pytest.raises(FormValidationError):
        validate_rating(always, level=3)
    never = attrs.evolve(THREE, comment_required_below=0)
    assert validate_rating(never, level=1)[0] == 1


def test_invalid_rating_through_rate_is_a_form_error() -> None:
    with pytest.raises(FormValidationError):
        rate(SETTINGS, ended(skill_group="vip"), INVITED, level=1, now=1100.0)


# --------------------------------------------------------------------------- state values


def test_state_round_trips_through_plain_json() -> None:
    state = rate(SETTINGS, ended(), INVITED, level=4, tags=(), resolved=False, now=1100.0)
    data = json.loads(json.dumps(state.to_dict()))
    assert SatisfactionState.from_dict(data) == state
    assert SatisfactionState.from_dict(SatisfactionState().to_dict()) == SatisfactionState()
    chat = ended(satisfaction=data)
    assert satisfaction_of(chat) == state
    assert satisfaction_of(ended()) == SatisfactionState()


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"invitations": -1},
        {"invitations": "1"},
        {"last_invited_at": "x"},
        {"rating": {"level": 1}},
        {"rating": {"level": 1, "levels": 5, "tags": "a"}},
        {"rating": {"level": 1, "levels": 5, "resolved": "yes"}},
        {"rating": {"level": 1, "levels": 5, "agent_id": 3}},
        {"rating": {"level": 1, "levels": 5, "comment": 3}},
        {"rating": "x"},
    ],
)
def test_state_from_bad_dict(data: Any) -> None:
    with pytest.raises(ValidationError):
        SatisfactionState.from_dict(data)


def test_agent_view_hides_the_rating_when_not_visible() -> None:
    state = rate(SETTINGS, ended(), INVITED, level=1, comment="awful", now=1100.0)
    chat = ended(satisfaction=state.to_dict(), attributes={"other": 1})
    assert agent_view(SETTINGS, chat) is chat
    hidden = attrs.evolve(SETTINGS, visible_to_agent=False)
    view = agent_view(hidden, chat)
    assert satisfaction_of(view) == SatisfactionState(invitations=1, last_invited_at=1000.0)
    assert view.attributes["other"] == 1
    assert satisfaction_of(chat).rating is not None  # the stored chat is untouched
    plain = ended()
    assert agent_view(hidden, plain) is plain


# --------------------------------------------------------------------------- laws

levels = st.integers(min_value=-1, max_value=7)
tag_lists = st.lists(st.sampled_from(["slow", "rude", "fast", "x"]), max_size=3)
comments = st.text(alphabet="ab ", max_size=25)


@given(levels, tag_lists, comments, st.none() | st.booleans())
def test_rating_validation_is_total(
    level: int, tags: list[str], comment: str, resolved: bool | None
) -> None:
    for scheme in (THREE, SatisfactionScheme()):
        try:
            lvl, t, c, r = validate_rating(
                scheme, level=level, tags=tags, comment=comment, resolved=resolved
            )
        except FormValidationError as err:
            assert err.fields and set(err.fields) <= {"level", "tags", "comment", "resolved"}
        else:
            assert 1 <= lvl <= scheme.levels
            assert set(t) <= set(scheme.tags.get(str(lvl), ()))
            assert len(c) <= scheme.comment_max_length
            assert c or lvl >= scheme.comment_required_below
            assert r is None or scheme.ask_resolved


@given(
    st.lists(st.sampled_from(["invite", "rate"]), max_size=8),
    st.sampled_from(list(SecondRating)),
    st.integers(min_value=1, max_value=3),
    st.booleans(),
)
def test_a_rating_exists_only_after_an_invitation(
    steps: list[str], second: SecondRating, max_inv: int, customer_initiated: bool
) -> None:
    s = attrs.evolve(
        SETTINGS,
        second_rating=second,
        max_invitations=max_inv,
        customer_initiated=customer_initiated,
    )
    state = SatisfactionState()
    now = 1000.0
    for step in steps:
        now += 1
        if step == "invite":
            nxt = invite(s, ended(), state, trigger=AGENT, now=now)
            if nxt is not None:
                assert nxt.invitations == state.invitations + 1 <= max_inv
                state = nxt
        else:
            with contextlib.suppress(RatingRefusedError):
                state = rate(s, ended(), state, level=5, now=now)
        if state.rating is not None and not customer_initiated:
            assert state.invitations >= 1
        assert SatisfactionState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
