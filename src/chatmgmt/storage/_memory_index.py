"""The sorted indexes of the memory store: a group's eligible agents by one ranking (picks in
O(log n)) and a queue's entries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from sortedcontainers import SortedList

from ..assignment._load import eligible, in_group, rank_entry_function
from ..model import AgentId, AgentLoad, ChatId, Ranking


class _Index:
    """Eligible agents of one group sorted by one ranking."""

    def __init__(self, group: str, ranking: Ranking, loads: Iterable[AgentLoad]) -> None:
        self.group = group
        self.ranking = ranking
        self.entry = rank_entry_function(ranking)  # rank_entry(load, ranking), one call
        self.sorted: SortedList = SortedList()
        self.keys: dict[AgentId, tuple[Any, ...]] = {}  # flat: (*key, agent id)
        for load in loads:
            self.update(load)

    def update(self, load: AgentLoad) -> None:
        aid = load.agent.id
        old = self.keys.pop(aid, None)
        if old is not None:
            self.sorted.remove(old)
        if in_group(load.agent, self.group) and eligible(load):
            entry = self.entry(load)
            self.keys[aid] = entry
            self.sorted.add(entry)

    def first(
        self, excluded: frozenset[AgentId], fit: Callable[[AgentId], bool] | None = None
    ) -> AgentId | None:
        """The first agent by the ranking not in ``excluded`` and, with ``fit``, for which
        ``fit(agent)`` holds (a claim's channel and fairness terms); agents passed over are
        skipped in order."""
        if not excluded and fit is None:
            try:
                head: AgentId = self.sorted[0][-1]  # one call into SortedList, no cast()
            except IndexError:
                return None
            return head
        for entry in self.sorted:
            aid = entry[-1]
            if aid not in excluded and (fit is None or fit(aid)):
                return cast(AgentId, aid)
        return None


class _Queue:
    def __init__(self) -> None:
        self.sorted: SortedList = SortedList()
        self.entries: dict[ChatId, tuple[float, int, ChatId]] = {}
        self.seq = 0
