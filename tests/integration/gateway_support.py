"""What the gateway's integration tests share: a running `tickwatch gateway`, alerts
published to it, a Server-Sent Events reader, and its metrics as Prometheus reads them."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from alerts.delivery.kafka import BULK_FEED, producer_for
from schemas.alerts import Alert, Stage
from schemas.settings import Settings
from streams.dev import gateways
from streams.dev.broker import spawn_broker
from streams.dev.gateways import port_for
from streams.topics import topic_specs


@dataclass
class Gateway:
    """A `tickwatch gateway` child process, where it listens, and its metrics endpoint."""

    url: str
    settings: Settings
    process: Popen[bytes]
    log: Path
    verify: ssl.SSLContext | bool = True
    metrics_url: str | None = None

    def ws_url(self, path: str) -> str:
        return self.url.replace("http", "ws", 1) + path


def gateway_settings(redis_url: str, **overrides: Any) -> Settings:
    """Settings of a test gateway: its own key prefix and app id, a quick heartbeat, and
    any port (the gateway says which)."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": f"twtest-{uuid.uuid4().hex[:10]}",
        "app_id": f"tickwatch-test-{uuid.uuid4().hex[:6]}",
        "ticks_partitions": 1,
        "alerts_partitions": 2,
        "gateway_port": 0,
        "gateway_heartbeat_s": 0.25,
        "log_level": "info",
    }
    return Settings(**{**values, **overrides})


@contextmanager
def running_gateway(
    settings: Settings, timeout_s: float = 30.0, verify: ssl.SSLContext | bool = True
) -> Iterator[Gateway]:
    """An embedded broker and a gateway on it (streams/dev/gateways.py: on any free port
    when settings say 0), up and healthy; both stopped, and the prefix's keys deleted,
    afterwards. `verify`: how to trust its certificate (HTTPS)."""
    broker = spawn_broker(topic_specs(settings))
    settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    settings = settings.model_copy(update={"gateway_port": port_for(settings)})
    log = Path(tempfile.mkdtemp(prefix="tickwatch-gateway-")) / "gateway.log"
    try:
        with gateways.running_gateway(settings, log, timeout_s) as started:
            yield Gateway(
                started.url, started.settings, started.process, log, verify, started.metrics_url
            )
    finally:
        broker.stop()
        _delete_keys(settings)


def _delete_keys(settings: Settings) -> None:
    client = Redis.from_url(settings.redis_url or "")
    keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def make_alert(
    instrument: str,
    number: int,
    kind: str = "daily_move",
    rule: str = "daily_gain",
    stage: Stage = "intraday",
) -> Alert:
    """A distinct alert (its id is new on every call)."""
    return Alert(
        alert_id=str(uuid.uuid4()),
        rule=rule,
        kind=kind,
        stage=stage,
        instrument=instrument,
        session=date(2025, 9, 18),
        ts=datetime(2025, 9, 18, 2, number % 60, tzinfo=UTC),
        price=100.0 + number,
        threshold=4.0,
        change=4.0 + number / 100,
        reference_price=96.0,
        message=f"{instrument} alert {number}",
    )


def publish(settings: Settings, values: list[bytes | Alert], key: str | None = None) -> None:
    """Alerts (or any bytes) onto the alerts topic, acknowledged, in order per key."""
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    for value in values:
        raw = value.model_dump_json().encode() if isinstance(value, Alert) else value
        message_key = key or (value.instrument if isinstance(value, Alert) else "junk")
        producer.produce(settings.topic_alerts, value=raw, key=message_key.encode())
    assert producer.flush(30) == 0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Event:
    """One Server-Sent Event, or a comment (`event` "comment")."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    fields: list[str] = field(default_factory=list)


@dataclass
class Read:
    """What a client read from a stream: the response headers, then events and comments."""

    headers: httpx.Headers
    events: list[Event]


async def sse_events(
    client: httpx.AsyncClient,
    path: str,
    enough: Callable[[list[Event]], bool],
    headers: dict[str, str],
    params: dict[str, str] | list[tuple[str, str]] | None = None,
    on_open: Callable[[], Awaitable[None]] | None = None,
    timeout_s: float = 15.0,
) -> Read:
    """Read the stream until `enough(events so far)` or it ends; events and comments in
    the order received. `on_open` runs once the response's headers are in."""
    events: list[Event] = []
    async with asyncio.timeout(timeout_s):
        async with client.stream("GET", path, headers=headers, params=params) as response:
            assert response.status_code == 200, await response.aread()
            if on_open is not None:
                await on_open()
            current = Event()
            async for line in response.aiter_lines():
                if line == "":
                    if current.fields:
                        events.append(current)
                        if enough(events):
                            break
                    current = Event()
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                current.fields.append(name)
                if name == "":
                    current.event, current.data = "comment", value
                elif name == "data":
                    current.data = value if current.data == "" else current.data + "\n" + value
                elif name == "event":
                    current.event = value
                elif name == "id":
                    current.id = value
                elif name == "retry":
                    current.retry = int(value)
            return Read(response.headers, events)


def alerts_of(events: list[Event]) -> list[Event]:
    return [e for e in events if e.event == "alert"]


def pinged_after_alerts(count: int) -> Callable[[list[Event]], bool]:
    """Enough once `count` alerts came and then a heartbeat: nothing more was due."""

    def enough(events: list[Event]) -> bool:
        return len(alerts_of(events)) >= count and events[-1].event == "comment"

    return enough


def metric_samples(text: str) -> dict[str, float]:
    """Every sample of a /metrics page as `name{label=value,...}` (labels sorted, no
    quotes; `name{}` without labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples
