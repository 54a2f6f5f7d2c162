"""Record-level history: monotonic stacks that answer 'the highest (lowest) since when?'."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

Direction = Literal["high", "low"]
Entry = tuple[date, float]


def _session_of(entry: Entry) -> date:
    return entry[0]


def _value_of(entry: Entry) -> float:
    return entry[1]


def _negated_value_of(entry: Entry) -> float:
    return -entry[1]


@dataclass(frozen=True)
class RecordStack:
    """The record-setting past sessions of one instrument, for one direction.

    For ``"high"`` the stack keeps, oldest first, every past session whose value no later
    session has equalled or beaten, so values strictly fall from bottom to top; ``"low"`` is
    the mirror. That is exactly what ``since`` and ``extreme_since`` need, in O(log n), and
    a push discards everything a new value equals or beats.

    ``capacity`` bounds ``len(entries)``; a push beyond it drops the oldest entries and sets
    ``truncated``. The kept entries are then the newest part of the full stack, so:

    - a date from ``since`` is still exact, but ``since(x) is None`` no longer proves that
      ``x`` is a record (the session that reached it may have been dropped);
    - ``extreme_since(start)`` is exact for ``start`` on or after the oldest kept session;
      for an older ``start`` it may understate the high (overstate the low).

    Callers that need proof check ``truncated``. The constructor checks every invariant
    ``push`` keeps (in O(n)) and raises ``ValueError``, so no stack, however built or
    loaded, can answer from inconsistent entries.
    """

    direction: Direction
    entries: tuple[Entry, ...] = ()
    first_session: date | None = None
    """Earliest session ever pushed, kept even after its entry is dropped."""
    last_session: date | None = None
    count: int = 0
    """Sessions ever pushed."""
    truncated: bool = False
    """True once capacity forced dropping the oldest entries."""
    capacity: int = 20_000

    def __post_init__(self) -> None:
        problem = _find_problem(self)
        if problem:
            raise ValueError(f"invalid {self.direction!r} RecordStack: {problem}")

    def push(self, session: date, value: float) -> RecordStack:
        """This stack with ``session`` closing at ``value`` added as the newest session.

        Raises ``ValueError`` unless ``session`` is after ``last_session`` and ``value`` is
        finite. Costs O(len(entries)): the copy and the check of the new stack.
        """
        if not math.isfinite(value):
            raise ValueError(f"value for {session.isoformat()} is not finite: {value!r}")
        if self.last_session is not None and session <= self.last_session:
            raise ValueError(
                f"session {session.isoformat()} is not after the last pushed session "
                f"{self.last_session.isoformat()}"
            )
        value = float(value)
        key, point = self._ascending(value)
        # Entries the new value does not equal or beat stay; the rest can never answer again.
        kept = bisect_left(self.entries, point, key=key)
        entries = (*self.entries[:kept], (session, value))
        truncated = self.truncated
        if len(entries) > self.capacity:
            entries = entries[len(entries) - self.capacity :]
            truncated = True
        return RecordStack(
            direction=self.direction,
            entries=entries,
            first_session=self.first_session if self.first_session is not None else session,
            last_session=session,
            count=self.count + 1,
            truncated=truncated,
            capacity=self.capacity,
        )

    def since(self, value: float) -> date | None:
        """The latest pushed session that reached ``value`` (``>=`` for high, ``<=`` for low).

        None when no pushed session did, so ``value`` would be a record; see the class
        docstring for what None means once ``truncated``. Raises ``ValueError`` for NaN.
        """
        if math.isnan(value):
            raise ValueError("cannot compare sessions with NaN")
        key, point = self._ascending(value)
        reached = bisect_right(self.entries, point, key=key)
        return self.entries[reached - 1][0] if reached else None

    def extreme_since(self, start: date) -> float | None:
        """The highest (lowest) value of the pushed sessions on or after ``start``.

        None when no pushed session is on or after ``start``; not exact for a ``start`` before
        the oldest kept entry once ``truncated``.
        """
        first = bisect_left(self.entries, start, key=_session_of)
        return self.entries[first][1] if first < len(self.entries) else None

    def _ascending(self, value: float) -> tuple[Callable[[Entry], float], float]:
        """A key under which ``entries`` ascend, and ``value`` on that key's axis."""
        if self.direction == "high":
            return _negated_value_of, -value
        return _value_of, value


def _find_problem(stack: RecordStack) -> str | None:
    """What is wrong with ``stack``, or None; O(len(entries))."""
    if stack.direction not in ("high", "low"):
        return "direction must be 'high' or 'low'"
    if isinstance(stack.capacity, bool) or not isinstance(stack.capacity, int):
        return f"capacity must be an int, got {stack.capacity!r}"
    if stack.capacity < 1:
        return f"capacity must be at least 1, got {stack.capacity}"
    if len(stack.entries) > stack.capacity:
        return f"{len(stack.entries)} entries exceed capacity {stack.capacity}"
    if stack.count < len(stack.entries):
        return f"count {stack.count} is below the {len(stack.entries)} entries kept"
    if stack.count == 0:
        if stack.first_session is not None or stack.last_session is not None or stack.truncated:
            return "an empty stack has no sessions and is not truncated"
        return None
    if stack.first_session is None or stack.last_session is None or not stack.entries:
        return "a non-empty stack needs first_session, last_session and entries"
    if stack.entries[-1][0] != stack.last_session:
        return "the newest entry must be the last session"
    if stack.first_session > stack.entries[0][0]:
        return "first_session is after the oldest entry"
    if not all(math.isfinite(value) for _, value in stack.entries):
        return "values must be finite"
    high = stack.direction == "high"
    for (older, older_value), (newer, newer_value) in zip(
        stack.entries, stack.entries[1:], strict=False
    ):
        if not older < newer:
            return f"sessions must increase: {older} then {newer}"
        if not (older_value > newer_value if high else older_value < newer_value):
            return f"values must strictly {'fall' if high else 'rise'}: {older}, {newer}"
    return None
