"""Storage adapters: in-memory (default), SQLite (stdlib), Redis (extra ``chatmgmt[redis]``).

``RedisStorage`` / ``AsyncRedisStorage`` import redis-py only when they connect, so importing
this package never needs the extra.
"""

from .memory import MemoryDatabase, MemoryStorage
from .redis import AsyncRedisStorage, RedisStorage
from .sqlite import SQLiteDatabase, SQLiteStorage

__all__ = [
    "AsyncRedisStorage",
    "MemoryDatabase",
    "MemoryStorage",
    "RedisStorage",
    "SQLiteDatabase",
    "SQLiteStorage",
]
