"""The ``submission`` section of the settings tree: when leave-a-message is offered and its form.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._base import MAX_COUNT, _need, _number
from ._enums import FieldType, SubmissionMode
from ._overrides import _check_with_overrides


@attrs.frozen
class FormField:
    """A leave-a-message form field."""

    name: str = attrs.field(metadata={"doc": "Key of the field in the submitted values."})
    type: FieldType = FieldType.TEXT
    label: str = attrs.field(default="", metadata={"doc": "Label shown to the customer."})
    required: bool = attrs.field(
        default=False, metadata={"doc": "The submission is refused without a value."}
    )
    max_length: int = attrs.field(
        default=500,
        metadata={
            "doc": "Maximum length of a text value (or of each option, or the attachment count)."
        },
    )
    options: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "Choices of a select or multi-select field."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _need(bool(self.name), f"{path}.name", "must be a non-empty string")
        _number(self.max_length, f"{path}.max_length", lo=1, hi=MAX_COUNT, integer=True)
        if self.type in (FieldType.SELECT, FieldType.MULTI_SELECT):
            _need(bool(self.options), f"{path}.options", "a select field needs options")


_DEFAULT_FORM = (
    FormField("name", FieldType.TEXT, "Name", required=False, max_length=100),
    FormField("email", FieldType.EMAIL, "Email", required=True, max_length=254),
    FormField("message", FieldType.TEXT, "Message", required=True, max_length=2000),
)


@attrs.frozen
class SubmissionSettings:
    """Leave a message (Real-Time Reception Mode only; ignored in Always On Mode).

    When it is offered: ``when_no_agent_online``, ``when_off_duty``, ``when_queue_longer_than``
    (0: never), ``when_waited_longer_than_s`` (0: never). Overridable per channel and per group.
    """

    enabled: bool = attrs.field(default=True, metadata={"doc": "Offer leave-a-message at all."})
    mode: SubmissionMode = SubmissionMode.OFFLINE_MESSAGE
    when_no_agent_online: bool = True
    when_off_duty: bool = True
    when_queue_longer_than: int = 0
    when_waited_longer_than_s: float = 0.0
    prompt: str = attrs.field(
        default="All our agents are busy. Leave us a message and we will get back to you.",
        metadata={"doc": "Text shown with the form."},
    )
    fields: tuple[FormField, ...] = _DEFAULT_FORM
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per channel: a partial submission section."}
    )
    groups: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, metadata={"doc": "Overrides per skill group: a partial submission section."}
    )

    def check(self, path: str) -> None:
        """Raise SettingsError at ``path`` when invalid."""
        _number(
            self.when_queue_longer_than,
            f"{path}.when_queue_longer_than",
            hi=MAX_COUNT,
            integer=True,
            note="0: never",
        )
        _number(
            self.when_waited_longer_than_s, f"{path}.when_waited_longer_than_s", note="0: never"
        )
        names: set[str] = set()
        for i, f in enumerate(self.fields):
            f.check(f"{path}.fields[{i}]")
            _need(f.name not in names, f"{path}.fields[{i}].name", f"duplicate field {f.name!r}")
            names.add(f.name)

    def __attrs_post_init__(self) -> None:
        _check_with_overrides(self, "submission")
