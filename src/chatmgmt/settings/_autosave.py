"""The ``auto_save`` section of the settings tree: customer info auto-save into the CRM.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names; kept apart so that each
module holds one part of the tree.
"""

from __future__ import annotations

import attrs

from .._text import id_problem, text_problem
from ..model import Channel
from ._base import _need
from ._enums import (
    UnverifiedIdentity,
)

__all__ = [
    "AutoSaveSettings",
]


# --------------------------------------------------------------------------- 1. auto-save

_DEFAULT_CHANNELS = (
    Channel.WEB,
    Channel.MOBILE_WEB,
    Channel.APP,
    Channel.WECHAT,
    Channel.EMAIL,
    Channel.API,
)


@attrs.frozen
class AutoSaveSettings:
    """Customer info auto-save into the CRM.

    ``channels``: where auto-save is on. ``identity_secret``: the per-tenant HMAC key the host's
    page signs ``partner_id`` with; when set, ids arrive with a signature and
    ``unverified_identity`` decides what happens to an id whose signature is missing or wrong.
    ``previous_identity_secrets``: older keys still accepted during a rotation.
    ``require_verified_identity``: verification is mandatory (a secret must be set and an
    unverified id is never trusted); ``require_identity_expiry``: signatures must carry an
    expiry (see :func:`chatmgmt.customers.sign_identity`).

    **By default there is no secret and every ``partner_id`` is trusted as given**: anyone who
    can open a chat may name any customer's ``partner_id`` and have their info saved into that
    customer's CRM record. Set ``identity_secret`` (and ``require_verified_identity``) unless
    the host checks who the customer is before calling the library.
    """

    enabled: bool = attrs.field(
        default=True, metadata={"doc": "Auto-save on or off for every channel."}
    )
    channels: tuple[str, ...] = tuple(str(c) for c in _DEFAULT_CHANNELS)
    identity_secret: str | None = attrs.field(
        default=None,
        repr=False,
        metadata={
            "doc": "HMAC key (>= 16 characters) that signs partner_id; none: every id is trusted."
        },
    )
    previous_identity_secrets: tuple[str, ...] = attrs.field(
        default=(),
        repr=False,
        metadata={"doc": "Older identity secrets still accepted while a rotation is under way."},
    )
    unverified_identity: UnverifiedIdentity = UnverifiedIdentity.ANONYMOUS
    require_verified_identity: bool = attrs.field(
        default=False,
        metadata={
            "doc": "Identity verification is mandatory: needs identity_secret, and an unverified "
            "partner_id is refused or made anonymous, never accepted."
        },
    )
    require_identity_expiry: bool = attrs.field(
        default=False,
        metadata={"doc": "Refuse identity signatures that carry no expiry."},
    )

    def __attrs_post_init__(self) -> None:
        p = "auto_save"
        for i, ch in enumerate(self.channels):
            problem = id_problem(ch)
            _need(problem is None, f"{p}.channels[{i}]", f"must be a channel name: {problem}")
        secrets = [("identity_secret", self.identity_secret)] + [
            (f"previous_identity_secrets[{i}]", s)
            for i, s in enumerate(self.previous_identity_secrets)
        ]
        for name, secret in secrets:
            if secret is None:
                continue
            _need(
                isinstance(secret, str) and len(secret) >= 16,
                f"{p}.{name}",
                "must be a string of at least 16 characters (the value is not shown)",
            )
            _need(
                text_problem(secret) is None,
                f"{p}.{name}",
                "must be storable text: no NUL character, no lone surrogate "
                "(the value is not shown)",
            )
        if self.previous_identity_secrets:
            _need(
                self.identity_secret is not None,
                f"{p}.previous_identity_secrets",
                "set identity_secret (the current key) too: previous secrets only verify",
            )
        if self.require_verified_identity:
            _need(
                self.identity_secret is not None,
                f"{p}.require_verified_identity",
                "needs auto_save.identity_secret: without a secret nothing can be verified",
            )
            _need(
                self.unverified_identity is not UnverifiedIdentity.ACCEPT,
                f"{p}.unverified_identity",
                "must be 'refuse' or 'anonymous' when require_verified_identity is true",
            )
        if self.require_identity_expiry:
            _need(
                self.identity_secret is not None,
                f"{p}.require_identity_expiry",
                "needs auto_save.identity_secret: without a secret nothing is signed",
            )
