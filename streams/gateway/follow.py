"""One client's alerts, for SSE and WebSocket alike: what it missed from Redis, then new ones.

The client subscribes to the fan-out before it reads Redis, and skips anything at or
below the last position it was given, so the hand-over from catching up to live has
neither a gap nor a double. A client that falls behind the fan-out catches up from
Redis again: nothing is lost, and no queue grows without bound.
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


@dataclass(frozen=True)
class Truncated:
    """The client asked for alerts older than the oldest kept: some were trimmed."""

    oldest: str


@dataclass(frozen=True)
class Heartbeat:
    """Time to tell the client the stream is alive (and to check its token again)."""


HEARTBEAT = Heartbeat()

Item = Entry | Truncated | Heartbeat

T = TypeVar("T")


async def follow(
    stream: AlertStream,
    fanout: Fanout,
    after: str | None,
    filters: Filters,
    heartbeat_s: float,
) -> AsyncGenerator[Item, None]:
    """The client's entries in stream order, strictly after `after` (None: only new ones),
    a Heartbeat every `heartbeat_s`, and first a Truncated when `after` is older than
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
                for entry in page:
                    last = entry.position
                    if _wanted(filters, entry):
                        yield entry
                catching_up = len(page) == _PAGE
                continue
            new = await subscriber.next(beat_at - time.monotonic())
            if new is None or position_key(new.position) <= position_key(last):
                continue
            last = new.position
            if _wanted(filters, new):
                yield new
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


def _wanted(filters: Filters, entry: Entry) -> bool:
    return filters.matches(entry.instrument, entry.kind, entry.rule, entry.stage)
