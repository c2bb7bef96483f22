"""The storage scripts as one Redis Functions library (Redis 7.0 and later).

Run as ``EVALSHA``, every call of a storage script first runs the shared prelude
(``lua/prelude.lua``): its ~40 local functions are made again on each call (~13k instructions
of ``redis-server``, 4 µs, per call). Loaded once with ``FUNCTION LOAD`` as a library, the
prelude runs once per server and each ``FCALL`` runs only its script's body.

One library holds every script, each body wrapped in a function of its own; the prelude's
``KEYS``, ``ARGV`` and ``P`` (the key prefix) become library locals that each registered function
sets before it runs its body (a server runs one function at a time). The library and function
names carry a digest of the code (``chatmgmt_<digest>``, ``cm_<digest>_<script>``), so workers
of different releases on one server each call their own code, and loading a library that is
already there changes nothing.

Used by the sync driver's short path (``storage/_redis_wire.py``) only: a server without
functions (before 7.0), or one that refuses ``FUNCTION LOAD`` (an ACL), is left to the scripts,
as are clusters and the asyncio face; the Lua is the same either way. Functions are kept in the
server's RDB and AOF and copied to replicas, so a failover keeps them; a ``FUNCTION FLUSH``
(or a restart without persistence) is answered by loading the library again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["Library", "library"]

_PRELUDE_PREFIX = "local P = KEYS[1]\n"


class Library:
    """The code of one library and the function name of each script it holds."""

    def __init__(self, code: str, names: Mapping[str, str]) -> None:
        self.code = code
        self.names = dict(names)


def library(head: str, prelude: str, bodies: Mapping[str, str]) -> Library:
    """The library for ``bodies`` (script name -> Lua body) after ``head`` (plain Lua) and
    ``prelude`` (which must set ``P`` from ``KEYS[1]`` in its one line ``local P = KEYS[1]``)."""
    if prelude.count(_PRELUDE_PREFIX) != 1:
        raise ValueError("the prelude must set P in one line 'local P = KEYS[1]'")
    shared = prelude.replace(_PRELUDE_PREFIX, "local P\n")
    digest = hashlib.sha1(
        "\0".join([head, shared, *(f"{n}\0{b}" for n, b in sorted(bodies.items()))]).encode()
    ).hexdigest()[:16]
    names = {name: f"cm_{digest}_{name}" for name in bodies}
    parts = [f"#!lua name=chatmgmt_{digest}\n", head, "local KEYS, ARGV\n", shared, "\n"]
    for name, body in sorted(bodies.items()):
        parts.append(f"local function body_{name}()\n{body}\nend\n")
        parts.append(
            f"redis.register_function('{names[name]}', function(keys, args)\n"
            f"  KEYS, ARGV, P = keys, args, keys[1]\n"
            f"  return body_{name}()\n"
            "end)\n"
        )
    return Library("".join(parts), names)
