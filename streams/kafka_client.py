"""Two corrections to the Kafka client under Faust, applied when the worker's app is built.

Each says which behaviour of faust-streaming 0.15 / aiokafka 0.14 it corrects, so it
can go when they do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

#: How long the group coordinator waits before it rejoins after a group error.
REJOIN_BACKOFF_S = 1.0


def bound_fetch_wait(wait_ms: int) -> None:
    """Faust hard-codes a 1.5 s fetch wait; the embedded broker answers a waiting fetch
    only when it expires, which would add up to 1.5 s to every tick's latency."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    original = getattr(thread, "_tickwatch_original", thread._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = wait_ms
        return consumer

    thread._tickwatch_original = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = create  # type: ignore[method-assign]


def rejoin_after_group_errors() -> None:
    """Keep a worker in its consumer group after a group error.

    aiokafka hands an unexpected group error (a refused SyncGroup, a failed heartbeat)
    to the application and stops coordinating until the application's next
    `getmany()` takes it. Faust reads records from aiokafka's fetcher and never takes
    it, so a single such error leaves the worker alive but out of the group for good:
    no partitions, no heartbeats, no log line after the first. Here the error is
    logged and the coordinator rejoins after a pause, as the Java client does.
    """
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    if getattr(GroupCoordinator, "_tickwatch_rejoins", False):
        return

    async def push_error_to_user(self: Any, exc: Exception) -> None:
        log.warning("consumer group %s: %r; rejoining in %.0f s", self.group_id, exc,
                    REJOIN_BACKOFF_S)  # fmt: skip
        await asyncio.wait([self._closing], timeout=REJOIN_BACKOFF_S)

    GroupCoordinator._push_error_to_user = push_error_to_user  # type: ignore[method-assign]
    GroupCoordinator._tickwatch_rejoins = True  # type: ignore[attr-defined]
