"""The library's one exception tree.

Every error the library raises on purpose derives from :class:`ChatMgmtError`; where a builtin
fits, the error also derives from it, so ``except ValueError`` in a host keeps working::

    ChatMgmtError
    ├── SettingsError(ValueError)             bad settings; ``.path`` names the field
    ├── ValidationError(ValueError)           a bad value given to a model or an API call
    │   ├── FormValidationError               a bad leave-a-message form; ``.fields``
    │   └── IdentityVerificationError         a partner_id whose signature did not verify
    ├── NotFoundError(LookupError)            no such chat, agent, customer, endpoint, ...
    ├── ConflictError                         a compare-and-set lost; re-read and retry
    │   └── PreconditionFailed                an atomic change committed nothing; ``.reason``
    ├── InvalidTransitionError(ValueError)    an event that the chat's state does not allow
    │   └── ReopenRefusedError                an ended chat that may not be opened again
    ├── AssignmentError                       a chat could not be assigned as asked
    ├── NotAllowedError(PermissionError)      the caller may not do this (not the chat's agent)
    ├── RatingRefusedError(ValueError)        a satisfaction rating that the rules refuse
    ├── MessageBlockedError                   a message that moderation blocked
    ├── WebhookError
    │   ├── WebhookVerificationError(ValueError)   a signature or its headers did not verify
    │   ├── UnsafeURLError(ValueError)            an endpoint URL the guard refuses
    │   └── DeliveryError                         a transport failed to deliver
    └── StorageError                          an adapter failed (I/O, schema, connection)

Errors carry structured fields (``chat_id``, ``state``, ``path``, ...) as attributes, and their
message says what was wrong, where, and what to do about it. Secrets never appear in them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ports imports this module
    from .ports import Census

__all__ = [
    "AssignmentError",
    "ChatMgmtError",
    "ConflictError",
    "DeliveryError",
    "FormValidationError",
    "IdentityVerificationError",
    "InvalidTransitionError",
    "MessageBlockedError",
    "NotAllowedError",
    "NotFoundError",
    "PreconditionFailed",
    "RatingRefusedError",
    "ReopenRefusedError",
    "SettingsError",
    "StorageError",
    "UnsafeURLError",
    "ValidationError",
    "WebhookError",
    "WebhookVerificationError",
]


class ChatMgmtError(Exception):
    """Base of every error this library raises on purpose."""


class SettingsError(ChatMgmtError, ValueError):
    """A settings value is invalid; ``path`` is the dotted path of the bad field."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class ValidationError(ChatMgmtError, ValueError):
    """A value handed to the library is invalid (a model field, an API argument)."""


class FormValidationError(ValidationError):
    """A submitted leave-a-message form is invalid; ``fields`` maps each bad field to why."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)
        listing = "; ".join(f"{name}: {why}" for name, why in self.fields.items())
        super().__init__(f"the form has {len(self.fields)} invalid field(s): {listing}")


class IdentityVerificationError(ValidationError):
    """A ``partner_id`` arrived with a missing or wrong signature and the settings refuse it."""

    def __init__(self, partner_id: str) -> None:
        self.partner_id = partner_id
        super().__init__(
            f"partner_id {partner_id!r} is not verified: pass the HMAC-SHA256 of the "
            "partner_id made with the tenant's identity secret, or change "
            "auto_save.unverified_identity"
        )


class NotFoundError(ChatMgmtError, LookupError):
    """No such object; ``kind`` and ``key`` say what was looked for."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} with id {key!r}")


class ConflictError(ChatMgmtError):
    """A compare-and-set lost to a concurrent writer: re-read the object and retry."""

    def __init__(self, kind: str, key: str, expected: object = None, actual: object = None) -> None:
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual
        detail = f" (expected version {expected}, found {actual})" if expected is not None else ""
        super().__init__(f"{kind} {key!r} changed concurrently{detail}; re-read and retry")


class PreconditionFailed(ConflictError):
    """An atomic change (:class:`~chatmgmt.ports.Change`) committed nothing: one precondition
    did not hold. ``reason`` says which:

    * ``"version"``: the chat's stored version is not the expected one (it moved on);
    * ``"exists"``: the change creates a chat whose id is taken;
    * ``"missing"``: the chat does not exist;
    * ``"agent_unavailable"``: the claimed agent is unknown, not ONLINE, or at its limit;
    * ``"no_agent"``: a ranked claim found no eligible agent;
    * ``"queue_not_empty"``: the queue the change required empty holds chats.

    Re-read and plan again (the version cases), or try the next option (the others).
    """

    REASONS = frozenset(
        {"version", "exists", "missing", "agent_unavailable", "no_agent", "queue_not_empty"}
    )

    def __init__(
        self,
        reason: str,
        chat_id: str,
        expected: object = None,
        actual: object = None,
        *,
        agent_id: str | None = None,
        queue: str | None = None,
        census: Census | None = None,
    ) -> None:
        self.reason = reason
        self.chat_id = chat_id
        self.agent_id = agent_id
        self.queue = queue
        #: the census of the change's ``census`` group, read in the unit before it failed
        #: (a failed claim: ``"no_agent"``, ``"agent_unavailable"``), else None
        self.census = census
        super().__init__("chat", chat_id, expected, actual)
        where = agent_id if agent_id is not None else queue
        self.args = (
            f"change of chat {chat_id!r} refused ({reason}"
            + (f": {where!r}" if where is not None else "")
            + (f", expected version {expected}, found {actual}" if expected is not None else "")
            + "); nothing was committed",
        )


class InvalidTransitionError(ChatMgmtError, ValueError):
    """The chat's current state does not allow the event."""

    def __init__(self, chat_id: str, state: str, event: str, allowed: Sequence[str] = ()) -> None:
        self.chat_id = chat_id
        self.state = state
        self.event = event
        self.allowed = tuple(allowed)
        hint = f"; allowed here: {', '.join(self.allowed)}" if self.allowed else ""
        super().__init__(f"chat {chat_id!r} in state {state!r} cannot take event {event!r}{hint}")


class ReopenRefusedError(InvalidTransitionError):
    """An ended chat may not be opened again; ``reason`` says why and ``mode`` names the
    chat's reception mode.

    ``reason`` is one of ``real_time`` (Real-Time chats never reopen), ``not_ended`` (the chat
    is open), ``setting`` (``reopen.on_customer_message`` is off), ``window`` (it ended more
    than ``reopen.window_s`` ago) or ``retention`` (its retention time ran out: it is, or is
    about to be, purged). Open a new chat instead when the customer writes again.
    """

    def __init__(self, chat_id: str, state: str, mode: str, reason: str, detail: str) -> None:
        self.mode = mode
        self.reason = reason
        super().__init__(chat_id, state, "reopen")
        self.args = (
            f"chat {chat_id!r} ({mode}, {state}) cannot be reopened: {detail}; "
            "open a new chat instead",
        )


class AssignmentError(ChatMgmtError):
    """A chat could not be assigned the way the caller asked (e.g. a strict designation)."""


class NotAllowedError(ChatMgmtError, PermissionError):
    """The caller may not do this: e.g. write as the agent of a chat held by another agent.

    ``chat_id`` and ``who`` say which chat and which sender; ``why`` says what would allow it.
    """

    def __init__(self, chat_id: str, who: str, why: str) -> None:
        self.chat_id = chat_id
        self.who = who
        self.why = why
        super().__init__(f"{who!r} may not do this in chat {chat_id!r}: {why}")


class RatingRefusedError(ChatMgmtError, ValueError):
    """A satisfaction rating was refused; the message is the one to show the customer."""

    def __init__(self, chat_id: str, reason: str) -> None:
        self.chat_id = chat_id
        self.reason = reason
        super().__init__(f"rating for chat {chat_id!r} refused: {reason}")


class MessageBlockedError(ChatMgmtError):
    """A message was blocked by moderation; ``prompt`` is what to show the sender."""

    def __init__(self, chat_id: str, prompt: str) -> None:
        self.chat_id = chat_id
        self.prompt = prompt
        super().__init__(f"message in chat {chat_id!r} blocked: {prompt}")


class WebhookError(ChatMgmtError):
    """Base of the webhook errors."""


class WebhookVerificationError(WebhookError, ValueError):
    """A webhook's signature or headers did not verify."""


class UnsafeURLError(WebhookError, ValueError):
    """An endpoint URL that the URL guard refuses (scheme, private address, odd literal)."""


class DeliveryError(WebhookError):
    """A transport could not deliver a request (connection refused, reset, timeout)."""


class StorageError(ChatMgmtError):
    """A storage adapter failed: I/O, schema version, lost connection."""
