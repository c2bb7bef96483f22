"""chatmgmt.webhook."""

__all__: list[str] = []
