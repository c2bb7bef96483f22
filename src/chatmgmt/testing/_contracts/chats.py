"""The :class:`~chatmgmt.ports.ChatStore` contract (read side): chats, messages and sticky
marks read back exactly what :meth:`~chatmgmt.ports.Storage.apply` stored."""

from __future__ import annotations

from ...model import (
    AgentId,
    ChatId,
    ChatState,
    CustomerInfo,
    Message,
    MessageId,
    MessageRole,
    Sticky,
)
from ._support import StorageCase, chat, create, message, nxt, refused, rich_chat, update

__all__ = ["ChatStoreContract"]


class ChatStoreContract(StorageCase):
    """Chats, their messages and sticky marks as stored by the unit of work."""

    def test_chat_round_trip(self) -> None:
        """Every field of a chat survives the store exactly; unknown chats read as None."""
        s = self.storage
        assert s.chats.get(ChatId("nope")) is None
        assert s.chats.messages(ChatId("nope")) == []
        stored = rich_chat("c:{1}")
        applied = create(s, stored)
        assert applied.chat == stored and applied.agent_id is None
        assert s.chats.get(stored.id) == stored
        again = nxt(stored, route_reason={}, attributes={}, excluded=frozenset(), served_by=())
        update(s, again)
        assert s.chats.get(stored.id) == again

    def test_messages_in_order_with_every_field(self) -> None:
        """Messages read back in the order stored, every field kept."""
        s = self.storage
        v0 = chat("c1")
        m1 = Message(MessageId("m1"), ChatId("c1"), MessageRole.CUSTOMER, "u", "hi\n'; --", 1.5)
        create(s, v0, message=m1)
        m2 = Message(
            MessageId("m2"), ChatId("c1"), MessageRole.AGENT, "ann", "{ok}", 2.5, frozenset({"x"})
        )
        v1 = nxt(v0, agent_replied=True)
        update(s, v1, message=m2)
        m3 = message("m0", "c1", "earlier id, later message", 3.0)
        update(s, nxt(v1), message=m3)
        assert s.chats.messages(ChatId("c1")) == [m1, m2, m3]
        assert s.chats.messages(ChatId("other")) == []

    def test_several_messages_in_one_unit(self) -> None:
        """``message`` then ``more_messages``, in order, land in the one unit of work; a
        refused unit stores none of them."""
        s = self.storage
        v0 = chat("c1")
        first = message("m1", "c1", "first", 1.0)
        create(s, v0, message=first)
        end = Message(MessageId("m2"), ChatId("c1"), MessageRole.SYSTEM, "system", "bye", 2.0)
        more = (
            Message(MessageId("m3"), ChatId("c1"), MessageRole.SYSTEM, "system", "rate?", 2.0),
            message("m4", "c1", "{later} 'x'", 2.0),
        )
        v1 = nxt(v0)
        update(s, v1, message=end, more_messages=more)
        assert s.chats.messages(ChatId("c1")) == [first, end, *more]
        only_more = (message("m5", "c1", "alone", 3.0),)
        update(s, nxt(v1), more_messages=only_more)
        assert s.chats.messages(ChatId("c1")) == [first, end, *more, *only_more]
        stale = (message("m6", "c1", "refused", 4.0),)
        # v1 is no longer the stored version: nothing of the unit is stored
        refused("version", lambda: update(s, nxt(v1), more_messages=stale))
        assert s.chats.messages(ChatId("c1")) == [first, end, *more, *only_more]

    def test_sticky_marks(self) -> None:
        """The last sticky mark recorded for a customer wins; unknown customers read None."""
        s = self.storage
        v0 = chat("c1", customer=CustomerInfo(partner_id="u:{1}"))
        first = Sticky("u:{1}", AgentId("ann"), 5.0, "closed")
        create(s, v0, sticky=first)
        assert s.chats.sticky("u:{1}") == first
        second = Sticky("u:{1}", AgentId("bob"), 6.0, "offline")
        update(s, nxt(v0), sticky=second)
        assert s.chats.sticky("u:{1}") == second
        assert s.chats.sticky("nobody") is None

    def test_chat_list_filters(self) -> None:
        """list filters by state and/or agent, and follows state changes."""
        s = self.storage
        for i, (state, agent_id) in enumerate(
            [
                (ChatState.QUEUED, None),
                (ChatState.ACTIVE, "ann"),
                (ChatState.ACTIVE, "bob"),
                (ChatState.ENDED, "ann"),
                (ChatState.ACTIVE, "ann"),
            ]
        ):
            create(s, chat(f"c{9 - i}", state=state, agent_id=agent_id))

        def ids(state: ChatState | None = None, agent_id: str | None = None) -> list[str]:
            aid = None if agent_id is None else AgentId(agent_id)
            return sorted(c.id for c in s.chats.list(state, aid))

        assert ids() == ["c5", "c6", "c7", "c8", "c9"]
        assert ids(ChatState.ACTIVE) == ["c5", "c7", "c8"]
        assert ids(None, "ann") == ["c5", "c6", "c8"]
        assert ids(ChatState.ACTIVE, "ann") == ["c5", "c8"]
        assert ids(ChatState.UNASSIGNED) == []
        c9 = s.chats.get(ChatId("c9"))
        assert c9 is not None
        update(s, nxt(c9, state=ChatState.ACTIVE, agent_id=AgentId("ann")))
        assert ids(ChatState.ACTIVE, "ann") == ["c5", "c8", "c9"]
        assert ids(ChatState.QUEUED) == []
        c8 = s.chats.get(ChatId("c8"))
        assert c8 is not None
        update(s, nxt(c8, agent_id=AgentId("bob")))
        assert ids(None, "ann") == ["c5", "c6", "c9"]
        assert ids(ChatState.ACTIVE, "bob") == ["c7", "c8"]
