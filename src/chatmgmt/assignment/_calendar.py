"""Business calendars: whether a group is open at an instant, and business time between two.

Pure code over :class:`~chatmgmt.settings.WorkingHours`. A span such as ``"09:00-18:00"``
belongs to the local day it starts on; ``"22:00-06:00"`` crosses midnight and runs into the
next day. For one local date the spans are, first that applies: none on a holiday, the date's
override, the weekly spans of its weekday (no weekly spans at all: open all day). Wall-clock
times are read in the calendar's time zone through ``zoneinfo``, so DST days are 23 or 25 hours
long and a span keeps its wall-clock bounds.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import zoneinfo
from collections.abc import Sequence

from chatmgmt.settings import AssignmentSettings, WorkingHours

__all__ = [
    "business_deadline",
    "business_deadlines",
    "business_seconds",
    "day_spans",
    "effective_hours",
    "is_open",
    "out_of_office_text",
]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_MIN = 24 * 60


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def day_spans(hours: WorkingHours, date: _dt.date) -> list[tuple[int, int]]:
    """The open spans starting on local ``date`` as (start, end) minutes after its midnight;
    ``end`` may pass 1440 for a span that crosses midnight. Holidays beat overrides, overrides
    beat the weekly hours."""
    key = date.isoformat()
    if key in hours.holidays:
        return []
    if key in hours.overrides:
        spans: tuple[str, ...] = tuple(hours.overrides[key])
    elif not hours.weekly:
        return [(0, _DAY_MIN)]
    else:
        spans = tuple(hours.weekly.get(_DAYS[date.weekday()], ()))
    out = []
    for span in spans:
        start, end = _minutes(span[:5]), _minutes(span[6:])
        out.append((start, end if end > start else end + _DAY_MIN))
    return out


def is_open(hours: WorkingHours | None, now: float) -> bool:
    """Whether a calendar is open at ``now`` (seconds since the epoch; no calendar: always)."""
    if hours is None:
        return True
    local = _dt.datetime.fromtimestamp(now, tz=zoneinfo.ZoneInfo(hours.timezone))
    minute = local.hour * 60 + local.minute
    today = local.date()
    yesterday = today - _dt.timedelta(days=1)
    if any(s <= minute < e for s, e in day_spans(hours, today)):
        return True
    return any(s <= minute + _DAY_MIN < e for s, e in day_spans(hours, yesterday))


def effective_hours(settings: AssignmentSettings, group: str) -> WorkingHours | None:
    """The calendar of ``group``: its own hours, else the tenant default ``assignment.hours``."""
    own = settings.groups.get(group)
    if own is not None and own.hours is not None:
        return own.hours
    return settings.hours


def out_of_office_text(settings: AssignmentSettings, group: str, *, new: bool, duty: bool) -> str:
    """The out-of-office message for a chat that waits in ``group``'s queue or pool: the text
    of the group's calendar when the chat is ``new`` and the group is closed (not ``duty``),
    else ``""`` (none)."""
    if not new or duty:
        return ""
    hours = effective_hours(settings, group)
    return "" if hours is None else hours.out_of_office_message


def _instant(zone: zoneinfo.ZoneInfo, date: _dt.date, minute: int, fold: int) -> float:
    day = date + _dt.timedelta(days=minute // _DAY_MIN)
    minute %= _DAY_MIN
    wall = _dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return wall.replace(fold=fold).timestamp()


def _offset_changes(zone: zoneinfo.ZoneInfo, lo: float, hi: float) -> list[float]:
    """Instants in [lo, hi] where the zone's UTC offset changes (to the second)."""

    def offset(t: float) -> _dt.timedelta | None:
        return _dt.datetime.fromtimestamp(t, tz=zone).utcoffset()

    out = []
    step = 6 * 3600.0
    t = lo
    while t < hi:
        a, b = t, min(t + step, hi)
        if offset(a) != offset(b):
            while b - a > 1:
                mid = (a + b) // 2
                if offset(mid) == offset(a):
                    a = mid
                else:
                    b = mid
            out.append(b)
        t += step
    return out


def _open_intervals(hours: WorkingHours, start: float, end: float) -> list[tuple[float, float]]:
    """The intervals of [start, end] during which the calendar is open, in order (adjacent
    pieces are not merged)."""
    zone = zoneinfo.ZoneInfo(hours.timezone)
    first = _dt.datetime.fromtimestamp(start, tz=zone).date() - _dt.timedelta(days=2)
    last = _dt.datetime.fromtimestamp(end, tz=zone).date() + _dt.timedelta(days=1)
    cuts = {start, end, *_offset_changes(zone, start, end)}
    day = first
    while day <= last:
        bounds = {0}
        for s, e in day_spans(hours, day):
            bounds.update((s, e))
        for minute in bounds:
            for fold in (0, 1):
                t = _instant(zone, day, minute, fold)
                if start < t < end:
                    cuts.add(t)
        day += _dt.timedelta(days=1)
    points = sorted(cuts)
    return [(a, b) for a, b in itertools.pairwise(points) if is_open(hours, a + (b - a) / 2)]


def business_seconds(hours: WorkingHours | None, start: float, end: float) -> float:
    """Seconds between ``start`` and ``end`` during which the calendar is open (no calendar:
    ``end - start``; 0 when ``end <= start``). Agrees with :func:`is_open` at every instant."""
    if end <= start:
        return 0.0
    if hours is None:
        return end - start
    return sum(b - a for a, b in _open_intervals(hours, start, end))


_HORIZON_DAYS = 800
"""How far :func:`business_deadline` looks for open time before it gives up (None)."""


def business_deadline(hours: WorkingHours | None, start: float, seconds: float) -> float | None:
    """The instant at which ``seconds`` of business time have passed since ``start``: the
    smallest ``t`` with ``business_seconds(hours, start, t) == seconds`` (no calendar:
    ``start + seconds``). None when the calendar has no open time in the next 800 days."""
    return business_deadlines(hours, start, (seconds,))[0]


def business_deadlines(
    hours: WorkingHours | None, start: float, targets: Sequence[float]
) -> list[float | None]:
    """:func:`business_deadline` of each of ``targets`` (seconds), in one walk of the calendar
    from ``start``: a day first, then windows that double (up to four weeks)."""
    if hours is None:
        return [start + max(t, 0.0) for t in targets]
    out: list[float | None] = [start if t <= 0 else None for t in targets]
    wanted = sorted((t, i) for i, t in enumerate(targets) if t > 0)
    k = 0
    done = 0.0  # business seconds between start and the window's start
    t, step, end = start, 86400.0, start + _HORIZON_DAYS * 86400.0
    while k < len(wanted) and t < end:
        for a, b in _open_intervals(hours, t, t + step):
            while k < len(wanted) and done + (b - a) >= wanted[k][0]:
                out[wanted[k][1]] = a + (wanted[k][0] - done)
                k += 1
            done += b - a
        t += step
        step = min(step * 2, 28 * 86400.0)
    return out
