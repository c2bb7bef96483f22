"""A redis-server for the storage tests: ``CHATMGMT_REDIS_URL``, or one started on demand;
a Redis Cluster of three masters: ``CHATMGMT_REDIS_CLUSTER_URL``, or one started on demand.

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


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (``port + 10000``) is free and valid too."""
    while True:
        port = _free_port()
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


def _wait_ping(port: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def redis_cluster_url() -> str:
    """The URL of one node of a test Redis Cluster (``CHATMGMT_REDIS_CLUSTER_URL``, or a private
    cluster of three masters on loopback started on first use)."""
    url = os.environ.get("CHATMGMT_REDIS_CLUSTER_URL")
    if url:
        return url
    if "cluster_url" in _state:
        return str(_state["cluster_url"])
    if "cluster_error" in _state:
        _missing(str(_state["cluster_error"]))
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        _state["cluster_error"] = "redis-server or redis-cli not found on PATH"
        _missing(str(_state["cluster_error"]))
        raise AssertionError("unreachable")
    tmp = tempfile.TemporaryDirectory(prefix="chatmgmt-redis-cluster-")
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []

    def stop() -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()

    atexit.register(stop)
    for i in range(3):
        port = _free_cluster_port()
        workdir = os.path.join(tmp.name, str(i))
        os.mkdir(workdir)
        procs.append(
            subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    workdir,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    if not all(_wait_ping(p) for p in ports):
        _state["cluster_error"] = f"a cluster node did not start on {ports}"
        _missing(str(_state["cluster_error"]))
    subprocess.run(
        [
            cli,
            "--cluster",
            "create",
            *(f"127.0.0.1:{p}" for p in ports),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = subprocess.run(
            [cli, "-p", str(ports[0]), "cluster", "info"], capture_output=True, text=True
        ).stdout
        if "cluster_state:ok" in info:
            break
        time.sleep(0.1)
    else:
        _state["cluster_error"] = "the test Redis Cluster did not reach cluster_state:ok"
        _missing(str(_state["cluster_error"]))
    _state["cluster_url"] = f"redis://127.0.0.1:{ports[0]}"
    return str(_state["cluster_url"])
