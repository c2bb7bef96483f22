"""Fixtures of the storage tests: a Redis server (see ``redis_helpers``)."""

from __future__ import annotations

import pytest

from storage.redis_helpers import redis_url as _redis_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the test Redis (``CHATMGMT_REDIS_URL`` or a private redis-server)."""
    return _redis_url()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of the test PostgreSQL (``CHATMGMT_POSTGRES_URL`` or a private server)."""
    from storage.postgres_helpers import postgres_url as _postgres_url

    return _postgres_url()
