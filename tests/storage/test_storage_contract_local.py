"""The port contract suites against the in-memory and SQLite adapters (sync and async)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from chatmgmt.ports import AsyncStorage, Storage
from chatmgmt.storage.memory import MemoryDatabase, MemoryStorage
from chatmgmt.storage.sqlite import SQLiteDatabase, SQLiteStorage
from chatmgmt.testing import (
    AsyncStorageContract,
    ProcessStorageContract,
    StorageContract,
)


class TestMemoryContract(StorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.db = MemoryDatabase()
        super().setup_method(method)

    def make_storage(self, namespace: str) -> Storage:
        return MemoryStorage(namespace, self.db)


class TestMemoryAsyncContract(AsyncStorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.db = MemoryDatabase()
        super().setup_method(method)

    def make_async_storage(self, namespace: str) -> AsyncStorage:
        return MemoryStorage(namespace, self.db).aio()


class _SQLiteFile:
    def setup_method(self, method: Any = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="chatmgmt-sqlite-")
        self.path = str(Path(self.tmp.name) / "chat.db")
        self.db = SQLiteDatabase(self.path)
        super().setup_method(method)  # type: ignore[misc]

    def teardown_method(self, method: Any = None) -> None:
        try:
            super().teardown_method(method)  # type: ignore[misc]
        finally:
            self.db.close()
            self.tmp.cleanup()


class TestSQLiteContract(_SQLiteFile, ProcessStorageContract, StorageContract):
    def make_storage(self, namespace: str) -> Storage:
        return SQLiteStorage(self.db, namespace)

    def close_storage(self, storage: Storage) -> None:
        pass  # the shared database closes in teardown

    def storage_factory(self, namespace: str) -> Any:
        return functools.partial(SQLiteStorage, self.path, namespace)


class TestSQLiteAsyncContract(_SQLiteFile, AsyncStorageContract):
    def make_async_storage(self, namespace: str) -> AsyncStorage:
        return SQLiteStorage(self.db, namespace).aio()

    async def aclose_async_storage(self, storage: AsyncStorage) -> None:
        pass


class TestSQLiteMemoryDatabaseContract(StorageContract):
    """A ``:memory:`` database: one connection shared under a lock."""

    threads = 8

    def setup_method(self, method: Any = None) -> None:
        self.db = SQLiteDatabase(":memory:")
        super().setup_method(method)

    def teardown_method(self, method: Any = None) -> None:
        super().teardown_method(method)
        self.db.close()

    def make_storage(self, namespace: str) -> Storage:
        return SQLiteStorage(self.db, namespace)

    def close_storage(self, storage: Storage) -> None:
        pass
