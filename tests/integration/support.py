"""Helpers for integration tests: start a worker process, read a topic to its end."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Message

from alerts.delivery.kafka_offsets import committed_offsets, partitions_of, read_to_end, reader
from schemas.alerts import Alert
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.children import spawn_tickwatch
from streams.dev.demo import backlog


def bidu_ticks(rows: list[tuple[str, float]]) -> list[Tick]:
    """Ticks of BIDU from (UTC ISO time, price) rows."""
    return [
        Tick(symbol="BIDU", price=price, ts=datetime.fromisoformat(ts).replace(tzinfo=UTC))
        for ts, price in rows
    ]


def alerts_on_kafka(settings: Settings) -> list[Alert]:
    """Every alert on the alerts topic, in partition order."""
    messages = read_topic(settings.kafka_bootstrap, settings.topic_alerts)
    return [Alert.model_validate_json(m.value()) for m in messages]


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return spawn_tickwatch(["worker"], settings, log)


def read_topic(bootstrap: str, topic: str) -> list[Message]:
    """Every committed message of the topic, read from the start to the high watermarks."""
    return list(read_to_end(bootstrap, topic))


def committed(settings: Settings, topic: str) -> dict[int, int]:
    """The worker group's committed offset on each partition of the topic; 0 where it
    never committed one."""
    consumer = reader(settings.kafka_bootstrap, settings.app_id)
    try:
        partitions = partitions_of(consumer, topic, 10)
        found = committed_offsets(consumer, topic, partitions, 10)
        return {p: offset or 0 for p, offset in found.items()}
    finally:
        consumer.close()


def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, log_path: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


def processed_all(settings: Settings, ends: dict[int, int]) -> Callable[[], bool]:
    """True once the worker has committed every tick and everything derived from them."""
    last: list[object] = [None]

    def check() -> bool:
        seen = backlog(settings, ends)
        done = seen is not None and seen == last[0]
        last[0] = seen
        return done

    return check
