"""Business calendars: holidays, date overrides, cross-midnight spans, DST, business time."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assignment.assign_helpers import agent, customer, manager
from chatmgmt import ChatState, MessageRole
from chatmgmt.assignment import (
    business_deadline,
    business_deadlines,
    business_seconds,
    effective_hours,
    is_open,
)
from chatmgmt.errors import SettingsError
from chatmgmt.settings import AssignmentSettings, ChatSettings, GroupSettings, WorkingHours
from chatmgmt.testing import RecordingMessageSink

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
# Around the 2026 DST changes of Berlin / New York / Lord Howe, so DST days are drawn often.
_ANCHORS = (dt.date(2026, 3, 7), dt.date(2026, 3, 27), dt.date(2026, 4, 3), dt.date(2026, 10, 1))
_ANCHORS += (dt.date(2026, 10, 23), dt.date(2026, 10, 31))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def _span(draw: st.DrawFn) -> str:
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(0, 1440).filter(lambda e: e != start))
    return f"{_hhmm(start)}-{_hhmm(end)}"


def _dates() -> st.SearchStrategy[str]:
    return st.builds(
        lambda anchor, days: (anchor + dt.timedelta(days=days)).isoformat(),
        st.sampled_from(_ANCHORS),
        st.integers(-2, 6),
    )


_spans = st.lists(_span(), max_size=3).map(tuple)
calendars = st.builds(
    WorkingHours,
    timezone=st.sampled_from(_ZONES),
    weekly=st.dictionaries(st.sampled_from(_DAYS), _spans, max_size=7),
    holidays=st.lists(_dates(), max_size=3, unique=True).map(tuple),
    overrides=st.dictionaries(_dates(), _spans, max_size=3),
)


@st.composite
def _instants(draw: st.DrawFn) -> float:
    anchor = draw(st.sampled_from(_ANCHORS))
    minute = draw(st.integers(-2 * 1440, 8 * 1440))
    midnight = dt.datetime(anchor.year, anchor.month, anchor.day, tzinfo=dt.timezone.utc)
    return midnight.timestamp() + 60 * minute


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def brute_open(hours: WorkingHours, t: float) -> bool:
    """Walk every open minute of the spans starting yesterday and today (local wall clock),
    minute by minute, and look the instant's local minute up among them."""
    local = dt.datetime.fromtimestamp(t, tz=zoneinfo.ZoneInfo(hours.timezone))
    opened: set[tuple[dt.date, int]] = set()
    for day in (local.date() - dt.timedelta(days=1), local.date()):
        key = day.isoformat()
        if key in hours.holidays:
            continue
        if key in hours.overrides:
            spans = hours.overrides[key]
        elif hours.weekly:
            spans = hours.weekly.get(_DAYS[day.weekday()], ())
        else:
            spans = ("00:00-24:00",)
        for span in spans:
            minute, end = _minutes(span[:5]), _minutes(span[6:]) % 1440
            current = day
            while True:
                opened.add((current, minute))
                minute += 1
                if minute == 1440:
                    minute, current = 0, current + dt.timedelta(days=1)
                if minute == end:
                    break
    return (local.date(), local.hour * 60 + local.minute) in opened


@settings(max_examples=300, deadline=None)
@given(calendars, _instants())
def test_open_at_t_agrees_with_a_brute_force_minute_walk(hours: WorkingHours, t: float) -> None:
    hours.check("hours")
    assert is_open(hours, t) == brute_open(hours, t)


@settings(max_examples=60, deadline=None)
@given(calendars, _instants(), st.integers(0, 3 * 1440))
def test_business_time_is_the_sum_of_the_open_minutes(
    hours: WorkingHours, start: float, minutes: int
) -> None:
    # Every boundary here is on a whole minute, so openness is constant within each UTC minute.
    walked = sum(60 for k in range(minutes) if is_open(hours, start + 60 * k))
    assert business_seconds(hours, start, start + 60 * minutes) == walked


@settings(max_examples=60, deadline=None)
@given(calendars, _instants(), st.floats(0, 86400), st.floats(0, 86400))
def test_business_time_adds_up_over_a_split(
    hours: WorkingHours, start: float, a: float, b: float
) -> None:
    mid, end = start + a, start + a + b
    whole = business_seconds(hours, start, end)
    assert whole == pytest.approx(
        business_seconds(hours, start, mid) + business_seconds(hours, mid, end)
    )
    assert 0 <= whole <= end - start


def _at(zone: str, *parts: int) -> float:
    return dt.datetime(*parts, tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()


def test_dst_days_are_23_and_25_business_hours_long() -> None:
    hours = WorkingHours(timezone="Europe/Berlin", weekly={"sun": ("00:00-24:00",)})
    spring = business_seconds(
        hours, _at("Europe/Berlin", 2026, 3, 28), _at("Europe/Berlin", 2026, 3, 31)
    )
    autumn = business_seconds(
        hours, _at("Europe/Berlin", 2026, 10, 24), _at("Europe/Berlin", 2026, 10, 27)
    )
    assert (spring, autumn) == (23 * 3600, 25 * 3600)


def test_a_span_keeps_its_wall_clock_bounds_across_dst() -> None:
    hours = WorkingHours(timezone="America/New_York", weekly={"sun": ("09:00-17:00",)})
    # 2026-03-08 is the spring-forward Sunday in New York: still 09:00-17:00 local, 8 hours.
    assert is_open(hours, _at("America/New_York", 2026, 3, 8, 9, 0))
    assert not is_open(hours, _at("America/New_York", 2026, 3, 8, 8, 59))
    day = business_seconds(
        hours, _at("America/New_York", 2026, 3, 8), _at("America/New_York", 2026, 3, 9)
    )
    assert day == 8 * 3600


def test_cross_midnight_span_runs_into_the_next_day() -> None:
    hours = WorkingHours(timezone="UTC", weekly={"fri": ("22:00-06:00",)})
    # 2026-12-04 is a Friday.
    assert is_open(hours, _at("UTC", 2026, 12, 4, 23, 30))
    assert is_open(hours, _at("UTC", 2026, 12, 5, 5, 59))
    assert not is_open(hours, _at("UTC", 2026, 12, 5, 6, 0))
    assert not is_open(hours, _at("UTC", 2026, 12, 4, 21, 59))
    assert business_seconds(hours, _at("UTC", 2026, 12, 4), _at("UTC", 2026, 12, 6)) == 8 * 3600


def test_overrides_beat_weekly_and_holidays_beat_both() -> None:
    weekly = {d: ("09:00-18:00",) for d in _DAYS[:5]}
    hours = WorkingHours(
        timezone="Europe/Berlin",
        weekly=weekly,
        holidays=("2026-12-25",),
        overrides={
            "2026-12-24": ("09:00-13:00",),
            "2026-12-25": ("09:00-18:00",),
            "2026-12-26": ("10:00-12:00",),
        },
    )
    assert is_open(hours, _at("Europe/Berlin", 2026, 12, 24, 12, 0))
    assert not is_open(hours, _at("Europe/Berlin", 2026, 12, 24, 14, 0))  # override: half day
    assert not is_open(hours, _at("Europe/Berlin", 2026, 12, 25, 12, 0))  # holiday beats override
    assert is_open(hours, _at("Europe/Berlin", 2026, 12, 26, 11, 0))  # a Saturday opened
    closed = WorkingHours(timezone="UTC", weekly=weekly, overrides={"2026-12-23": ()})
    assert not is_open(closed, _at("UTC", 2026, 12, 23, 12, 0))
    # The holiday also closes the night span that would have started on it.
    night = WorkingHours(timezone="UTC", weekly={"thu": ("22:00-02:00",)}, holidays=("2026-12-24",))
    assert not is_open(night, _at("UTC", 2026, 12, 25, 1, 0))


def test_groups_inherit_the_tenant_calendar_and_may_override_it() -> None:
    tenant = WorkingHours(timezone="UTC", weekly={"mon": ("09:00-17:00",)})
    own = WorkingHours(timezone="Asia/Kolkata")
    settings_ = AssignmentSettings(hours=tenant, groups={"vip": GroupSettings(hours=own)})
    assert effective_hours(settings_, "sales") is tenant
    assert effective_hours(settings_, "vip") is own
    assert effective_hours(AssignmentSettings(), "sales") is None


def test_a_group_without_hours_is_off_duty_by_the_tenant_calendar() -> None:
    tree = {
        "assignment": {
            "hours": {
                "timezone": "UTC",
                "weekly": {"mon": ["09:00-17:00"]},
                "holidays": ["2026-11-30"],
            },
            "groups": {"backup": {"hours": {"timezone": "UTC"}}},
            "overflow": [{"target_group": "backup", "conditions": ["off_duty"]}],
        }
    }
    m = manager(tree)
    m.register_agent(agent("s1", groups=("sales",)))
    m.register_agent(agent("b1", groups=("backup",)))
    monday = _at("UTC", 2026, 11, 23, 12, 0)
    assert m.open_chat(customer("u1"), skill_group="sales", now=monday).agent_id == "s1"
    holiday = m.open_chat(customer("u2"), skill_group="sales", now=_at("UTC", 2026, 11, 30, 12, 0))
    assert holiday.agent_id == "b1"
    assert holiday.route_reason["overflow"][0]["condition"] == "off_duty"


@pytest.mark.parametrize(
    ("hours", "path"),
    [
        ({"holidays": ["2026-13-01"]}, "assignment.hours.holidays[0]"),
        ({"holidays": ["25.12.2026"]}, "assignment.hours.holidays[0]"),
        ({"overrides": {"2026-12-24": ["9-13"]}}, "assignment.hours.overrides.2026-12-24[0]"),
        ({"overrides": {"Dec 24": []}}, "assignment.hours.overrides.Dec 24"),
        ({"weekly": {"mon": ["24:00-06:00"]}}, "assignment.hours.weekly.mon[0]"),
        ({"weekly": {"mon": ["22:00-24:30"]}}, "assignment.hours.weekly.mon[0]"),
        ({"timezone": "Mars/Base"}, "assignment.hours.timezone"),
    ],
)
def test_bad_calendars_are_refused_naming_the_path(hours: dict[str, object], path: str) -> None:
    with pytest.raises(SettingsError) as raised:
        ChatSettings.from_dict({"assignment": {"hours": hours}})
    assert raised.value.path == path


def test_a_new_chat_waiting_while_closed_gets_the_out_of_office_message_and_the_form() -> None:
    text = "We are closed today; leave us a message and we will answer tomorrow."
    hours = {
        "timezone": "Europe/Berlin",
        "weekly": {"mon": ["09:00-17:00"]},
        "holidays": ["2026-11-30"],
        "out_of_office_message": text,
    }
    sink = RecordingMessageSink()
    m = manager({"assignment": {"hours": hours}}, message_sink=sink)
    m.register_agent(agent("s1", groups=("sales",), limit=1))
    holiday = _at("Europe/Berlin", 2026, 11, 30, 12, 0)
    closed = m.open_chat(customer("u1"), skill_group="sales", now=holiday)
    assert closed.agent_id is None and closed.leave_message == "off_duty"
    stored = [(x.role, x.text) for x in m.messages(closed.id)]
    assert stored == [(MessageRole.SYSTEM, text)]
    assert [x.text for x in sink.messages] == [text]
    status = m.queue_status(closed.id, now=holiday)
    assert status is not None and status.leave_message == "off_duty"
    submitted = m.submit_message(
        closed.id, {"email": "u1@example.com", "message": "call me"}, now=holiday + 60
    )
    assert submitted.state is ChatState.LEFT_MESSAGE
    # Open (a Monday): served, no out-of-office message; a chat that only waits for a busy
    # agent while open gets none either.
    monday = _at("Europe/Berlin", 2026, 11, 23, 12, 0)
    served = m.open_chat(customer("u2"), skill_group="sales", now=monday)
    waiting = m.open_chat(customer("u3"), skill_group="sales", now=monday)
    assert served.agent_id == "s1" and waiting.agent_id is None
    assert m.messages(served.id) == [] and m.messages(waiting.id) == []
    assert len(sink.messages) == 1


@settings(max_examples=60, deadline=None)
@given(calendars, _instants(), st.integers(1, 3 * 1440))
def test_business_deadline_is_where_the_business_time_reaches_the_target(
    hours: WorkingHours, start: float, minutes: int
) -> None:
    due = business_deadline(hours, start, 60.0 * minutes)
    if due is None:  # only a calendar closed for the whole horizon
        assert business_seconds(hours, start, start + 800 * 86400.0) < 60.0 * minutes
        return
    assert business_seconds(hours, start, due) == pytest.approx(60.0 * minutes)
    # the earliest such instant: a second before it, the target is not reached yet
    assert business_seconds(hours, start, due - 1.0) < 60.0 * minutes
    assert is_open(hours, due - 0.5)


def test_business_deadline_skips_the_night_and_the_weekend() -> None:
    hours = WorkingHours(timezone="Europe/Berlin", weekly={"fri": ("09:00-17:00",)})
    friday_four = _at("Europe/Berlin", 2026, 12, 4, 16, 0)
    due = business_deadline(hours, friday_four, 2 * 3600.0)  # 1 h on Friday, 1 h next Friday
    assert due == _at("Europe/Berlin", 2026, 12, 11, 10, 0)
    assert business_deadline(None, friday_four, 60.0) == friday_four + 60.0
    closed = WorkingHours(weekly={"mon": ("09:00-10:00",)}, overrides={})
    assert business_deadline(closed, friday_four, 3600.0) is not None


@settings(max_examples=40, deadline=None)
@given(calendars, _instants(), st.lists(st.integers(0, 5 * 1440), min_size=1, max_size=3))
def test_one_walk_gives_each_targets_deadline(
    hours: WorkingHours, start: float, minutes: list[int]
) -> None:
    targets = [60.0 * m for m in minutes]
    walked = business_deadlines(hours, start, targets)
    assert walked == [business_deadline(hours, start, t) for t in targets]
    for t, due in zip(targets, walked, strict=True):
        if due is not None:
            assert business_seconds(hours, start, due) == pytest.approx(t)
