"""A redis-server for the storage tests: ``CHATMGMT_REDIS_URL``, or one started on demand.

Without ``CHATMGMT_REDIS_URL`` and without a ``redis-server`` binary the Redis tests skip with
a clear message — except under CI (``CI=true``), where a missing server fails them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

_state: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI the Redis tests must run (set CHATMGMT_REDIS_URL)")
    pytest.skip(f"{reason}; install redis-server or set CHATMGMT_REDIS_URL to run them")


def redis_url() -> str:
    """The URL of the test Redis, starting a private redis-server on first use."""
    url = os.environ.get("CHATMGMT_REDIS_URL")
    if url:
        return url
    if "url" in _state:
        return str(_state["url"])
    if "error" in _state:
        _missing(str(_state["error"]))
    binary = shutil.which("redis-server")
    if binary is None:
        _state["error"] = "redis-server not found on PATH"
        _missing(str(_state["error"]))
        raise AssertionError("unreachable")
    tmp = tempfile.TemporaryDirectory(prefix="chatmgmt-redis-")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp.name,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        _state["error"] = f"redis-server did not start on port {port}"
        _missing(str(_state["error"]))

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        tmp.cleanup()

    atexit.register(stop)
    _state["url"] = f"redis://127.0.0.1:{port}/0"
    return str(_state["url"])
