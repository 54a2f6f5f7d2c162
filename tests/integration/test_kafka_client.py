"""A consumer that meets a group error rejoins its group instead of idling out of it.

The embedded broker refuses a follower's SyncGroup that reaches it after the leader's
(a real broker answers it), which a busy machine provokes now and then. Here the first
follower SyncGroup is held back to provoke that refusal on purpose; the consumers read
as Faust reads (never through `getmany()`), so without `rejoin_after_group_errors` the
follower stays without partitions for good.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer import group_coordinator

from schemas.settings import Settings
from streams.kafka_client import rejoin_after_group_errors


def _consumer(settings: Settings, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        enable_auto_commit=False,
    )


async def _until(condition: Any, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def test_a_refused_sync_group_is_followed_by_a_rejoin(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rebalance = group_coordinator.CoordinatorGroupRebalance
    leader, follower = rebalance._on_join_leader, rebalance._on_join_follower
    held_back: list[bool] = []

    async def slow_leader(self: Any, response: Any) -> Any:
        await asyncio.sleep(0.2)  # followers first, as when the leader is computing
        return await leader(self, response)

    async def late_follower(self: Any) -> Any:
        if not held_back:
            held_back.append(True)
            await asyncio.sleep(0.8)  # after the leader's: the broker refuses it
        return await follower(self)

    monkeypatch.setattr(rebalance, "_on_join_leader", slow_leader)
    monkeypatch.setattr(rebalance, "_on_join_follower", late_follower)
    rejoin_after_group_errors()
    caplog.set_level(logging.WARNING, logger="streams.kafka_client")

    topic, group = settings.topic_ticks, f"{settings.app_id}-rejoin"
    first, second = _consumer(settings, group), _consumer(settings, group)
    await first.start()
    first.subscribe([topic])  # after start, as Faust subscribes
    try:
        assert await _until(lambda: len(first.assignment()) == settings.ticks_partitions, 30)
        await second.start()
        second.subscribe([topic])
        both = await _until(lambda: first.assignment() and second.assignment(), 60)
        assert held_back, "the follower's SyncGroup was never held back"
        assert any("rejoining" in r.getMessage() for r in caplog.records), caplog.text
        assert both, f"second consumer has no partitions: {caplog.text}"
        owned = [p.partition for c in (first, second) for p in c.assignment()]
        assert sorted(owned) == list(range(settings.ticks_partitions))
    finally:
        await second.stop()
        await first.stop()
