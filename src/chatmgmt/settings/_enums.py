"""The enumerations the settings tree uses (re-exported by :mod:`chatmgmt.settings`).

A piece of :mod:`chatmgmt.settings`, which re-exports its public names; kept apart so that each
module holds one part of the tree.
"""

from __future__ import annotations

import enum

__all__ = [
    "FieldType",
    "LeaveAction",
    "OverflowCondition",
    "QueueLimitAction",
    "SecondRating",
    "StrategyName",
    "SubmissionMode",
    "UnverifiedIdentity",
]


# --------------------------------------------------------------------------- enums


class UnverifiedIdentity(str, enum.Enum):
    """What happens to a ``partner_id`` whose signature is missing or wrong."""

    REFUSE = "refuse"
    """Raise :class:`~chatmgmt.errors.IdentityVerificationError`; the chat does not open."""
    ANONYMOUS = "anonymous"
    """Open the chat, but as an anonymous visitor: nothing saved, no sticky routing."""
    ACCEPT = "accept"
    """Trust the id anyway (only for hosts that verify identity themselves)."""


class StrategyName(str, enum.Enum):
    """The built-in assignment strategies."""

    ROUND_ROBIN = "round_robin"
    LEAST_BUSY = "least_busy"
    SATURATION = "saturation"
    LONGEST_IDLE = "longest_idle"


class OverflowCondition(str, enum.Enum):
    """When an overflow layer applies to the previous target."""

    NO_AGENT_ONLINE = "no_agent_online"
    ALL_BUSY = "all_busy"
    OFF_DUTY = "off_duty"


class QueueLimitAction(str, enum.Enum):
    """What happens when a queue limit (length or wait) is reached."""

    OVERFLOW = "overflow"
    LEAVE_MESSAGE = "leave_message"
    END = "end"


class LeaveAction(str, enum.Enum):
    """What happens to an agent's chats when the agent leaves (the leave policy)."""

    KEEP = "keep"
    """The chats stay with the agent (the behaviour without a policy)."""
    REQUEUE = "requeue"
    """The chats go back to their group's queue, keeping their place (ordered by when they
    first arrived); an Always On chat goes back to its pool."""
    FORWARD = "forward"
    """The chats are forwarded to another agent of their group at once (nobody free: back to
    the queue or pool, keeping their place)."""
    POOL = "pool"
    """The chats go back to their group's Always On pool (a Real-Time chat: to its queue)."""


class SubmissionMode(str, enum.Enum):
    """What a leave-a-message submission becomes."""

    OFFLINE_MESSAGE = "offline_message"
    TICKET = "ticket"


class FieldType(str, enum.Enum):
    """Types of leave-a-message form fields."""

    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    SELECT = "select"
    MULTI_SELECT = "multi_select"
    ATTACHMENTS = "attachments"


class SecondRating(str, enum.Enum):
    """What a second satisfaction rating of one chat does."""

    REFUSE = "refuse"
    OVERWRITE = "overwrite"
