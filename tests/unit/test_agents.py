"""What the agents do with a batch that fails: retry it, or dead-letter it whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from alerts.core.decode import Incoming
from alerts.delivery.errors import DeliveryError
from alerts.engine.ticks import BatchResult
from streams import agents
from streams.metrics import WorkerCounts

BATCH = [Incoming(0, 5, b'{"symbol": "A"}'), Incoming(0, 6, b'{"symbol": "B"}')]


class FakeEngine:
    """Fails with the given errors in turn, then succeeds; records what it was asked."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.attempts = 0
        self.forgotten = 0
        self.letters: list[tuple[list[Incoming], str, str]] = []

    def forget(self) -> None:
        self.forgotten += 1

    async def process(self, batch: Sequence[Incoming]) -> BatchResult:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return BatchResult(applied=len(batch))

    async def dead_letter(self, batch: Sequence[Incoming], reason: str, detail: str) -> None:
        self.letters.append((list(batch), reason, detail))


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "RETRY_PAUSES_S", (0.0,))


async def test_a_batch_is_retried_from_scratch_while_redis_or_kafka_is_away() -> None:
    engine = FakeEngine(RedisConnectionError("refused"), DeliveryError("timed out"))
    counts = WorkerCounts()
    result = await agents.until_done(engine, BATCH, "ticks", counts)
    assert (result.applied, engine.attempts, engine.forgotten) == (2, 3, 2)
    assert counts.labelled == {"retries:unreachable": 2}  # tickwatch_redis_commit_retries_total


async def test_a_batch_that_fails_otherwise_is_dead_lettered_whole() -> None:
    engine = FakeEngine(RedisConnectionError("refused"), KeyError("BIDU"))
    fake: Any = engine
    assert await agents.ingest_batch(fake, BATCH) is None
    assert engine.letters == [(BATCH, "internal_error", "KeyError: 'BIDU'")]
    assert engine.forgotten == 2  # after the retry, and before the next batch


async def test_a_batch_that_goes_through_is_not_dead_lettered() -> None:
    engine = FakeEngine()
    fake: Any = engine
    result = await agents.ingest_batch(fake, BATCH)
    assert result is not None and result.applied == 2 and engine.letters == []
