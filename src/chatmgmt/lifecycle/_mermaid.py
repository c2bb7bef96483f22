"""Mermaid diagrams drawn from the transition table, and the generated blocks of the docs.

The blocks sit between ``<!-- BEGIN GENERATED: <mode> -->`` and ``<!-- END GENERATED: <mode> -->``
markers, one per reception mode. ``python -m chatmgmt.lifecycle._diagram`` rewrites a page.
"""

from __future__ import annotations

import re

from ..model import ChatState, ReceptionMode
from ._state import TRANSITIONS, ChatEvent, initial_state, is_terminal

__all__ = ["mermaid_diagram", "update_generated"]


def mermaid_diagram(mode: ReceptionMode) -> str:
    """A Mermaid ``stateDiagram-v2`` of ``mode``, drawn from :data:`TRANSITIONS`.

    One arrow per (state, next state) with its events joined by ``, ``; ``[*]`` marks the
    initial state, the states only entered from outside (the bot stage) and the terminal
    states. The output is deterministic (table order).
    """
    mode = ReceptionMode(mode)
    table = TRANSITIONS[mode]
    first = initial_state(mode)
    lines = ["stateDiagram-v2", f"    [*] --> {first.value}"]
    # a state no other state leads to is entered from outside too (the bot stage)
    entered = {nxt for st, events in table.items() for nxt in events.values() if nxt is not st}
    for state in ChatState:
        if state in table and state is not first and state not in entered:
            lines.append(f"    [*] --> {state.value}")
    for state in ChatState:
        if state not in table:
            continue
        edges: dict[ChatState, list[str]] = {}
        for event in ChatEvent:
            nxt = table[state].get(event)
            if nxt is not None:
                edges.setdefault(nxt, []).append(event.value)
        for nxt in ChatState:
            if nxt in edges:
                lines.append(f"    {state.value} --> {nxt.value}: {', '.join(edges[nxt])}")
    for state in ChatState:
        if state in table and is_terminal(mode, state):
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"


def _block(mode: ReceptionMode) -> str:
    return f"```mermaid\n{mermaid_diagram(mode)}```\n"


def update_generated(text: str) -> str:
    """``text`` with every generated block replaced by the current diagram of its mode.

    Raises ``ValueError`` when a mode's markers are missing, so a page cannot silently lose
    its diagram.
    """
    for mode in ReceptionMode:
        begin = f"<!-- BEGIN GENERATED: {mode.value} -->"
        end = f"<!-- END GENERATED: {mode.value} -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        found = pattern.search(text)
        if found is None:
            raise ValueError(f"markers for {mode.value} missing: {begin} ... {end}")
        start, stop = found.span()
        text = f"{text[:start]}{begin}\n{_block(mode)}{end}{text[stop:]}"
    return text
