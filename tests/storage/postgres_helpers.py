"""A PostgreSQL server for the storage tests: ``CHATMGMT_POSTGRES_URL``, or a private one.

Without the variable, the first caller starts a server of its own: ``initdb`` into a temporary
directory and ``pg_ctl start`` on a free loopback port (``fsync`` and ``synchronous_commit``
stay on: the crash tests rely on them). PostgreSQL refuses to run as root, so under root the
server runs as the system user ``chatmgmt-pg`` (created with ``useradd -r`` when missing) via
``runuser``. The server stops when the test session ends.

Without binaries the PostgreSQL tests skip with a clear message, except under CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import pytest

PG_USER = "chatmgmt-pg"

_state: dict[str, object] = {}


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI the PostgreSQL tests must run (CHATMGMT_POSTGRES_URL)")
    pytest.skip(f"{reason}; install PostgreSQL or set CHATMGMT_POSTGRES_URL to run them")


def pg_bindir() -> str | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return os.path.dirname(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(cmd: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        return list(cmd)
    return ["runuser", "-u", PG_USER, "--", *cmd]


def _ensure_user() -> None:
    if os.geteuid() != 0:
        return
    if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )


class PrivateServer:
    """A PostgreSQL server in a temporary directory on a loopback port (see the module)."""

    def __init__(
        self,
        bindir: str,
        *,
        synchronous_commit: str = "on",
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bindir = bindir
        _ensure_user()
        self.tmp = tempfile.mkdtemp(prefix="chatmgmt-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "server.log")
        if os.geteuid() == 0:
            shutil.chown(self.tmp, PG_USER)
        os.chmod(self.tmp, 0o755)
        self.port = _free_port()
        self.synchronous_commit = synchronous_commit
        self.settings = dict(settings or {})
        subprocess.run(
            _as_user(
                [
                    os.path.join(bindir, "initdb"),
                    "-D",
                    self.data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            f"-c max_connections=300 -c synchronous_commit={self.synchronous_commit} "
            "-c fsync=on -c shared_buffers=128MB"
            + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        )
        subprocess.run(
            _as_user(
                [
                    os.path.join(self.bindir, "pg_ctl"),
                    "-D",
                    self.data,
                    "-l",
                    self.log,
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def pid(self) -> int:
        """The postmaster's process id."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def kill9(self) -> None:
        """SIGKILL the postmaster and every backend (a crash: no shutdown checkpoint)."""
        pid = self.pid()
        subprocess.run(["pkill", "-9", "-P", str(pid)], check=False)
        os.kill(pid, 9)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        # the children of the postmaster die with it (they watch its pipe); wait for them
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = subprocess.run(
                ["pgrep", "-f", f"postgres.*{self.data}"], capture_output=True
            ).stdout
            if not alive:
                break
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (fast) and remove its directory."""
        subprocess.run(
            _as_user([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_private(
    *, synchronous_commit: str = "on", settings: dict[str, str] | None = None
) -> PrivateServer:
    """A new private server (the caller stops it; ``settings``: more ``-c name=value``);
    skips or fails without binaries."""
    bindir = pg_bindir()
    if bindir is None:
        _missing("PostgreSQL binaries (initdb, pg_ctl) not found")
        raise AssertionError("unreachable")
    return PrivateServer(bindir, synchronous_commit=synchronous_commit, settings=settings)


def postgres_url() -> str:
    """The URL of the test PostgreSQL, starting a private server on first use."""
    url = os.environ.get("CHATMGMT_POSTGRES_URL")
    if url:
        return url
    if "url" in _state:
        return str(_state["url"])
    if "error" in _state:
        _missing(str(_state["error"]))
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _state["error"] = "psycopg is not installed (pip install 'chatmgmt[postgres]')"
        _missing(str(_state["error"]))
    try:
        server = start_private()
    except subprocess.CalledProcessError as exc:
        _state["error"] = f"could not start PostgreSQL: {exc.stderr!r}"
        _missing(str(_state["error"]))
        raise AssertionError("unreachable") from exc
    atexit.register(server.stop)
    _state["url"] = server.url
    return server.url


def census_kept(
    conn: Any, ns: str
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """(kept, from the records): every group's census as ``chatmgmt_agent_census`` keeps it
    (schema 7) and as the stored agent records give it (their skill groups, status, census
    category, limit and counted chats), each ``(eligible, full, busy, away, offline,
    capacity, load)``; read in one snapshot of ``conn`` (a psycopg connection)."""
    from chatmgmt.assignment._load import CENSUS_CATEGORIES, census_category
    from chatmgmt.model import AgentLoad, AgentStatus
    from chatmgmt.storage._codec import decode

    want: dict[str, list[int]] = {}
    key = ns.encode()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows = conn.execute("SELECT data FROM chatmgmt_agents WHERE ns = %s", (key,)).fetchall()
        kept_rows = conn.execute(
            "SELECT grp, sum(n_eligible), sum(n_full), sum(n_busy), sum(n_away), "
            "sum(n_offline), sum(lim), sum(active) FROM chatmgmt_agent_census "
            "WHERE ns = %s GROUP BY grp",
            (key,),
        ).fetchall()
    for (data,) in rows:
        load = decode(data, AgentLoad)
        category = CENSUS_CATEGORIES.index(census_category(load))
        for group in {*load.agent.skill_groups, ""}:
            row = want.setdefault(group, [0] * 7)
            row[category] += 1
            if load.agent.status is AgentStatus.ONLINE:
                row[5] += load.agent.reception_limit
                row[6] += len(load.chats)
    kept = {str(g): tuple(int(v) for v in rest) for g, *rest in kept_rows}
    records = {g: tuple(v) for g, v in want.items()}
    # a group whose agents all left keeps rows of zeros
    return {g: v for g, v in kept.items() if any(v) or g in records}, records
