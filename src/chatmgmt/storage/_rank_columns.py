"""The rank fields as SQL columns, shared by the SQL adapters (SQLite and PostgreSQL).

An agent's rank row holds its eligibility, status, census category and limit, then one column
per rank field; a ranked claim's ORDER BY is built only from :data:`RANK_COLUMNS`, so a field
outside it can never reach the SQL text.
"""

from __future__ import annotations

from ..model import Ranking, RankKey

__all__ = ["ALL_FIELDS", "RANK_COLUMNS", "RANK_NAMES"]

#: Rank fields -> column names of the rank table.
RANK_COLUMNS: dict[str, str] = {
    "active": "active",
    "saturation": "saturation",
    "free": "free",
    "last_assigned_at": "last_assigned_at",
    "idle_since": "idle_since",
    "tier": "tier",
    "account_order": "account_order",
    "tiebreak": "tiebreak",
}

#: Every rank field ascending, in the order of :data:`RANK_COLUMNS`: its
#: :func:`~chatmgmt.assignment._load.rank_entry` gives the raw values stored as rank columns.
ALL_FIELDS = Ranking("_columns", tuple(RankKey(field) for field in RANK_COLUMNS))

#: The rank table's value columns, in the order the adapters write them.
RANK_NAMES = ("eligible", "status", "category", "lim", *RANK_COLUMNS.values())
