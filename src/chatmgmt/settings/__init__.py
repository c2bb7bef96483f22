"""The typed settings tree: what a product's "Settings > Chat" page configures.

:class:`ChatSettings` holds one section per function and the reception mode. Every section has
defaults that work out of the box, so ``ChatSettings()`` is a valid configuration.

* ``ChatSettings.from_dict(d)`` / ``.to_dict()`` convert to and from plain JSON-ready dicts
  (through cattrs) and round-trip exactly.
* Every invalid input raises :class:`~chatmgmt.errors.SettingsError` whose ``path`` names the bad
  field, e.g. ``end_of_chat.channels.app.end_after_s``.
* Sections that can be overridden carry ``channels`` and/or ``groups``: mappings from a channel
  or skill-group name to a partial section (only the fields to change). :func:`resolve` applies
  them: a value set for the channel beats the skill group's, which beats the global one.
"""

from __future__ import annotations

# One module per section (_assignment, _submission, _satisfaction, ...), the tree (_tree), the
# overrides (_overrides) and the cattrs converter (_convert); users import the names from here.

# the order of these names is the order of the API reference (docs/api.md)
# isort: off
from ._autosave import AutoSaveSettings
from ._bot import BotSettings
from ._enums import (
    FieldType,
    LeaveAction,
    OverflowCondition,
    QueueLimitAction,
    SecondRating,
    StrategyName,
    SubmissionMode,
    UnverifiedIdentity,
)
from ._limits import LimitsSettings, RetentionSettings
from ._reopen import ReopenSettings
from ._sla import SlaPolicy, SlaSettings
from ._webhooks import WebhookEndpoint, WebhookSettings
from ._words import SensitiveWordSettings, WordEntry
from ._hours import WorkingHours
from ._assignment import (
    FairnessCap,
    GroupSettings,
    OfferSettings,
    RoutingRule,
    StickySettings,
    CustomStrategySettings,
    OverflowLayer,
    QueueSettings,
    LeaveSettings,
    AssignmentSettings,
)
from ._submission import FormField, SubmissionSettings
from ._satisfaction import SatisfactionScheme, SatisfactionSettings
from ._end_of_chat import EndOfChatSettings
from ._tree import ChatSettings
from ._satisfaction import resolve_satisfaction
from ._overrides import resolve

# isort: on

# names settings.py held beside its own (not in __all__): kept importable from here
from ..errors import SettingsError as SettingsError
from ..model import EndReason as EndReason
from ..model import ReceptionMode as ReceptionMode
from ._base import MAX_COUNT as MAX_COUNT
from ._base import MAX_SECONDS as MAX_SECONDS

__all__ = [
    "AssignmentSettings",
    "AutoSaveSettings",
    "BotSettings",
    "ChatSettings",
    "CustomStrategySettings",
    "EndOfChatSettings",
    "FairnessCap",
    "FieldType",
    "FormField",
    "GroupSettings",
    "LeaveAction",
    "LeaveSettings",
    "LimitsSettings",
    "OfferSettings",
    "OverflowCondition",
    "OverflowLayer",
    "QueueLimitAction",
    "QueueSettings",
    "ReopenSettings",
    "RetentionSettings",
    "RoutingRule",
    "SatisfactionScheme",
    "SatisfactionSettings",
    "SecondRating",
    "SensitiveWordSettings",
    "SlaPolicy",
    "SlaSettings",
    "StickySettings",
    "StrategyName",
    "SubmissionMode",
    "SubmissionSettings",
    "UnverifiedIdentity",
    "WebhookEndpoint",
    "WebhookSettings",
    "WordEntry",
    "WorkingHours",
    "resolve",
    "resolve_satisfaction",
]
