"""A bot that receives chatmgmt's webhooks and verifies them before acting.

It is a plain stdlib HTTP server: every request is checked with ``chatmgmt.webhook.verify``
(signature, timestamp tolerance, malformed headers) and de-duplicated by ``webhook-id``, because
delivery is at least once. It answers 2xx quickly and keeps what it learned; a real bot would
call its own APIs here (e.g. open a ticket for every ``offline_message.created``).

Run it::

    CHATMGMT_WEBHOOK_SECRET=whsec_... python examples/webhook_bot.py 8080
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chatmgmt.errors import WebhookVerificationError
from chatmgmt.webhook import verify


class WebhookBot(ThreadingHTTPServer):
    """The bot's server: verified events by type, and the ids it has seen."""

    def __init__(self, address: tuple[str, int], secrets: list[str]) -> None:
        super().__init__(address, _Handler)
        self.secrets = secrets
        self.seen: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.tickets: list[str] = []
        self.rejected = 0
        self.lock = threading.Lock()

    def handle_event(self, event: dict[str, Any]) -> None:
        """Act on one verified event."""
        self.events.append(event)
        if event["type"] == "offline_message.created":
            fields = event["data"]["fields"]
            self.tickets.append(f"ticket for {fields.get('email', '?')}: {fields.get('message')}")


class _Handler(BaseHTTPRequestHandler):
    server: WebhookBot

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            verify(body, headers, self.server.secrets)
        except WebhookVerificationError:
            with self.server.lock:
                self.server.rejected += 1
            self.send_response(401)
            self.end_headers()
            return
        with self.server.lock:
            duplicate = headers["webhook-id"] in self.server.seen
            self.server.seen.add(headers["webhook-id"])
            if not duplicate:
                payload = json.loads(body)
                for event in payload if isinstance(payload, list) else [payload]:
                    self.server.handle_event(event)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str]) -> int:
    """Serve on the port given as the first argument."""
    secret = os.environ.get("CHATMGMT_WEBHOOK_SECRET")
    if not secret or len(argv) != 1:
        print("usage: CHATMGMT_WEBHOOK_SECRET=whsec_... webhook_bot.py PORT", file=sys.stderr)
        return 2
    WebhookBot(("0.0.0.0", int(argv[0])), [secret]).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
