"""chatmgmt: the chat-management layer of a live-chat customer-service product."""

__all__: list[str] = []
