"""Tags: labels added to and removed from a chat, each change one compare-and-set of the chat.

A chat of any state may be tagged (an ended chat is tagged in review, as in an archive). The
chat's ``version`` guards the change: a tag racing another change of the chat (its end, a
transfer) reads the chat again and plans again, so neither change is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._plan import Plan
from .._text import check_text
from ..errors import ValidationError
from ..model import Chat, ChatId, evolve
from ..webhook import _payloads as payloads
from ._base import CoreBase
from ._ops import Eff

__all__ = ["MAX_TAG_LENGTH", "Tagging", "check_tags"]

MAX_TAG_LENGTH = 100
"""The longest tag accepted, in characters."""


def check_tags(tags: Sequence[object]) -> frozenset[str]:
    """The tags as a set, or :class:`~chatmgmt.errors.ValidationError` naming the bad one
    (``tags[i]``): at least one, each a non-empty string of at most :data:`MAX_TAG_LENGTH`
    characters without surrounding spaces."""
    if not tags:
        raise ValidationError("tags: give at least one tag")
    for i, tag in enumerate(tags):
        field = f"tags[{i}]"
        check_text(field, tag)
        assert isinstance(tag, str)
        if not tag or tag != tag.strip():
            raise ValidationError(f"{field}: must be non-empty, without surrounding spaces")
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(f"{field}: longer than {MAX_TAG_LENGTH} characters")
    return frozenset(tags)  # type: ignore[arg-type]


class Tagging(CoreBase):
    """Add and remove a chat's tags."""

    def tag_chat(
        self, chat_id: ChatId, tags: Sequence[object], by: str, now: float, *, remove: bool = False
    ) -> Eff[Chat]:
        """Add (``remove``: remove) ``tags`` to the chat with its ``chat.tagged``
        (``chat.untagged``) event, in one unit of work; tags it already has (has not) change
        nothing, and a call that changes nothing commits nothing."""
        wanted = check_tags(tags)
        check_text("by", by)

        def planner(chat: Chat) -> Plan | None:
            changed = wanted & chat.tags if remove else wanted - chat.tags
            if not changed:
                return None
            now_tags = chat.tags - changed if remove else chat.tags | changed
            item = payloads.chat_tagged(changed, by, now_tags, removed=remove)
            return Plan(evolve(chat, tags=now_tags), [item])

        _old, new = yield from self.update(chat_id, planner, now)
        return new
