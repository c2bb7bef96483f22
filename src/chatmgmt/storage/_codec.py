"""(De)serialization of the model values for the durable adapters (SQLite, Redis, PostgreSQL).

JSON: enums as their values, frozensets as sorted lists, tuples as lists, only ASCII (other
characters as ``\\uXXXX`` escapes). Floats survive exactly (the shortest text that reads back
as the same float), so a value read back compares equal to the value stored. Free-form
mappings (``Chat.attributes``, ``Event.data``, ...) must be JSON-ready, as the webhook envelope
already requires.

Two paths that store the same JSON values (``json.loads`` of either gives equal dicts):

- the **fast path** (the hot types: Agent, AgentLoad, Chat, Customer, Event, Message, Sticky,
  Timer): encoders and decoders generated per class (:mod:`._codec_fast`) and :mod:`orjson`,
  compact (no blanks after ``,`` and ``:``);
- the **reference path**: the cattrs JSON converter and :mod:`json` of earlier releases, byte
  for byte. It writes what the fast path refuses (a NaN or infinite float, a free-form value
  that is not plain JSON, an integer beyond 64 bits, a lone surrogate: see
  :mod:`._codec_fast`), and it decodes what the fast decoder cannot (a row that does not fit
  its class raises from here as before).

A row written by the reference path (this release's or an earlier one's) is parsed by
:mod:`json`, since only it reads ``NaN`` and integers beyond 64 bits exactly; it is told apart
by the blank that ``json.dumps`` writes after every key (``": "``), which orjson's compact
output holds only inside a string (as ``\\": ``): such a row is then read by :mod:`json`
too, which is slower, not wrong.

A chat stored by a release that kept the library's bookkeeping in ``attributes`` (before the
typed fields of :class:`~chatmgmt.model.Chat`) decodes into those fields: :func:`upgrade_chat`.
SQLite also rewrites such rows once (schema 3); Redis reads them through this upgrade.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter

from ..model import Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer
from ._codec_fast import NotPlain, decoder, encoder

__all__ = ["decode", "encode", "upgrade_chat"]

_T = TypeVar("_T")

_converter = make_converter()
_converter.register_unstructure_hook(frozenset, lambda value: sorted(value))
# capacity per channel and the fairness cap's assignment times are written only when set, so an
# agent without them is stored exactly as before they existed
_omit = override(omit_if_default=True)
_converter.register_unstructure_hook(
    Agent,
    make_dict_unstructure_fn(Agent, _converter, channel_limits=_omit, channel_weights=_omit),
)
_converter.register_unstructure_hook(
    AgentLoad, make_dict_unstructure_fn(AgentLoad, _converter, channels=_omit, recent=_omit)
)
# likewise a customer's last rating invitation (satisfaction.min_interval_s)
_converter.register_unstructure_hook(
    Customer, make_dict_unstructure_fn(Customer, _converter, last_invited_at=_omit)
)


#: fields the reference converter writes only when they differ from their default
_OMITTED = {
    Agent: frozenset({"channel_limits", "channel_weights"}),
    AgentLoad: frozenset({"channels", "recent"}),
    Customer: frozenset({"last_invited_at"}),
}


def _escape(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a run of non-ASCII characters as JSON ``\\uXXXX`` escapes (a
    character beyond the BMP as its surrogate pair), exactly as ``json.dumps`` writes them."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    run = error.object[error.start : error.end]
    return json.encoder.encode_basestring_ascii(run)[1:-1], error.end


codecs.register_error("chatmgmt.json-escape", _escape)


def encode(value: Any) -> str:
    """One model value (Chat, Customer, AgentLoad, Agent, Event, Timer, Message, Sticky) as JSON."""
    fast = _ENCODERS.get(type(value))
    if fast is not None:
        try:
            out = orjson.dumps(fast(value))
        except (NotPlain, TypeError):  # orjson.JSONEncodeError is a TypeError
            return _converter.dumps(value)
        return out.decode("ascii") if out.isascii() else _ascii(out)
    return _converter.dumps(value)


_ASTRAL = re.compile(rb"\\U([0-9a-f]{8})")


def _pair(match: re.Match[bytes]) -> bytes:
    code = int(match[1], 16) - 0x10000
    return b"\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


def _ascii(out: bytes) -> str:
    """orjson's UTF-8 as ASCII JSON: every non-ASCII character (only string contents have them)
    as ``\\uXXXX`` (its surrogate pair beyond the BMP), as ``json.dumps`` writes it."""
    text = out.decode("utf-8")
    if "\\\\" in text:  # an escaped backslash: a ``\\x`` after it would not be ours
        return text.encode("ascii", "chatmgmt.json-escape").decode("ascii")
    # Python's own escapes, then the two that JSON spells otherwise: ``\\xNN`` (U+0080-U+00FF)
    # and ``\\UXXXXXXXX`` (beyond the BMP); orjson writes neither itself
    data = text.encode("ascii", "backslashreplace")
    if b"\\x" in data:
        data = data.replace(b"\\x", b"\\u00")
    if b"\\U" in data:
        data = _ASTRAL.sub(_pair, data)
    return data.decode("ascii")


_REFERENCE_MARK = '": '
_REFERENCE_MARK_BYTES = _REFERENCE_MARK.encode()


def decode(data: str | bytes, cls: type[_T]) -> _T:
    """The value of type ``cls`` that :func:`encode` turned into ``data``."""
    fast = _DECODERS.get(cls)
    if fast is not None:
        try:
            # a row of the reference path (a blank after a key): json reads NaN and big
            # integers exactly, where orjson refuses NaN and reads a big integer as a float
            mark = _REFERENCE_MARK_BYTES if type(data) is bytes else _REFERENCE_MARK
            plain = json.loads(data) if mark in data else orjson.loads(data)  # type: ignore[operator]
            return cast(_T, fast(plain))
        except Exception:  # a row that does not fit: the reference path raises as before
            pass
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return _converter.loads(data, cls)


#: attribute keys of releases before the typed fields -> the field that holds each now
LEGACY_CHAT_KEYS = {
    "queue": "queue",
    "queued_at": "queued_at",
    "offer_leave_message": "leave_message",
    "submission": "submission",
    "satisfaction": "satisfaction",
    "escalation": "escalation",
    "timers_fired": "timers_fired",
    "sticky_waited": "sticky_waited",
    "unverified_partner_id": "unverified_partner_id",
}


def upgrade_chat(data: dict[str, Any]) -> dict[str, Any]:
    """A chat's plain values as this release stores them: a chat without the typed fields
    (``timers_fired`` is always written) gets them from its legacy attribute keys."""
    if "timers_fired" in data:
        return data
    attributes = dict(data.get("attributes") or {})
    for key, field in LEGACY_CHAT_KEYS.items():
        if key in attributes:
            data[field] = attributes.pop(key)
    data["attributes"] = attributes
    return data


_chat_hook = _converter.get_structure_hook(Chat)
_converter.register_structure_hook(Chat, lambda data, cls: _chat_hook(upgrade_chat(data), cls))

#: the fast path's generated functions, by class
_HOT = (Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer)
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    cls: encoder(cls, _OMITTED.get(cls, frozenset())) for cls in _HOT
}
_DECODERS: dict[type, Callable[[dict[str, Any]], Any]] = {
    cls: decoder(cls, _OMITTED.get(cls, frozenset())) for cls in _HOT
}
_chat_decoder = _DECODERS[Chat]
_DECODERS[Chat] = lambda data: _chat_decoder(upgrade_chat(data))

# Warm the reference converter's generated code for the hot types once, at import.
for _cls in _HOT:
    _converter.get_structure_hook(_cls)
    _converter.get_unstructure_hook(_cls)
