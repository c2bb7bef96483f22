"""Hypothesis strategies for the library's values, valid by construction.

Use them in property-based tests of your own strategies, adapters and settings handling::

    from hypothesis import given
    from chatmgmt.testing._strategies import settings

    @given(settings())
    def test_round_trip(s):
        assert ChatSettings.from_dict(s.to_dict()) == s

With ``hypothesis`` installed, ``st.from_type(Agent)`` (and ``CustomerInfo``, ``Chat``,
``ChatSettings``) use these strategies too: the package registers them through its hypothesis
entry point.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
from typing import Any

import attrs
from hypothesis import strategies as st

from ..lifecycle._hold import Hold
from ..model import (
    Agent,
    AgentId,
    AgentStatus,
    Channel,
    Chat,
    ChatId,
    ChatSla,
    ChatState,
    CustomerInfo,
    EndReason,
    ReceptionMode,
    SlaClock,
)
from ..settings import (
    AssignmentSettings,
    AutoSaveSettings,
    ChatSettings,
    EndOfChatSettings,
    FieldType,
    FormField,
    GroupSettings,
    OverflowCondition,
    OverflowLayer,
    QueueLimitAction,
    QueueSettings,
    ReopenSettings,
    RoutingRule,
    SatisfactionScheme,
    SatisfactionSettings,
    SecondRating,
    SensitiveWordSettings,
    SlaPolicy,
    SlaSettings,
    StickySettings,
    StrategyName,
    SubmissionMode,
    SubmissionSettings,
    UnverifiedIdentity,
    WebhookEndpoint,
    WebhookSettings,
    WordEntry,
    WorkingHours,
)

__all__ = ["agents", "chats", "customer_infos", "settings"]

# --------------------------------------------------------------------------- building blocks

_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_-"
_names = st.text(_NAME_ALPHABET, min_size=1, max_size=8)
# storable text: the library refuses NUL and lone surrogates (category Cs)
_chars = st.characters(codec="utf-8", exclude_characters="\x00")
_texts = st.text(_chars, max_size=20)
_words = st.text(_chars, min_size=1, max_size=12).filter(lambda w: bool(w.strip()))
_channels = st.one_of(
    st.sampled_from(
        [Channel.WEB, Channel.MOBILE_WEB, Channel.APP, Channel.WECHAT, Channel.EMAIL, Channel.API]
    ).map(str),
    _names,
)
_seconds = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
_positive_seconds = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
_counts = st.integers(min_value=0, max_value=1000)


def _small_dict(keys: st.SearchStrategy[str], values: st.SearchStrategy[Any]) -> Any:
    return st.dictionaries(keys, values, max_size=3)


def _tuples(elements: st.SearchStrategy[Any], max_size: int = 3) -> Any:
    return st.lists(elements, max_size=max_size).map(tuple)


# --------------------------------------------------------------------------- model values


def agents() -> st.SearchStrategy[Agent]:
    """Valid :class:`~chatmgmt.model.Agent` values (any status, limits 0..20)."""
    return st.builds(
        Agent,
        id=_names.map(AgentId),
        display_name=_texts,
        skill_groups=st.frozensets(_names, max_size=3),
        reception_limit=st.integers(min_value=0, max_value=20),
        tier=st.integers(min_value=-3, max_value=3),
        account_order=st.integers(min_value=0, max_value=10_000),
        status=st.sampled_from(AgentStatus),
    )


def customer_infos() -> st.SearchStrategy[CustomerInfo]:
    """Valid :class:`~chatmgmt.model.CustomerInfo` values; ``partner_id`` is None sometimes."""
    return st.builds(
        CustomerInfo,
        partner_id=st.none() | _names,
        channel=_channels,
        name=_texts,
        email=st.sampled_from(["", "ada@example.com", "bob@example.org"]) | _texts,
        phone=st.sampled_from(["", "+33 1 23 45 67 89"]) | _texts,
        vip_level=st.integers(min_value=0, max_value=5),
        ip=st.sampled_from(["", "203.0.113.7", "2001:db8::1"]),
        custom_fields=_small_dict(_names, _texts),
    )


@st.composite
def _chat(draw: st.DrawFn) -> Chat:
    customer = draw(customer_infos())
    mode = draw(st.sampled_from(ReceptionMode))
    state = draw(st.sampled_from(ChatState))
    created = draw(st.floats(min_value=1.6e9, max_value=1.8e9, allow_nan=False))
    agent_id = draw(_names.map(AgentId)) if state is ChatState.ACTIVE else None
    ended = state in (ChatState.ENDED, ChatState.LEFT_MESSAGE, ChatState.ABANDONED)
    return Chat(
        id=ChatId(draw(_names)),
        customer=customer,
        channel=customer.channel,
        skill_group=draw(st.just("") | _names),
        mode=mode,
        state=state,
        agent_id=agent_id,
        created_at=created,
        updated_at=created,
        assigned_at=created if agent_id is not None else None,
        ended_at=created if ended else None,
        end_reason=draw(st.sampled_from(EndReason)) if ended else None,
        priority=draw(st.integers(min_value=0, max_value=10)),
        served_by=(agent_id,) if agent_id is not None else (),
        inactive=agent_id is not None and draw(st.booleans()),
        hold=draw(_hold(created)) if agent_id is not None else None,
        sla=draw(st.none() | _chat_sla(created, running=not ended)),
        version=draw(st.integers(min_value=0, max_value=50)),
    )


def _hold(start: float) -> st.SearchStrategy[dict[str, Any] | None]:
    """None, a hold running since ``start`` + s, or one that resumed later."""
    held = st.floats(min_value=0, max_value=1e4).map(lambda s: start + s)
    running = held.map(lambda since: Hold(since, "a1", "wait").to_dict())
    resumed = st.tuples(held, st.floats(min_value=0, max_value=1e4)).map(
        lambda p: Hold(p[0], "a1", "", p[0] + p[1], "customer").to_dict()
    )
    return st.none() | running | resumed


@st.composite
def _chat_sla(draw: st.DrawFn, created: float, *, running: bool) -> ChatSla:
    def clock() -> SlaClock:
        target = draw(_positive_seconds)
        runs = draw(st.integers(min_value=0, max_value=3))
        achieved = draw(st.none() | _seconds) if runs else None
        if running and draw(st.booleans()):
            return SlaClock(target, created, None, created + target, runs=runs, achieved_s=achieved)
        return SlaClock(target, achieved_s=achieved, runs=runs, breaches=draw(st.integers(0, runs)))

    first, following, resolution = (clock() if draw(st.booleans()) else None for _ in range(3))
    return ChatSla(
        draw(_names),
        draw(st.booleans()),
        draw(st.just("") | _names),
        first,
        following,
        resolution,
    )


def chats() -> st.SearchStrategy[Chat]:
    """Valid :class:`~chatmgmt.model.Chat` values whose fields agree with their state."""
    return _chat()


# --------------------------------------------------------------------------- settings sections


def _auto_save() -> st.SearchStrategy[AutoSaveSettings]:
    return st.builds(
        AutoSaveSettings,
        enabled=st.booleans(),
        channels=_tuples(_channels, 6),
        identity_secret=st.none() | st.text(_chars, min_size=16, max_size=40),
        unverified_identity=st.sampled_from(UnverifiedIdentity),
    )


@st.composite
def _span(draw: st.DrawFn) -> str:
    start = draw(st.integers(min_value=0, max_value=23 * 60 + 59))
    end = draw(st.integers(min_value=0, max_value=24 * 60).filter(lambda e: e != start))
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


_date = st.dates(min_value=_dt.date(2020, 1, 1), max_value=_dt.date(2035, 12, 31)).map(
    _dt.date.isoformat
)


def _hours() -> st.SearchStrategy[WorkingHours]:
    return st.builds(
        WorkingHours,
        timezone=st.sampled_from(["UTC", "Europe/Paris", "Asia/Shanghai", "America/New_York"]),
        weekly=st.dictionaries(
            st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
            _tuples(_span(), 2),
            max_size=3,
        ),
        holidays=_tuples(_date, 2),
        overrides=st.dictionaries(_date, _tuples(_span(), 2), max_size=2),
        out_of_office_message=st.sampled_from(["", "We are closed."]),
    )


def _group() -> st.SearchStrategy[GroupSettings]:
    return st.builds(
        GroupSettings,
        strategy=st.none() | st.sampled_from(StrategyName),
        priority_tiers=st.none() | st.booleans(),
        hours=st.none() | _hours(),
    )


@st.composite
def _cidr(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(st.ip_addresses(v=4))
        prefix = draw(st.integers(min_value=0, max_value=32))
    else:
        address = draw(st.ip_addresses(v=6))
        prefix = draw(st.integers(min_value=0, max_value=128))
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@st.composite
def _routing_rule(draw: st.DrawFn) -> RoutingRule:
    target = draw(st.sampled_from(["agent", "group", "both"]))
    return RoutingRule(
        name=draw(_names),
        target_agent=draw(_names) if target in ("agent", "both") else None,
        target_group=draw(_names) if target in ("group", "both") else None,
        strict=draw(st.booleans()),
        channels=draw(_tuples(_channels)),
        min_vip_level=draw(st.none() | st.integers(min_value=0, max_value=5)),
        ip_ranges=draw(_tuples(_cidr(), 2)),
        partner_ids=draw(_tuples(_names)),
        customer_fields=draw(_small_dict(_names, _texts)),
    )


@st.composite
def _overflow_layer(draw: st.DrawFn) -> OverflowLayer:
    conditions = tuple(draw(st.lists(st.sampled_from(OverflowCondition), min_size=1, max_size=3)))
    if draw(st.booleans()):
        return OverflowLayer(target_group=draw(_names), conditions=conditions)
    return OverflowLayer(target_agent=draw(_names), conditions=conditions)


def _queue() -> st.SearchStrategy[QueueSettings]:
    return st.builds(
        QueueSettings,
        max_length=_counts,
        max_wait_s=_seconds,
        on_limit=st.sampled_from(QueueLimitAction),
        priority_step_s=_seconds,
        queue_first_priority=st.integers(min_value=0, max_value=100),
        estimate_handle_s=_positive_seconds,
    )


def _assignment() -> st.SearchStrategy[AssignmentSettings]:
    return st.builds(
        AssignmentSettings,
        strategy=st.sampled_from(StrategyName),
        priority_tiers=st.booleans(),
        saturation_tiebreak=st.sampled_from(["random", "longest_since_assigned"]),
        inactive_chats_count=st.booleans(),
        on_hold_chats_count=st.booleans(),
        hours=st.none() | _hours(),
        groups=_small_dict(_names, _group()),
        routing_rules=_tuples(_routing_rule()),
        sticky=st.builds(
            StickySettings,
            after_offline_message_s=_seconds,
            after_close_s=_seconds,
            wait_s=_seconds,
        ),
        overflow=_tuples(_overflow_layer(), 4),
        queue=_queue(),
        auto_transfer_s=_seconds,
        max_auto_transfers=st.integers(min_value=0, max_value=10),
    )


@st.composite
def _form_field(draw: st.DrawFn, name: str) -> FormField:
    type_ = draw(st.sampled_from(FieldType))
    select = type_ in (FieldType.SELECT, FieldType.MULTI_SELECT)
    return FormField(
        name=name,
        type=type_,
        label=draw(_texts),
        required=draw(st.booleans()),
        max_length=draw(st.integers(min_value=1, max_value=5000)),
        options=draw(st.lists(_names, min_size=1 if select else 0, max_size=3).map(tuple)),
    )


_SUBMISSION_OVERRIDE = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "when_no_agent_online": st.booleans(),
        "when_off_duty": st.booleans(),
        "when_queue_longer_than": _counts,
        "when_waited_longer_than_s": _seconds,
        "prompt": _texts,
    },
)


@st.composite
def _submission(draw: st.DrawFn) -> SubmissionSettings:
    names = draw(st.lists(_names, unique=True, max_size=4))
    return SubmissionSettings(
        enabled=draw(st.booleans()),
        mode=draw(st.sampled_from(SubmissionMode)),
        when_no_agent_online=draw(st.booleans()),
        when_off_duty=draw(st.booleans()),
        when_queue_longer_than=draw(_counts),
        when_waited_longer_than_s=draw(_seconds),
        prompt=draw(_texts),
        fields=tuple(draw(_form_field(name)) for name in names),
        channels=draw(_small_dict(_channels, _SUBMISSION_OVERRIDE)),
        groups=draw(_small_dict(_names, _SUBMISSION_OVERRIDE)),
    )


def _word_entry() -> st.SearchStrategy[WordEntry]:
    return st.builds(
        WordEntry,
        word=_words,
        category=_names,
        action=st.sampled_from(["block", "mask", "warn"]),
    )


def _sensitive_words() -> st.SearchStrategy[SensitiveWordSettings]:
    return st.builds(
        SensitiveWordSettings,
        enabled=st.booleans(),
        customer=_tuples(_word_entry()),
        agent=_tuples(_word_entry()),
        both=_tuples(_word_entry()),
        allow=_tuples(_words),
        allow_customer=_tuples(_words),
        allow_agent=_tuples(_words),
        block_prompt=_texts,
        mask_char=_chars,
        longest_match=st.booleans(),
        fold_case=st.booleans(),
        fold_width=st.booleans(),
        fold_styles=st.booleans(),
        fold_lookalikes=st.booleans(),
        traditional_to_simplified=st.booleans(),
        collapse_repeats=st.booleans(),
        skip_noise=st.booleans(),
        alert_hits=st.integers(min_value=0, max_value=100),
        alert_window_s=_positive_seconds,
        original_in_webhooks=st.booleans(),
    )


@st.composite
def _scheme(draw: st.DrawFn) -> SatisfactionScheme:
    levels = draw(st.sampled_from([2, 3, 5]))
    keys = [str(level) for level in range(1, levels + 1)]
    return SatisfactionScheme(
        levels=levels,
        labels=tuple(draw(st.lists(_texts, min_size=levels, max_size=levels))),
        tags=draw(st.dictionaries(st.sampled_from(keys), _tuples(_names), max_size=levels)),
        ask_resolved=draw(st.booleans()),
        comment_required_below=draw(st.integers(min_value=0, max_value=levels + 1)),
        comment_max_length=draw(st.integers(min_value=1, max_value=5000)),
    )


_tags = st.text(_NAME_ALPHABET + " é", min_size=1, max_size=10).filter(lambda t: t == t.strip())
_invitation_override = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "invite_on_end_reasons": st.lists(st.sampled_from([r.value for r in EndReason])),
        "agent_may_invite": st.booleans(),
        "max_invitations": st.integers(min_value=1, max_value=5),
        "invite_prompt": _texts,
        "reminder_after_s": _seconds,
        "reminder_prompt": _texts,
        "min_interval_s": _seconds,
        "skip_tags": st.lists(_tags, max_size=2),
        "invite_tags": st.lists(_tags, max_size=2),
    },
)


def _satisfaction() -> st.SearchStrategy[SatisfactionSettings]:
    return st.builds(
        SatisfactionSettings,
        enabled=st.booleans(),
        scheme=_scheme(),
        groups=_small_dict(_names, _scheme()),
        invite_on_end_reasons=_tuples(st.sampled_from(EndReason)),
        agent_may_invite=st.booleans(),
        skip_if_agent_never_replied=st.booleans(),
        max_invitations=st.integers(min_value=1, max_value=5),
        second_rating=st.sampled_from(SecondRating),
        refuse_message=_texts,
        window_s=_positive_seconds,
        visible_to_agent=st.booleans(),
        customer_initiated=st.booleans(),
        invite_prompt=_texts,
        reminder_after_s=st.just(0.0) | _seconds,
        reminder_prompt=_texts,
        min_interval_s=st.just(0.0) | _seconds,
        skip_tags=_tuples(_tags),
        invite_tags=_tuples(_tags),
        group_rules=_small_dict(_names, _invitation_override),
        channels=_small_dict(_channels, _invitation_override),
    )


@st.composite
def _timeouts(draw: st.DrawFn) -> dict[str, float]:
    """``warn_after_s`` and ``end_after_s`` that agree (end after warn unless one is 0)."""
    warn = draw(st.just(0.0) | _seconds)
    end = draw(
        st.just(0.0) | st.floats(min_value=warn, max_value=2e6, exclude_min=True, allow_nan=False)
    )
    return {"warn_after_s": warn, "end_after_s": end}


@st.composite
def _end_of_chat_override(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "end_prompt": _texts,
                "timeout_prompt": _texts,
                "warn_prompt": _texts,
                "agent_reminder_s": _seconds,
                "agent_reminder_prompt": _texts,
                "inactive_after_s": _seconds,
                "hold_close_after_s": _seconds,
                "hold_close_prompt": _texts,
            },
        )
    )
    if draw(st.booleans()):
        out.update(draw(_timeouts()))
    return out


@st.composite
def _end_of_chat(draw: st.DrawFn) -> EndOfChatSettings:
    timeouts: dict[str, Any] = draw(_timeouts())
    return EndOfChatSettings(
        end_prompt=draw(_texts),
        timeout_prompt=draw(_texts),
        warn_prompt=draw(_texts),
        agent_reminder_s=draw(_seconds),
        agent_reminder_prompt=draw(_texts),
        inactive_after_s=draw(_seconds),
        hold_close_after_s=draw(_seconds),
        hold_close_prompt=draw(_texts),
        channels=draw(_small_dict(_channels, _end_of_chat_override())),
        groups=draw(_small_dict(_names, _end_of_chat_override())),
        **timeouts,
    )


_REOPEN_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "on_customer_message": st.booleans(),
    "customer_to": st.sampled_from(["pool", "last_agent"]),
    "window_s": _seconds,
}


@st.composite
def _reopen(draw: st.DrawFn) -> ReopenSettings:
    override = st.fixed_dictionaries({}, optional=_REOPEN_FIELDS)
    return ReopenSettings(
        **draw(st.fixed_dictionaries(_REOPEN_FIELDS)),
        channels=draw(_small_dict(_channels, override)),
        groups=draw(_small_dict(_names, override)),
    )


@st.composite
def _endpoint(draw: st.DrawFn, endpoint_id: str) -> WebhookEndpoint:
    host = draw(st.sampled_from(["example.com", "hooks.example.org", "203.0.113.9:8443"]))
    return WebhookEndpoint(
        id=endpoint_id,
        url=f"{draw(st.sampled_from(['http', 'https']))}://{host}/{draw(_names)}",
        event_types=tuple(
            draw(
                st.lists(
                    st.sampled_from(["*", "chat.ended", "customer.created", "message.customer"]),
                    min_size=1,
                    max_size=3,
                )
            )
        ),
        enabled=draw(st.booleans()),
        secrets=tuple(
            "whsec_" + base64.b64encode(key).decode("ascii")
            for key in draw(st.lists(st.binary(min_size=1, max_size=40), max_size=2))
        ),
        batch_max=draw(st.integers(min_value=1, max_value=100)),
        batch_interval_s=draw(st.floats(min_value=0.001, max_value=3600.0)),
        max_concurrency=draw(st.integers(min_value=1, max_value=32)),
    )


@st.composite
def _webhooks(draw: st.DrawFn) -> WebhookSettings:
    ids = draw(st.lists(_names, unique=True, max_size=3))
    return WebhookSettings(
        endpoints=tuple(draw(_endpoint(i)) for i in ids),
        retry_schedule_s=tuple(draw(st.lists(_seconds, min_size=1, max_size=5))),
        jitter=draw(st.floats(min_value=0.0, max_value=1.0)),
        timeout_s=draw(st.floats(min_value=0.001, max_value=120.0)),
        min_retry_after_error_s=draw(_seconds),
        disable_after_s=draw(_positive_seconds),
        allow_hosts=draw(_tuples(_names)),
        allow_http=draw(st.booleans()),
    )


@st.composite
def _sla_policy(draw: st.DrawFn, name: str) -> SlaPolicy:
    targets = draw(st.lists(_positive_seconds, min_size=3, max_size=3))
    keep = draw(st.lists(st.booleans(), min_size=3, max_size=3).filter(any))
    first, nxt, resolution = (t if k else 0.0 for t, k in zip(targets, keep, strict=True))
    return SlaPolicy(
        name=name,
        groups=draw(_tuples(_names)),
        priorities=draw(_tuples(st.integers(min_value=0, max_value=10))),
        tags=draw(_tuples(_names)),
        first_response_s=first,
        next_response_s=nxt,
        resolution_s=resolution,
    )


@st.composite
def _sla_policies(draw: st.DrawFn) -> tuple[SlaPolicy, ...]:
    return tuple(draw(_sla_policy(n)) for n in draw(st.lists(_names, unique=True, max_size=3)))


_warn_before = st.floats(min_value=0.0, max_value=0.99, allow_nan=False)


def _plain(policy: SlaPolicy) -> dict[str, Any]:
    """A policy as ``from_dict`` takes it (lists for tuples), for a partial override."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(policy).items()}


@st.composite
def _sla(draw: st.DrawFn) -> SlaSettings:
    override = st.fixed_dictionaries(
        {},
        optional={
            "warn_before": _warn_before,
            "business_hours": st.booleans(),
            "policies": _sla_policies().map(lambda ps: [_plain(p) for p in ps]),
        },
    )
    return SlaSettings(
        policies=draw(_sla_policies()),
        warn_before=draw(_warn_before),
        business_hours=draw(st.booleans()),
        channels=draw(_small_dict(_channels, override)),
        groups=draw(_small_dict(_names, override)),
    )


def settings() -> st.SearchStrategy[ChatSettings]:
    """Valid :class:`~chatmgmt.settings.ChatSettings` trees, every section varied.

    Overrides (``submission.channels``, ``submission.groups``, ``end_of_chat.channels``,
    ``end_of_chat.groups``, ``reopen.channels``, ``reopen.groups``, ``sla.channels``,
    ``sla.groups``) are generated too, each valid once applied over its section.
    """
    return st.builds(
        ChatSettings,
        reception_mode=st.sampled_from(ReceptionMode),
        auto_save=_auto_save(),
        assignment=_assignment(),
        submission=_submission(),
        sensitive_words=_sensitive_words(),
        satisfaction=_satisfaction(),
        end_of_chat=_end_of_chat(),
        webhooks=_webhooks(),
        reopen=_reopen(),
        sla=_sla(),
    )
