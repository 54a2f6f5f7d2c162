"""Worker processes for development: started as children, watched until they settle, stopped.

The demo, the benchmark and the integration tests run real `tickwatch worker`
processes (tied to their parent by streams/dev/children.py) and wait on what the
workers tell: their counts in Redis (streams/metrics.py) and the offsets their
consumer group committed (`backlog`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

from alerts.delivery.kafka_offsets import committed_offsets, reader, watermarks
from schemas.errors import TickwatchError
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.children import spawn_tickwatch, stop_child
from streams.metrics import counted_to, read_counts, summed
from streams.replay import publish_ticks

#: High watermarks by (topic, partition).
Highs = dict[tuple[str, int], int]


class TimedOut(TickwatchError):
    """What was awaited did not happen in time; the message says what, and ends with the
    workers' log when one was given."""


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """`tickwatch worker` as a child process, its output appended to log_path."""
    with log_path.open("ab") as log:
        return spawn_tickwatch(["worker"], settings, log)


@contextmanager
def running_workers(
    settings: Settings, count: int, log_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` workers sharing one log, stopped on exit (SIGTERM, then SIGKILL)."""
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            workers.append(start_worker(settings, log_path))
        yield workers
    finally:
        for worker in workers:
            stop_child(worker)


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    log_path: Path | None = None,
    *,
    interval_s: float = 0.05,
) -> None:
    """Return once condition() holds; TimedOut after timeout_s. The looks are cheap (a
    few ms against the local broker and Redis), and a settle check takes two in a row."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            message = f"timed out waiting for {what}"
            if log_path is not None:
                tail = log_path.read_text()[-3000:] if log_path.exists() else ""
                message += f"\n{tail}"
            raise TimedOut(message)
        time.sleep(interval_s)


def backlog(settings: Settings, ends: dict[int, int]) -> dict[tuple[str, int], int] | None:
    """The high watermarks of ticks and constituents once the worker has committed up to
    them and past every replayed tick; None while it has work left.

    The worker feeds itself (constituent prices, then index ticks), so the pipeline is
    done only when two looks in a row find the same watermarks, all committed.
    """
    topics = (settings.topic_ticks, settings.topic_constituents)
    consumer = reader(settings.kafka_bootstrap, settings.app_id)
    try:
        highs = {
            (topic, partition): high
            for topic in topics
            for partition, (_, high) in watermarks(consumer, topic, None, 5).items()
        }
        for topic in topics:
            partitions = [p for t, p in highs if t == topic]
            for partition, offset in committed_offsets(consumer, topic, partitions, 5).items():
                need = max(highs[(topic, partition)], ends.get(partition, 0)
                           if topic == settings.topic_ticks else 0)  # fmt: skip
                if (offset or 0) < need:
                    return None
        return highs
    finally:
        consumer.close()


class Settling:
    """Whether the workers have settled everything: a condition, one look per call.

    `backlog` gives the high watermarks of the topics the workers consume once their
    group has committed up to them (None while it has not). The workers feed
    themselves (constituent prices, then index ticks), so they have settled only when
    two looks in a row find the same watermarks; with `counts`, only when their counts
    (kept in `self.counts`) also include every message below them.
    """

    def __init__(
        self,
        backlog: Callable[[], Highs | None],
        counts: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._backlog = backlog
        self._counts = counts
        self._last: Highs | None = None
        self.counts: dict[str, int] = {}

    def __call__(self) -> bool:
        seen = self._backlog()
        done = seen is not None and seen == self._last
        self._last = seen
        if self._counts is None:
            return done
        # Read after the watermarks, so that they cover everything below them.
        self.counts = self._counts()
        return done and seen is not None and counted_to(self.counts, seen)


def joined(
    settings: Settings, redis: Redis, pids: set[int], warm: Callable[[], Sequence[Tick]]
) -> Callable[[], bool]:
    """A condition: every one of these workers has joined and counted something.

    A worker writes its counts only once it has taken a message, so each look
    publishes a few warm-up ticks and gives them up to half a second (the counts are
    written every half second), looking every 50 ms.
    """

    def check() -> bool:
        publish_ticks(warm(), settings.kafka_bootstrap, settings.topic_ticks)
        deadline = time.monotonic() + 0.5
        while not pids <= read_counts(redis, settings.key_prefix).keys():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    return check


def worker_counts(url: str, prefix: str) -> dict[str, int]:
    """Every worker's counts under this prefix, summed (see streams.metrics)."""
    client = Redis.from_url(url)
    try:
        return summed(read_counts(client, prefix).values())
    finally:
        client.close()
