"""chatmgmt.assignment."""

__all__: list[str] = []
