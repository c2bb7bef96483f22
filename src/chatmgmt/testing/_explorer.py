"""The interleaving explorer and the crash points: the proof that every stored state is sound.

Every manager operation is a generator that yields its port calls (:mod:`chatmgmt._core`), and
every change of a chat is one atomic :meth:`~chatmgmt.ports.Storage.apply`. So a test can drive
two or three operations call by call, choosing at each step which one performs its next
storage call, and check the invariants (:func:`~chatmgmt.testing.find_violations`) between any
two calls: each stored state in between is a committed state another process could read.

* :func:`explore` runs every interleaving of the operations' storage calls (depth first, each
  interleaving once) up to ``exhaustive_limit``, then ``random_runs`` seeded random ones.
* :func:`crash_points` stops one operation after each of its storage calls (``gen.close()``:
  the host died there), then runs ``reconcile()`` and ``tick()`` and checks the invariants,
  with ``drained=True`` after the reconcile (which drains).
* :func:`replay` runs one schedule again, to debug what a report found.

An operation is an :class:`Operation`: a label and a function that starts it on a manager.
The function calls the ordinary sync manager API (``lambda m: m.end_chat("c1", now=5.0)``):
the explorer hands it a *stepping* copy of the manager whose methods return the operation's
generator instead of running it. ``make_world`` must build a fresh, deterministic world each
time it is called (new storage, seeded ``rng``, :func:`~chatmgmt.testing.sequential_ids`, fixed
``now`` values), so that a schedule replays to the same states.

Calls of the host's sinks (events, system messages) touch no storage: they run at once and are
not scheduling points. Errors an operation raises on purpose (``expected``: conflicts, invalid
transitions, an agent who cannot take a chat, an unknown chat) end that operation and are
recorded in the report's outcomes; any other error is a violation.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from .._core import Op, resolve
from .._core._pick import Picker
from ..errors import (
    AssignmentError,
    ConflictError,
    InvalidTransitionError,
    NotAllowedError,
    NotFoundError,
    ValidationError,
)
from ..manager import ChatManager
from ..ports import (
    AgentStore,
    Change,
    ChatStore,
    Claim,
    CustomerStore,
    EventSink,
    MessageSink,
    QueueStore,
    Storage,
)
from ._invariants import find_violations, held_allowance, waits_in

__all__ = [
    "EXPECTED_ERRORS",
    "CrashReport",
    "ExplorationReport",
    "Invariant",
    "Operation",
    "Violation",
    "crash_points",
    "explore",
    "replay",
]

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ConflictError,
    InvalidTransitionError,
    AssignmentError,
    NotFoundError,
    ValidationError,
    NotAllowedError,
)
"""Errors an operation raises on purpose when it loses a race: they end it and are recorded
(``NotAllowedError``: an answer to an offer that moved on to another agent)."""

_SINKS = frozenset({EventSink.emit, MessageSink.deliver, Picker.pick})
Key = tuple[str, str]
"""What a port call touches: ``(kind, name)``, ``name`` ``"*"`` for every one of that kind."""


@attrs.frozen
class _Footprint:
    reads: frozenset[Key]
    writes: frozenset[Key]

    def conflicts(self, other: _Footprint) -> bool:
        """Whether the two calls may not be swapped: one writes what the other touches."""
        return _overlap(self.writes, other.reads | other.writes) or _overlap(
            other.writes, self.reads
        )


def _overlap(a: frozenset[Key], b: frozenset[Key]) -> bool:
    for kind, name in a:
        for kind2, name2 in b:
            if "*" in (kind, kind2) or (kind == kind2 and (name == name2 or "*" in (name, name2))):
                return True
    return False


_EVERYTHING = _Footprint(frozenset(), frozenset({("*", "*")}))


def _footprint(op: Op) -> _Footprint:
    """The storage a call reads and writes (the outbox is left out: equivalent runs may
    append their events in another order; unknown calls touch everything)."""
    fn, args = op.fn, (*op.args, *op.kwargs.values())
    one: Key
    if fn is ChatStore.get or fn is ChatStore.messages:
        one = ("chat", str(args[0]))
    elif fn is ChatStore.list:
        one = ("chat", "*")
    elif fn is ChatStore.sticky:
        one = ("sticky", str(args[0]))
    elif fn is AgentStore.get:
        one = ("agent", str(args[0]))
    elif fn in (AgentStore.list, AgentStore.census):
        one = ("agent", "*")
    elif fn in (QueueStore.peek, QueueStore.position, QueueStore.length):
        one = ("queue", str(args[0]))
    elif fn is CustomerStore.get:
        one = ("customer", str(args[0]))
    elif fn is AgentStore.put:
        return _Footprint(frozenset(), frozenset({("agent", str(getattr(args[0], "id", "*")))}))
    elif fn in (CustomerStore.create, CustomerStore.replace):
        key = str(getattr(args[0], "partner_id", "*"))
        return _Footprint(frozenset(), frozenset({("customer", key)}))
    elif fn is Storage.apply:
        return _change_footprint(args[0])
    else:
        return _EVERYTHING
    return _Footprint(frozenset({one}), frozenset())


def _change_footprint(change: Change) -> _Footprint:
    writes: set[Key] = {("chat", change.chat_id)}
    reads: set[Key] = set()
    claim = change.claim
    if isinstance(claim, Claim):
        writes.add(("agent", claim.agent_id))
    elif claim is not None:
        writes.add(("agent", "*"))
    for agent in (change.release, change.inactive[0] if change.inactive else None):
        if agent is not None:
            writes.add(("agent", agent))
    if change.require_empty is not None:
        reads.add(("queue", change.require_empty))
    writes.update(("queue", q) for q in change.remove)
    if change.push is not None:
        writes.add(("queue", change.push.queue))
    if change.cancel or change.schedule:
        writes.add(("timer", "*"))
    if change.sticky is not None:
        writes.add(("sticky", change.sticky.partner_id))
    return _Footprint(frozenset(reads), frozenset(writes))


class Invariant(Protocol):
    """What the explorer checks after each step: the violated invariants, as sentences.

    :func:`~chatmgmt.testing.find_violations` is one; wrap it (``functools.partial``) to pass
    ``count_inactive``, ``off_duty`` or ``queues``, or add checks of your own.
    """

    def __call__(
        self,
        storage: Storage,
        *,
        opened: Iterable[str] | None = ...,
        drained: bool = ...,
        allowance: Mapping[str, int] | None = ...,
    ) -> Sequence[str]: ...


@attrs.frozen
class Operation:
    """One operation to interleave: ``start(manager)`` calls the manager's public method (on
    the stepping copy the explorer passes) and returns what it returns, the generator.

    >>> end = Operation("end c1", lambda m: m.end_chat("c1", now=5.0))
    """

    label: str
    start: Callable[[ChatManager], object]


@attrs.frozen
class Violation:
    """An invariant broken after ``step`` storage calls of ``schedule`` (the index of the
    operation that took each step), with the calls made (``trace``) so it can be replayed
    (:func:`replay`) and read."""

    schedule: tuple[int, ...]
    step: int
    messages: tuple[str, ...]
    trace: tuple[str, ...]

    def __str__(self) -> str:
        calls = "\n    ".join(self.trace) or "(none)"
        broken = "\n    ".join(self.messages)
        return (
            f"after step {self.step} of schedule {list(self.schedule)}:\n    {broken}\n"
            f"  calls:\n    {calls}"
        )


@attrs.define
class ExplorationReport:
    """What :func:`explore` ran and found.

    ``runs``: interleavings run; ``exhaustive``: every interleaving was run (the tree was
    smaller than ``exhaustive_limit``); ``steps``: storage calls made in all; ``longest``:
    steps of the longest run; ``final_states``: distinct stored end states; ``outcomes``: how
    often each tuple of per-operation outcomes (``"ok"`` or the error's class name) occurred;
    ``violations``: the first violation of each run that had one; ``estimated``: the
    interleavings the probes estimated (after the reduction of independent calls);
    ``interleavings``: the distinct interleavings run depth first (0 when the estimate was
    over the limit and random schedules ran instead).
    """

    labels: tuple[str, ...]
    runs: int = 0
    exhaustive: bool = False
    estimated: int = 0
    interleavings: int = 0
    steps: int = 0
    longest: int = 0
    final_states: int = 0
    outcomes: Counter[tuple[str, ...]] = attrs.field(factory=Counter)
    violations: list[Violation] = attrs.field(factory=list)

    def assert_ok(self) -> None:
        """Raise :class:`AssertionError` with the first violations (and their schedules)."""
        if self.violations:
            shown = "\n".join(str(v) for v in self.violations[:3])
            raise AssertionError(
                f"{len(self.violations)} of {self.runs} interleavings of {list(self.labels)} "
                f"broke an invariant; first:\n{shown}"
            )


@attrs.define
class CrashReport:
    """What :func:`crash_points` ran and found: ``points`` crash points (0 to the operation's
    number of storage calls), ``repairs`` the non-zero repair counts ``reconcile()`` reported
    per crash point (a unit of work leaves nothing to repair, so this stays empty), and the
    ``violations`` (``step`` is the crash point)."""

    label: str
    points: int = 0
    repairs: dict[int, dict[str, int]] = attrs.field(factory=dict)
    violations: list[Violation] = attrs.field(factory=list)

    def assert_ok(self) -> None:
        """Raise :class:`AssertionError` with the violations found."""
        if self.violations:
            shown = "\n".join(str(v) for v in self.violations[:3])
            raise AssertionError(
                f"{len(self.violations)} of {self.points} crash points of {self.label!r} broke "
                f"an invariant; first:\n{shown}"
            )


# --------------------------------------------------------------------------- one run


def _identity(gen: Any) -> Any:
    return gen


def stepping(manager: ChatManager) -> ChatManager:
    """A copy of ``manager`` (same storage, core and sinks) whose methods return their
    operation's generator instead of running it."""
    clone = copy.copy(manager)
    clone._run = _identity  # type: ignore[method-assign]
    return clone


class _Run:
    """The operations of one world, driven one storage call at a time."""

    def __init__(
        self,
        make_world: Callable[[], ChatManager],
        operations: Sequence[Operation],
        invariant: Invariant,
        expected: tuple[type[BaseException], ...],
    ) -> None:
        self.manager = make_world()
        self.storage = self.manager.storage
        self.invariant = invariant
        self.expected = expected
        self.labels = [op.label for op in operations]
        self.schedule: list[int] = []
        self.last: tuple[int, _Footprint] | None = None  # who took the last step, and what
        # it touched
        self.trace: list[str] = []
        self.violation: Violation | None = None
        self._bound: dict[Any, Any] = {}
        self._opened: set[str] = set()
        self._allowance: dict[str, int] = {}
        self.outcomes = ["running"] * len(operations)
        self.pending: list[Op | None] = [None] * len(operations)
        self.gens: list[Generator[Op, Any, Any] | None] = []
        self.check(0)
        shadow = stepping(self.manager)
        for i, op in enumerate(operations):
            gen = op.start(shadow)
            if not isinstance(gen, Generator):
                raise TypeError(
                    f"operation {op.label!r} did not start a core operation (got {gen!r}); "
                    "call a manager method that changes storage"
                )
            self.gens.append(gen)
            self._advance(i, None, None)

    def enabled(self) -> list[int]:
        return [i for i, op in enumerate(self.pending) if op is not None]

    def reduced(self) -> list[int]:
        """The enabled operations, less those whose step would only swap two independent
        calls: after a call of operation j, a call of i < j touching nothing j's call wrote
        (and writing nothing it touched) makes the same run as i's call before j's, which is
        explored elsewhere (except for which of them draws the next id or random number)."""
        enabled = self.enabled()
        if self.last is None:
            return enabled
        j, last = self.last
        kept = []
        for i in enabled:
            op = self.pending[i]
            if i >= j or op is None or _footprint(op).conflicts(last):
                kept.append(i)
        return kept or enabled

    def _call(self, op: Op) -> Any:
        bound = self._bound.get(op.fn)
        if bound is None:
            bound = self._bound[op.fn] = resolve(op.fn, self.storage, self.manager._sinks)
        return bound(*op.args, **op.kwargs)

    def _advance(self, i: int, value: Any, error: BaseException | None) -> None:
        """Resume operation ``i`` with a call's result (or error) up to its next storage call;
        sink calls run on the way."""
        gen = self.gens[i]
        assert gen is not None
        try:
            while True:
                op = gen.send(value) if error is None else gen.throw(error)
                if op.fn not in _SINKS:
                    self.pending[i] = op
                    return
                value, error = None, None
                try:
                    value = self._call(op)
                except Exception as exc:  # handed to the operation, as the manager does
                    error = exc
        except StopIteration:
            self.outcomes[i] = "ok"
        except self.expected as exc:
            self.outcomes[i] = type(exc).__name__
        except Exception as exc:  # an error the operation should not raise
            self.outcomes[i] = type(exc).__name__
            self._fail([f"operation {self.labels[i]!r} raised {type(exc).__name__}: {exc}"])
        self.pending[i] = None
        self.gens[i] = None

    def step(self, i: int) -> None:
        """Operation ``i`` performs its next storage call; then the invariants are checked."""
        op = self.pending[i]
        assert op is not None
        self.schedule.append(i)
        self.trace.append(f"{self.labels[i]}: {op.name}")
        value: Any = None
        error: BaseException | None = None
        try:
            value = self._call(op)
        except Exception as exc:  # handed to the operation, as the manager does
            error = exc
        self._advance(i, value, error)
        footprint = _footprint(op)
        self.last = (i, footprint)
        if footprint.writes or error is not None or self.pending[i] is None:
            self.check(len(self.schedule))

    def close(self, i: int) -> None:
        """Abandon operation ``i`` where it stands (the host died)."""
        gen = self.gens[i]
        if gen is not None:
            gen.close()
        self.pending[i] = None
        self.gens[i] = None
        self.outcomes[i] = "crashed"

    def check(self, step: int, *, drained: bool = False) -> None:
        if self.violation is not None:
            return
        found = list(
            self.invariant(
                self.storage, opened=self._opened, drained=drained, allowance=self._allowance
            )
        )
        if found:
            self._fail(found, step)
            return
        for chat in self.storage.chats.list():
            self._opened.add(chat.id)
        # an agent at or over a limit (its reception limit in units, a channel's limit) may
        # not gain a chat
        self._allowance = held_allowance(self.storage)

    def _fail(self, messages: Sequence[str], step: int | None = None) -> None:
        if self.violation is None:
            self.violation = Violation(
                tuple(self.schedule),
                len(self.schedule) if step is None else step,
                tuple(messages),
                tuple(self.trace),
            )

    def fingerprint(self) -> tuple[Any, ...]:
        chats = sorted(
            (c.id, c.state.value, c.agent_id or "", waits_in(c) or "")
            for c in self.storage.chats.list()
        )
        loads = sorted(
            (ld.agent.id, ld.agent.status.value, ld.agent.reception_limit, tuple(sorted(ld.chats)))
            for ld in self.storage.agents.list()
        )
        queues = sorted({q for _id, _s, _a, q in chats if q})
        entries = [(q, tuple(c for c, _ in self.storage.queues.peek(q, 1000))) for q in queues]
        return (tuple(chats), tuple(loads), tuple(entries), tuple(self.outcomes))


def _drive(
    make_world: Callable[[], ChatManager],
    operations: Sequence[Operation],
    invariant: Invariant,
    expected: tuple[type[BaseException], ...],
    choose: Callable[[int, list[int]], int],
    max_steps: int,
    final_drained: bool,
    reduce: bool = False,
) -> tuple[_Run, list[list[int]]]:
    """One run: ``choose(step, enabled)`` picks the operation of each step. Returns the run
    and the operations enabled at each step (with ``reduce``: less those that would only
    swap two reads)."""
    run = _Run(make_world, operations, invariant, expected)
    choices: list[list[int]] = []
    while run.violation is None:
        enabled = run.reduced() if reduce else run.enabled()
        if not enabled:
            break
        if len(run.schedule) >= max_steps:
            run._fail([f"no end after {max_steps} steps (a livelock?)"])
            break
        choices.append(enabled)
        run.step(choose(len(run.schedule), enabled))
    if final_drained and run.violation is None:
        run.check(len(run.schedule), drained=True)
    return run, choices


# --------------------------------------------------------------------------- public drivers


def explore(
    make_world: Callable[[], ChatManager],
    operations: Sequence[Operation],
    *,
    invariant: Invariant = find_violations,
    exhaustive_limit: int = 500,
    random_runs: int = 200,
    probes: int = 8,
    seed: int = 0,
    final_drained: bool = True,
    max_steps: int = 2000,
    expected: tuple[type[BaseException], ...] = EXPECTED_ERRORS,
) -> ExplorationReport:
    """Run ``operations`` (two or three) through the interleavings of their storage calls on
    fresh worlds from ``make_world()``, checking ``invariant`` before the first call and after
    every call that writes.

    Two calls in a row of different operations that touch disjoint storage (say two reads, or
    writes of different chats and agents) give the same run in either order, so only one
    order is run. ``probes`` seeded random runs first estimate how many interleavings remain
    (Knuth's estimator: the product of the choices along a random path); when the estimate is
    within ``exhaustive_limit`` every interleaving is run, depth first, each once
    (``exhaustive=True`` when the tree was finished within the limit), else ``random_runs``
    random schedules from ``random.Random(seed)``. With ``final_drained`` the end state of
    each run is also checked with ``drained=True``: every operation that frees capacity or
    queues a chat drains, so once all are done no chat may wait next to a free eligible
    agent. Each run stops at its first violation.
    """
    report = ExplorationReport(tuple(op.label for op in operations))
    finals: set[tuple[Any, ...]] = set()
    rng = random.Random(seed)

    def record(run: _Run) -> None:
        report.runs += 1
        report.steps += len(run.schedule)
        report.longest = max(report.longest, len(run.schedule))
        report.outcomes[tuple(run.outcomes)] += 1
        if run.violation is not None:
            report.violations.append(run.violation)
        else:
            finals.add(run.fingerprint())

    def pick(_step: int, enabled: list[int]) -> int:
        return rng.choice(enabled)

    def random_run() -> float:
        run, choices = _drive(
            make_world, operations, invariant, expected, pick, max_steps, final_drained, True
        )
        record(run)
        size = 1.0
        for enabled in choices:
            size *= len(enabled)
        return size

    estimates = [random_run() for _ in range(max(1, probes))]
    report.estimated = int(sum(estimates) / len(estimates))
    if report.estimated <= exhaustive_limit:
        # depth first: follow a prefix, then the first enabled operation; every other choice
        # met after the prefix is a new prefix to explore
        stack: list[tuple[int, ...]] = [()]
        done = 0
        while stack and done < exhaustive_limit:
            prefix = stack.pop()

            def first(step: int, enabled: list[int], prefix: tuple[int, ...] = prefix) -> int:
                return prefix[step] if step < len(prefix) else enabled[0]

            run, choices = _drive(
                make_world, operations, invariant, expected, first, max_steps, final_drained, True
            )
            record(run)
            done += 1
            taken = run.schedule
            for step in range(len(choices) - 1, len(prefix) - 1, -1):
                for alt in reversed(choices[step]):
                    if alt != taken[step]:
                        stack.append((*taken[:step], alt))
        report.exhaustive = not stack
        report.interleavings = done
    else:
        for _ in range(random_runs):
            random_run()
    report.final_states = len(finals)
    return report


def replay(
    make_world: Callable[[], ChatManager],
    operations: Sequence[Operation],
    schedule: Sequence[int],
    *,
    invariant: Invariant = find_violations,
    final_drained: bool = True,
    expected: tuple[type[BaseException], ...] = EXPECTED_ERRORS,
) -> tuple[ChatManager, Violation | None]:
    """Run ``schedule`` (then the first enabled operation at each further step) once more;
    returns the world's manager, to inspect, and the violation found (None: all held)."""

    def follow(step: int, enabled: list[int]) -> int:
        return schedule[step] if step < len(schedule) else enabled[0]

    run, _ = _drive(make_world, operations, invariant, expected, follow, 100_000, final_drained)
    return run.manager, run.violation


def crash_points(
    make_world: Callable[[], ChatManager],
    operation: Operation,
    *,
    invariant: Invariant = find_violations,
    now: float | None = None,
    tick_limit: int = 1000,
    max_steps: int = 2000,
    expected: tuple[type[BaseException], ...] = EXPECTED_ERRORS,
) -> CrashReport:
    """Abandon ``operation`` after each number of its storage calls, k = 0 .. n (n: the
    calls it makes when not stopped), each on a fresh world.

    At each crash point the invariants are checked as the operation left the storage, then
    ``reconcile()`` and ``tick()`` run (at ``now``; None: the manager's clock) and the
    invariants are checked again with ``drained=True``. Chats that existed after the crash
    must still exist at the end.
    """
    report = CrashReport(operation.label)
    k = 0
    while True:
        run = _Run(make_world, [operation], invariant, expected)
        while run.violation is None and run.enabled() and len(run.schedule) < k:
            run.step(0)
        finished = not run.enabled()
        run.close(0)
        report.points += 1
        if run.violation is None:
            at = run.manager.clock.now() if now is None else now
            fixed = run.manager.reconcile(now=at)
            repaired = {key: n for key, n in fixed.items() if n and key != "drained"}
            if repaired:
                report.repairs[k] = repaired
            run.trace.append(f"reconcile() -> {fixed}")
            run.manager.tick(at, limit=tick_limit)
            run.trace.append("tick()")
            run.check(k, drained=True)
        if run.violation is not None:
            report.violations.append(attrs.evolve(run.violation, step=k))
        if finished or k >= max_steps or len(run.schedule) < k:
            return report  # (stopped short: a violation before the crash point ends it)
        k += 1
