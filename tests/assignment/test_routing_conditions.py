"""Routing-rule conditions (``routing_rules[].when``): all / any / not, numeric ranges, time
of day and weekday in the group's time zone, chat tags and attributes.

Examples follow the peers' documented expressions: Twilio TaskRouter workflow filters
(``customer_value == 'Gold' AND type == 'ticket'``, ``(language == "en" OR language == "fr")
AND skill_rating >= 5.1``, ``language IN ["en", "es"]``, ``skills HAS 'support'``, ``NOT``)
and Rocket.Chat's business hours per department (a rule that holds in office hours only).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assignment.assign_helpers import agent, customer, manager
from chatmgmt import ChatSettings, CustomerInfo
from chatmgmt._conditions import (
    Condition,
    Facts,
    holds,
    parse_condition,
)
from chatmgmt.assignment import match_rule
from chatmgmt.errors import SettingsError
from chatmgmt.settings import RoutingRule


def ok(when: Any, **facts: Any) -> bool:
    return holds(parse_condition(when), Facts(**facts))


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


# ----------------------------------------------------------------- TaskRouter-style expressions


def test_taskrouter_and_of_equalities() -> None:
    # customer_value == 'Gold' AND type == 'ticket'
    when = {
        "all": [
            {"attribute": {"key": "customer_value", "equals": "Gold"}},
            {"attribute": {"key": "type", "equals": "ticket"}},
        ]
    }
    assert ok(when, attributes={"customer_value": "Gold", "type": "ticket"})
    assert not ok(when, attributes={"customer_value": "Gold", "type": "call"})
    assert not ok(when, attributes={"type": "ticket"})  # a missing key holds no value


def test_taskrouter_or_inside_and_with_a_range() -> None:
    # (language == "en" OR language == "fr") AND skill_rating >= 5.1
    when = {
        "all": [
            {
                "any": [
                    {"attribute": {"key": "language", "equals": "en"}},
                    {"attribute": {"key": "language", "equals": "fr"}},
                ]
            },
            {"attribute": {"key": "skill_rating", "min": 5.1}},
        ]
    }
    assert ok(when, attributes={"language": "fr", "skill_rating": 5.1})  # >= includes 5.1
    assert not ok(when, attributes={"language": "fr", "skill_rating": 5.0})
    assert not ok(when, attributes={"language": "de", "skill_rating": 9})


def test_taskrouter_in_and_not_in() -> None:
    # language IN ["en", "es"]  /  NOT (language IN ["en", "es"])
    inside = {"attribute": {"key": "language", "in": ["en", "es"]}}
    assert ok(inside, attributes={"language": "es"})
    assert not ok(inside, attributes={"language": "pt"})
    assert ok({"not": inside}, attributes={"language": "pt"})
    assert ok({"not": inside}, attributes={})  # no language: not in the list


def test_taskrouter_has_is_a_tag_test() -> None:
    # skills HAS 'support': the chat's tags (the host's attributes["tags"]) contain it
    has = {"tags": {"any": ["support"]}}
    assert ok(has, attributes={"tags": ["billing", "support"]})
    assert not ok(has, attributes={"tags": ["billing"]})
    assert not ok(has, attributes={})
    assert ok({"tags": {"all": ["a", "b"]}}, attributes={"tags": ["b", "a", "c"]})
    assert not ok({"tags": {"all": ["a", "b"]}}, attributes={"tags": ["a"]})
    assert ok({"tags": {"none": ["spam"]}}, attributes={"tags": ["a"]})
    assert not ok({"tags": {"none": ["spam"]}}, attributes={"tags": "spam"})  # one tag as text


def test_values_compare_by_json_type() -> None:
    # true is not 1, "1" is not 1; 2 equals 2.0
    assert not ok({"attribute": {"key": "x", "equals": 1}}, attributes={"x": True})
    assert not ok({"attribute": {"key": "x", "equals": 1}}, attributes={"x": "1"})
    assert ok({"attribute": {"key": "x", "equals": 2}}, attributes={"x": 2.0})
    assert ok({"attribute": {"key": "x", "equals": True}}, attributes={"x": True})


def test_ranges_include_both_ends_and_read_numbers_in_text() -> None:
    r = {"customer_field": {"key": "orders", "min": 10, "max": 20}}
    for value, expected in [
        ("10", True),
        ("20", True),
        (" 15 ", True),
        ("9.99", False),
        ("21", False),
        ("ten", False),
        ("nan", False),
        (True, False),
    ]:
        assert ok(r, custom_fields={"orders": value}) is expected, value
    assert ok({"vip_level": {"min": 3}}, vip_level=3)
    assert not ok({"vip_level": {"max": 2}}, vip_level=3)


def test_exists() -> None:
    assert ok({"attribute": {"key": "order_id", "exists": True}}, attributes={"order_id": None})
    assert ok({"attribute": {"key": "order_id", "exists": False}}, attributes={})


def test_channel_ip_partner() -> None:
    assert ok({"channel": ["web", "app"]}, channel="app")
    assert ok({"channel": "app"}, channel="app")
    assert not ok({"channel": ["web"]}, channel="app")
    assert ok({"ip": ["10.0.0.0/8"]}, ip="10.1.2.3")
    assert not ok({"ip": ["10.0.0.0/8"]}, ip="not an ip")
    assert ok({"partner_id": ["u1"]}, partner_id="u1")
    assert not ok({"partner_id": ["u1"]}, partner_id=None)


def test_empty_all_holds_and_empty_any_does_not() -> None:
    assert ok({"all": []}) and not ok({"any": []})


# ----------------------------------------------------------------- time of day and weekday


def test_office_hours_in_the_group_time_zone_follow_daylight_saving() -> None:
    """Rocket.Chat-style business hours: 09:00-17:00 in Berlin is 08:00 UTC in winter and
    07:00 UTC in summer."""
    office = {"time": {"from": "09:00", "to": "17:00"}}
    berlin = "Europe/Berlin"
    assert ok(office, now=utc(2026, 1, 14, 8, 0), timezone=berlin)  # 09:00 CET
    assert not ok(office, now=utc(2026, 1, 14, 7, 59), timezone=berlin)  # 08:59 CET
    assert ok(office, now=utc(2026, 7, 14, 7, 0), timezone=berlin)  # 09:00 CEST
    assert not ok(office, now=utc(2026, 7, 14, 15, 0), timezone=berlin)  # 17:00: end excluded


def test_an_overnight_span_and_an_explicit_zone() -> None:
    night = {"time": {"from": "22:00", "to": "06:00", "timezone": "Asia/Tokyo"}}
    assert ok(night, now=utc(2026, 3, 2, 14, 0))  # 23:00 in Tokyo
    assert ok(night, now=utc(2026, 3, 2, 20, 59))  # 05:59 in Tokyo
    assert not ok(night, now=utc(2026, 3, 2, 21, 0))  # 06:00 in Tokyo


def test_weekday_is_local() -> None:
    weekend = {"weekday": ["sat", "sun"]}
    # Friday 2026-03-06 23:30 UTC is Saturday 08:30 in Tokyo
    assert not ok(weekend, now=utc(2026, 3, 6, 23, 30))
    assert ok(weekend, now=utc(2026, 3, 6, 23, 30), timezone="Asia/Tokyo")
    assert ok({"weekday": {"days": ["sat"], "timezone": "Asia/Tokyo"}}, now=utc(2026, 3, 6, 23, 30))


def test_a_time_condition_without_the_time_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="need the current time"):
        ok({"weekday": ["mon"]})


# ----------------------------------------------------------------- through the manager


RULES = {
    "assignment": {
        "groups": {"support": {"hours": {"timezone": "America/New_York", "weekly": {}}}},
        "routing_rules": [
            {
                "name": "gold-office-hours",
                "target_group": "priority",
                "channels": ["web", "app"],  # the old syntax, and-ed with ``when``
                "when": {
                    "all": [
                        {
                            "any": [
                                {"vip_level": {"min": 3}},
                                {"tags": {"any": ["gold"]}},
                            ]
                        },
                        {"not": {"weekday": ["sat", "sun"]}},
                        {"time": {"from": "09:00", "to": "17:00"}},
                    ]
                },
            },
            {"name": "legacy-vip", "target_group": "priority", "min_vip_level": 5},
        ],
    }
}
# Monday 2026-12-07, 10:00 in New York (EST, UTC-5)
MONDAY_10 = utc(2026, 12, 7, 15, 0)


def _world() -> Any:
    m = manager(RULES)
    m.register_agent(agent("pat", groups={"priority"}, limit=5))
    m.register_agent(agent("sam", groups={"support"}, limit=5))
    return m


def test_a_tagged_chat_in_office_hours_goes_to_the_rule_group() -> None:
    m = _world()
    chat = m.open_chat(
        customer("u1"), skill_group="support", attributes={"tags": ["gold"]}, now=MONDAY_10
    )
    assert chat.agent_id == "pat"
    assert chat.route_reason["via"] == "rule"
    assert chat.route_reason["rule"] == "gold-office-hours"


@pytest.mark.parametrize(
    ("why", "kwargs", "now"),
    [
        ("no tag, vip 0", {"attributes": {"tags": ["silver"]}}, MONDAY_10),
        ("after hours in New York", {"attributes": {"tags": ["gold"]}}, MONDAY_10 + 8 * 3600),
        ("Saturday", {"attributes": {"tags": ["gold"]}}, MONDAY_10 - 2 * 86400),
    ],
)
def test_the_rule_does_not_match(why: str, kwargs: dict[str, Any], now: float) -> None:
    m = _world()
    chat = m.open_chat(customer("u1"), skill_group="support", now=now, **kwargs)
    assert chat.agent_id == "sam", why
    assert chat.route_reason["via"] == "default"


def test_the_old_fields_still_apply_with_when() -> None:
    m = _world()
    info = CustomerInfo(partner_id="u1", channel="email", vip_level=4)
    chat = m.open_chat(info, skill_group="support", now=MONDAY_10)
    assert chat.agent_id == "sam"  # vip 4 on email: the first rule's channels fail
    legacy = m.open_chat(
        CustomerInfo(partner_id="u2", channel="email", vip_level=5), skill_group="support"
    )
    assert legacy.route_reason["rule"] == "legacy-vip"  # the old rule syntax still routes


# ----------------------------------------------------------------- settings errors


@pytest.mark.parametrize(
    ("when", "path"),
    [
        ({"any": {"x": 1}}, "when.any"),
        ({"all": [{"time": {"from": "9:00", "to": "18:00"}}]}, "when.all[0].time.from"),
        ({"all": [{}, {"channel": []}]}, "when.all[0]"),
        ({"not": {"channel": [1]}}, "when.not.channel[0]"),
        ({"vip_level": {"min": 5, "max": 1}}, "when.vip_level"),
        ({"vip_level": {"min": "5"}}, "when.vip_level.min"),
        ({"foo": 1}, "when.foo"),
        ({"attribute": {"key": "a"}}, "when.attribute"),
        ({"attribute": {"key": "a", "equals": [1]}}, "when.attribute.equals"),
        ({"attribute": {"equals": 1}}, "when.attribute.key"),
        ({"tags": {"some": ["a"]}}, "when.tags.some"),
        ({"weekday": ["monday"]}, "when.weekday[0]"),
        ({"weekday": {"days": ["mon"], "timezone": "Mars/Base"}}, "when.weekday.timezone"),
        ({"time": {"from": "10:00", "to": "10:00"}}, "when.time"),
        ({"time": {"from": "10:00"}}, "when.time.to"),
        ({"ip": ["10.0.0.300/8"]}, "when.ip[0]"),
        ({"channel": ["web"], "vip_level": {"min": 1}}, "when"),
    ],
)
def test_bad_conditions_name_their_path(when: Any, path: str) -> None:
    data = {"assignment": {"routing_rules": [{"name": "r", "target_group": "g", "when": when}]}}
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict(data)
    assert info.value.path == f"assignment.routing_rules[0].{path}"


def test_nesting_is_bounded() -> None:
    deep: Any = {"channel": ["web"]}
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(SettingsError, match="at most 16 deep"):
        parse_condition(deep)


def test_rules_with_when_round_trip() -> None:
    s = ChatSettings.from_dict(RULES)
    assert ChatSettings.from_dict(s.to_dict()) == s


def test_match_rule_takes_the_chat_facts() -> None:
    rule = RoutingRule("r", target_group="g", when={"attribute": {"key": "plan", "equals": "b"}})
    info = CustomerInfo(partner_id="u")
    assert match_rule(rule, info, "u", attributes={"plan": "b"})
    assert not match_rule(rule, info, "u")


# ----------------------------------------------------------------- laws (hypothesis)

_LEAVES: list[Any] = [
    {"channel": ["web"]},
    {"vip_level": {"min": 2}},
    {"vip_level": {"max": 1}},
    {"tags": {"any": ["a"]}},
    {"tags": {"all": ["a", "b"]}},
    {"attribute": {"key": "n", "min": 0, "max": 5}},
    {"attribute": {"key": "s", "in": ["x", "y"]}},
    {"customer_field": {"key": "k", "exists": True}},
    {"time": {"from": "09:00", "to": "17:00"}},
    {"time": {"from": "22:00", "to": "02:00"}},
    {"weekday": ["mon", "fri"]},
]

conditions = st.recursive(
    st.sampled_from(_LEAVES),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=8,
)

host_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)

facts = st.builds(
    Facts,
    channel=st.sampled_from(["web", "app"]),
    vip_level=st.integers(0, 4),
    attributes=st.fixed_dictionaries(
        {}, optional={"tags": host_values, "n": host_values, "s": host_values}
    ),
    custom_fields=st.fixed_dictionaries({}, optional={"k": st.text(max_size=3)}),
    now=st.floats(0, 4e9),
    timezone=st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin"]),
)


def _c(data: Any) -> Condition:
    return parse_condition(data)


@settings(max_examples=300, deadline=None)
@given(a=conditions, b=conditions, f=facts)
def test_boolean_laws(a: Any, b: Any, f: Facts) -> None:
    """De Morgan, double negation, and all/any agree with Python's and/or; host data of any
    shape never raises."""
    ha, hb = holds(_c(a), f), holds(_c(b), f)
    assert holds(_c({"all": [a, b]}), f) == (ha and hb)
    assert holds(_c({"any": [a, b]}), f) == (ha or hb)
    assert holds(_c({"not": {"not": a}}), f) == ha
    assert holds(_c({"not": {"all": [a, b]}}), f) == holds(_c({"any": [{"not": a}, {"not": b}]}), f)
    assert holds(_c({"all": [a]}), f) == ha == holds(_c({"any": [a]}), f)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    now=st.floats(0, 4e9),
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"]),
)
def test_time_of_day_matches_an_independent_reading(
    start: int, end: int, now: float, zone: str
) -> None:
    if start == end:
        return
    when = {"time": {"from": f"{start // 60:02d}:{start % 60:02d}", "to": _hhmm(end)}}
    local = dt.datetime.fromtimestamp(now, tz=zoneinfo.ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else not (end <= minute < start)
    assert ok(when, now=now, timezone=zone) is inside


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@settings(max_examples=200, deadline=None)
@given(
    lo=st.floats(-1e6, 1e6),
    width=st.floats(0, 1e6),
    x=st.one_of(st.floats(allow_nan=True), st.integers(-(10**7), 10**7)),
)
def test_a_range_is_lo_to_hi_inclusive(lo: float, width: float, x: float) -> None:
    hi = lo + width
    when = {"attribute": {"key": "v", "min": lo, "max": hi}}
    expected = math.isfinite(x) and lo <= x <= hi
    assert ok(when, attributes={"v": x}) is expected
