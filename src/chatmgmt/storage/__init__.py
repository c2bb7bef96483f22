"""chatmgmt.storage."""

__all__: list[str] = []
