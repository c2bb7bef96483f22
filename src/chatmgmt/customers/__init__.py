"""Customer info auto-save: identity verification and CRM merge rules."""

from ._autosave import (
    merge_customer,
    should_save,
    sign_identity,
    trusted_partner_id,
    verify_identity,
)

__all__ = [
    "merge_customer",
    "should_save",
    "sign_identity",
    "trusted_partner_id",
    "verify_identity",
]
