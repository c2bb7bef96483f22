"""Checks that text and ids can be stored and serialized everywhere (pure functions).

Every adapter (memory, SQLite, Redis, PostgreSQL) and every webhook body must be able to take
what the public API accepts, so the API refuses, at the boundary, what one of them cannot take:

* a lone surrogate (U+D800..U+DFFF, what ``json.loads('"\\ud800"')`` gives): not valid Unicode
  text, it cannot be encoded as UTF-8 (SQLite, Redis and JSON bodies all fail on it);
* the NUL character (U+0000): PostgreSQL text cannot hold it, C strings end at it;
* in ids (agent, chat, message, partner ids, channels): any other control character
  (U+0001..U+001F, U+007F..U+009F), and more than :data:`MAX_ID_CHARS` characters.

The check functions raise :class:`~chatmgmt.errors.ValidationError` whose message starts with
the field's name (``"partner_id: ..."``); the ``*_problem`` functions return the reason as a
string, or None, for callers that raise their own error (settings raise ``SettingsError``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ValidationError

__all__ = [
    "MAX_ID_CHARS",
    "check_id",
    "check_message_text",
    "check_optional_id",
    "check_text",
    "id_problem",
    "text_problem",
    "validate_id",
    "validate_optional_id",
    "validate_text",
    "validate_text_mapping",
]

MAX_ID_CHARS = 256
"""The longest id the library accepts (agent, chat, message, partner ids, channel names)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or serialized, or None when it can.

    >>> text_problem("héllo") is None
    True
    >>> text_problem("a\\x00b")
    'contains the NUL character (U+0000) at index 1, which cannot be stored'
    """
    if "\x00" in value:
        return (
            f"contains the NUL character (U+0000) at index {value.index(chr(0))}, "
            "which cannot be stored"
        )
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone surrogate (U+{ord(value[exc.start]):04X}) at index {exc.start}: "
            "not valid Unicode text, it cannot be encoded as UTF-8"
        )
    return None


def id_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable id, or None when it is.

    An id is a non-empty string of at most :data:`MAX_ID_CHARS` characters, without control
    characters (NUL included) and without lone surrogates.

    >>> id_problem("agent-7") is None
    True
    >>> id_problem("a\\nb")
    'contains a control character (U+000A) at index 1'
    """
    # printable ASCII (U+0020-U+007E) holds no NUL, no control character and no surrogate:
    # only the length is left to check (the usual id, in two C calls)
    if (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and 0 < len(value) <= MAX_ID_CHARS
    ):
        return None
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value:
        return "must be a non-empty string"
    if len(value) > MAX_ID_CHARS:
        return f"must be at most {MAX_ID_CHARS} characters (has {len(value)})"
    problem = text_problem(value)
    if problem is not None:
        return problem
    match = _CONTROL.search(value)
    if match is not None:
        return f"contains a control character (U+{ord(match.group()):04X}) at index {match.start()}"
    return None


def check_text(field: str, value: object) -> None:
    """Raise :class:`~chatmgmt.errors.ValidationError` unless ``value`` is a storable string.

    ``field`` names the field in the message (``"name: contains ..."``). Empty strings pass.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{field}: must be a string, got {type(value).__name__}")
    problem = text_problem(value)
    if problem is not None:
        raise ValidationError(f"{field}: {problem}")


def check_id(field: str, value: object) -> None:
    """Raise :class:`~chatmgmt.errors.ValidationError` unless ``value`` is an acceptable id."""
    problem = id_problem(value)
    if problem is not None:
        raise ValidationError(f"{field}: {problem}, got {_show(value)}")


def check_optional_id(field: str, value: object) -> None:
    """Like :func:`check_id`, but None and ``""`` (not given) pass."""
    if value is None or value == "":
        return
    check_id(field, value)


def check_message_text(text: str, max_chars: int) -> None:
    """Raise ``ValidationError("text: ...")`` unless ``text`` is storable and short enough.

    ``max_chars`` is the limit from the settings (``limits.max_message_chars``); the text may be
    empty. Call it before moderation, so that nothing of a refused text is stored or sent.

    >>> check_message_text("hello", 10)
    >>> check_message_text("hello world", 10)
    Traceback (most recent call last):
    ...
    chatmgmt.errors.ValidationError: text: is 11 characters long, the limit is 10 \
(limits.max_message_chars)
    """
    if not isinstance(text, str):
        raise ValidationError(f"text: must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise ValidationError(
            f"text: is {len(text)} characters long, the limit is {max_chars} "
            "(limits.max_message_chars)"
        )
    problem = text_problem(text)
    if problem is not None:
        raise ValidationError(f"text: {problem}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# attrs validators for the model's fields (``attrs.field(validator=...)``)


def validate_id(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: the field holds an acceptable id (see :func:`check_id`)."""
    check_id(attribute.name, value)


def validate_optional_id(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: the field holds None, ``""`` or an acceptable id."""
    check_optional_id(attribute.name, value)


def validate_text(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: the field holds a storable string (see :func:`check_text`)."""
    check_text(attribute.name, value)


def validate_text_mapping(
    _inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    """An attrs validator: every key and value of the mapping is a storable string."""
    for key, item in value.items():
        check_text(f"{attribute.name} key {key!r}", key)
        check_text(f"{attribute.name}.{key}", item)
