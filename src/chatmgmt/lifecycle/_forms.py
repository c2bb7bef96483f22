"""Leave a message (submission): when the form is offered, and validating what comes back.

Real-Time Reception Mode only. In Always On Mode the customer can write at any time and the
chat waits in the unassigned pool, so there is nothing to leave a message instead of:
:func:`should_offer_submission` never offers the form there, and the transition table refuses
``leave_message`` (``ChatManager.submit_message`` raises
:class:`~chatmgmt.errors.InvalidTransitionError`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from ..errors import FormValidationError
from ..model import ReceptionMode
from ..settings import FieldType, FormField, SubmissionSettings, resolve

__all__ = [
    "FormValue",
    "OfferReason",
    "should_offer_submission",
    "submission_form",
    "validate_fields",
    "validate_submission",
]

FormValue: TypeAlias = "str | tuple[str, ...] | int"
"""A cleaned form value: a string, the chosen options of a multi-select, an attachment count."""


class OfferReason(str, enum.Enum):
    """Why the leave-a-message form is offered (the first condition that holds, in this order)."""

    OFF_DUTY = "off_duty"
    """The chat's skill group is off duty (``when_off_duty``)."""
    NO_AGENT_ONLINE = "no_agent_online"
    """No agent of the group is online (``when_no_agent_online``)."""
    QUEUE_TOO_LONG = "queue_too_long"
    """More chats wait than ``when_queue_longer_than``."""
    WAITED_TOO_LONG = "waited_too_long"
    """The customer waited longer than ``when_waited_longer_than_s``."""


def should_offer_submission(
    settings: SubmissionSettings,
    mode: ReceptionMode,
    channel: str | None,
    group: str | None,
    *,
    agents_online: int,
    off_duty: bool,
    queue_length: int,
    waited_s: float,
) -> OfferReason | None:
    """Why the form should be offered to this customer now, or None when it should not.

    ``settings`` is the global section; it is resolved for ``channel`` and ``group`` here
    (channel override > group override > global). Never offered in Always On Mode, nor when the
    resolved section is disabled. ``queue_length`` is the number of chats waiting in the
    group's queue (this one included if queued); ``waited_s`` how long this customer has
    waited. Limits of 0 are off.
    """
    if ReceptionMode(mode) is not ReceptionMode.REAL_TIME:
        return None
    s = resolve(settings, channel=channel, group=group or None)
    if not s.enabled:
        return None
    if off_duty and s.when_off_duty:
        return OfferReason.OFF_DUTY
    if agents_online <= 0 and s.when_no_agent_online:
        return OfferReason.NO_AGENT_ONLINE
    if s.when_queue_longer_than > 0 and queue_length > s.when_queue_longer_than:
        return OfferReason.QUEUE_TOO_LONG
    if s.when_waited_longer_than_s > 0 and waited_s > s.when_waited_longer_than_s:
        return OfferReason.WAITED_TOO_LONG
    return None


def submission_form(
    settings: SubmissionSettings, *, channel: str | None = None, group: str | None = None
) -> tuple[FormField, ...]:
    """The form fields shown for ``channel`` and ``group`` (overrides applied)."""
    return resolve(settings, channel=channel, group=group or None).fields


def validate_submission(
    settings: SubmissionSettings,
    values: Mapping[str, Any],
    *,
    channel: str | None = None,
    group: str | None = None,
) -> dict[str, FormValue]:
    """Validate ``values`` against the form for ``channel`` and ``group``; see
    :func:`validate_fields`."""
    return validate_fields(submission_form(settings, channel=channel, group=group), values)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-]+$")


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return not value
    return False


def validate_fields(fields: Sequence[FormField], values: Mapping[str, Any]) -> dict[str, FormValue]:
    """Check every value against its field; return the cleaned values or raise ONE error.

    Raises :class:`~chatmgmt.errors.FormValidationError` whose ``fields`` maps every bad field
    (in form order, then unknown names) to why. Rules per type:

    * ``text``: a string, stripped, at most ``max_length`` characters;
    * ``email``: a string like ``name@domain.tld``, at most ``max_length`` characters;
    * ``phone``: digits with optional leading ``+`` and spaces, dots, dashes, parentheses;
      7 to 15 digits; at most ``max_length`` characters;
    * ``select``: one of ``options``;
    * ``multi_select``: a list of distinct ``options``;
    * ``attachments``: an attachment count (an int, or a list whose length is counted), at most
      ``max_length`` attachments.

    ``required`` fields must be present and not blank (empty string, empty list, count 0).
    Blank optional fields are left out of the result; names not in the form are errors.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, FormValue] = {}
    known = {f.name for f in fields}
    for f in fields:
        raw = values.get(f.name)
        blank = _is_blank(raw) or (f.type is FieldType.ATTACHMENTS and raw == 0)
        if blank:
            if f.required:
                errors[f.name] = "is required"
            continue
        result = _check(f, raw)
        if isinstance(result, _Bad):
            errors[f.name] = result.why
        else:
            cleaned[f.name] = result
    for name in values:
        if name not in known:
            errors[str(name)] = "is not a field of this form"
    if errors:
        raise FormValidationError(errors)
    return cleaned


class _Bad:
    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _check(f: FormField, raw: Any) -> FormValue | _Bad:
    t = f.type
    if t is FieldType.ATTACHMENTS:
        if isinstance(raw, bool):
            return _Bad("must be an attachment count")
        if isinstance(raw, int):
            count = raw
        elif isinstance(raw, (list, tuple)):
            count = len(raw)
        else:
            return _Bad("must be an attachment count or a list of attachments")
        if count < 0:
            return _Bad("must be an attachment count >= 0")
        if count > f.max_length:
            return _Bad(f"at most {f.max_length} attachment(s), got {count}")
        return count
    if t is FieldType.MULTI_SELECT:
        if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
            return _Bad("must be a list of options")
        chosen = tuple(raw)
        bad = [c for c in chosen if not isinstance(c, str) or c not in f.options]
        if bad:
            return _Bad(f"not an option: {', '.join(map(repr, bad))}")
        if len(set(chosen)) != len(chosen):
            return _Bad("an option is chosen twice")
        return chosen
    if not isinstance(raw, str):
        return _Bad("must be a string")
    value = raw.strip()
    if len(value) > f.max_length:
        return _Bad(f"at most {f.max_length} characters, got {len(value)}")
    if t is FieldType.SELECT:
        if value not in f.options:
            return _Bad(f"must be one of {', '.join(map(repr, f.options))}")
    elif t is FieldType.EMAIL:
        if not _EMAIL.match(value):
            return _Bad("is not an email address")
    elif t is FieldType.PHONE:
        digits = sum(c.isdigit() for c in value)
        if not _PHONE_CHARS.match(value) or not 7 <= digits <= 15:
            return _Bad("is not a phone number")
    return value
