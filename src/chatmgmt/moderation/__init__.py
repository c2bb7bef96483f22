"""chatmgmt.moderation."""

__all__: list[str] = []
