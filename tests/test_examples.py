"""The examples in examples/ run: the FastAPI backend (on Redis) and the webhook bot."""

from __future__ import annotations

import importlib.util
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType

from chatmgmt import ChatManager, ChatSettings, CustomerInfo
from chatmgmt.delivery import Dispatcher
from chatmgmt.storage import MemoryStorage
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.testing import ManualClock, make_agent
from storage.redis_helpers import redis_url

EXAMPLES = Path(__file__).parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_async_backend_on_redis() -> None:
    from fastapi.testclient import TestClient

    backend = load("async_backend")
    settings = ChatSettings.from_dict(
        {"sensitive_words": {"customer": [{"word": "bomb", "action": "block"}]}}
    )
    app = backend.create_app(redis_url(), namespace=f"ex-{uuid.uuid4().hex}", settings=settings)
    with TestClient(app) as client:
        assert client.put("/agents/ann", json={"name": "Ann", "limit": 1}).status_code == 200
        client.post("/agents/ann/status/online")
        first = client.post("/chats", json={"partner_id": "u1", "name": "Ada"}).json()
        assert first["state"] == "active" and first["agent_id"] == "ann"
        second = client.post("/chats", json={"partner_id": "u2"}).json()
        assert second["state"] == "queued"
        assert client.get(f"/chats/{second['id']}").json()["queue"]["position"] == 0
        sent = client.post(f"/chats/{first['id']}/messages", json={"text": "hello", "sender": "u1"})
        assert sent.json()["text"] == "hello"
        blocked = client.post(
            f"/chats/{first['id']}/messages", json={"text": "a bomb", "sender": "u1"}
        )
        assert blocked.status_code == 422 and blocked.json()["blocked"] is True
        client.post(f"/chats/{first['id']}/end")
        assert client.get(f"/chats/{second['id']}").json()["agent_id"] == "ann"
        assert client.get("/chats/nope").status_code == 404


def test_webhook_bot_verifies_dedupes_and_acts() -> None:
    bot_module = load("webhook_bot")
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    bot = bot_module.WebhookBot(("127.0.0.1", 0), [secret])
    thread = threading.Thread(target=bot.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{bot.server_address[1]}/hook"
        settings = ChatSettings.from_dict(
            {
                "webhooks": {
                    "endpoints": [{"id": "bot", "url": url, "secrets": [secret]}],
                    "allow_http": True,
                    "allow_hosts": ["127.0.0.1"],
                }
            }
        )
        clock = ManualClock(time.time())  # the bot checks timestamps against its wall clock
        storage = MemoryStorage()
        manager = ChatManager(storage, settings, clock=clock, rng=random.Random(3))
        manager.register_agent(make_agent("ann"))
        chat = manager.open_chat(CustomerInfo(partner_id="u1"), skill_group="nobody")
        manager.submit_message(chat.id, {"email": "ada@example.com", "message": "Call me"})
        dispatcher = Dispatcher(storage, settings.webhooks, MemoryDeliveryStore(), clock=clock)
        for _ in range(10):
            report = dispatcher.run_once()
            if not report.attempts and not report.fanned_out:
                break
        dispatcher.close()
        types = [e["type"] for e in bot.events]
        assert "chat.started" in types and "offline_message.created" in types
        assert bot.tickets == ["ticket for ada@example.com: Call me"]
        assert bot.rejected == 0
        # a forged request is refused
        import urllib.error
        import urllib.request

        forged = urllib.request.Request(
            url,
            data=b'{"type": "chat.ended"}',
            headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        )
        try:
            urllib.request.urlopen(forged, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        assert bot.rejected == 1
    finally:
        bot.shutdown()
        bot.server_close()


def test_async_backend_on_postgres() -> None:
    from fastapi.testclient import TestClient

    from storage.postgres_helpers import postgres_url

    backend = load("async_backend")
    app = backend.create_app(
        "redis://unused", namespace=f"ex-{uuid.uuid4().hex}", postgres_url=postgres_url()
    )
    with TestClient(app) as client:
        assert client.put("/agents/ann", json={"name": "Ann", "limit": 1}).status_code == 200
        client.post("/agents/ann/status/online")
        first = client.post("/chats", json={"partner_id": "u1", "name": "Ada"}).json()
        assert first["state"] == "active" and first["agent_id"] == "ann"
        second = client.post("/chats", json={"partner_id": "u2"}).json()
        assert second["state"] == "queued"
        client.post(f"/chats/{first['id']}/end")
        assert client.get(f"/chats/{second['id']}").json()["agent_id"] == "ann"
