"""The Redis storage adapter: one tenant's state shared by many workers and machines.

Install the extra: ``pip install chatmgmt[redis]`` (redis-py, sync and asyncio).
:class:`RedisStorage` is the sync face, :class:`AsyncRedisStorage` the asyncio face. Both run
the same operations (one copy, in :class:`_Ops`: generators that yield Redis calls) through a
driver, and both faces are generated from one table of port methods (:data:`_PORTS`), so they
differ only in how a call is made.

**Atomicity.** :meth:`RedisStorage.apply` is one Lua script per :class:`~chatmgmt.ports.Change`
(``lua/apply.lua``): it checks every precondition (the chat's version, an empty queue, the
claimed agent, or picks the agent of a ranked claim), and only then writes the release, the
claim, the inactive move, the queue entries, the timers, the chat, its message, the sticky mark
and the events (``XADD`` to the outbox stream) — all of it or nothing. Agent updates
(:meth:`~chatmgmt.ports.AgentStore.put`) are one script with a compare-and-set on the agent's
configuration version; customers likewise. The Lua lives in ``.lua`` files beside this module
and implements the load rules of :mod:`chatmgmt.assignment._load`; a test pins it to them.

**Ranked claims.** The plan names the agent it cannot know with
:data:`~chatmgmt.ports.PICKED` (JSON ``"\\u0000picked"``); the script picks the first eligible
agent of the group by the ranking's sorted set, not excluded, and substitutes the placeholder in
the chat, timer and event JSON it stores with the picked id. The Python side returns the
change bound to the picked agent (:meth:`~chatmgmt.ports.Change.bound`; in place for an
:attr:`~chatmgmt.ports.Change.owned` change, whose JSON was encoded before the script ran),
which equals what was stored.

**Reports.** The same script reads what the caller would otherwise read in round trips of its
own (:attr:`~chatmgmt.ports.Change.census`, :attr:`~chatmgmt.ports.Change.watch`): the group's
census hash before any effect (also on a refused claim), whose counts replace the census marks
(JSON ``"\\u0000census:<field>"``) in the chat, timer and event JSON the way the pick replaces
``PICKED``; after the effects, the heads of the watched queues (one ``EXISTS`` when they are all
empty) and the released agent's load. An open is then one script, an end a chat read and one
script.

**Key layout.** Every key of a tenant starts with ``cm:{<namespace>}:`` — the namespace is the
Redis Cluster *hash tag*, so all of a tenant's keys live in one hash slot and every script
touches keys of one slot only (a cluster spreads tenants across shards). User strings inside
key names (namespace, skill group, agent, queue, chat and counter ids) are escaped (``%``,
``{``, ``}`` and ``:`` become ``%25``, ``%7B``, ``%7D``, ``%3A``), so no id can move a key to
another slot or into another key's name; inside values and sorted-set members they are stored
verbatim.

**Data version.** ``cm:{<namespace>}:dv`` holds the version of the data layout
(:data:`DATA_VERSION`), written by the first script that writes. A namespace holding another
version is refused with :class:`~chatmgmt.errors.StorageError` (by every writing script, and
once per storage object before its first read), so an older release never misreads or damages
data a newer one wrote. Versions 1 (before capacity per channel) and 2 (before a chat's version,
state and creation number shared one field of ``chv``) are read as they are, each chat moved to
the one field at its next change. Version 3 and older kept a timer as ``<insertion
number><key>`` in ``tm:z`` (with ``tm:m`` and ``tm:seq``); version 4 keeps it by its key, so
the first write converts the pending timers (and sets the ``rec`` and ``chn`` flags of every
agent's hash, which say whether its assignment times and its chats' channels may be kept, and
its ``grp`` field, its groups) in its own script. Version 5 also keeps in each agent's hash
the numbers of chats it holds, counted and inactive (``n``, ``ni``: no ``SCARD`` when its
state is read), and the namespace's ranking ids in one string (``rkl``) read with the data
version in one ``MGET``; the first write sets those from the agents' chat sets and the
rankings' set and marks the namespace 5. Version 6 keeps a ranking's index only for the
(skill group, ranking) pairs picks have used (listed in ``rkp``; its SHA-1, ``rkh``, is read
with the data version instead of ``rkl``); the first write to an older namespace lists every
pair it kept an index for and marks it 6: a release that would ignore channel weights, look
for a chat's state in ``chs`` or for a timer in ``tm:m``, leave an agent's numbers behind or
keep the index of a pair not listed, refuses it from then on.

**Ranking index.** For every (skill group, ranking) a pick has used, a sorted set holds the
eligible agents of that group (ONLINE, below the limit); the first pick of a pair builds it.
Members are the ranking's key encoded as fixed-width,
order-preserving bytes (8 bytes per IEEE-754 double: the sign bit flipped for positive values,
every bit flipped for negative ones; descending keys negated, as :meth:`Ranking.key` does)
followed by the agent id, all with score 0: Redis orders equal scores by memcmp of the member,
which is exactly the order of ``(ranking.key(load), agent_id)``. A pick is ``ZRANGE 0 0``
(O(log n), plus the excluded agents skipped). The scripts keep every index of an agent in step
on each change of its load, and keep a census hash per group.

**Outbox.** A Redis Stream with a consumer group: state scripts ``XADD``; :meth:`claim` first
re-claims (``XCLAIM``) pending entries whose lease expired — leases are kept in a sorted set in
the caller's clock (``now`` + ``lease_s``), so an injected clock works — then reads new entries
with ``XREADGROUP``; :meth:`ack` is ``XACK`` + ``XDEL``. A dispatcher that dies leaves its
pending entries to the next claim after the lease.

**Redis Cluster.** Pass a ``redis.RedisCluster`` (or ``redis.asyncio.RedisCluster``) client, or
a URL with :meth:`RedisStorage.cluster`. :meth:`RedisStorage.delete_namespace` scans every
primary, every page.

The adapter's private modules, one concept each: ``_redis_keys`` (key names, escaping, the
scripts' loading, the data version), ``_redis_unit`` and ``_redis_ops`` (the operations'
generator bodies: the unit of work, customers and chats; the other ports), ``_redis_replies``
(reply decoding), ``_redis_driver`` (the commands and the sync and async drivers),
``_redis_wire`` (the sync driver's short path) and ``_redis_functions`` (the scripts as one
Redis Functions library). This module holds the two faces, generated from one table.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..ports import (
    AgentStore,
    Applied,
    AsyncAgentStore,
    AsyncChatStore,
    AsyncCustomerStore,
    AsyncOutbox,
    AsyncQueueStore,
    AsyncRateCounter,
    AsyncTimerStore,
    Change,
    ChatStore,
    CustomerStore,
    Outbox,
    QueueStore,
    RateCounter,
    TimerStore,
)

# re-exported: the webhook delivery store (``redis_delivery``) and the tests import these here
from ._redis_driver import _AsyncDriver as _AsyncDriver
from ._redis_driver import _connect_async as _connect_async
from ._redis_driver import _connect_sync as _connect_sync
from ._redis_driver import _Gen
from ._redis_driver import _ScanDelete as _ScanDelete
from ._redis_driver import _SyncDriver as _SyncDriver
from ._redis_keys import DATA_VERSION, key_prefix
from ._redis_keys import _enc as _enc
from ._redis_keys import _glob_escape as _glob_escape
from ._redis_keys import _num as _num
from ._redis_ops import _Ops
from ._redis_replies import _load as _load
from ._redis_replies import _s as _s

__all__ = ["DATA_VERSION", "AsyncRedisStorage", "RedisStorage", "key_prefix"]

# --------------------------------------------------------------------------- the faces

_PORTS: dict[str, tuple[str, ...]] = {
    "customers": ("get", "create", "replace"),
    "agents": ("put", "census", "censuses", "get", "list"),
    "chats": ("get", "messages", "list", "sticky", "purge"),
    "queues": ("peek", "position", "length", "heads"),
    "outbox": ("append", "claim", "ack", "pending", "events"),
    "timers": ("cancel", "claim_due", "get"),
    "counters": ("hit",),
}
"""The one table both faces are generated from: each port's methods, each running the
:class:`_Ops` generator ``<port>_<method>`` (same parameters and defaults as the port)."""


class _Port:
    """One port of a Redis storage face; its methods are generated from :data:`_PORTS`."""

    def __init__(self, name: str, methods: Mapping[str, Callable[..., Any]]) -> None:
        self._name = name
        self.__dict__.update(methods)

    def __repr__(self) -> str:
        return f"<Redis {self._name} port>"


def _sync_method(driver: _SyncDriver, op: Callable[..., _Gen[Any]]) -> Callable[..., Any]:
    @functools.wraps(op)
    def method(*args: Any, **kwargs: Any) -> Any:
        return driver.run(op(*args, **kwargs))

    return method


def _async_method(
    driver: _AsyncDriver, op: Callable[..., _Gen[Any]]
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(op)
    async def method(*args: Any, **kwargs: Any) -> Any:
        return await driver.run(op(*args, **kwargs))

    return method


def _ports(
    ops: _Ops, wrap: Callable[[Callable[..., _Gen[Any]]], Callable[..., Any]]
) -> dict[str, _Port]:
    return {
        port: _Port(port, {m: wrap(getattr(ops, f"{port}_{m}")) for m in methods})
        for port, methods in _PORTS.items()
    }


def _check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise TypeError(f"namespace: must be a string, got {namespace!r}")
    return namespace


class RedisStorage:
    """Every storage port in Redis, for one namespace (tenant); the sync face.

    ``client_or_url`` is a ``redis.Redis`` (or ``redis.RedisCluster``) client or a URL such as
    ``"redis://localhost:6379/0"`` (the storage then owns the client and :meth:`close` closes
    it; :meth:`cluster` does the same for a cluster). Any number of processes and machines may
    share one namespace.
    """

    customers: CustomerStore
    """The CRM."""
    agents: AgentStore
    """Agents and their load."""
    chats: ChatStore
    """Chats and messages (read side)."""
    queues: QueueStore
    """Queues and pools (read side)."""
    outbox: Outbox
    """The event log (also ``events()``, a testing convenience)."""
    timers: TimerStore
    """Deadlines (also ``get(key)``, a testing convenience)."""
    counters: RateCounter
    """Sliding-window counters."""

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` in its script, before the
    effects, and fills the census marks in the JSON it stores."""

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        self._namespace = _check_namespace(namespace)
        self._url = client_or_url if isinstance(client_or_url, str) else None
        self.client, self._owned = _connect_sync(client_or_url)
        self._ops = _Ops(namespace)
        self._driver = _SyncDriver(self.client, self._ops)
        for name, port in _ports(self._ops, functools.partial(_sync_method, self._driver)).items():
            setattr(self, name, port)

    @classmethod
    def cluster(cls, url: str, namespace: str = "default") -> RedisStorage:
        """A storage on a Redis Cluster reached through ``url`` (any node); it owns the client."""
        from redis.cluster import RedisCluster

        storage = cls(RedisCluster.from_url(url), namespace)
        storage._url, storage._owned = url, True
        storage._cluster = True
        return storage

    _cluster = False

    def __repr__(self) -> str:
        return f"RedisStorage(namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return self._ops.prefix

    def apply(self, change: Change) -> Applied:
        """See :meth:`chatmgmt.ports.Storage.apply`: one Lua script, all of it or nothing."""
        return self._driver.run(self._ops.apply(change))

    def aio(self) -> AsyncRedisStorage:
        """An async face on the same server and namespace (needs a storage made from a URL)."""
        if self._url is None:
            raise TypeError(
                "aio() needs a RedisStorage made from a URL; "
                "otherwise build AsyncRedisStorage(redis.asyncio client, namespace)"
            )
        if self._cluster:
            return AsyncRedisStorage.cluster(self._url, self._namespace)
        return AsyncRedisStorage(self._url, self._namespace)

    def delete_namespace(self) -> int:
        """Delete every key of this namespace (a tenant's removal; on a cluster, every
        primary); returns how many."""
        return self._driver.run(self._ops.delete_namespace())

    def close(self) -> None:
        """Close the client if this storage created it from a URL (and the connections of
        the driver's short path)."""
        if self._driver.wire is not None:
            self._driver.wire.close()
        if self._owned:
            self.client.close()


class AsyncRedisStorage:
    """Every storage port in Redis, for one namespace; the asyncio face (``redis.asyncio``).

    ``client_or_url`` is a ``redis.asyncio.Redis`` (or ``RedisCluster``) client or a URL (the
    storage then owns the client and :meth:`aclose` closes it). Same keys and scripts as
    :class:`RedisStorage`: sync and async workers may share one namespace.
    """

    customers: AsyncCustomerStore
    """The CRM."""
    agents: AsyncAgentStore
    """Agents and their load."""
    chats: AsyncChatStore
    """Chats and messages (read side)."""
    queues: AsyncQueueStore
    """Queues and pools (read side)."""
    outbox: AsyncOutbox
    """The event log (also ``events()``, a testing convenience)."""
    timers: AsyncTimerStore
    """Deadlines (also ``get(key)``, a testing convenience)."""
    counters: AsyncRateCounter
    """Sliding-window counters."""

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` in its script (as
    :attr:`RedisStorage.reports_census`)."""

    def __init__(self, client_or_url: Any, namespace: str = "default") -> None:
        self._namespace = _check_namespace(namespace)
        self.client, self._owned = _connect_async(client_or_url)
        self._ops = _Ops(namespace)
        self._driver = _AsyncDriver(self.client, self._ops)
        for name, port in _ports(self._ops, functools.partial(_async_method, self._driver)).items():
            setattr(self, name, port)

    @classmethod
    def cluster(cls, url: str, namespace: str = "default") -> AsyncRedisStorage:
        """A storage on a Redis Cluster reached through ``url``; it owns the client."""
        from redis.asyncio.cluster import RedisCluster

        storage = cls(RedisCluster.from_url(url), namespace)
        storage._owned = True
        return storage

    def __repr__(self) -> str:
        return f"AsyncRedisStorage(namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def key_prefix(self) -> str:
        """The prefix (with the cluster hash tag) of every key of this namespace."""
        return self._ops.prefix

    async def apply(self, change: Change) -> Applied:
        """See :meth:`chatmgmt.ports.AsyncStorage.apply`: one Lua script."""
        return await self._driver.run(self._ops.apply(change))

    async def delete_namespace(self) -> int:
        """Delete every key of this namespace (a tenant's removal; on a cluster, every
        primary); returns how many."""
        return await self._driver.run(self._ops.delete_namespace())

    async def aclose(self) -> None:
        """Close the client if this storage created it from a URL."""
        if self._owned:
            await self.client.aclose()
