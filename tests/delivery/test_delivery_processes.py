"""The delivery stores across processes: concurrent claimers, dispatchers, and kill -9.

Each test runs against a SQLite file (WAL) in ``tmp_path`` and against a real Redis
(``CHATMGMT_REDIS_URL`` or a private redis-server, see ``storage.redis_helpers``). Workers are
``spawn``-ed processes (``webhook.delivery_process_helpers``); both stores lease with the
``now`` passed to ``claim_due``, so the lease checks are exact, not timing-dependent.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatmgmt.ports import Delivery, DeliveryStatus, DeliveryStore
from delivery.delivery_process_helpers import (
    Spec,
    churn_worker,
    claim_and_hang_worker,
    claim_finish_worker,
    close,
    dispatcher_worker,
    drain_worker,
    open_storage,
    open_store,
)
from storage.redis_helpers import redis_url
from webhook.webhook_helpers import Receiver, message_event

NOW = 1_764_000_000.0
CTX = multiprocessing.get_context("spawn")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spec]:
    """Where the processes meet: a SQLite file, or a fresh namespace on the test Redis."""
    if request.param == "sqlite":
        yield ("sqlite", str(tmp_path / "wh.db"), "acme")
        return
    url = redis_url()
    namespace = f"whproc-{uuid.uuid4().hex[:8]}"
    yield ("redis", url, namespace)
    storage = open_storage(("redis", url, namespace))
    try:
        storage.delete_namespace()  # the outbox and every :wh key of the namespace
    finally:
        storage.close()


@pytest.fixture
def store(spec: Spec) -> Iterator[DeliveryStore]:
    s = open_store(spec)
    yield s
    close(s)


def _delivery(i: int, ep: str, chats: tuple[str, ...]) -> Delivery:
    did = f"d{i:04d}"
    return Delivery(did, ep, "message.customer", (did,), chats, f'{{"n":{i}}}'.encode(), NOW, NOW)


def _collect(results: Any, procs: list[Any], count: int, timeout: float = 40) -> list[Any]:
    """``count`` results from the workers (fails if one died without reporting)."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        try:
            out.append(results.get(timeout=0.5))
        except Exception:
            if not any(p.is_alive() for p in procs) and results.empty():
                break
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    assert len(out) == count, "a worker process died without reporting"
    return out


def _start_together(procs: list[Any], readies: list[Any], go: Any) -> None:
    for p in procs:
        p.start()
    for r in readies:
        assert r.wait(30), "a worker process did not start"
    go.set()


def _kill_9(proc: Any) -> None:
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL


def _assert_all_delivered_once(store: DeliveryStore, ids: set[str]) -> dict[str, bytes]:
    """Every delivery is DELIVERED with exactly one attempt; returns who made it, by id."""
    got = store.deliveries()
    assert {d.id for d in got} == ids
    not_delivered = [
        (d.id, d.status.value) for d in got if d.status is not DeliveryStatus.DELIVERED
    ]
    assert not not_delivered, not_delivered[:5]
    twice = [(d.id, [a.response for a in d.attempts]) for d in got if len(d.attempts) != 1]
    assert not twice, f"{len(twice)} deliveries finished other than once, e.g. {twice[:3]}"
    assert store.deliveries(status=DeliveryStatus.PENDING) == []
    return {d.id: d.attempts[0].response for d in got}


# --------------------------------------------------------------------------- claiming


ENDPOINTS = ["ep-a", "ep-b", "ep-c"]


def _mixed_deliveries(n: int) -> list[Delivery]:
    """``n`` deliveries over three endpoints and 12 chats each; every 10th has no chat and
    every 17th spans two chats (a batch), so per-chat order constrains the claims."""
    out = []
    for i in range(n):
        ep = ENDPOINTS[i % 3]
        chat = f"c{(i // 3) % 12}"
        if i % 10 == 0:
            chats: tuple[str, ...] = ()
        elif i % 17 == 0:
            chats = (chat, f"c{(i // 3 + 5) % 12}")
        else:
            chats = (chat,)
        out.append(_delivery(i, ep, chats))
    return out


def test_three_processes_claim_every_delivery_exactly_once(
    spec: Spec, store: DeliveryStore
) -> None:
    """3 processes loop ``claim_due``/``finish`` over 200 deliveries on 3 endpoints: each is
    claimed by exactly one process (leases are long: a second claim would be under a live
    lease), finished once, and a chat's next delivery is claimed only after the previous one
    finished."""
    deliveries = _mixed_deliveries(200)
    assert store.add(deliveries) == 200
    results = CTX.Queue()
    go = CTX.Event()
    readies = [CTX.Event() for _ in range(3)]
    procs = [
        CTX.Process(
            target=claim_finish_worker,
            args=(spec, i, ENDPOINTS, 3, 30.0, readies[i], go, results),
            daemon=True,
        )
        for i in range(3)
    ]
    _start_together(procs, readies, go)
    outcomes = _collect(results, procs, 3)

    errors = [e for *_, errs in outcomes for e in errs]
    assert not errors, errors[:5]
    claimed_by: dict[str, list[int]] = defaultdict(list)
    claim_returned: dict[str, float] = {}
    finish_started: dict[str, float] = {}
    for index, claims, finishes, _ in outcomes:
        for did, _ep, _now, _until, returned in claims:
            claimed_by[did].append(index)
            claim_returned[did] = returned
        for did, _ep, started in finishes:
            finish_started[did] = started
    twice = {did: who for did, who in claimed_by.items() if len(who) > 1}
    assert not twice, f"claimed again under a live lease: {dict(list(twice.items())[:5])}"
    ids = {d.id for d in deliveries}
    assert set(claimed_by) == ids, f"never claimed: {sorted(ids - set(claimed_by))[:5]}"
    assert set(finish_started) == ids
    assert len({who[0] for who in claimed_by.values()}) >= 2, "only one process got work"

    made_by = _assert_all_delivered_once(store, ids)
    assert all(made_by[did] == f"w{who[0]}".encode() for did, who in claimed_by.items())

    # per-chat order across processes: the next delivery of a chat was claimed (its claim
    # returned) only after the previous one's finish began
    for ep in ENDPOINTS:
        by_chat: dict[str, list[str]] = defaultdict(list)
        for d in deliveries:
            if d.endpoint_id == ep:
                for chat in d.chat_keys:
                    by_chat[chat].append(d.id)
        for chat, order in by_chat.items():
            for prev, nxt in itertools.pairwise(order):
                assert claim_returned[nxt] > finish_started[prev], (ep, chat, prev, nxt)

    if spec[0] == "sqlite":
        with sqlite3.connect(spec[1]) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --------------------------------------------------------------------------- dispatchers


def test_three_dispatcher_processes_deliver_every_event_exactly_once(spec: Spec) -> None:
    """3 :class:`Dispatcher` processes share one outbox and one delivery store and post to a
    real loopback receiver: each of the 120 events × 2 endpoints is answered with a 2xx
    exactly once, in each chat's order, and the store ends with everything delivered.

    Delivery is at least once: an attempt that fails below HTTP is retried, and the retry is
    not a duplicate. The receiver resets the first request it reads on each path, and under
    load it may reset connections before reading them (seen: a connection reset, then a 2xx
    on the retry a second later). What would be a duplicate — a delivery claimed again under a
    live lease, or sent again after it succeeded — is a second 2xx: a second 2xx attempt on
    the stored record, or a second request the receiver answered with a 2xx."""
    receiver = Receiver()
    storage = open_storage(spec)
    store = open_store(spec)
    paths = ["/a", "/b"]
    try:
        for p in paths:
            receiver.default[p] = "slow:0.002"  # a 2xx after a moment, so processes interleave
            receiver.script(p, ["reset"])  # read, then the connection reset: no answer
        events = [message_event(i, chat=f"c_{i % 8}") for i in range(120)]
        storage.outbox.append(events)
        results = CTX.Queue()
        go = CTX.Event()
        readies = [CTX.Event() for _ in range(3)]
        procs = [
            CTX.Process(
                target=dispatcher_worker,
                args=(spec, i, receiver.port, paths, readies[i], go, results),
                daemon=True,
            )
            for i in range(3)
        ]
        _start_together(procs, readies, go)
        outcomes = _collect(results, procs, 3)

        errors = [e for *_, errs in outcomes for e in errs]
        assert not errors, errors[:5]
        assert sum(o[1] for o in outcomes) == 120  # each outbox entry fanned out once
        assert storage.outbox.pending() == 0
        assert len([o for o in outcomes if o[2] > 0]) >= 2, "only one process sent"
        want = {e.id for e in events}
        got = store.deliveries()
        assert {d.id for d in got} == want and len(got) == 240
        # the stored records: delivered, with exactly one 2xx attempt, the last one; every
        # attempt before it failed (a claim under a live lease would add a second 2xx)
        retried = {(d.endpoint_id, d.id): d for d in got if len(d.attempts) > 1}
        for d in got:
            answers = [(a.status, a.error) for a in d.attempts]
            assert d.status is DeliveryStatus.DELIVERED, (d.endpoint_id, d.id, answers)
            assert d.attempts and d.attempts[-1].ok, (d.endpoint_id, d.id, answers)
            assert not any(a.ok for a in d.attempts[:-1]), (
                f"{d.endpoint_id}/{d.id} got a 2xx more than once: {answers}"
            )
        # the processes' counters agree with the stored records
        assert sum(o[3] for o in outcomes) == 240
        assert sum(o[2] for o in outcomes) == sum(len(d.attempts) for d in got)
        for p in paths:
            ep = p.strip("/")
            received = receiver.by_path(p)
            [reset] = [r for r in received if not r.accepted]  # the scripted one only
            assert reset.answer == "reset"
            assert (ep, reset.msg_id) in retried, "the reset request was not retried"
            answered = [r for r in received if r.accepted]
            counts = Counter(r.msg_id for r in answered)
            dup = {k: n for k, n in counts.items() if n != 1}
            assert not dup, f"{p}: answered with a 2xx more than once: {dup}"
            assert set(counts) == want, f"{p}: never delivered: {sorted(want - set(counts))[:5]}"
            # each chat's deliveries were answered in the store's queue order
            added: dict[str, list[str]] = defaultdict(list)
            for d in store.deliveries(ep):
                added[d.chat_keys[0]].append(d.id)
            sent: dict[str, list[str]] = defaultdict(list)
            for r in answered:
                sent[r.json()["chat_id"]].append(r.msg_id)
            assert sent == added
    finally:
        receiver.close()
        close(store)
        close(storage)


# --------------------------------------------------------------------------- kill -9


def test_deliveries_leased_by_a_killed_process_are_claimed_again_after_the_lease(
    spec: Spec, store: DeliveryStore
) -> None:
    """A process claims the ready heads (lease 1 s at ``NOW``) and is killed with SIGKILL
    before finishing: nobody gets them while the lease holds; a restarted process gets them
    at its end and finishes everything exactly once."""
    lease_s = 1.0
    eps = ["ep-a", "ep-b"]
    deliveries = []
    for e, ep in enumerate(eps):
        for i in range(17):  # chats k0..k4 (3 each), then two without a chat
            chats = (f"k{i % 5}",) if i < 15 else ()
            deliveries.append(_delivery(e * 100 + i, ep, chats))
    store.add(deliveries)
    heads = {(d.endpoint_id, d.id) for d in deliveries if int(d.id[1:]) % 100 in (0, 1, 2, 3, 4)}
    heads |= {(d.endpoint_id, d.id) for d in deliveries if not d.chat_keys}

    recv, send = CTX.Pipe(duplex=False)
    proc = CTX.Process(
        target=claim_and_hang_worker, args=(spec, eps, NOW, 10, lease_s, send), daemon=True
    )
    proc.start()
    assert recv.poll(30), "the claiming process did not report"
    claimed = recv.recv()
    assert set(claimed) == heads and len(claimed) == len(heads)  # every ready head, once
    _kill_9(proc)

    # the lease holds after the kill: nothing to claim (the rest wait behind the heads)
    for ep in eps:
        assert store.claim_due(ep, NOW + lease_s / 2, 100, lease_s) == []
        assert store.claim_due(ep, NOW + lease_s - 0.001, 100, lease_s) == []
    assert all(d.status is DeliveryStatus.PENDING and not d.attempts for d in store.deliveries())

    # a restarted worker, once the lease ran out
    results = CTX.Queue()
    drain = CTX.Process(
        target=drain_worker,
        args=(spec, eps, NOW + lease_s + 0.001, 30.0, "drain", results),
        daemon=True,
    )
    drain.start()
    [(claims, errors)] = _collect(results, [drain], 1)
    assert not errors, errors
    counts = Counter(claims)
    assert all(n == 1 for n in counts.values()), [k for k, n in counts.items() if n > 1]
    assert heads <= set(counts), heads - set(counts)
    made_by = _assert_all_delivered_once(store, {d.id for d in deliveries})
    assert set(made_by.values()) == {b"drain"}


def test_workers_killed_mid_run_lose_nothing_and_finish_nothing_twice(
    spec: Spec, store: DeliveryStore, tmp_path: Path
) -> None:
    """Workers claiming and finishing on the wall clock (lease 10 s), two at a time, are each
    killed with SIGKILL at a random moment while the next one runs; a restarted worker drains
    the rest once the leases ran out. Every delivery ends delivered with exactly one attempt,
    no delivery was claimed again while a lease on it held (the killed workers' leases
    included), and the deliveries a killed worker held were claimed again."""
    # long enough that a worker starved by a loaded machine never outlives its own lease (the
    # drain passes a `now` past every lease, so a long lease costs no waiting)
    lease_s = 10.0
    eps = ["ep-a", "ep-b"]
    # five chats per endpoint: few ready heads, so the killed workers' leases block most work
    deliveries = [_delivery(i, eps[i % 2], (f"c{(i // 2) % 5}",)) for i in range(300)]
    store.add(deliveries)
    rng = random.Random(7)
    logs = []
    alive: list[Any] = []
    for round_ in range(4):
        log = tmp_path / f"claims-{round_}.log"
        logs.append((f"r{round_}", log))
        started = CTX.Event()
        proc = CTX.Process(
            target=churn_worker,
            args=(spec, round_, eps, lease_s, 0.01, str(log), started, 40),
            daemon=True,
        )
        proc.start()
        assert started.wait(30), "the worker did not start"
        alive.append(proc)
        time.sleep(rng.uniform(0.05, 0.2))
        if len(alive) == 2:  # the older one dies while the newer one works
            _kill_9(alive.pop(0))
    for proc in alive:
        _kill_9(proc)
    assert store.deliveries(status=DeliveryStatus.PENDING), "the workers left nothing to drain"

    drain_now = time.time() + lease_s + 0.01  # every lease granted so far has run out
    results = CTX.Queue()
    drain = CTX.Process(
        target=drain_worker, args=(spec, eps, drain_now, 30.0, "drain", results), daemon=True
    )
    drain.start()
    [(drained, errors)] = _collect(results, [drain], 1)
    assert not errors, errors

    made_by = _assert_all_delivered_once(store, {d.id for d in deliveries})
    claims: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for who, log in logs:
        for line in log.read_text().splitlines():
            did, _ep, now, until = line.split()
            claims[did].append((float(now), float(until), who))
    for _ep, did in drained:
        claims[did].append((drain_now, drain_now + 30.0, "drain"))
    for did, cs in claims.items():
        cs.sort()
        for (_n1, until1, who1), (now2, _u2, who2) in itertools.pairwise(cs):
            assert now2 >= until1, f"{did} claimed by {who2} under {who1}'s live lease"
        # whoever finished it made the last claim: a finished delivery is never claimed again
        assert made_by[did] == cs[-1][2].encode(), (did, made_by[did], cs)
    assert set(claims) == set(made_by)
    finished_by_workers = sum(1 for who in made_by.values() if who != b"drain")
    assert finished_by_workers > 0
    reclaimed = [did for did, cs in claims.items() if len({w for *_, w in cs}) > 1]
    assert reclaimed, "no kill left a leased delivery behind"
