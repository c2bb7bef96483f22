"""The port contract suites against the PostgreSQL adapter: sync, async and across processes,
and its own promises (schema versions, tenants, the host's pool, LISTEN/NOTIFY)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from chatmgmt.ports import AsyncStorage, Storage
from chatmgmt.testing import (
    AsyncStorageContract,
    ProcessStorageContract,
    StorageContract,
)
from storage.postgres_helpers import postgres_url

pytestmark = pytest.mark.postgres


class _Shared:
    def setup_method(self, method: Any = None) -> None:
        from chatmgmt.storage.postgres import PostgresDatabase

        self.url = postgres_url()
        self.db = PostgresDatabase(self.url, max_size=20)
        super().setup_method(method)  # type: ignore[misc]

    def teardown_method(self, method: Any = None) -> None:
        try:
            super().teardown_method(method)  # type: ignore[misc]
        finally:
            self.db.close()


class TestPostgresContract(_Shared, ProcessStorageContract, StorageContract):
    def make_storage(self, namespace: str) -> Storage:
        from chatmgmt.storage.postgres import PostgresStorage

        return PostgresStorage(self.db, namespace)

    def close_storage(self, storage: Storage) -> None:
        storage.delete_namespace()  # type: ignore[attr-defined]

    def storage_factory(self, namespace: str) -> Any:
        from chatmgmt.storage.postgres import PostgresStorage

        return functools.partial(PostgresStorage, self.url, namespace)


class TestAsyncPostgresContract(AsyncStorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = postgres_url()
        super().setup_method(method)

    def make_async_storage(self, namespace: str) -> AsyncStorage:
        from chatmgmt.storage.postgres import AsyncPostgresStorage

        return AsyncPostgresStorage(self.url, namespace)

    async def aclose_async_storage(self, storage: AsyncStorage) -> None:
        await storage.delete_namespace()  # type: ignore[attr-defined]
        await storage.aclose()  # type: ignore[attr-defined]
