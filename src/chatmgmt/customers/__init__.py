"""chatmgmt.customers."""

__all__: list[str] = []
