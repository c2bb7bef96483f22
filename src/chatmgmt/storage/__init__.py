"""Storage adapters: in-memory (default), SQLite (stdlib), Redis (extra ``chatmgmt[redis]``)."""

from .memory import MemoryDatabase, MemoryStorage

__all__ = ["MemoryDatabase", "MemoryStorage"]
