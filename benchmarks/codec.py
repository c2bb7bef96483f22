"""Codec benchmark: CPU time to encode and decode the values the durable adapters store.

``storage/_codec.py`` turns every chat, event, timer, message, agent load and customer into
JSON for SQLite, Redis and PostgreSQL, and back. The values measured are the ones an adapter
really encodes and decodes: two workloads run on a temporary SQLite file (``SQLiteStorage``)
while every ``encode``/``decode`` call the adapter makes is recorded:

- ``pair``: the open+end pair of ``benchmarks/storage.py`` and ``redis_pair.py`` (an anonymous
  web customer, 20 agents ONLINE in one group, every open also pays the end of the oldest of 40
  held chats);
- ``conversation``: a known customer with a Chinese name opens a chat, writes and is answered
  in Chinese (non-ASCII text: the escape path), the agent ends it and the customer rates it.

Baseline, in the same run: the reference path (the cattrs JSON converter and ``json``, which is
what every earlier release used, byte for byte); fast and reference blocks alternate so machine
load hits both alike. Decoding is measured on the rows each path writes (the baseline decodes
its own rows). Times are CPU time (``time.process_time``), medians of ``--repeats`` blocks.

Lines (``ratio`` = baseline / value, > 1: the codec is that many times cheaper):

- ``storage.codec.<pair|conversation>.encode_us`` / ``.decode_us``: all the encodes (decodes)
  one pair or conversation makes, per pair or conversation;
- ``storage.codec.<encode|decode>.<Type>_us``: per value of each type, over the recorded values;
- ``storage.codec.decode.Chat_reference_row_us``: a chat row written by the reference path
  (an earlier release's row) through today's ``decode``, beside the reference path itself.
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))

from _common import emit

from chatmgmt import ChatManager
from chatmgmt.model import (
    Agent,
    AgentId,
    AgentStatus,
    ChatId,
    CustomerInfo,
    EndReason,
    MessageRole,
)
from chatmgmt.storage import _codec, _sqlite_db, _sqlite_unit, sqlite
from chatmgmt.storage.sqlite import SQLiteStorage

GROUP = "support"
HELD = 40
_MODULES = (_sqlite_db, _sqlite_unit, sqlite)


class _Recorder:
    """Records the values the SQLite adapter encodes and the rows it decodes (with their
    class), by wrapping the codec functions the adapter's modules imported."""

    def __init__(self) -> None:
        self.encoded: list[Any] = []
        self.decoded: list[tuple[type, Any]] = []
        self.on = False

    def __enter__(self) -> _Recorder:
        def encode(value: Any) -> str:
            if self.on:
                self.encoded.append(value)
            return _codec.encode(value)

        def decode(data: Any, cls: type) -> Any:
            value = _codec.decode(data, cls)
            if self.on:
                self.decoded.append((cls, value))
            return value

        for module in _MODULES:
            for name, fn in (("encode", encode), ("decode", decode)):
                if hasattr(module, name):
                    setattr(module, name, fn)
        return self

    def __exit__(self, *exc: object) -> None:
        for module in _MODULES:
            for name in ("encode", "decode"):
                if hasattr(module, name):
                    setattr(module, name, getattr(_codec, name))


def _manager(path: str) -> ChatManager:
    manager = ChatManager(storage=SQLiteStorage(path, "bench"), rng=random.Random(1))
    for i in range(20):
        manager.register_agent(
            Agent(
                AgentId(f"agent-{i:03d}"),
                display_name=f"Agent {i}",
                skill_groups=frozenset({GROUP}),
                reception_limit=3,
                account_order=i,
                status=AgentStatus.ONLINE,
            ),
            now=0.0,
        )
    return manager


def _pairs(directory: str, n: int) -> tuple[list[Any], list[tuple[type, Any]]]:
    """What ``n`` open+end pairs encode and decode (after as many warm-up pairs)."""
    manager = _manager(f"{directory}/pair.db")
    customer = CustomerInfo(channel="web")
    held: collections.deque[str] = collections.deque()
    with _Recorder() as rec:
        for i in range(HELD + 2 * n):
            rec.on = i >= HELD + n
            if len(held) >= HELD:
                manager.end_chat(ChatId(held.popleft()), reason=EndReason.AGENT, now=i + 0.5)
            manager.open_chat(customer, skill_group=GROUP, chat_id=f"c{i}", now=float(i))
            held.append(f"c{i}")
    return rec.encoded, rec.decoded


def _conversations(directory: str, n: int) -> tuple[list[Any], list[tuple[type, Any]]]:
    """What ``n`` conversations in Chinese encode and decode."""
    manager = _manager(f"{directory}/conversation.db")
    with _Recorder() as rec:
        for i in range(2 * n):
            rec.on = i >= n
            t = 1_765_000_000.0 + 100 * i
            customer = CustomerInfo(
                partner_id=f"u{i}", channel="app", name="张伟", custom_fields={"城市": "上海"}
            )
            chat = manager.open_chat(
                customer, skill_group=GROUP, attributes={"订单": f"A{i}"}, now=t
            )
            manager.send_message(chat.id, "你好，我的订单还没有到。", now=t + 1.25)
            manager.send_message(
                chat.id,
                "您好！我马上为您查询。",
                role=MessageRole.AGENT,
                sender=str(chat.agent_id),
                now=t + 7.5,
            )
            manager.end_chat(chat.id, reason=EndReason.AGENT, by=str(chat.agent_id), now=t + 60)
            manager.rate(chat.id, 5, comment="很好", now=t + 70)
    return rec.encoded, rec.decoded


def _cpu_us(fn: Callable[[], None], per: int) -> float:
    c0 = time.process_time()
    fn()
    return (time.process_time() - c0) / per * 1e6


def _compare(
    name: str, fast: Callable[[], None], reference: Callable[[], None], per: int, repeats: int
) -> None:
    """One line: CPU µs per unit of ``fast`` beside ``reference``, blocks interleaved."""
    ours, base = [], []
    for _ in range(repeats):
        base.append(_cpu_us(reference, per))
        ours.append(_cpu_us(fast, per))
    value, baseline = statistics.median(ours), statistics.median(base)
    emit(name, value, "us", baseline, baseline / value)


def _workload(
    label: str, encoded: list[Any], decoded: list[tuple[type, Any]], units: int, args: Any
) -> None:
    ref = _codec._converter
    encode = _codec.encode
    rows = [(cls, encode(v)) for cls, v in decoded]
    ref_rows = [(cls, ref.dumps(v)) for cls, v in decoded]
    loops = args.loops

    def fast_encode() -> None:
        for _ in range(loops):
            for v in encoded:
                encode(v)

    def ref_encode() -> None:
        for _ in range(loops):
            for v in encoded:
                ref.dumps(v)

    def fast_decode() -> None:
        for _ in range(loops):
            for cls, row in rows:
                _codec.decode(row, cls)

    def ref_decode() -> None:
        for _ in range(loops):
            for cls, row in ref_rows:
                ref.loads(row, cls)

    per = units * loops
    _compare(f"storage.codec.{label}.encode_us", fast_encode, ref_encode, per, args.repeats)
    _compare(f"storage.codec.{label}.decode_us", fast_decode, ref_decode, per, args.repeats)


def _per_type(encoded: list[Any], decoded: list[tuple[type, Any]], args: Any) -> None:
    ref = _codec._converter
    by_type: dict[str, list[Any]] = collections.defaultdict(list)
    for v in encoded + [v for _, v in decoded]:
        by_type[type(v).__name__].append(v)
    loops = args.loops
    for name, values in sorted(by_type.items()):
        values = values[:50]
        cls = type(values[0])
        rows = [_codec.encode(v) for v in values]
        ref_rows = [ref.dumps(v) for v in values]
        per = len(values) * loops

        def fast_encode(values: list[Any] = values) -> None:
            for _ in range(loops):
                for v in values:
                    _codec.encode(v)

        def ref_encode(values: list[Any] = values) -> None:
            for _ in range(loops):
                for v in values:
                    ref.dumps(v)

        def fast_decode(rows: list[str] = rows, cls: type = cls) -> None:
            for _ in range(loops):
                for row in rows:
                    _codec.decode(row, cls)

        def ref_decode(rows: list[str] = ref_rows, cls: type = cls) -> None:
            for _ in range(loops):
                for row in rows:
                    ref.loads(row, cls)

        def old_rows(rows: list[str] = ref_rows, cls: type = cls) -> None:
            for _ in range(loops):
                for row in rows:
                    _codec.decode(row, cls)

        _compare(f"storage.codec.encode.{name}_us", fast_encode, ref_encode, per, args.repeats)
        _compare(f"storage.codec.decode.{name}_us", fast_decode, ref_decode, per, args.repeats)
        if name == "Chat":
            _compare(
                "storage.codec.decode.Chat_reference_row_us",
                old_rows,
                ref_decode,
                per,
                args.repeats,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="recorded pairs and conversations")
    parser.add_argument("--loops", type=int, default=5, help="passes over them per block")
    parser.add_argument("--repeats", type=int, default=9, help="blocks per path (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        pair = _pairs(directory, args.pairs)
        conversation = _conversations(directory, args.pairs)
    _workload("pair", *pair, args.pairs, args)
    _workload("conversation", *conversation, args.pairs, args)
    _per_type(pair[0] + conversation[0], pair[1] + conversation[1], args)
    counts = collections.Counter(type(v).__name__ for v in pair[0])
    print(
        f"# per pair: encodes {dict((k, n / args.pairs) for k, n in counts.items())}, "
        f"decodes {collections.Counter(c.__name__ for c, _ in pair[1])}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
