"""A chat's SLA as stored on the chat (``Chat.sla``): plain frozen values, re-exported by
:mod:`chatmgmt.model`. :mod:`chatmgmt.lifecycle._sla` plans them; the adapters store them as
JSON like every other field of a chat."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ChatSla", "SlaClock"]


@attrs.frozen
class SlaClock:
    """One target of a chat's SLA (first response, next response or resolution) and how the
    chat fares against it.

    A clock runs from ``started_at`` until the answer (or the end) stops it; while it runs,
    ``due_at`` is the wall-clock time of the breach and ``warn_at`` of the warning (business
    time of the group's calendar converted to wall-clock time when the SLA counts business
    time). ``warned`` and ``late``: the running (or last) run's warning and breach went out.
    ``achieved_s`` is what the last finished run took (the longest run, for the next
    response), in the seconds the target counts; ``runs`` the finished runs; ``breaches``
    the runs that breached. ``paused_s``: the seconds (in the seconds the target counts) the
    running run spent paused while the chat was on hold (``sla.pause_on_hold``): its due
    times lie that much later, and ``achieved_s`` leaves it out.
    """

    target_s: float
    started_at: float | None = None
    warn_at: float | None = None
    due_at: float | None = None
    warned: bool = False
    late: bool = False
    achieved_s: float | None = None
    runs: int = 0
    breaches: int = 0
    paused_s: float = 0.0

    @property
    def running(self) -> bool:
        """Whether the clock runs (it has a start and no answer yet)."""
        return self.started_at is not None

    @property
    def breached(self) -> bool:
        """Whether any run of this clock breached its target."""
        return self.breaches > 0

    def figures(self) -> dict[str, Any]:
        """The JSON-ready figures of the ``sla.*`` and ``chat.ended`` events."""
        return {
            "target_s": self.target_s,
            "achieved_s": self.achieved_s,
            "breached": self.breaches > 0,
            "breaches": self.breaches,
            "runs": self.runs,
            "running": self.started_at is not None,
            "due_at": self.due_at,
        }


@attrs.frozen
class ChatSla:
    """The SLA policy that applies to a chat and its clocks (a target the policy does not set
    has no clock). ``business_hours``: the clocks count the business time of the calendar of
    ``calendar_group`` (the chat's skill group when the policy was chosen). ``paused_since``:
    the clocks are paused since then, the chat being on hold (``sla.pause_on_hold``); None
    while they run."""

    policy: str
    business_hours: bool = False
    calendar_group: str = ""
    first_response: SlaClock | None = None
    next_response: SlaClock | None = None
    resolution: SlaClock | None = None
    paused_since: float | None = None

    def clocks(self) -> dict[str, SlaClock]:
        """The clocks the policy sets, by metric name."""
        out = {}
        for name in ("first_response", "next_response", "resolution"):
            clock = getattr(self, name)
            if clock is not None:
                out[name] = clock
        return out

    def figures(self) -> dict[str, Any]:
        """The JSON-ready figures: the policy, whether business time counted, each clock's."""
        return {
            "policy": self.policy,
            "business_hours": self.business_hours,
            **{name: clock.figures() for name, clock in self.clocks().items()},
        }
