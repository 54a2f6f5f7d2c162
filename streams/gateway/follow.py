"""One client's alerts, for SSE and WebSocket alike: what it missed from Redis, then new ones.

The client subscribes to the fan-out before it reads Redis, and skips anything at or
below the last position it was given, so the hand-over from catching up to live has
neither a gap nor a double. A client that falls behind the fan-out catches up from
Redis again: nothing is lost, and no queue grows without bound. Entries come in
batches (whatever is ready, bounded), so a client in a burst gets one write, not one
per alert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisError

from alerts.delivery.stream import AlertStream, Entry, position_key
from schemas.gateway import Filters
from streams.gateway.fanout import Fanout

log = logging.getLogger(__name__)

_PAGE = 500
_RETRY_S = 1.0
#: A batch's bounds: one write to a client stays small enough not to hold the others up.
BATCH_ENTRIES = 64
BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class Truncated:
    """The client asked for alerts older than the oldest kept: some were trimmed."""

    oldest: str


@dataclass(frozen=True)
class Heartbeat:
    """Time to tell the client the stream is alive (and to check its token again)."""


HEARTBEAT = Heartbeat()

#: Entries, oldest first, never empty.
Batch = list[Entry]

Item = Batch | Truncated | Heartbeat

T = TypeVar("T")


async def follow(
    stream: AlertStream,
    fanout: Fanout,
    after: str | None,
    filters: Filters,
    heartbeat_s: float,
) -> AsyncGenerator[Item, None]:
    """The client's entries in stream order, in batches, strictly after `after` (None: only
    new ones), a Heartbeat every `heartbeat_s`, and first a Truncated when `after` is older than
    anything kept. Redis trouble is waited out (heartbeats go on), not raised."""
    subscriber = fanout.subscribe()
    try:
        newest = await _answered(stream.last_position) if after is None else after
        last = newest or "0"
        if after is not None and after != "0":
            oldest = await _answered(stream.first_position)
            if oldest is not None and position_key(after) < position_key(oldest):
                # Conservative: the entry just after `after` may have been the oldest all
                # along, but Redis 6.2 does not say what a trim removed.
                yield Truncated(oldest)
        beat_at = time.monotonic() + heartbeat_s
        catching_up = True
        while True:
            if time.monotonic() >= beat_at:
                beat_at = time.monotonic() + heartbeat_s
                yield HEARTBEAT
            if catching_up or subscriber.behind:
                # Anything queued before this read is in what it returns.
                subscriber.restart()
                try:
                    page = await stream.after(last, _PAGE)
                except (RedisError, OSError) as error:
                    log.warning("stream: Redis: %s; retrying", error)
                    await asyncio.sleep(min(_RETRY_S, max(beat_at - time.monotonic(), 0)))
                    continue
                if page:
                    last = page[-1].position
                for batch in _batches([e for e in page if _wanted(filters, e)]):
                    yield batch
                catching_up = len(page) == _PAGE
                continue
            new = await subscriber.take(beat_at - time.monotonic(), BATCH_ENTRIES)
            # Entries the catch-up read already gave are skipped (they come in order).
            seen = position_key(last)
            new = [e for e in new if position_key(e.position) > seen]
            if not new:
                continue
            last = new[-1].position
            for batch in _batches([e for e in new if _wanted(filters, e)]):
                yield batch
    finally:
        fanout.unsubscribe(subscriber)


async def _answered(read: Callable[[], Awaitable[T]]) -> T:
    """read(), again until Redis answers (the client waits, or hangs up)."""
    while True:
        try:
            return await read()
        except (RedisError, OSError) as error:
            log.warning("stream: Redis: %s; retrying", error)
            await asyncio.sleep(_RETRY_S)


def _batches(entries: list[Entry]) -> list[Batch]:
    """The entries in order, cut where a batch would pass BATCH_ENTRIES or BATCH_BYTES."""
    batches: list[Batch] = []
    batch: Batch = []
    size = 0
    for entry in entries:
        if batch and (len(batch) == BATCH_ENTRIES or size + len(entry.alert) > BATCH_BYTES):
            batches.append(batch)
            batch, size = [], 0
        batch.append(entry)
        size += len(entry.alert)
    if batch:
        batches.append(batch)
    return batches


def _wanted(filters: Filters, entry: Entry) -> bool:
    return filters.matches(entry.instrument, entry.kind, entry.rule, entry.stage)
