"""The transition table, its lookup function, end reasons, and the generated diagrams."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt.errors import ChatMgmtError, InvalidTransitionError
from chatmgmt.lifecycle import (
    END_REASONS,
    TRANSITIONS,
    ChatEvent,
    allowed_end_reasons,
    allowed_events,
    check_end,
    initial_state,
    is_terminal,
    mermaid_diagram,
    transition,
    update_generated,
)
from chatmgmt.lifecycle._diagram import main as diagram_main
from chatmgmt.model import ChatState, EndReason, ReceptionMode

RT = ReceptionMode.REAL_TIME
AO = ReceptionMode.ALWAYS_ON
S = ChatState
E = ChatEvent

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("mode", "state", "event", "expected"),
    [
        (RT, S.QUEUED, E.ASSIGN, S.ACTIVE),
        (RT, S.ACTIVE, E.END, S.ENDED),
        (RT, S.QUEUED, E.LEAVE_MESSAGE, S.LEFT_MESSAGE),
        (RT, S.QUEUED, E.ABANDON, S.ABANDONED),
        (RT, S.QUEUED, E.END, S.ENDED),  # queue timeout
        (RT, S.ACTIVE, E.TRANSFER, S.ACTIVE),
        (RT, S.ACTIVE, E.REQUEUE, S.QUEUED),
        (RT, S.QUEUED, E.QUEUE, S.QUEUED),
        (AO, S.UNASSIGNED, E.ASSIGN, S.ACTIVE),
        (AO, S.ACTIVE, E.UNASSIGN, S.UNASSIGNED),
        (AO, S.ACTIVE, E.TRANSFER, S.ACTIVE),
        (AO, S.ENDED, E.REOPEN, S.UNASSIGNED),
        (AO, S.ENDED, E.CUSTOMER_MESSAGE, S.UNASSIGNED),
    ],
)
def test_transitions(mode: ReceptionMode, state: S, event: E, expected: S) -> None:
    assert transition("c1", mode, state, event) is expected


def test_invalid_transition_names_chat_state_event_and_allowed() -> None:
    with pytest.raises(InvalidTransitionError) as info:
        transition("chat-9", RT, S.ENDED, E.CUSTOMER_MESSAGE)
    err = info.value
    assert (err.chat_id, err.state, err.event, err.allowed) == (
        "chat-9",
        "ended",
        "customer_message",
        (),
    )
    assert "chat-9" in str(err) and "ended" in str(err) and "customer_message" in str(err)
    assert isinstance(err, ChatMgmtError) and isinstance(err, ValueError)

    with pytest.raises(InvalidTransitionError) as info:
        transition("c", RT, S.QUEUED, E.TRANSFER)
    assert "assign" in info.value.allowed and "transfer" not in info.value.allowed


@pytest.mark.parametrize(
    ("mode", "state", "event"),
    [
        (AO, S.UNASSIGNED, E.LEAVE_MESSAGE),  # no submission in Always On Mode
        (AO, S.UNASSIGNED, E.ABANDON),
        (AO, S.ACTIVE, E.REQUEUE),  # Always On has a pool, not a queue
        (AO, S.QUEUED, E.ASSIGN),  # QUEUED does not exist in Always On Mode
        (RT, S.UNASSIGNED, E.ASSIGN),
        (RT, S.ACTIVE, E.UNASSIGN),
        (RT, S.ENDED, E.REOPEN),
        (AO, S.ENDED, E.ASSIGN),  # a reopen to an agent is reopen, then assign
        (AO, S.ENDED, E.OFFER),
        (RT, S.LEFT_MESSAGE, E.ASSIGN),
    ],
)
def test_refused(mode: ReceptionMode, state: S, event: E) -> None:
    with pytest.raises(InvalidTransitionError):
        transition("c", mode, state, event)


def test_initial_states() -> None:
    assert initial_state(RT) is S.QUEUED
    assert initial_state(AO) is S.UNASSIGNED


def test_terminal_states() -> None:
    assert {s for s in TRANSITIONS[RT] if is_terminal(RT, s)} == {
        S.ENDED,
        S.LEFT_MESSAGE,
        S.ABANDONED,
    }
    # Always On conversations can always continue.
    assert not any(is_terminal(AO, s) for s in TRANSITIONS[AO])


def test_end_reasons() -> None:
    assert check_end("c", RT, S.ACTIVE, EndReason.CUSTOMER_INACTIVITY) is S.ENDED
    assert check_end("c", RT, S.QUEUED, EndReason.QUEUE_TIMEOUT) is S.ENDED
    assert check_end("c", AO, S.ACTIVE, EndReason.AGENT) is S.ENDED
    with pytest.raises(InvalidTransitionError) as info:
        check_end("c", AO, S.ACTIVE, EndReason.CUSTOMER_INACTIVITY)
    assert info.value.event == "end:customer_inactivity"
    assert "end:agent" in info.value.allowed
    with pytest.raises(InvalidTransitionError):
        check_end("c", RT, S.ACTIVE, EndReason.QUEUE_TIMEOUT)
    with pytest.raises(InvalidTransitionError) as info:
        check_end("c", RT, S.ENDED, EndReason.AGENT)
    assert info.value.event == "end"


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[RT][S.QUEUED][E.REOPEN] = S.ACTIVE  # type: ignore[index]


# --------------------------------------------------------------------------- laws

modes = st.sampled_from(list(ReceptionMode))
states = st.sampled_from(list(ChatState))
events = st.sampled_from(list(ChatEvent))
reasons = st.sampled_from(list(EndReason))


@given(modes, states, events)
def test_every_triple_follows_the_table_or_raises(mode: ReceptionMode, state: S, event: E) -> None:
    expected = TRANSITIONS[mode].get(state, {}).get(event)
    if expected is None:
        with pytest.raises(InvalidTransitionError) as info:
            transition("c", mode, state, event)
        assert info.value.allowed == tuple(e.value for e in allowed_events(mode, state))
        assert event.value not in info.value.allowed
    else:
        assert transition("c", mode, state, event) is expected
        assert event in allowed_events(mode, state)


@given(modes, states, reasons)
def test_end_follows_both_tables(mode: ReceptionMode, state: S, reason: EndReason) -> None:
    ok = E.END in allowed_events(mode, state) and reason in allowed_end_reasons(mode, state)
    if ok:
        assert check_end("c", mode, state, reason) is S.ENDED
    else:
        with pytest.raises(InvalidTransitionError):
            check_end("c", mode, state, reason)


def test_table_is_closed_over_its_states() -> None:
    for mode, table in TRANSITIONS.items():
        for state, row in table.items():
            for nxt in row.values():
                assert nxt in table, (mode, state, nxt)
        assert initial_state(mode) in table
        for state in END_REASONS[mode]:
            assert E.END in table[state]
        for state, row in table.items():
            if E.END in row:
                assert allowed_end_reasons(mode, state)


def test_real_time_has_no_unassigned_and_always_on_no_queue() -> None:
    assert S.UNASSIGNED not in TRANSITIONS[RT]
    assert {S.QUEUED, S.LEFT_MESSAGE, S.ABANDONED}.isdisjoint(TRANSITIONS[AO])


@given(st.lists(events, max_size=40))
def test_always_on_never_reaches_abandoned_or_left_message(walk: list[E]) -> None:
    state = initial_state(AO)
    for event in walk:
        try:
            state = transition("c", AO, state, event)
        except InvalidTransitionError:
            continue
        assert state in (S.UNASSIGNED, S.OFFERED, S.ACTIVE, S.ENDED)
    assert EndReason.CUSTOMER_INACTIVITY not in set().union(*END_REASONS[AO].values())


@given(st.lists(events, max_size=40))
def test_real_time_walks_stay_in_real_time_states(walk: list[E]) -> None:
    state = initial_state(RT)
    for event in walk:
        if is_terminal(RT, state):
            with pytest.raises(InvalidTransitionError):
                transition("c", RT, state, event)
            continue
        try:
            state = transition("c", RT, state, event)
        except InvalidTransitionError:
            continue
        assert state is not S.UNASSIGNED


# --------------------------------------------------------------------------- diagrams


def test_diagram_is_the_table() -> None:
    for mode, table in TRANSITIONS.items():
        text = mermaid_diagram(mode)
        assert text.startswith("stateDiagram-v2\n")
        edges: dict[tuple[str, str], set[str]] = {}
        ends: set[str] = set()
        starts: set[str] = set()
        for line in text.splitlines()[1:]:
            arrow, _, label = line.strip().partition(": ")
            src, _, dst = arrow.partition(" --> ")
            if src == "[*]":
                starts.add(dst)
            elif dst == "[*]":
                ends.add(src)
            else:
                edges[(src, dst)] = set(label.split(", "))
        expected: dict[tuple[str, str], set[str]] = {}
        for state, row in table.items():
            for event, nxt in row.items():
                expected.setdefault((state.value, nxt.value), set()).add(event.value)
        assert edges == expected
        # the initial state, and the states only entered from outside (the bot stage)
        led_to = {n for s, row in table.items() for n in row.values() if n is not s}
        entered = {s.value for s in table if s not in led_to}
        assert starts == {initial_state(mode).value} | entered
        assert ("bot" in starts) == (ChatState.BOT in table)
        assert ends == {s.value for s in table if is_terminal(mode, s)}


def test_docs_page_is_current() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert update_generated(text) == text, (
        "docs/lifecycle.md is out of date: run "
        "python -m chatmgmt.lifecycle._diagram docs/lifecycle.md"
    )


def test_update_generated_replaces_stale_blocks_and_needs_markers(tmp_path: Path) -> None:
    page = (
        "x\n<!-- BEGIN GENERATED: real_time -->\nstale!\n<!-- END GENERATED: real_time -->\n"
        "<!-- BEGIN GENERATED: always_on -->\n<!-- END GENERATED: always_on -->\n"
    )
    new = update_generated(page)
    assert "stale!" not in new and mermaid_diagram(RT) in new and mermaid_diagram(AO) in new
    assert update_generated(new) == new
    with pytest.raises(ValueError, match="markers"):
        update_generated("no markers")

    path = tmp_path / "page.md"
    path.write_text(page, encoding="utf-8")
    assert diagram_main(["--check", str(path)]) == 1
    assert diagram_main([str(path)]) == 0
    assert diagram_main(["--check", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == new
