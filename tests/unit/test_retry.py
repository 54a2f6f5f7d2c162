"""The retry policy for refused commits, without a server."""

from __future__ import annotations

import pytest

from alerts.store.errors import StaleStateError, StateLostError
from alerts.store.retry import MAX_ATTEMPTS, redo_until_committed


class Refusing:
    """An attempt refused `times` times, then committed."""

    def __init__(self, times: int, error: Exception | None = None) -> None:
        self.times, self.calls = times, 0
        self.error = error or StaleStateError("BIDU")
        self.refused: list[Exception] = []

    async def attempt(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "committed"

    async def on_refused(self, error: Exception) -> None:
        self.refused.append(error)


async def test_a_refused_commit_is_redone_until_it_is_not() -> None:
    run = Refusing(MAX_ATTEMPTS - 1)
    done = await redo_until_committed(run.attempt, lambda: AssertionError("gave up"),
                                      on_refused=run.on_refused)  # fmt: skip
    assert (done, run.calls, len(run.refused)) == ("committed", MAX_ATTEMPTS, MAX_ATTEMPTS - 1)


async def test_after_the_last_attempt_the_given_error_is_raised() -> None:
    run = Refusing(MAX_ATTEMPTS)
    with pytest.raises(StaleStateError, match="kept conflicting"):
        await redo_until_committed(run.attempt, lambda: StaleStateError("(kept conflicting)"))
    assert run.calls == MAX_ATTEMPTS


async def test_only_the_refusals_named_are_retried() -> None:
    lost = Refusing(1, StateLostError("ticks", 0))
    with pytest.raises(StateLostError):
        await redo_until_committed(lost.attempt, lambda: AssertionError("gave up"))
    assert lost.calls == 1
    again = Refusing(1, StateLostError("ticks", 0))
    done = await redo_until_committed(
        again.attempt, lambda: AssertionError("gave up"), attempts=2,
        refused=(StateLostError, StaleStateError), on_refused=again.on_refused,
    )  # fmt: skip
    assert (done, again.calls) == ("committed", 2)
