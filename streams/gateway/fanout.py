"""Alerts out: one blocking read of the stream, each new entry handed to every client.

One `XREAD BLOCK` serves every connected client, so a thousand clients cost Redis one
reader. Each client has a bounded queue; one that falls behind is flagged and catches
up from Redis instead (see follow.py), so memory stays bounded and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from alerts.delivery.stream import AlertStream, Entry
from streams.gateway.backoff import pause_s

log = logging.getLogger(__name__)

_BLOCK_MS = 1000
_READ_COUNT = 500


class Subscriber:
    """One client's view of the fan-out: new entries, oldest first, until it falls behind."""

    def __init__(self, size: int) -> None:
        # None in the queue: a wake-up for a client waiting on it when it fell behind.
        self.queue: asyncio.Queue[Entry | None] = asyncio.Queue(size)
        #: Set when an entry did not fit: the queue no longer holds every new entry.
        self.behind = False

    def offer(self, entry: Entry) -> None:
        if self.behind:
            return
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            # What was queued is in Redis too: drop it, so memory stays bounded.
            self.behind = True
            self._empty()
            self.queue.put_nowait(None)

    def restart(self) -> None:
        """Forget what is queued: the caller reads from Redis what came since."""
        self._empty()
        self.behind = False

    async def take(self, timeout_s: float, most: int) -> list[Entry]:
        """The new entries queued, oldest first, at most `most`, waiting up to `timeout_s`
        for one; [] on timeout or when it fell behind (see `behind`)."""
        if self.behind:
            return []
        if self.queue.empty():  # in a burst, skip wait_for's task and timer
            try:
                first = await asyncio.wait_for(self.queue.get(), max(timeout_s, 0))
            except TimeoutError:
                return []
        else:
            first = self.queue.get_nowait()
        if first is None or self.behind:
            return []
        taken = [first]
        # No await from here on: nothing is offered while these are taken.
        while len(taken) < most and not self.queue.empty():
            entry = self.queue.get_nowait()
            if entry is None:
                return []
            taken.append(entry)
        return taken

    def _empty(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


class Fanout:
    """The one reader of the stream; `start()` in the app's lifespan, `stop()` at its end."""

    def __init__(self, stream: AlertStream, queue_size: int = 1000) -> None:
        self._stream = stream
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: The last Redis trouble, None once it answers again.
        self.trouble: str | None = None

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self._queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-fanout")

    async def stop(self) -> None:
        """End the reader: at once, or (when the Redis client swallows the cancel, as
        redis-py's blocking read sometimes does) when its current read returns."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        last: str | None = None
        failures = 0
        while not self._stopping:
            try:
                if last is None:
                    last = await self._stream.last_position() or "0"
                entries = await self._stream.wait_after(last, _BLOCK_MS, _READ_COUNT)
            except (RedisError, OSError) as error:
                failures += 1
                self.trouble = f"Redis: {error}"
                if failures == 1:
                    log.warning("fan-out: Redis: %s; retrying", error)
                await asyncio.sleep(pause_s(failures))
                continue
            if failures:
                log.warning("fan-out: Redis answers again")
                failures, self.trouble = 0, None
            for entry in entries:
                # No await in here: a client subscribing now sees all of a read or none.
                for subscriber in self._subscribers:
                    subscriber.offer(entry)
            if entries:
                last = entries[-1].position
