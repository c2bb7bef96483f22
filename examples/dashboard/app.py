"""A supervisor dashboard: one page showing groups, queues, agents and alerts live (server-sent
events), with the supervisor's actions. FastAPI over an :class:`~chatmgmt.AsyncChatManager`;
no front-end build step (the page is plain HTML and JavaScript, below).

Run it::

    uvicorn --factory examples.dashboard.app:create_app

Who may act is the host's decision: this example lets a request act when it carries the header
``X-Role: supervisor`` (or ``admin``) and names the supervisor in ``X-Supervisor``; a real host
checks its own session instead. The role is recorded in every ``supervisor.*`` event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel

from chatmgmt import Agent, AgentStatus, AsyncChatManager, ChatSettings, CustomerInfo
from chatmgmt.errors import ChatMgmtError
from chatmgmt.monitoring import ChatMetrics

ROLES = frozenset({"supervisor", "admin"})


class OpenChat(BaseModel):
    """A chat to open."""

    partner_id: str
    skill_group: str = "sales"


class Note(BaseModel):
    """A message's or a whisper's text."""

    text: str = ""


def default_manager() -> AsyncChatManager:
    """A manager on the in-memory storage with a few agents (two groups, one supervisor)."""
    settings = ChatSettings.from_dict(
        {
            "sensitive_words": {
                "customer": [{"word": "badword", "category": "abuse", "action": "mask"}]
            }
        }
    )
    return AsyncChatManager(settings=settings)


AGENTS = (
    Agent("ann", "Ann", frozenset({"sales"}), 2, status=AgentStatus.ONLINE),
    Agent("bob", "Bob", frozenset({"sales", "support"}), 2, status=AgentStatus.ONLINE),
    Agent("eve", "Eve", frozenset({"support"}), 3, status=AgentStatus.AWAY),
    Agent("sup", "Sam (supervisor)", frozenset({"supervisors"}), 5, status=AgentStatus.ONLINE),
)


def create_app(
    manager: AsyncChatManager | None = None,
    *,
    metrics: ChatMetrics | None = None,
    interval_s: float = 0.25,
) -> FastAPI:
    """The dashboard app; ``interval_s`` is how often the stream sends a fresh snapshot."""
    mgr = manager if manager is not None else default_manager()
    if metrics is not None:
        mgr.observe(metrics)
    app = FastAPI(title="chatmgmt supervisor dashboard")
    ready = asyncio.Lock()
    seeded: list[bool] = []

    async def seed() -> None:
        async with ready:
            if not seeded and manager is None:
                for agent in AGENTS:
                    await mgr.register_agent(agent)
            seeded.append(True)

    async def snapshot() -> dict[str, Any]:
        await seed()
        snap = await mgr.monitor()
        if metrics is not None:
            metrics.record_snapshot(snap)
        return snap.to_dict()

    def who(role: str | None, supervisor: str | None) -> tuple[str, str]:
        if role not in ROLES or not supervisor:
            raise HTTPException(403, "supervisor actions need X-Role: supervisor and X-Supervisor")
        return supervisor, role

    async def act(coro: Any) -> dict[str, Any]:
        try:
            result = await coro
        except ChatMgmtError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"ok": True, "id": getattr(result, "id", None)}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.get("/api/snapshot")
    async def get_snapshot() -> dict[str, Any]:
        return await snapshot()

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            last = None
            while not await request.is_disconnected():
                data = json.dumps(await snapshot())
                if data != last:
                    yield f"data: {data}\n\n"
                    last = data
                await asyncio.sleep(interval_s)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/api/chats")
    async def open_chat(body: OpenChat) -> dict[str, Any]:
        await seed()
        info = CustomerInfo(partner_id=body.partner_id)
        return await act(mgr.open_chat(info, skill_group=body.skill_group))

    @app.post("/api/chats/{chat_id}/end")
    async def end_chat(chat_id: str) -> dict[str, Any]:
        return await act(mgr.end_chat(chat_id, by="api"))

    @app.post("/api/chats/{chat_id}/messages")
    async def customer_message(chat_id: str, body: Note) -> dict[str, Any]:
        chat = await mgr.get_chat(chat_id)
        sender = chat.customer.partner_id or "visitor"
        return await act(mgr.send_message(chat_id, body.text, sender=sender))

    @app.post("/api/chats/{chat_id}/{action}")
    async def supervise(
        chat_id: str,
        action: str,
        body: Note | None = None,
        x_role: str | None = Header(default=None),
        x_supervisor: str | None = Header(default=None),
    ) -> dict[str, Any]:
        supervisor, role = who(x_role, x_supervisor)
        if action == "join":
            return await act(mgr.join_chat(chat_id, supervisor, role=role))
        if action == "whisper":
            text = body.text if body is not None else ""
            return await act(mgr.whisper(chat_id, supervisor, text, role=role))
        if action == "take_over":
            return await act(mgr.take_over(chat_id, supervisor, role=role))
        if action == "supervisor_end":
            return await act(mgr.supervisor_end(chat_id, supervisor, role=role))
        raise HTTPException(404, f"no action {action!r}")

    app.state.manager = mgr
    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chat Monitoring</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
 h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.4em; }
 table { border-collapse: collapse; min-width: 40em; }
 th, td { border-bottom: 1px solid #ddd; padding: .3em .7em; text-align: left; }
 .totals span { display: inline-block; margin-right: 2em; font-size: 1.1em; }
 .totals b { font-size: 1.4em; } #log { color: #555; }
 button { margin-right: .3em; }
</style></head>
<body>
<h1>Chat Monitoring</h1>
<div class="totals">
 <span>Waiting <b id="total-waiting">–</b></span>
 <span>Active chats <b id="total-active">–</b></span>
 <span>Agents online <b id="total-online">–</b></span>
 <span>Free slots <b id="total-free">–</b></span>
</div>
<h2>Skill groups</h2>
<table id="groups"><thead><tr><th>Group</th><th>Waiting</th><th>Longest wait</th>
<th>Est. wait</th><th>Online</th><th>Busy</th><th>Away</th><th>Free slots</th>
<th>Active chats</th></tr></thead><tbody></tbody></table>
<h2>Agents</h2>
<table id="agents"><thead><tr><th>Agent</th><th>Status</th><th>Load</th><th>Chats</th>
<th>Idle since</th></tr></thead><tbody></tbody></table>
<h2>Moderation alerts</h2>
<table id="alerts"><thead><tr><th>When</th><th>Chat</th><th>Sender</th><th>Action</th>
<th>Categories</th></tr></thead><tbody></tbody></table>
<h2>Supervisor actions</h2>
<form id="actions" onsubmit="return false">
 <label>Chat <input id="chat-id" size="28" placeholder="chat id"></label>
 <label>As <input id="supervisor" value="sup" size="6"></label>
 <label>Note <input id="note" placeholder="whisper text"></label><br><br>
 <button id="join" data-action="join">Join</button>
 <button id="whisper" data-action="whisper">Whisper</button>
 <button id="take-over" data-action="take_over">Take over</button>
 <button id="end" data-action="supervisor_end">End</button>
</form>
<p id="log"></p>
<script>
const fmt = (s) => s === null || s === undefined ? "–" : Math.round(s) + " s";
const cell = (v) => { const td = document.createElement("td"); td.textContent = v; return td; };
function rows(id, items, cols) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    cols(item).forEach((v) => tr.appendChild(cell(v)));
    tr.dataset.key = item.id ?? item.name ?? "";
    return tr;
  }));
}
function render(s) {
  const sum = (k) => s.groups.reduce((a, g) => a + g[k], 0);
  document.getElementById("total-waiting").textContent = sum("waiting");
  document.getElementById("total-active").textContent =
    s.agents.reduce((a, ag) => a + ag.chats.length, 0);
  document.getElementById("total-online").textContent =
    s.agents.filter((a) => a.status === "online").length;
  document.getElementById("total-free").textContent = sum("free_slots");
  rows("groups", s.groups, (g) => [g.name || "(none)", g.waiting, fmt(g.longest_wait_s),
    fmt(g.estimated_wait_s), g.online, g.busy, g.away, g.free_slots, g.active_chats]);
  rows("agents", s.agents, (a) => [a.name || a.id, a.status, a.load + " / " + a.limit,
    a.chats.join(", "), a.idle_since ? new Date(a.idle_since * 1000).toLocaleTimeString() : "–"]);
  rows("alerts", s.alerts.slice().reverse(), (a) => [new Date(a.at * 1000).toLocaleTimeString(),
    a.chat_id, a.sender, a.action || a.type, a.categories.join(", ")]);
}
const source = new EventSource("/api/stream");
source.onmessage = (e) => render(JSON.parse(e.data));
async function supervise(b) {
  const chat = document.getElementById("chat-id").value.trim();
  const r = await fetch("/api/chats/" + encodeURIComponent(chat) + "/" + b.dataset.action, {
    method: "POST",
    headers: {"content-type": "application/json", "x-role": "supervisor",
              "x-supervisor": document.getElementById("supervisor").value},
    body: JSON.stringify({text: document.getElementById("note").value}),
  });
  const out = await r.json();
  document.getElementById("log").textContent =
    b.textContent + ": " + (r.ok ? "done" : (out.detail || r.status));
}
document.querySelectorAll("#actions button").forEach(
  (b) => b.addEventListener("click", () => supervise(b)));
</script>
</body></html>
"""
