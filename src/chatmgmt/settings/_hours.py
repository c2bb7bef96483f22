"""Working hours: the business calendar of the ``assignment`` section and its groups.

A piece of :mod:`chatmgmt.settings`, which re-exports :class:`WorkingHours`; the calendar's
arithmetic over it is :mod:`chatmgmt.assignment._calendar`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import attrs

from ._base import _fail, _need

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@attrs.frozen
class WorkingHours:
    """A business calendar: weekly duty hours, holidays and date overrides in one time zone.

    ``weekly`` maps ``mon`` .. ``sun`` to spans such as ``"09:00-18:00"``; a day that is missing
    is off duty. An empty ``weekly`` means always on duty (holidays and overrides still apply).
    A span whose end is before its start crosses midnight (``"22:00-06:00"``: until 06:00 the next
    day); a span belongs to the day it starts on. Holidays beat overrides, overrides beat weekly.
    """

    timezone: str = attrs.field(
        default="UTC", metadata={"doc": "IANA time zone of the weekly hours, e.g. Europe/Berlin."}
    )
    weekly: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    holidays: tuple[str, ...] = attrs.field(
        default=(),
        metadata={"doc": "Local dates closed all day, e.g. 2026-12-25 (beats the rest)."},
    )
    overrides: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict,
        metadata={
            "doc": "Other hours on a local date (e.g. 2026-12-24: [09:00-13:00]) instead of that "
            "weekday's; an empty list closes the day."
        },
    )
    out_of_office_message: str = attrs.field(
        default="",
        metadata={
            "doc": "System message sent to the customer of a new chat that waits because its "
            "group is closed ('': none)."
        },
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise _fail(f"{path}.timezone", f"unknown time zone {self.timezone!r}") from None
        for day, spans in self.weekly.items():
            _need(day in _DAYS, f"{path}.weekly.{day}", f"day must be one of {', '.join(_DAYS)}")
            _check_spans(spans, f"{path}.weekly.{day}")
        for i, date in enumerate(self.holidays):
            _check_date(date, f"{path}.holidays[{i}]")
        for date, spans in self.overrides.items():
            _check_date(date, f"{path}.overrides.{date}")
            _check_spans(spans, f"{path}.overrides.{date}")
        _need(
            isinstance(self.out_of_office_message, str),
            f"{path}.out_of_office_message",
            "must be a string ('': none)",
        )


def _check_date(date: object, path: str) -> None:
    import datetime

    try:
        ok = isinstance(date, str) and datetime.date.fromisoformat(date).isoformat() == date
    except ValueError:
        ok = False
    _need(ok, path, "must be a date like '2026-12-25'")


def _check_spans(spans: Sequence[str], path: str) -> None:
    for i, span in enumerate(spans):
        m = _HHMM.match(span) if isinstance(span, str) else None
        _need(m is not None, f"{path}[{i}]", "must look like '09:00-18:00' or '22:00-06:00'")
        assert m is not None
        start, end = m.group(1, 2), m.group(3, 4)
        _need(start != end, f"{path}[{i}]", "the span must not be empty (start equals end)")
        _need(end[0] != "24" or end[1] == "00", f"{path}[{i}]", "24:MM is only 24:00")
        _need(start[0] != "24", f"{path}[{i}]", "a span cannot start at 24:00")
