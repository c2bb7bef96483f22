"""Storage adapters: in-memory (default), SQLite (stdlib), Redis (extra ``chatmgmt[redis]``).

``RedisStorage`` / ``AsyncRedisStorage`` import redis-py only when they connect, so importing
this package never needs the extra.
"""

from .memory import MemoryDatabase, MemoryStorage
from .memory_delivery import AsyncMemoryDeliveryStore, MemoryDeliveryStore
from .redis import AsyncRedisStorage, RedisStorage
from .redis_delivery import AsyncRedisDeliveryStore, RedisDeliveryStore
from .sqlite import SQLiteDatabase, SQLiteStorage
from .sqlite_delivery import AsyncSQLiteDeliveryStore, SQLiteDeliveryStore

__all__ = [
    "AsyncMemoryDeliveryStore",
    "AsyncRedisDeliveryStore",
    "AsyncRedisStorage",
    "AsyncSQLiteDeliveryStore",
    "MemoryDatabase",
    "MemoryDeliveryStore",
    "MemoryStorage",
    "RedisDeliveryStore",
    "RedisStorage",
    "SQLiteDatabase",
    "SQLiteDeliveryStore",
    "SQLiteStorage",
]
