"""The gateway killed with SIGKILL three times while alerts flow: a client that resumes
with Last-Event-ID receives every alert once, in stream order, and nothing else.

Real processes throughout: the embedded broker, a real Redis, `tickwatch gateway`
children (restarted on the same port), a real producer publishing at a steady pace, and
an SSE client over real sockets that reconnects whenever its connection drops. Each kill
comes at a random moment while the gateway ingests and the client follows it; a killed
gateway's partitions wait for its group session to expire, so the alerts flow as long as
the kills take (about 15 s), then stop.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka import KafkaError, Message

from alerts.delivery.kafka import ALERT_PUBLISHER, producer_for
from alerts.delivery.stream import position_key
from schemas.settings import Settings
from streams.dev.broker import spawn_broker
from streams.dev.children import stop_child
from streams.dev.gateways import RunningGateway, add_user, port_for, start_gateway
from streams.topics import topic_specs
from tests.integration.gateway_support import make_alert

#: At least this many alerts, at this pace, and on until the kills are done.
ALERTS = 300
PER_S = 30.0
KILLS = 3
PARTITIONS = 3
#: Spread over the partitions by the producer's own partitioner, as the worker's are.
INSTRUMENTS = [f"S{n:02d}" for n in range(12)]
RECONNECT_S = 0.2
#: One alert in this many is published twice: the gateway keeps it once (by alert_id).
RESENT_EVERY = 20


@dataclass
class Published:
    """What the publisher sent: each alert's bytes by alert_id, and where Kafka put them."""

    values: dict[str, bytes] = field(default_factory=dict)
    partitions: set[int] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def publish_steadily(settings: Settings, published: Published, enough: threading.Event) -> None:
    """Distinct alerts at PER_S a second, at least ALERTS and until `enough`, acknowledged;
    every RESENT_EVERY-th sent twice, as an upstream retry would (same bytes, next offset)."""

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            published.failures.append(str(error))
        else:
            published.partitions.add(message.partition() or 0)

    producer = producer_for(ALERT_PUBLISHER, settings.kafka_bootstrap)
    start = time.monotonic()
    try:
        number = 0
        while number < ALERTS or not enough.is_set():
            alert = make_alert(INSTRUMENTS[number % len(INSTRUMENTS)], number)
            value = alert.model_dump_json().encode()
            published.values[alert.alert_id] = value
            for _ in range(2 if number % RESENT_EVERY == 0 else 1):
                producer.produce(settings.topic_alerts, value=value,
                                 key=alert.instrument.encode(), on_delivery=delivered)  # fmt: skip
            producer.poll(0)
            number += 1
            pause = start + number / PER_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        if producer.flush(30) != 0:
            published.failures.append("not acknowledged within 30 s")
    finally:
        published.done.set()


@dataclass
class Received:
    """What the client read: (event, id, data) per event, in order; comments left out."""

    events: list[tuple[str, str | None, str]] = field(default_factory=list)
    connections: int = 0
    last_id: str | None = None


class ResumingClient:
    """An SSE client, as a program following the stream would be written: it reads
    `id:`/`event:`/`data:` lines, and whenever its connection drops it reconnects after
    RECONNECT_S with `Last-Event-ID` (the id of the last whole event it received)."""

    def __init__(self, url: str, token: str) -> None:
        self.received = Received()
        self._url, self._token = url, token
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sse-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def _run(self) -> None:
        # A heartbeat comes every 0.5 s: a read that long silent is a dead connection.
        with httpx.Client(timeout=httpx.Timeout(3.0, connect=1.0)) as client:
            while not self._stopping.is_set():
                with contextlib.suppress(httpx.HTTPError):  # the gateway went away
                    self._follow(client)
                self._stopping.wait(RECONNECT_S)

    def _follow(self, client: httpx.Client) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        if self.received.last_id is not None:
            headers["Last-Event-ID"] = self.received.last_id
        # after=0 asks for everything kept; Last-Event-ID, once the client has one, wins.
        url = f"{self._url}/v1/alerts/stream?after=0"
        with client.stream("GET", url, headers=headers) as response:
            response.raise_for_status()
            self.received.connections += 1
            event, event_id, data = "message", None, []
            for line in response.iter_lines():
                if self._stopping.is_set():
                    return
                if line == "":
                    if data:  # a whole event: only now does its id count
                        self.received.events.append((event, event_id, "\n".join(data)))
                        if event_id is not None:
                            self.received.last_id = event_id
                    event, event_id, data = "message", None, []
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)


@pytest.mark.slow
def test_a_client_resumes_across_three_sigkills_with_every_alert_once_in_order(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    base = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        app_id=f"tickwatch-kill-{uuid.uuid4().hex[:6]}",
        alerts_partitions=PARTITIONS,
        ticks_partitions=1,
        gateway_port=0,
        gateway_heartbeat_s=0.5,
        # A killed gateway never leaves its group: its partitions wait this long for
        # the next one. (The embedded broker lets no member join with 2 s.)
        session_timeout_s=3.0,
        heartbeat_interval_s=0.5,
    )
    broker = spawn_broker(topic_specs(base))
    log = tmp_path / "gateway.log"
    gateway: RunningGateway | None = None
    client: ResumingClient | None = None
    try:
        settings = base.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        settings = settings.model_copy(update={"gateway_port": port_for(settings)})
        token = add_user(redis_url, key_prefix, "follower")
        gateway, connected = start_gateway(settings, log), 0
        client = ResumingClient(gateway.url, token)
        client.start()
        published, enough = Published(), threading.Event()
        publisher = threading.Thread(target=publish_steadily, args=(settings, published, enough))
        started = time.monotonic()
        publisher.start()
        kills: list[float] = []
        for kill in range(KILLS + 1):
            # Each kill lands while alerts flow through this gateway to the client, at a
            # random moment of it: inside an append, a read or a send.
            wait_until(following(client, gateway, connected), "the gateway to ingest, followed",
                       log)  # fmt: skip
            if kill == KILLS:
                break  # the last one stays up
            time.sleep(rng.uniform(0.0, 0.6))
            kills.append(time.monotonic() - started)
            gateway.process.kill()
            gateway.process.wait(10)
            connected = client.received.connections  # none can be made until the restart
            gateway = start_gateway(settings, log)  # the same port: the client comes back
        enough.set()
        publisher.join(60)
        assert published.done.is_set() and not published.failures, published.failures
        assert published.partitions == set(range(PARTITIONS))
        wait_until(lambda: len(client.received.events) >= len(published.values),
                   "every alert to reach the client", log)  # fmt: skip
        time.sleep(1.0)  # anything extra (a repeat, a stray event) would come now
        client.stop()
        events = list(client.received.events)
    finally:
        if client is not None:
            client.stop()
        if gateway is not None:
            stop_child(gateway.process)
        broker.stop()

    context = f"seed {seed}, kills at {[round(k, 2) for k in kills]} s; gateway log {log}"
    assert client.received.connections > KILLS, context  # every kill dropped it
    assert {event for event, _, _ in events} == {"alert"}, context
    ids = [orjson.loads(data)["alert_id"] for _, _, data in events]
    assert len(published.values) >= ALERTS
    assert len(ids) == len(set(ids)) == len(published.values), context
    assert set(ids) == set(published.values), context
    # Each alert's bytes exactly as published.
    assert [data.encode() for _, _, data in events] == [published.values[i] for i in ids]
    positions = [position_key(position or "") for _, position, _ in events]
    assert all(a < b for a, b in itertools.pairwise(positions)), context


def following(
    client: ResumingClient, gateway: RunningGateway, connected: int
) -> Callable[[], bool]:
    """A condition: the gateway has taken alerts from Kafka since it started, and the
    client has connected to it (more than `connected` connections so far)."""

    def check() -> bool:
        try:
            health = httpx.get(f"{gateway.url}/healthz", timeout=2).json()
        except httpx.HTTPError:
            return False
        return int(health["ingest"]["added"]) > 0 and client.received.connections > connected

    return check


def wait_until(condition: Callable[[], bool], what: str, log: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; see {log}")
        time.sleep(0.05)
