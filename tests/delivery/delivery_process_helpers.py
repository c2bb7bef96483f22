"""Worker processes for the multi-process and kill -9 tests of the webhook delivery stores.

Every worker runs in a ``spawn``-ed process, so it takes a picklable :data:`Spec` (backend,
location, namespace) and opens its own store. Workers pass ``now`` to ``claim_due``
explicitly: both stores lease with the ``now`` they are given (never the server's clock).
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from typing import Any

from chatmgmt.ports import Attempt, DeliveryStatus, DeliveryStore

Spec = tuple[str, str, str]
"""``("sqlite", path, namespace)`` or ``("redis", url, namespace)``."""


def open_store(spec: Spec) -> DeliveryStore:
    """A delivery store over the spec's database or server (the store owns its connection)."""
    backend, where, namespace = spec
    if backend == "sqlite":
        from chatmgmt.storage.sqlite_delivery import SQLiteDeliveryStore

        return SQLiteDeliveryStore(where, namespace)
    from chatmgmt.storage.redis_delivery import RedisDeliveryStore

    return RedisDeliveryStore(where, namespace)


def open_storage(spec: Spec) -> Any:
    """The chat storage (its outbox) over the same database or server and namespace."""
    backend, where, namespace = spec
    if backend == "sqlite":
        from chatmgmt.storage.sqlite import SQLiteStorage

        return SQLiteStorage(where, namespace)
    from chatmgmt.storage.redis import RedisStorage

    return RedisStorage(where, namespace)


def close(obj: Any) -> None:
    with contextlib.suppress(Exception):
        obj.close()


def ok_attempt(at: float, who: str) -> Attempt:
    """A 2xx attempt whose response names the process that finished the delivery."""
    return Attempt(at, 200, 0.001, response=who.encode())


# --------------------------------------------------------------------------- claim / finish


def claim_finish_worker(
    spec: Spec,
    index: int,
    endpoints: list[str],
    limit: int,
    lease_s: float,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """Claim and finish (as delivered) until nothing is pending, recording every claim.

    Reports ``(index, claims, finishes, errors)``: a claim is ``(delivery id, endpoint, now,
    lease end, monotonic time the claim returned)``; a finish is ``(delivery id, endpoint,
    monotonic time before the finish call)``.
    """
    claims: list[tuple[str, str, float, float, float]] = []
    finishes: list[tuple[str, str, float]] = []
    errors: list[str] = []
    rng = random.Random(index)
    store = open_store(spec)
    try:
        store.health(endpoints[0])  # connect (and migrate) before the start line
        ready.set()
        go.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got_any = False
            for ep in endpoints:
                now = time.time()
                got = store.claim_due(ep, now, limit, lease_s)
                returned = time.monotonic()
                for d in got:
                    claims.append((d.id, ep, now, now + lease_s, returned))
                for d in got:
                    got_any = True
                    if rng.random() < 0.3:
                        time.sleep(0.0005)  # "sending": let the others interleave
                    finishes.append((d.id, ep, time.monotonic()))
                    at = time.time()
                    store.finish(
                        ep, d.id, ok_attempt(at, f"w{index}"), DeliveryStatus.DELIVERED, at
                    )
            if not got_any:
                if not store.deliveries(status=DeliveryStatus.PENDING):
                    break
                time.sleep(0.001)
        else:
            errors.append("deadline: deliveries still pending")
    except BaseException as exc:
        errors.append(repr(exc))
    finally:
        close(store)
    results.put((index, claims, finishes, errors))


def claim_and_hang_worker(
    spec: Spec, endpoints: list[str], now: float, limit: int, lease_s: float, conn: Any
) -> None:
    """Claim (at ``now``) on every endpoint, send the claimed ids to the parent, then hang
    until killed: a dispatcher that dies mid-send."""
    store = open_store(spec)
    claimed: list[tuple[str, str]] = []
    for ep in endpoints:
        claimed.extend((ep, d.id) for d in store.claim_due(ep, now, limit, lease_s))
    conn.send(claimed)
    while True:
        time.sleep(60)


def drain_worker(
    spec: Spec, endpoints: list[str], now: float, lease_s: float, who: str, results: Any
) -> None:
    """A restarted worker: claim (from ``now`` on, a tick later each round) and finish until
    nothing is pending. Reports ``(claims, errors)``, a claim being ``(endpoint, id)``."""
    claims: list[tuple[str, str]] = []
    errors: list[str] = []
    store = open_store(spec)
    try:
        while True:
            got_any = False
            for ep in endpoints:
                for d in store.claim_due(ep, now, 50, lease_s):
                    got_any = True
                    claims.append((ep, d.id))
                    store.finish(ep, d.id, ok_attempt(now, who), DeliveryStatus.DELIVERED, now)
            now += 0.001
            if not got_any:
                # every lease has run out and finishing a head readies the next: a pass that
                # claims nothing must find nothing pending
                stuck = store.deliveries(status=DeliveryStatus.PENDING)
                if stuck:
                    errors.append(f"{len(stuck)} pending deliveries cannot be claimed")
                break
    except BaseException as exc:
        errors.append(repr(exc))
    finally:
        close(store)
    results.put((claims, errors))


def churn_worker(
    spec: Spec,
    index: int,
    endpoints: list[str],
    lease_s: float,
    send_s: float,
    log_path: str,
    started: Any,
    quota: int = 0,
) -> None:
    """Claim and finish on the wall clock until killed, "sending" ``send_s`` per delivery.

    Every claim is appended to ``log_path`` as it returns (``id endpoint now until``, one
    ``os.write`` per line, before any of its deliveries is finished), so whatever the kill
    interrupts, the log holds every claim but possibly the last one. With ``quota`` > 0 the
    worker hangs (holding its last claim's leases, finishing nothing more) once it has claimed
    that many: however fast it runs against the parent, it leaves work behind for the drain.
    """
    store = open_store(spec)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    claimed = 0
    while True:
        for ep in endpoints:
            now = time.time()
            got = store.claim_due(ep, now, 3, lease_s)
            for d in got:
                os.write(fd, f"{d.id} {ep} {now!r} {now + lease_s!r}\n".encode())
            claimed += len(got)
            while got and quota and claimed >= quota:
                started.set()
                time.sleep(1)  # hung with live leases, until killed
            for d in got:
                time.sleep(send_s)
                at = time.time()
                store.finish(ep, d.id, ok_attempt(at, f"r{index}"), DeliveryStatus.DELIVERED, at)
        started.set()


# --------------------------------------------------------------------------- dispatcher


def dispatcher_worker(
    spec: Spec, index: int, port: int, paths: list[str], ready: Any, go: Any, results: Any
) -> None:
    """A whole :class:`~chatmgmt.webhook.Dispatcher` over the shared outbox and delivery store,
    posting to the parent's receiver until the outbox and the store are drained.

    Reports ``(index, fanned_out, attempts, delivered, errors)``.
    """
    from chatmgmt.settings import WebhookEndpoint
    from chatmgmt.webhook import Dispatcher
    from webhook.webhook_helpers import SECRET, settings_for

    errors: list[str] = []
    totals = [0, 0, 0]
    storage = open_storage(spec)
    store = open_store(spec)
    endpoints = [
        WebhookEndpoint(
            id=p.strip("/"),
            url=f"http://127.0.0.1:{port}{p}",
            secrets=(SECRET,),
            max_concurrency=3,
        )
        for p in paths
    ]
    # generous: an attempt that timed out on a loaded machine is retried, and the retry is a
    # second (legitimate, at-least-once) delivery that this exactly-once check would count
    settings = settings_for(*endpoints, timeout_s=20.0)
    dispatcher = Dispatcher(storage, settings, store, rng=random.Random(index), claim_limit=8)
    try:
        store.health(endpoints[0].id)
        ready.set()
        go.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            report = dispatcher.run_once()
            totals[0] += report.fanned_out
            totals[1] += report.attempts
            totals[2] += report.delivered
            if report.attempts == 0 and report.fanned_out == 0:
                if storage.outbox.pending() == 0 and not store.deliveries(
                    status=DeliveryStatus.PENDING
                ):
                    break
                time.sleep(0.005)
        else:
            errors.append("deadline: outbox or deliveries still pending")
    except BaseException as exc:
        errors.append(repr(exc))
    finally:
        dispatcher.close()
        close(store)
        close(storage)
    results.put((index, *totals, errors))
