"""``python -m chatmgmt demo``: a scripted day of a small support team, on the in-memory default.

Everything runs through the public API: agents in two skill groups, routing rules, a queue that
fills and drains, a VIP who jumps the queue, a customer who leaves a message, sensitive words,
a satisfaction rating, an auto-transfer, inactivity timeouts, an offer declined and taken by the
next agent, an SLA warning and breach, and the day's events delivered as signed webhooks to a
receiver the demo starts on loopback and verifies with ``verify``.
"""

from __future__ import annotations

import http.server
import json
import random
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from ._demo_bot import bot_scene
from .errors import MessageBlockedError
from .manager import ChatManager
from .model import Agent, AgentId, AgentStatus, Chat, CustomerInfo, EndReason, MessageRole
from .settings import ChatSettings
from .storage import MemoryStorage
from .testing import ManualClock, RecordingEventSink

__all__ = ["run_demo"]

SECRET = "whsec_ZGVtby1zZWNyZXQtZm9yLXRoZS1jaGF0bWdtdC1kZW1vIQ=="

DAY_START = 1_764_144_000.0  # 2025-11-26 08:00 UTC, a Wednesday


def _settings(port: int) -> ChatSettings:
    return ChatSettings.from_dict(
        {
            "assignment": {
                "strategy": "round_robin",
                "groups": {"vip": {"strategy": "saturation"}},
                # billing works with offers: an agent accepts or declines each chat
                "offers": {"groups": {"billing": {"enabled": True, "timeout_s": 30}}},
                "routing_rules": [
                    {"name": "vip customers", "min_vip_level": 3, "target_group": "vip"},
                ],
                "auto_transfer_s": 60,
                "sticky": {"after_close_s": 3600, "after_offline_message_s": 86400},
                "queue": {"estimate_handle_s": 240},
                "leave": {"action": "forward", "grace_s": 90},
            },
            "end_of_chat": {"warn_after_s": 120, "end_after_s": 240},
            "sensitive_words": {
                "customer": [
                    {"word": "idiot", "category": "abuse", "action": "mask"},
                    {"word": "傻逼", "category": "abuse", "action": "mask"},
                    {"word": "bomb", "category": "threat", "action": "block"},
                ],
                "agent": [{"word": "wechat", "category": "contact-info", "action": "warn"}],
            },
            "satisfaction": {"skip_if_agent_never_replied": True},
            # chats tagged urgent get a response SLA (warned when a fifth of a target is left)
            "sla": {
                "warn_before": 0.2,
                "policies": [
                    {
                        "name": "urgent",
                        "tags": ["urgent"],
                        "first_response_s": 60,
                        "next_response_s": 90,
                        "resolution_s": 1800,
                    }
                ],
            },
            "webhooks": {
                "endpoints": [
                    {
                        "id": "crm",
                        "url": f"http://127.0.0.1:{port}/hooks",
                        "event_types": ["*"],
                        "secrets": [SECRET],
                    }
                ],
                "allow_http": True,
                "allow_hosts": ["127.0.0.1"],
            },
        }
    )


class _Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        server: _Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Printer:
    def __init__(self, out: TextIO, clock: ManualClock) -> None:
        self.out = out
        self.clock = clock

    def section(self, title: str) -> None:
        print(f"\n== {title} ==", file=self.out)

    def row(self, what: str, detail: str = "") -> None:
        t = self.clock.now() - DAY_START
        stamp = f"{8 + int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}"
        print(f"  {stamp}  {what:<44} {detail}", file=self.out)


def _why(reason: Mapping[str, Any]) -> str:
    via = reason.get("via", "?")
    parts = [f"via {via}"]
    if "rule" in reason:
        parts.append(f"rule '{reason['rule']}'")
    if "agent" in reason and via != "strategy":
        parts.append(f"agent {reason['agent']}")
    if "strategy" in reason:
        parts.append(f"{reason['strategy']}, {reason.get('eligible', '?')} eligible")
    if reason.get("condition"):
        parts.append(f"because {reason['condition'].replace('_', ' ')}")
    return "; ".join(parts)


def _progress(out: TextIO, label: str, total: int) -> Callable[[int], None]:
    tty = out.isatty()

    def step(done: int) -> None:
        if not tty:
            return
        width = 30
        filled = int(width * done / max(1, total))
        end = "\n" if done >= total else ""
        print(
            f"\r  {label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end=end,
            file=out,
        )

    return step


def run_demo(out: TextIO | None = None, *, seed: int = 7) -> dict[str, int]:
    """Run the scripted day and print it; returns a summary (used by the tests)."""
    from .delivery import Dispatcher
    from .storage.memory_delivery import MemoryDeliveryStore
    from .webhook import verify

    out = out if out is not None else sys.stdout
    receiver = _Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    port = receiver.server_address[1]
    clock = ManualClock(DAY_START)
    sink = RecordingEventSink()
    storage = MemoryStorage(namespace="acme")
    settings = _settings(port)
    manager = ChatManager(storage, settings, clock=clock, rng=random.Random(seed), event_sink=sink)
    p = _Printer(out, clock)
    summary: dict[str, int] = {}
    try:
        p.section("08:00  the team logs in")
        team = [
            Agent(AgentId("ann"), "Ann", {"sales"}, reception_limit=1, account_order=1),
            Agent(AgentId("bob"), "Bob", {"sales"}, reception_limit=2, account_order=2),
            Agent(AgentId("vera"), "Vera", {"vip", "sales"}, reception_limit=2, account_order=3),
        ]
        for a in team:
            manager.register_agent(a)
            manager.set_agent_status(a.id, AgentStatus.ONLINE)
            groups = ", ".join(sorted(a.skill_groups))
            p.row(f"{a.display_name} is online", f"groups {groups}; limit {a.reception_limit}")

        p.section("09:00  customers arrive")
        clock.set(DAY_START + 3600)
        chats: dict[str, Chat] = {}
        arrivals = [
            ("u1", "Ada", 0),
            ("u2", "Grace", 0),
            ("u3", "Linus", 5),
            ("u4", "Ken", 0),
            ("u5", "Barbara", 0),
            ("u6", "Edsger", 0),
        ]
        for pid, name, level in arrivals:
            clock.advance(20)
            info = CustomerInfo(pid, name=name, vip_level=level, email=f"{pid}@example.com")
            chat = manager.open_chat(info, skill_group="sales")
            chats[pid] = chat
            p.row(f"{name} opens a chat -> {chat.agent_id or 'queue'}", _why(chat.route_reason))
            if chat.agent_id is not None and pid != "u4":  # Ken's agent will not answer
                manager.send_message(
                    chat.id,
                    f"Hello {name}, how can I help?",
                    role=MessageRole.AGENT,
                    sender=chat.agent_id,
                )
        clock.advance(10)
        frances = manager.open_chat(
            CustomerInfo("u7", name="Frances"), skill_group="sales", queue_first=True
        )
        for pid, chat in (("u6", chats["u6"]), ("u7", frances)):
            status = manager.queue_status(chat.id)
            if status is not None:
                wait = status.estimated_wait_s / 60
                p.row(
                    f"{pid} waits{' (queue-first)' if pid == 'u7' else ''}",
                    f"position {status.position + 1} of {status.length}, about {wait:.0f} min",
                )

        p.section("09:03  conversations and sensitive words")
        clock.advance(30)
        ada = chats["u1"]
        manager.send_message(ada.id, "Hi, my order #123 is late", sender="u1")
        p.row("Ada explains her problem")
        masked = manager.send_message(chats["u2"].id, "this takes forever, idiot", sender="u2")
        p.row("Grace loses patience", f"delivered as {masked.text!r}")
        try:
            manager.send_message(chats["u2"].id, "I will b.o.m.b your office", sender="u2")
        except MessageBlockedError as exc:
            p.row("Grace's next message is blocked", f"she sees: {exc.prompt[:38]}...")
        linus = chats["u3"]
        flagged = manager.send_message(
            linus.id, "add me on wechat", role=MessageRole.AGENT, sender=linus.agent_id or ""
        )
        p.row("an agent shares a contact: flagged", f"flags {sorted(flagged.flags)}")

        p.section("09:04  nobody answers Ken: auto-transfer after 60 s")
        clock.advance(31)
        fired = manager.tick()
        ken = manager.get_chat(chats["u4"].id)
        p.row(f"{fired} deadlines fired", f"Ken is now with {ken.agent_id or 'the queue'}")
        p.row("", _why(ken.route_reason))

        p.section("09:10  chats end, the queue drains in order")
        clock.set(DAY_START + 3600 + 600)
        for pid in ("u1", "u2", "u5"):
            done = manager.end_chat(chats[pid].id, reason=EndReason.AGENT, by="agent")
            p.row(
                f"{pid}'s chat ends", f"reason {done.end_reason.value if done.end_reason else ''}"
            )
        for pid, chat in (("u7", frances), ("u4", chats["u4"]), ("u6", chats["u6"])):
            current = manager.get_chat(chat.id)
            p.row(
                f"{pid} is now with {current.agent_id or 'nobody yet'}", _why(current.route_reason)
            )

        p.section("09:12  satisfaction")
        clock.advance(120)
        manager.rate(ada.id, 5, comment="Quick and kind", resolved=True)
        p.row("Ada rates her chat 5 of 5", f"attributed to {ada.agent_id}")
        for chat in manager.list_chats():
            if chat.state.is_open:
                manager.end_chat(chat.id, reason=EndReason.AGENT, by="agent")
        p.row("the morning's other chats end")

        p.section("11:00  Bob's connection drops: after 90 s his chats go to a colleague")
        clock.set(DAY_START + 3 * 3600)
        late: list[tuple[str, Chat]] = []
        for pid, name in (("u10", "Niklaus"), ("u11", "Tony"), ("u12", "Margaret")):
            chat = manager.open_chat(CustomerInfo(pid, name=name), skill_group="sales")
            manager.send_message(
                chat.id, f"Hi {name}!", role=MessageRole.AGENT, sender=chat.agent_id or ""
            )
            late.append((name, chat))
            p.row(f"{name} opens a chat -> {chat.agent_id}")
        manager.set_agent_status(AgentId("bob"), AgentStatus.OFFLINE)
        held = manager.agent("bob").active
        p.row("Bob goes offline", f"he holds {held} chat(s); the leave policy waits 90 s")
        clock.advance(91)
        manager.tick()
        for name, chat in late:
            now_with = manager.get_chat(chat.id)
            p.row(f"{name} is with {now_with.agent_id or 'the queue'}", _why(now_with.route_reason))
        manager.set_agent_status(AgentId("bob"), AgentStatus.ONLINE)
        for _name, chat in late:
            manager.end_chat(chat.id, reason=EndReason.AGENT, by="agent")

        p.section("12:30  lunch: the team is away, a customer leaves a message")
        clock.set(DAY_START + 4.5 * 3600)
        for a in team:
            manager.set_agent_status(a.id, AgentStatus.AWAY)
        alan = manager.open_chat(
            CustomerInfo("u8", name="Alan", email="alan@example.com"), skill_group="sales"
        )
        offer = manager.queue_status(alan.id)
        p.row(
            "Alan finds nobody",
            f"leave-a-message offered: {offer.leave_message if offer else None}",
        )
        manager.submit_message(alan.id, {"email": "alan@example.com", "message": "Call me back"})
        p.row("Alan leaves a message", "offline_message.created")
        clock.set(DAY_START + 5 * 3600)
        for a in team:
            manager.set_agent_status(a.id, AgentStatus.ONLINE)
        handed = manager.get_chat(alan.id)
        p.row("the team is back: the message is handed out", f"to {handed.agent_id}")
        manager.reply_offline_message(alan.id, handed.agent_id or "bob", "Called you, all sorted!")
        p.row(f"{handed.agent_id} replies", "offline_message.replied")
        clock.advance(600)
        again = manager.open_chat(CustomerInfo("u8", name="Alan"), skill_group="sales")
        p.row(f"Alan writes again -> {again.agent_id}", _why(again.route_reason))

        p.section("13:30  inactivity")
        clock.set(DAY_START + 5.5 * 3600)
        quiet = manager.open_chat(CustomerInfo("u9", name="Donald"), skill_group="sales")
        manager.send_message(
            quiet.id, "Hi Donald!", role=MessageRole.AGENT, sender=quiet.agent_id or ""
        )
        clock.advance(121)
        manager.tick()
        p.row("Donald is silent for 2 minutes", "warned")
        clock.advance(120)
        manager.tick()
        q = manager.get_chat(quiet.id)
        p.row("and 2 more", f"{q.state.value}: {q.end_reason.value if q.end_reason else ''}")

        bot_scene(manager, clock, p)

        p.section("14:00  billing works with offers: one declined, the next agent takes it")
        clock.set(DAY_START + 6 * 3600)
        for i, (aid, name) in enumerate((("wei", "Wei"), ("xia", "Xia"))):
            manager.register_agent(
                Agent(AgentId(aid), name, {"billing"}, reception_limit=1, account_order=10 + i)
            )
            manager.set_agent_status(aid, AgentStatus.ONLINE)
        invoice = manager.open_chat(CustomerInfo("u10", name="Margaret"), skill_group="billing")
        first = invoice.agent_id or ""
        p.row(
            f"Margaret's chat is offered to {first}",
            f"{invoice.state.value}, expires in 30 s; the offer holds {first}'s slot",
        )
        clock.advance(5)
        moved = manager.decline_offer(invoice.id, first, reason="in a meeting")
        p.row(f"{first} declines: 'in a meeting'", f"offered to {moved.agent_id} instead")
        clock.advance(8)
        taken = manager.accept_offer(invoice.id, moved.agent_id or "")
        p.row(
            f"{taken.agent_id} accepts",
            f"{taken.state.value}; {first} is never offered this chat again",
        )
        manager.end_chat(taken.id, reason=EndReason.AGENT, by=taken.agent_id or "agent")

        p.section("15:00  an urgent chat: its SLA warns, then breaches")
        clock.set(DAY_START + 7 * 3600)
        urgent = manager.open_chat(CustomerInfo("u13", name="Radia"), skill_group="sales")
        manager.tag_chat(urgent.id, "urgent", by="triage")
        who = urgent.agent_id or ""
        clock.advance(10)
        manager.send_message(urgent.id, "Hi Radia, on it.", role=MessageRole.AGENT, sender=who)
        clock.advance(10)
        manager.send_message(urgent.id, "The outage is back, please hurry", sender="u13")
        p.row(f"Radia's chat is tagged urgent ({who})", "policy 'urgent': next response in 90 s")
        for wait in (75, 95):
            clock.set(DAY_START + 7 * 3600 + 20 + wait)
            seen = len(sink.events)
            manager.tick()
            raised = [
                f"{e.type}: {e.data['metric']}"
                for e in sink.events[seen:]
                if e.type.startswith("sla.")
            ]
            p.row(f"{wait} s without an answer", ", ".join(raised) or "nothing due")
        clock.advance(5)
        manager.send_message(urgent.id, "Fixed, sorry!", role=MessageRole.AGENT, sender=who)
        ended = manager.end_chat(urgent.id, reason=EndReason.AGENT, by=who)
        sla = ended.sla.figures() if ended.sla is not None else {}
        nxt = sla.get("next_response", {})
        p.row(
            "the chat ends; chat.ended carries the SLA figures",
            f"next response {nxt.get('achieved_s')} s of {nxt.get('target_s')} s, "
            f"breached {nxt.get('breached')}",
        )

        p.section("end of the day: the live snapshot (manager.monitor())")
        snap = manager.monitor()
        for name, g in snap.groups.items():
            longest = "-" if g.longest_wait_s is None else f"{g.longest_wait_s:.0f} s"
            p.row(
                f"group {name or '(none)'}",
                f"waiting {g.waiting} (longest {longest}), online {g.online}, busy {g.busy}, "
                f"away {g.away}, free slots {g.free_slots}, active chats {g.active_chats}",
            )
        for ld in snap.agents:
            p.row(
                f"agent {ld.agent.id}",
                f"{ld.agent.status.value}, {len(ld.chats)}/{ld.agent.reception_limit} chats",
            )
        p.row("recent moderation alerts", str(len(snap.alerts)))

        p.section("webhooks")
        dispatcher = Dispatcher(
            storage, settings.webhooks, MemoryDeliveryStore(), clock=clock, rng=random.Random(seed)
        )
        pending = storage.outbox.pending()
        step = _progress(out, "delivering", pending)
        delivered = 0
        for _ in range(1000):
            report = dispatcher.run_once()
            delivered += report.delivered
            step(min(delivered, pending))
            if not report.attempts and not report.fanned_out:
                break
        dispatcher.close()
        ok = 0
        types: dict[str, int] = {}
        for body, headers in list(receiver.received):
            verify(body, headers, SECRET, now=int(clock.now()))
            ok += 1
            payload = json.loads(body)
            for item in payload if isinstance(payload, list) else [payload]:
                types[item["type"]] = types.get(item["type"], 0) + 1
        p.row(f"{ok} signed requests received and verified", f"{sum(types.values())} events")
        for type_, n in sorted(types.items()):
            print(f"      {type_:<28} {n}", file=out)
        summary = {"requests": ok, "events": sum(types.values()), "emitted": len(sink.events)}
    finally:
        receiver.shutdown()
        receiver.server_close()
    return summary
