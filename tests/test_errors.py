"""The exception tree: shape, builtin bases, structured fields, messages."""

from __future__ import annotations

import inspect

import pytest

import chatmgmt.errors as errors_module
from chatmgmt.errors import (
    AssignmentError,
    ChatMgmtError,
    ConflictError,
    DeliveryError,
    FormValidationError,
    IdentityVerificationError,
    InvalidTransitionError,
    MessageBlockedError,
    NotAllowedError,
    NotFoundError,
    PreconditionFailed,
    RatingRefusedError,
    ReopenRefusedError,
    SettingsError,
    StorageError,
    UnsafeURLError,
    ValidationError,
    WebhookError,
    WebhookVerificationError,
)

TREE = [
    (SettingsError, (ChatMgmtError, ValueError)),
    (ValidationError, (ChatMgmtError, ValueError)),
    (FormValidationError, (ValidationError, ValueError)),
    (IdentityVerificationError, (ValidationError, ValueError)),
    (NotFoundError, (ChatMgmtError, LookupError)),
    (ConflictError, (ChatMgmtError,)),
    (PreconditionFailed, (ConflictError,)),
    (InvalidTransitionError, (ChatMgmtError, ValueError)),
    (ReopenRefusedError, (InvalidTransitionError, ValueError)),
    (AssignmentError, (ChatMgmtError,)),
    (NotAllowedError, (ChatMgmtError, PermissionError)),
    (RatingRefusedError, (ChatMgmtError, ValueError)),
    (MessageBlockedError, (ChatMgmtError,)),
    (WebhookError, (ChatMgmtError,)),
    (WebhookVerificationError, (WebhookError, ValueError)),
    (UnsafeURLError, (WebhookError, ValueError)),
    (DeliveryError, (WebhookError,)),
    (StorageError, (ChatMgmtError,)),
]


@pytest.mark.parametrize(("cls", "bases"), TREE, ids=lambda v: getattr(v, "__name__", ""))
def test_tree_shape(cls: type[Exception], bases: tuple[type, ...]) -> None:
    for base in bases:
        assert issubclass(cls, base)
    assert issubclass(cls, ChatMgmtError)


def test_no_accidental_builtin_bases() -> None:
    # a ConflictError is not a ValueError: catching ValueError must not swallow a lost race
    assert not issubclass(ConflictError, ValueError)
    assert not issubclass(NotFoundError, ValueError)
    assert not issubclass(SettingsError, LookupError)
    assert not issubclass(ChatMgmtError, ValueError)


def test_every_error_of_the_module_is_in_the_tree_and_documented() -> None:
    defined = {
        obj
        for _name, obj in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors_module.__name__
    }
    assert defined == {ChatMgmtError, *(cls for cls, _ in TREE)}
    doc = errors_module.__doc__ or ""
    for cls in defined:
        assert cls.__doc__, cls
        assert cls.__name__ in doc, f"{cls.__name__} missing from the tree in the docstring"
    assert set(errors_module.__all__) == {cls.__name__ for cls in defined}


def test_settings_error_fields_and_message() -> None:
    exc = SettingsError("end_of_chat.end_after_s", "must be greater than warn_after_s")
    assert exc.path == "end_of_chat.end_after_s"
    assert exc.problem == "must be greater than warn_after_s"
    assert str(exc) == "end_of_chat.end_after_s: must be greater than warn_after_s"
    assert str(SettingsError("", "settings must be a mapping")) == "settings must be a mapping"


def test_not_found_fields_and_message() -> None:
    exc = NotFoundError("chat", "c_1")
    assert (exc.kind, exc.key) == ("chat", "c_1")
    assert "chat" in str(exc) and "'c_1'" in str(exc)
    with pytest.raises(LookupError):
        raise exc


def test_conflict_fields_and_message_say_what_to_do() -> None:
    exc = ConflictError("chat", "c_1", 3, 4)
    assert (exc.kind, exc.key, exc.expected, exc.actual) == ("chat", "c_1", 3, 4)
    assert "expected version 3, found 4" in str(exc)
    assert "retry" in str(exc)
    assert "expected version" not in str(ConflictError("customer", "u_1"))


def test_invalid_transition_fields_and_message() -> None:
    exc = InvalidTransitionError("c_1", "ended", "assign", ("reopen",))
    assert (exc.chat_id, exc.state, exc.event, exc.allowed) == (
        "c_1",
        "ended",
        "assign",
        ("reopen",),
    )
    assert "'ended'" in str(exc) and "'assign'" in str(exc) and "reopen" in str(exc)
    assert "allowed" not in str(InvalidTransitionError("c_1", "ended", "assign"))


def test_form_validation_lists_every_field() -> None:
    exc = FormValidationError({"email": "required", "phone": "too long"})
    assert exc.fields == {"email": "required", "phone": "too long"}
    assert "2 invalid field(s)" in str(exc)
    assert "email: required" in str(exc) and "phone: too long" in str(exc)


def test_identity_error_names_the_id_and_the_remedy() -> None:
    exc = IdentityVerificationError("u_42")
    assert exc.partner_id == "u_42"
    assert "'u_42'" in str(exc)
    assert "auto_save.unverified_identity" in str(exc)


def test_rating_and_blocked_messages() -> None:
    rating = RatingRefusedError("c_1", "already rated")
    assert (rating.chat_id, rating.reason) == ("c_1", "already rated")
    assert str(rating).endswith("already rated")
    blocked = MessageBlockedError("c_1", "not allowed")
    assert (blocked.chat_id, blocked.prompt) == ("c_1", "not allowed")
    assert "c_1" in str(blocked) and "not allowed" in str(blocked)


def test_one_except_clause_catches_them_all() -> None:
    raised = [
        SettingsError("x", "y"),
        NotFoundError("chat", "c"),
        ConflictError("chat", "c"),
        InvalidTransitionError("c", "s", "e"),
        IdentityVerificationError("u"),
        DeliveryError("refused"),
    ]
    for exc in raised:
        with pytest.raises(ChatMgmtError):
            raise exc
