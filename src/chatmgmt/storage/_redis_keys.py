"""The Redis adapter's key layout and scripts: the data version, the escaping of user strings
inside key names (:func:`_enc`, mirrored by the Lua's ``enc``), :func:`key_prefix` with the
tenant's Cluster hash tag, numbers as the exact text Lua parses back, ranking ids, the loading of
the Lua files (one script each, or one Redis Functions library) and the error that refuses a
namespace of a newer data version. Split from ``storage/redis.py``; that module re-exports
:data:`DATA_VERSION` and :func:`key_prefix`."""

from __future__ import annotations

import functools
import re
from importlib import resources

from orjson import dumps as _dumps

from ..errors import StorageError
from ..model import RANK_FIELDS, Ranking
from ._redis_functions import Library, library

DATA_VERSION = 6
"""The version of the Redis data layout this release reads and writes (2: agents may keep
their channel weights and limits, the channels of their held chats and their assignment
times; 3: a chat's version, state and creation number in one field of ``chv``; 4: timers
keyed by their key in ``tm:z``, and the ``rec`` and ``chn`` flags and the ``grp`` groups in
each agent's hash; 5: the numbers of chats each agent holds, counted and inactive, in its
hash (``n``, ``ni``), and the rankings' ids in one string (``rkl``) read with the data
version; 6: a ranking's index kept only for the (skill group, ranking) pairs picks have used,
listed in one string (``rkp``) whose SHA-1 (``rkh``) is read with the data version. Version 1
to 5 namespaces read the same but for the timers of 1 to 3; the first write converts those,
sets the agents' fields and the list of every pair that namespace kept an index for, and
marks the namespace 6)."""

# --------------------------------------------------------------------------- key layout

_ESCAPES = {"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"}
_ESCAPE_RE = re.compile(r"[%{}:]")


def _enc(value: str) -> str:
    """Escape a user string for use inside a key name (mirrored by ``enc`` in the Lua)."""
    if "%" in value or "{" in value or "}" in value or ":" in value:
        return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value)
    return value  # (most names: four scans instead of a regex substitution)


def key_prefix(namespace: str) -> str:
    """The prefix of every key of ``namespace``: ``cm:{<escaped namespace>}``."""
    return f"cm:{{{_enc(namespace)}}}"


def _num(value: float) -> str:
    """A float as the exact text Redis and Lua parse back to the same double."""
    return repr(float(value))


def _exact(value: float) -> str:
    """A float as text that Redis, Lua and Python parse back to the same double, cheaper to
    write than :func:`_num`: orjson's shortest round-trip digits (~1.7k instructions; ``repr``
    took ~7.7k for a timestamp or a tiebreak, which need 16 or 17 digits and make its
    shortest-text search slow). The text may differ from ``repr``'s in form (``1e+16``): for
    values that are parsed, never compared as text (the apply plan's times, tiebreak and
    scores). A NaN or an infinity (JSON has no text for them) is written by ``repr``."""
    text = _dumps(float(value))
    if text == b"null":
        return repr(float(value))
    return text.decode()


def _rid(ranking: Ranking) -> str:
    """A ranking's id from its keys (names are irrelevant to the order): ``field+field-``."""
    parts = []
    for key in ranking.keys:
        if key.field not in RANK_FIELDS:  # RankKey validates; this is a second fence
            raise StorageError(f"rank field {key.field!r} unknown")
        parts.append(f"{key.field}{'-' if key.descending else '+'}")
    return "".join(parts)


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


_STREAM_ID = re.compile(r"^\d+-\d+$")
_SEQ_WIDTH = 20  # queue and timer members start with a zero-padded insertion number

# --------------------------------------------------------------------------- Lua

_SCRIPT_NAMES = (
    "apply",
    "agent_censuses",
    "agent_get",
    "chat_purge",
    "agent_list",
    "agent_put",
    "counter_hit",
    "customer_create",
    "customer_replace",
    "data_version",
    "outbox_ack",
    "outbox_append",
    "outbox_claim",
    "queue_heads",
    "queue_position",
    "timer_cancel",
    "timer_claim_due",
)


def lua_source(name: str) -> str:
    """The text of one Lua file of this package (``lua/<name>.lua``)."""
    return resources.files(__package__).joinpath("lua").joinpath(f"{name}.lua").read_text("utf-8")


@functools.cache
def _full_scripts() -> dict[str, str]:
    head = f"local DATA_VERSION = {DATA_VERSION}\n" + lua_source("prelude") + "\n"
    return {name: head + lua_source(name) for name in _SCRIPT_NAMES}


@functools.cache
def _library() -> Library:
    """Every storage script as one Redis Functions library (see ``_redis_functions``)."""
    return library(
        f"local DATA_VERSION = {DATA_VERSION}\n",
        lua_source("prelude"),
        {name: lua_source(name) for name in _SCRIPT_NAMES},
    )


_DV_MARK = "CHATMGMT_DATA_VERSION "


def _data_version_error(namespace: str, exc: BaseException) -> StorageError | None:
    text = str(exc)
    at = text.find(_DV_MARK)
    if at < 0:
        return None
    found = text[at + len(_DV_MARK) :].split()[0] if text[at + len(_DV_MARK) :].split() else "?"
    return StorageError(
        f"Redis namespace {namespace!r} holds data of version {found}; this release of chatmgmt "
        f"reads versions 1 to {DATA_VERSION} only: upgrade chatmgmt on every worker of this "
        "namespace (or point this one at another namespace)"
    )
