"""Routing-rule conditions: a small tree that combines tests with all / any / not (pure).

A routing rule's ``when`` is plain JSON data; :func:`parse_condition` turns it into a tree of
frozen nodes (raising :class:`~chatmgmt.errors.SettingsError` at the path of the bad node) and
:func:`holds` evaluates a tree against a :class:`Facts` value. Nothing here does I/O or reads a
clock: the time is a field of the facts.

Every node is a JSON object with one key::

    {"all": [c, ...]}     every condition holds (an empty list holds)
    {"any": [c, ...]}     at least one holds (an empty list does not)
    {"not": c}            c does not hold
    {"channel": ["web", "app"]}                 the chat's channel is one of these
    {"vip_level": {"min": 3, "max": 5}}         a numeric range, both ends included
    {"ip": ["10.0.0.0/8"]}                      the customer's IP is in one of these networks
    {"partner_id": ["u_1", "u_2"]}              the customer's id is one of these
    {"attribute": {"key": "plan", "equals": "gold"}}    the chat's attribute (host data):
                  ... "in": [..] | "min"/"max" | "exists": true|false
    {"customer_field": {"key": "tier", "in": ["a", "b"]}}   a customer custom field, the same
    {"tags": {"any": ["billing"]}} / {"tags": {"all": [..]}} / {"tags": {"none": [..]}}
                  the chat's tags: its own (``tag_chat``) and the host's ``attributes["tags"]``
                  (a list of strings)
    {"time": {"from": "09:00", "to": "18:00"}}  local time of day in [from, to); a span that
                  ends before it starts runs overnight (22:00-06:00)
    {"weekday": ["mon", "tue"]}                 the local day of the week

Time and weekday are local to ``"timezone"`` when the node names one (``{"time": {..,
"timezone": "Asia/Tokyo"}}``, ``{"weekday": {"days": [..], "timezone": ..}}``), else to the
time zone of the chat's skill group (its ``hours.timezone``), else UTC.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from .errors import SettingsError

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "Facts",
    "In",
    "Not",
    "Predicate",
    "Range",
    "Tags",
    "TimeOfDay",
    "Weekday",
    "compile_condition",
    "holds",
    "ip_in",
    "parse_condition",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MAX_DEPTH = 16
_SUBJECTS = ("attribute", "customer_field")


@attrs.frozen
class Facts:
    """What a condition is evaluated against: the customer, the chat's own data, the time.

    ``attributes`` are the chat's host attributes (``tags`` among them); ``tags`` the chat's own
    tags (:attr:`chatmgmt.model.Chat.tags`); ``custom_fields`` the customer's; ``now`` a Unix
    time; ``timezone`` the default zone for time and weekday."""

    channel: str = ""
    vip_level: int = 0
    ip: str = ""
    partner_id: str | None = None
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    custom_fields: Mapping[str, Any] = attrs.field(factory=dict)
    now: float | None = None
    timezone: str = "UTC"
    tags: frozenset[str] = frozenset()


@attrs.frozen
class AllOf:
    """Every item holds."""

    items: tuple[Condition, ...]


@attrs.frozen
class AnyOf:
    """At least one item holds."""

    items: tuple[Condition, ...]


@attrs.frozen
class Not:
    """The item does not hold."""

    item: Condition


@attrs.frozen
class In:
    """A value (``subject``, and ``key`` for attributes and custom fields) is one of
    ``values``; ``exists`` instead tests whether the key is there at all."""

    subject: str
    key: str | None
    values: tuple[Any, ...] = ()
    exists: bool | None = None


@attrs.frozen
class Range:
    """A number (an int or float, or a text holding one) within ``[lo, hi]``."""

    subject: str
    key: str | None
    lo: float = -math.inf
    hi: float = math.inf


@attrs.frozen
class Tags:
    """The chat's tags hold any / all / none of ``values`` (``mode``)."""

    mode: str
    values: frozenset[str]


@attrs.frozen
class TimeOfDay:
    """Local time of day in ``[start, end)`` minutes since midnight (overnight if end <= start)."""

    start: int
    end: int
    timezone: str | None = None


@attrs.frozen
class Weekday:
    """The local day of the week is one of ``days`` (0: Monday)."""

    days: frozenset[int]
    timezone: str | None = None


Condition: TypeAlias = AllOf | AnyOf | Not | In | Range | Tags | TimeOfDay | Weekday
"""A node of a condition tree."""


# ----------------------------------------------------------------------------- parsing


def _fail(path: str, problem: str) -> SettingsError:
    return SettingsError(path, problem)


def _strings(value: object, path: str, *, allow_one: bool = True) -> tuple[str, ...]:
    if isinstance(value, str) and allow_one:
        return (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(path, f"must be a non-empty list of strings, got {value!r:.60}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(f"{path}[{i}]", f"must be a string, got {item!r:.60}")
    return tuple(value)


def _scalar(value: object, path: str) -> Any:
    ok = value is None or isinstance(value, (str, bool, int)) or _finite(value)
    if not ok:
        raise _fail(path, f"must be a string, number, true, false or null, got {value!r:.60}")
    return value


def _finite(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, f"must be a finite number, got {value!r:.60}")
    return float(value)


def _zone(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(path, f"must be a time zone name, got {value!r:.60}")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _fail(path, f"unknown time zone {value!r}") from None
    return value


def _object(value: object, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a JSON object, got {value!r:.60}")
    for key in value:
        if key not in allowed:
            raise _fail(f"{path}.{key}", f"unknown key; expected one of {', '.join(allowed)}")
    return value


def _minutes(value: object, path: str) -> int:
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise _fail(path, f"must look like '09:30' (24-hour), got {value!r:.60}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _range(subject: str, key: str | None, spec: Mapping[str, Any], path: str) -> Range:
    lo = _number(spec["min"], f"{path}.min") if "min" in spec else -math.inf
    hi = _number(spec["max"], f"{path}.max") if "max" in spec else math.inf
    if lo > hi:
        raise _fail(path, f"min ({lo:g}) is above max ({hi:g})")
    return Range(subject, key, lo, hi)


def _keyed(subject: str, value: object, path: str) -> Condition:
    spec = _object(value, path, ("key", "equals", "in", "min", "max", "exists"))
    key = spec.get("key")
    if not isinstance(key, str) or not key:
        raise _fail(f"{path}.key", "must be a non-empty string (the key to test)")
    tests = [t for t in ("equals", "in", "exists") if t in spec]
    if "min" in spec or "max" in spec:
        tests.append("min/max")
    if len(tests) != 1:
        raise _fail(path, "needs exactly one of equals, in, min/max or exists")
    if "equals" in spec:
        return In(subject, key, (_scalar(spec["equals"], f"{path}.equals"),))
    if "in" in spec:
        items = spec["in"]
        if not isinstance(items, (list, tuple)) or not items:
            raise _fail(f"{path}.in", "must be a non-empty list")
        return In(subject, key, tuple(_scalar(v, f"{path}.in[{i}]") for i, v in enumerate(items)))
    if "exists" in spec:
        if not isinstance(spec["exists"], bool):
            raise _fail(f"{path}.exists", "must be true or false")
        return In(subject, key, exists=spec["exists"])
    return _range(subject, key, spec, path)


def _leaf(name: str, value: Any, path: str, depth: int) -> Condition:
    if name in ("all", "any"):
        if not isinstance(value, (list, tuple)):
            raise _fail(path, f"must be a list of conditions, got {value!r:.60}")
        items = tuple(_parse(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        return AllOf(items) if name == "all" else AnyOf(items)
    if name == "not":
        return Not(_parse(value, path, depth + 1))
    if name in ("channel", "partner_id"):
        return In(name, None, _strings(value, path))
    if name == "ip":
        ranges = _strings(value, path)
        for i, cidr in enumerate(ranges):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise _fail(f"{path}[{i}]", f"not an IP network: {cidr!r}") from None
        return In("ip", None, ranges)
    if name == "vip_level":
        return _range("vip_level", None, _object(value, path, ("min", "max")), path)
    if name in _SUBJECTS:
        return _keyed(name, value, path)
    if name == "tags":
        spec = _object(value, path, ("any", "all", "none"))
        if len(spec) != 1:
            raise _fail(path, "needs exactly one of any, all or none")
        ((mode, tags),) = spec.items()
        return Tags(mode, frozenset(_strings(tags, f"{path}.{mode}")))
    if name == "time":
        spec = _object(value, path, ("from", "to", "timezone"))
        for end in ("from", "to"):
            if end not in spec:
                raise _fail(f"{path}.{end}", "required ('09:00')")
        start, stop = _minutes(spec["from"], f"{path}.from"), _minutes(spec["to"], f"{path}.to")
        if start == stop:
            raise _fail(path, "from and to are equal: the span is empty")
        return TimeOfDay(start, stop, _zone(spec.get("timezone"), f"{path}.timezone"))
    if name == "weekday":
        zone = None
        days = value
        if isinstance(value, Mapping):
            spec = _object(value, path, ("days", "timezone"))
            days, zone = spec.get("days"), _zone(spec.get("timezone"), f"{path}.timezone")
            path = f"{path}.days"
        names = _strings(days, path)
        for i, day in enumerate(names):
            if day not in DAYS:
                raise _fail(f"{path}[{i}]", f"must be one of {', '.join(DAYS)}, got {day!r:.20}")
        return Weekday(frozenset(DAYS.index(d) for d in names), zone)
    raise _fail(path, "unknown condition")  # unreachable: the caller checked the name


_NAMES = (
    "all",
    "any",
    "not",
    "channel",
    "vip_level",
    "ip",
    "partner_id",
    "attribute",
    "customer_field",
    "tags",
    "time",
    "weekday",
)


def _parse(data: object, path: str, depth: int) -> Condition:
    if depth > _MAX_DEPTH:
        raise _fail(path, f"conditions nest at most {_MAX_DEPTH} deep")
    if not isinstance(data, Mapping) or len(data) != 1:
        raise _fail(
            path,
            f"a condition is a JSON object with exactly one key ({', '.join(_NAMES)}), "
            f"got {data!r:.60}",
        )
    ((name, value),) = data.items()
    if name not in _NAMES:
        raise _fail(f"{path}.{name}", f"unknown condition; expected one of {', '.join(_NAMES)}")
    return _leaf(name, value, f"{path}.{name}", depth)


def parse_condition(data: object, path: str = "when") -> Condition:
    """The condition tree of plain ``data``; SettingsError at the path of the bad node."""
    return _parse(data, path, 0)


# ----------------------------------------------------------------------------- evaluation


def _lookup(node: In | Range, facts: Facts) -> tuple[bool, Any]:
    """(present, value) of the node's subject."""
    if node.subject == "attribute":
        source: Mapping[str, Any] = facts.attributes
    elif node.subject == "customer_field":
        source = facts.custom_fields
    else:
        return True, getattr(facts, node.subject)
    assert node.key is not None
    return node.key in source, source.get(node.key)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _same(a: Any, b: Any) -> bool:
    # true is not 1 and "1" is not 1: values compare by JSON type, numbers by value
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def _local(facts: Facts, zone: str | None) -> _dt.datetime:
    if facts.now is None:
        raise ValueError("time and weekday conditions need the current time (Facts.now)")
    return _dt.datetime.fromtimestamp(facts.now, tz=zoneinfo.ZoneInfo(zone or facts.timezone))


def _tags(facts: Facts) -> frozenset[str]:
    """The chat's own tags and the host's ``attributes["tags"]``."""
    raw = facts.attributes.get("tags")
    if isinstance(raw, str):
        return facts.tags | {raw}
    if isinstance(raw, (list, tuple, set, frozenset)):
        return facts.tags | {t for t in raw if isinstance(t, str)}
    return facts.tags


def holds(node: Condition, facts: Facts) -> bool:
    """Whether the condition holds for ``facts`` (host data of any shape never raises)."""
    return compile_condition(node)(facts)


Predicate = Callable[[Facts], bool]
"""A compiled condition: facts in, whether it holds out."""


def _all(preds: tuple[Predicate, ...]) -> Predicate:
    def check(facts: Facts) -> bool:
        for pred in preds:  # noqa: SIM110 (a plain loop: no generator per evaluation)
            if not pred(facts):
                return False
        return True

    return check


def _any(preds: tuple[Predicate, ...]) -> Predicate:
    def check(facts: Facts) -> bool:
        for pred in preds:  # noqa: SIM110 (a plain loop: no generator per evaluation)
            if pred(facts):
                return True
        return False

    return check


def _in(node: In) -> Predicate:
    if node.exists is not None:
        want = node.exists
        key = node.key
        if node.subject == "attribute":
            return lambda f: (key in f.attributes) is want
        return lambda f: (key in f.custom_fields) is want
    if node.subject == "ip":
        ranges = node.values
        return lambda f: ip_in(f.ip, ranges)
    values = node.values
    if node.subject in ("channel", "partner_id"):
        texts = frozenset(values)  # validated: all strings
        if node.subject == "channel":
            return lambda f: f.channel in texts
        return lambda f: f.partner_id in texts

    def check(facts: Facts) -> bool:
        present, value = _lookup(node, facts)
        return present and any(_same(value, v) for v in values)

    return check


def _range_pred(node: Range) -> Predicate:
    lo, hi = node.lo, node.hi

    def check(facts: Facts) -> bool:
        present, value = _lookup(node, facts)
        number = _as_number(value) if present else None
        return number is not None and lo <= number <= hi

    return check


def _tags_pred(node: Tags) -> Predicate:
    values, mode = node.values, node.mode
    if mode == "any":
        return lambda f: not values.isdisjoint(_tags(f))
    if mode == "all":
        return lambda f: values <= _tags(f)
    return lambda f: values.isdisjoint(_tags(f))


def _time_pred(node: TimeOfDay) -> Predicate:
    start, end, zone = node.start, node.end, node.timezone

    def check(facts: Facts) -> bool:
        local = _local(facts, zone)
        minute = local.hour * 60 + local.minute
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end

    return check


def compile_condition(node: Condition) -> Predicate:
    """The condition as a predicate over :class:`Facts` (compile once, call per chat)."""
    if isinstance(node, AllOf):
        return _all(tuple(compile_condition(item) for item in node.items))
    if isinstance(node, AnyOf):
        return _any(tuple(compile_condition(item) for item in node.items))
    if isinstance(node, Not):
        inner = compile_condition(node.item)
        return lambda f: not inner(f)
    if isinstance(node, In):
        return _in(node)
    if isinstance(node, Range):
        return _range_pred(node)
    if isinstance(node, Tags):
        return _tags_pred(node)
    if isinstance(node, TimeOfDay):
        return _time_pred(node)
    days, zone = node.days, node.timezone
    return lambda f: _local(f, zone).weekday() in days


def ip_in(ip: object, ranges: Sequence[str]) -> bool:
    """Whether ``ip`` is an address in one of the networks (anything else: False)."""
    if not isinstance(ip, str):
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(r, strict=False) for r in ranges)
