"""(De)serialization of the model values for the durable adapters (SQLite, Redis).

JSON through a cattrs converter: enums as their values, frozensets as sorted lists, tuples as
lists. Floats survive exactly (``repr`` round-trips), so a value read back compares equal to the
value stored. Free-form mappings (``Chat.attributes``, ``Event.data``, ...) must be JSON-ready,
as the webhook envelope already requires.

A chat stored by a release that kept the library's bookkeeping in ``attributes`` (before the
typed fields of :class:`~chatmgmt.model.Chat`) decodes into those fields: :func:`upgrade_chat`.
SQLite also rewrites such rows once (schema 3); Redis reads them through this upgrade.
"""

from __future__ import annotations

from typing import Any, TypeVar

from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter

from ..model import Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer

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


def encode(value: Any) -> str:
    """One model value (Chat, Customer, AgentLoad, Agent, Event, Timer, Message, Sticky) as JSON."""
    return _converter.dumps(value)


def decode(data: str | bytes, cls: type[_T]) -> _T:
    """The value of type ``cls`` that :func:`encode` turned into ``data``."""
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

# Warm the converter's generated code for the hot types once, at import.
for _cls in (Agent, AgentLoad, Chat, Customer, Event, Message, Sticky, Timer):
    _converter.get_structure_hook(_cls)
    _converter.get_unstructure_hook(_cls)
