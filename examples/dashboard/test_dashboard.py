"""The dashboard in a real browser: uvicorn on a loopback port, headless Chromium (Debian's
``chromium`` package, installed by ``.ci/run``) driven by Playwright. Under CI it never skips:
a missing browser fails the test."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _load() -> ModuleType:
    path = Path(__file__).with_name("app.py")
    spec = importlib.util.spec_from_file_location("example_dashboard_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Iterator[str]:
    import uvicorn

    app = _load().create_app(interval_s=0.1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(200):  # wait until it listens (bounded; not a timing assertion)
        if srv.started:
            started.set()
            break
        started.wait(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


def _post(base: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _browser_path() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed: apt-get install -y chromium")


def test_dashboard_live_numbers_and_actions(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = _browser_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(server + "/")
            active = page.locator("#total-active")
            waiting = page.locator("#total-waiting")
            expect(active).to_have_text("0")
            expect(page.locator("#agents tbody tr")).to_have_count(4)
            # sales has ann (2) and bob (2): four chats are active, the fifth waits
            ids = [
                _post(server, "/api/chats", {"partner_id": f"u{i}", "skill_group": "sales"})["id"]
                for i in range(5)
            ]
            expect(active).to_have_text("4")
            expect(waiting).to_have_text("1")
            sales = page.locator('#groups tbody tr[data-key="sales"]')
            expect(sales.locator("td").nth(1)).to_have_text("1")
            # a moderation hit shows up as an alert
            _post(server, f"/api/chats/{ids[0]}/messages", {"text": "a badword here"})
            expect(page.locator("#alerts tbody tr")).to_have_count(1)
            # the supervisor's actions from the page: join, whisper, take over
            page.fill("#chat-id", ids[1])
            page.click("#join")
            expect(page.locator("#log")).to_have_text("Join: done")
            page.fill("#note", "offer the refund")
            page.click("#whisper")
            expect(page.locator("#log")).to_have_text("Whisper: done")
            page.click("#take-over")
            expect(page.locator("#log")).to_have_text("Take over: done")
            # the freed slot took the waiting chat; the supervisor holds one more
            expect(waiting).to_have_text("0")
            expect(active).to_have_text("5")
            expect(page.locator('#agents tbody tr[data-key="sup"] td').nth(3)).to_have_text(ids[1])
            # end chats through the API and from the page: the numbers go down
            _post(server, f"/api/chats/{ids[0]}/end", {})
            expect(active).to_have_text("4")
            page.click("#end")
            expect(page.locator("#log")).to_have_text("End: done")
            expect(active).to_have_text("3")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert (tmp_path / "dashboard.png").stat().st_size > 0
        finally:
            browser.close()


def test_actions_need_a_supervisor_role(server: str) -> None:
    chat = _post(server, "/api/chats", {"partner_id": "u", "skill_group": "sales"})["id"]
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(server, f"/api/chats/{chat}/join", {}, {"x-role": "agent", "x-supervisor": "bob"})
    assert err.value.code == 403
    ok = _post(
        server, f"/api/chats/{chat}/join", {}, {"x-role": "supervisor", "x-supervisor": "sup"}
    )
    assert ok["ok"] is True
