"""Waiting on development workers: when they count as settled, and how a wait gives up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.dev.workers import Highs, Settling, TimedOut, wait_until

TICKS = ("ticks", 0)
CONSTITUENTS = ("constituents", 0)


def looks(*seen: Highs | None) -> Callable[[], Highs | None]:
    """A backlog that answers with these looks in turn."""
    answers: Iterator[Highs | None] = iter(seen)
    return lambda: next(answers)


def test_settled_once_two_looks_in_a_row_find_the_same_committed_watermarks() -> None:
    settled = Settling(looks(None, {TICKS: 5}, {TICKS: 5, CONSTITUENTS: 2},
                             {TICKS: 5, CONSTITUENTS: 2}))  # fmt: skip
    assert [settled() for _ in range(4)] == [False, False, False, True]


def test_uncommitted_work_is_never_settled() -> None:
    settled = Settling(looks(None, None, None))
    assert [settled() for _ in range(3)] == [False, False, False]


def test_with_counts_settled_only_once_the_counts_cover_the_watermarks() -> None:
    counts = iter([{"next:ticks:0": 3}, {"next:ticks:0": 4}, {"next:ticks:0": 5, "ticks": 9}])
    settled = Settling(looks(*[{TICKS: 5}] * 3), lambda: next(counts))
    assert [settled() for _ in range(3)] == [False, False, True]
    assert settled.counts == {"next:ticks:0": 5, "ticks": 9}


def test_a_wait_returns_once_the_condition_holds() -> None:
    answers = iter([False, False, True])
    wait_until(lambda: next(answers), 5, "the third look", interval_s=0.01)


def test_a_wait_that_times_out_says_what_it_waited_for() -> None:
    with pytest.raises(TimedOut) as raised:
        wait_until(lambda: False, 0.05, "the burst", interval_s=0.01)
    assert str(raised.value) == "timed out waiting for the burst"


def test_a_wait_that_times_out_ends_with_the_workers_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("x" * 5000 + "the worker's last words\n")
    with pytest.raises(TimedOut) as raised:
        wait_until(lambda: False, 0.05, "every tick", log, interval_s=0.01)
    message = str(raised.value)
    assert message.startswith("timed out waiting for every tick\n")
    assert message.endswith("the worker's last words\n")
    assert len(message) == len("timed out waiting for every tick\n") + 3000
