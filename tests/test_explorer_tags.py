"""Interleaving explorer: tagging a chat races its end; both changes land on the stored chat."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chatmgmt.model import ChatId, ChatState
from chatmgmt.ports import Storage
from chatmgmt.testing import Operation, crash_points, explore, find_violations
from test_explorer import OPERATIONS, build


def tags_and_end_both_stored(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    **_: Any,
) -> list[str]:
    """The usual invariants; at the end of a run, c1 is ENDED and tagged (no lost update)."""
    found = find_violations(storage, opened=opened, drained=drained, allowance=allowance)
    if drained:
        chat = storage.chats.get(ChatId("c1"))
        if chat is None or chat.state is not ChatState.ENDED:
            found.append(f"c1 is not ended: {chat and chat.state}")
        elif chat.tags != {"vip", "refund"}:
            found.append(f"c1 lost its tags: {sorted(chat.tags)}")
    return found


TAG = Operation("tag", lambda m: m.tag_chat("c1", "vip", "refund", by="ann", now=11.5))


def test_tag_and_end_both_land_in_every_interleaving() -> None:
    report = explore(
        build,
        [TAG, OPERATIONS["end"]],
        invariant=tags_and_end_both_stored,
        exhaustive_limit=500,
        random_runs=40,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_the_invariant_catches_a_lost_tag() -> None:
    """Without the tag operation the final check fails: it reads the stored record."""
    report = explore(
        build,
        [OPERATIONS["end"], OPERATIONS["message"]],
        invariant=tags_and_end_both_stored,
        exhaustive_limit=50,
        random_runs=0,
        probes=0,
    )
    assert report.violations
    assert "c1 lost its tags" in " ".join(report.violations[0].messages)


def test_tag_at_each_crash_point_leaves_nothing_to_repair() -> None:
    report = crash_points(build, TAG, now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
