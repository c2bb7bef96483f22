"""The whole settings tree, :class:`ChatSettings`: one field per section, and its conversion
from and to plain JSON-ready values.

A piece of :mod:`chatmgmt.settings`, which re-exports :class:`ChatSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from ..errors import SettingsError
from ..model import ReceptionMode
from ._assignment import AssignmentSettings
from ._autosave import AutoSaveSettings
from ._base import _check_text_leaves
from ._bot import BotSettings
from ._convert import _converter, _translate
from ._end_of_chat import EndOfChatSettings
from ._limits import LimitsSettings, RetentionSettings
from ._reopen import ReopenSettings
from ._satisfaction import SatisfactionSettings
from ._sla import SlaSettings
from ._submission import SubmissionSettings
from ._webhooks import WebhookSettings
from ._words import SensitiveWordSettings


@attrs.frozen
class ChatSettings:
    """The whole settings tree. ``ChatSettings()`` works out of the box.

    Build it from plain values with :meth:`from_dict`; every string in it must be storable text
    (no NUL character, no lone surrogate), every number finite and within its documented range.
    """

    reception_mode: ReceptionMode = ReceptionMode.REAL_TIME
    auto_save: AutoSaveSettings = attrs.field(factory=AutoSaveSettings)
    assignment: AssignmentSettings = attrs.field(factory=AssignmentSettings)
    submission: SubmissionSettings = attrs.field(factory=SubmissionSettings)
    sensitive_words: SensitiveWordSettings = attrs.field(factory=SensitiveWordSettings)
    satisfaction: SatisfactionSettings = attrs.field(factory=SatisfactionSettings)
    end_of_chat: EndOfChatSettings = attrs.field(factory=EndOfChatSettings)
    webhooks: WebhookSettings = attrs.field(factory=WebhookSettings)
    limits: LimitsSettings = attrs.field(factory=LimitsSettings)
    retention: RetentionSettings = attrs.field(factory=RetentionSettings)
    sla: SlaSettings = attrs.field(factory=SlaSettings)
    reopen: ReopenSettings = attrs.field(factory=ReopenSettings)
    bot: BotSettings = attrs.field(factory=BotSettings)

    def __attrs_post_init__(self) -> None:
        _check_text_leaves(self, "")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatSettings:
        """Build settings from plain values; raise SettingsError naming the bad field.

        ``data`` is what ``json.loads`` gives: mappings with string keys, lists where the tree
        holds tuples, enum settings as their string values. Keys left out keep their defaults.
        """
        if not isinstance(data, Mapping):
            raise SettingsError(
                "",
                f"settings must be a mapping (a JSON object), got {type(data).__name__}",
            )
        _check_keys(data, "")
        try:
            return _converter.structure(dict(data), cls)
        except SettingsError:
            raise
        except (ClassValidationError, ForbiddenExtraKeysError) as exc:
            raise _translate(exc) from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise SettingsError("", f"invalid settings: {exc}") from None

    @classmethod
    def coerce(cls, settings: ChatSettings | Mapping[str, Any] | None) -> ChatSettings:
        """``settings`` as a tree: None gives the defaults, a mapping goes through
        :meth:`from_dict` (so its errors name the path); anything else is a ``TypeError``."""
        if settings is None:
            return cls()
        if isinstance(settings, ChatSettings):
            return settings
        if isinstance(settings, Mapping):
            return cls.from_dict(settings)
        raise TypeError(
            f"settings must be a ChatSettings or a mapping for ChatSettings.from_dict, "
            f"got {type(settings).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; ``from_dict(s.to_dict()) == s``."""
        out: dict[str, Any] = _converter.unstructure(self)
        return out


def _check_keys(data: object, path: str) -> None:
    """Every mapping key in plain settings data is a string (JSON object keys are)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                raise SettingsError(
                    path,
                    f"setting names and mapping keys must be strings, got {key!r} "
                    f"({type(key).__name__})",
                )
            _check_keys(value, f"{path}.{key}" if path else key)
    elif isinstance(data, (list, tuple)):
        for i, item in enumerate(data):
            _check_keys(item, f"{path}[{i}]")
