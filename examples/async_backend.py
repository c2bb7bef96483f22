"""An async chat backend: FastAPI wired to ``AsyncChatManager`` with Redis storage.

Run it (needs ``pip install chatmgmt[redis] fastapi uvicorn`` and a Redis server)::

    CHATMGMT_REDIS_URL=redis://localhost:6379/0 uvicorn examples.async_backend:app

Every worker process (uvicorn ``--workers N``) or machine that uses the same Redis and
namespace shares one consistent state: slots are claimed atomically in Redis, so no agent is
ever over its limit and no chat gets two agents. A periodic task calls ``tick()``.

On PostgreSQL instead (``pip install chatmgmt[postgres]``): set ``CHATMGMT_POSTGRES_URL``
(e.g. ``postgresql://app@localhost/app``); the tables are created on first use and every
change is one transaction, shared the same way by every worker and machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chatmgmt import (
    Agent,
    AgentStatus,
    AsyncChatManager,
    Chat,
    ChatMgmtError,
    ChatSettings,
    CustomerInfo,
    EndReason,
    MessageRole,
    NotFoundError,
)
from chatmgmt.errors import MessageBlockedError
from chatmgmt.storage import AsyncRedisStorage


class OpenChat(BaseModel):
    partner_id: str | None = None
    name: str = ""
    email: str = ""
    channel: str = "web"
    skill_group: str = ""
    queue_first: bool = False


class NewMessage(BaseModel):
    text: str
    role: MessageRole = MessageRole.CUSTOMER
    sender: str = ""


class AgentIn(BaseModel):
    name: str = ""
    groups: list[str] = []
    limit: int = 5


def chat_json(chat: Chat) -> dict[str, Any]:
    """What the backend tells its clients about a chat."""
    return {
        "id": chat.id,
        "state": chat.state.value,
        "agent_id": chat.agent_id,
        "skill_group": chat.skill_group,
        "why": dict(chat.route_reason),
    }


def create_app(
    redis_url: str,
    *,
    namespace: str = "acme",
    settings: ChatSettings | None = None,
    postgres_url: str | None = None,
) -> FastAPI:
    """The FastAPI application for one tenant (``namespace``): on PostgreSQL when
    ``postgres_url`` is given, else on Redis."""
    storage: Any
    if postgres_url:
        from chatmgmt.storage.postgres import AsyncPostgresStorage

        storage = AsyncPostgresStorage(postgres_url, namespace=namespace)
    else:
        storage = AsyncRedisStorage(redis_url, namespace=namespace)
    manager = AsyncChatManager(storage, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def ticker() -> None:
            while True:
                await manager.tick()
                await asyncio.sleep(1.0)

        task = asyncio.create_task(ticker())
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan)
    app.state.manager = manager

    @app.exception_handler(ChatMgmtError)
    async def library_error(_request: Request, exc: ChatMgmtError) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return JSONResponse({"error": str(exc)}, status_code=404)
        if isinstance(exc, MessageBlockedError):
            return JSONResponse({"blocked": True, "prompt": exc.prompt}, status_code=422)
        return JSONResponse({"error": str(exc)}, status_code=409)

    @app.put("/agents/{agent_id}")
    async def put_agent(agent_id: str, body: AgentIn) -> dict[str, Any]:
        load = await manager.register_agent(
            Agent(agent_id, body.name, set(body.groups), reception_limit=body.limit)
        )
        return {"id": load.agent.id, "status": load.agent.status.value}

    @app.post("/agents/{agent_id}/status/{status}")
    async def set_status(agent_id: str, status: AgentStatus) -> dict[str, Any]:
        load = await manager.set_agent_status(agent_id, status)
        return {"id": agent_id, "status": load.agent.status.value, "active": load.active}

    @app.post("/chats")
    async def open_chat(body: OpenChat) -> dict[str, Any]:
        customer = CustomerInfo(
            partner_id=body.partner_id, name=body.name, email=body.email, channel=body.channel
        )
        chat = await manager.open_chat(
            customer, skill_group=body.skill_group, queue_first=body.queue_first
        )
        return chat_json(chat)

    @app.get("/chats/{chat_id}")
    async def get_chat(chat_id: str) -> dict[str, Any]:
        out = chat_json(await manager.get_chat(chat_id))
        status = await manager.queue_status(chat_id)
        if status is not None:
            out["queue"] = {"position": status.position, "wait_s": status.estimated_wait_s}
        return out

    @app.post("/chats/{chat_id}/messages")
    async def post_message(chat_id: str, body: NewMessage) -> dict[str, Any]:
        message = await manager.send_message(chat_id, body.text, role=body.role, sender=body.sender)
        return {"id": message.id, "text": message.text}

    @app.post("/chats/{chat_id}/end")
    async def end_chat(chat_id: str, by: str = "agent") -> dict[str, Any]:
        return chat_json(await manager.end_chat(chat_id, reason=EndReason.AGENT, by=by))

    return app


app = create_app(
    os.environ.get("CHATMGMT_REDIS_URL", "redis://localhost:6379/0"),
    postgres_url=os.environ.get("CHATMGMT_POSTGRES_URL") or None,
)
