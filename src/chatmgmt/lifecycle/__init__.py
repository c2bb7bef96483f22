"""chatmgmt.lifecycle."""

__all__: list[str] = []
