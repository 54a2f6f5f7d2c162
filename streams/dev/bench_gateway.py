"""The gateway benchmark: publish-to-client latency of a burst of alerts, for 1 to K clients.

Embedded broker and Redis, a `tickwatch gateway` child, and the clients in a process of
their own (streams/dev/sse_load.py), all sharing this machine's cores. For each number
of clients: connect them all, publish a burst of BURST alerts at once, and take each
(client, alert) receive time minus the alert's send time, on the machine's one
monotonic clock (sends noted here by alert_id, not written into the alert). The ladder
stops at the first number of clients that does not all receive the whole burst. With
metrics on, each round also reads what the gateway's own /metrics counted: its
deliveries, and their mean latency since arrival in its stream.
"""

from __future__ import annotations

import json
import resource
import select
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from alerts.delivery.kafka import ALERT_PUBLISHER, producer_for
from schemas.alerts import Alert
from schemas.errors import TickwatchError
from schemas.settings import Settings
from streams.dev.bench import cpu_seconds, percentile
from streams.dev.broker import spawn_broker
from streams.dev.children import spawn, stop_child
from streams.dev.gateways import RunningGateway, add_user, port_for, running_gateway
from streams.dev.redis_server import embedded_redis
from streams.dev.workers import wait_until
from streams.topics import topic_specs

BURST = 100
LADDER = (1, 100, 500, 1000, 2000)
QUICK_LADDER = (1, 20)
INSTRUMENTS = ("HSTECH", "BIDU", "BABA", "TCEHY", "MEITUAN", "JD", "NTES", "XIAOMI")


class BenchError(TickwatchError):
    """A round could not be measured at all; the message says why and where to look."""


@dataclass(frozen=True)
class Round:
    """One number of clients: how many connected and received the whole burst, and the
    latency of every (client, alert) received, in ms."""

    clients: int
    connected: int
    complete: int
    refused: int  # 503s the clients got before their stream, each tried again
    latencies_ms: list[float]
    gateway_cpu_s: float
    clients_cpu_s: float
    failures: dict[str, int]  # why clients fell short, and how many of them
    # What the gateway's own metrics counted in the round (None with metrics off).
    gateway_seen: Delivered | None = None

    def figures(self) -> dict[str, Any]:
        values, seen = self.latencies_ms, self.gateway_seen
        return {
            "clients": self.clients,
            "connected": self.connected,
            "received_all": self.complete,
            "refused_503": self.refused,
            "deliveries": len(values),
            "p50_ms": round(percentile(values, 0.50), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(values[-1], 1) if values else float("nan"),
            "gateway_cpu_s": round(self.gateway_cpu_s, 2),
            "clients_cpu_s": round(self.clients_cpu_s, 2),
            "failures": self.failures,
            "gateway_deliveries": seen.count if seen is not None else None,
            "gateway_delivery_mean_ms": round(seen.mean_ms, 1) if seen is not None else None,
        }


@dataclass(frozen=True)
class Delivered:
    """The gateway's SSE deliveries as its /metrics count them: how many, and the sum of
    their latencies since arrival in its stream."""

    count: int
    sum_s: float

    def __sub__(self, before: Delivered) -> Delivered:
        return Delivered(self.count - before.count, self.sum_s - before.sum_s)

    @property
    def mean_ms(self) -> float:
        return self.sum_s / self.count * 1000 if self.count else float("nan")


def delivered(metrics_url: str) -> Delivered:
    """The gateway's SSE deliveries so far, scraped from its /metrics."""
    page = httpx.get(metrics_url, timeout=10).text
    count, sum_s = 0, 0.0
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.labels.get("transport") != "sse":
                continue
            if sample.name == "tickwatch_gateway_delivery_seconds_count":
                count = int(sample.value)
            elif sample.name == "tickwatch_gateway_delivery_seconds_sum":
                sum_s = sample.value
    return Delivered(count, sum_s)


def run_gateway_bench(ladder: Sequence[int], emit: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure each number of clients in turn; the figures, as `--json` writes them."""
    folder = Path(tempfile.mkdtemp(prefix="tickwatch-bench-gateway-"))
    _allow_files(2 * max(ladder) + 1000)  # a socket per client, here and in the gateway
    base = Settings(key_prefix="bench-gateway", app_id="bench-gateway", log_level="warn")
    with ExitStack() as stack:
        broker = spawn_broker(topic_specs(base))
        stack.callback(broker.stop)
        url = stack.enter_context(embedded_redis())
        settings = base.model_copy(update={"kafka_bootstrap": broker.bootstrap, "redis_url": url})
        settings = settings.model_copy(update={"gateway_port": port_for(settings)})
        token = add_user(url, settings.key_prefix, "bench")
        gateway = stack.enter_context(running_gateway(settings, folder / "gateway.log"))
        emit(f"bench: gateway {gateway.url}, a burst of {BURST} alerts per round; logs in {folder}")
        rounds = _ladder(gateway, token, ladder, folder, emit)
    return _result(rounds)


def _ladder(
    gateway: RunningGateway,
    token: str,
    ladder: Sequence[int],
    folder: Path,
    emit: Callable[[str], None],
) -> list[Round]:
    # The producer is gone when this returns, before the broker stops under it.
    producer = producer_for(ALERT_PUBLISHER, gateway.settings.kafka_bootstrap)
    _warm_up(gateway, token, producer)
    rounds = []
    for clients in ladder:
        measured = _round(gateway, token, producer, clients, folder)
        rounds.append(measured)
        emit(f"bench: {_row(measured.figures())}")
        if measured.complete < clients:
            break
    return rounds


def _allow_files(count: int) -> None:
    """Raise this process's open-file limit (the children inherit it) as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _alert(number: int) -> Alert:
    instrument = INSTRUMENTS[number % len(INSTRUMENTS)]
    return Alert(
        alert_id=str(uuid.uuid4()),
        rule="daily_gain",
        kind="daily_move",
        instrument=instrument,
        session=date(2025, 9, 18),
        ts=datetime.now(UTC),
        price=104.64,
        threshold=4.0,
        change=4.14,
        reference_price=100.48,
        message=f"{instrument} today +4.14% at 104.64",
    )


def _publish(producer: Producer, topic: str, alerts: Sequence[Alert]) -> dict[str, float]:
    """Send the alerts at once; each one's send time by alert_id."""
    encoded = [(a.alert_id, a.instrument.encode(), a.model_dump_json().encode()) for a in alerts]
    sent: dict[str, float] = {}
    for alert_id, key, value in encoded:
        sent[alert_id] = time.monotonic()
        producer.produce(topic, key=key, value=value)
    if producer.flush(30) != 0:
        raise BenchError("the broker did not take the burst within 30 s")
    return sent


def _warm_up(gateway: RunningGateway, token: str, producer: Producer) -> None:
    """One alert through, so the first round does not wait for the gateway's consumer group."""
    alert = _alert(0)
    _publish(producer, gateway.settings.topic_alerts, [alert])

    def kept() -> bool:
        answer = httpx.get(f"{gateway.url}/v1/alerts?limit=1",
                           headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
        return answer.status_code == 200 and alert.alert_id in answer.text

    wait_until(kept, 60, "the gateway to take a first alert", gateway.log)


def _round(
    gateway: RunningGateway, token: str, producer: Producer, clients: int, folder: Path
) -> Round:
    out = folder / f"clients-{clients}.json"
    wait_s = 20 + clients / 25
    args = [sys.executable, "-m", "streams.dev.sse_load", gateway.url, token, str(clients),
            str(BURST), str(out), str(wait_s)]  # fmt: skip
    with (folder / "clients.log").open("ab") as log:
        load = spawn(args, stdout=subprocess.PIPE, stderr=log)
    try:
        connected = _connected(load, 60 + clients / 10, folder / "clients.log")
        # Subscribed to the fan-out, not only answered: the burst goes live to every one.
        wait_until(lambda: _fanout_clients(gateway) >= connected, 60,
                   f"{connected} clients on the gateway's fan-out", gateway.log)  # fmt: skip
        seen_before = delivered(gateway.metrics_url) if gateway.metrics_url is not None else None
        cpu_before = cpu_seconds(gateway.process.pid)
        sent = _publish(producer, gateway.settings.topic_alerts, [_alert(n) for n in range(BURST)])
        try:
            load.wait(wait_s + 30)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the clients did not finish; see {folder / 'clients.log'}") from None
        gateway_cpu = cpu_seconds(gateway.process.pid) - cpu_before
    finally:
        stop_child(load)
    if not out.exists():
        raise BenchError(f"the clients wrote no results; see {folder / 'clients.log'}")
    measured = _measured(orjson.loads(out.read_bytes()), sent, clients, connected, gateway_cpu)
    if gateway.metrics_url is not None and seen_before is not None:
        # Scraped before and after the CPU readings, so the scrapes are not in the round's.
        seen = _seen_since(gateway.metrics_url, seen_before, len(measured.latencies_ms))
        measured = replace(measured, gateway_seen=seen)
    return measured


def _seen_since(metrics_url: str, before: Delivered, received: int) -> Delivered:
    """What the gateway counted since `before`, once it has counted the `received`
    deliveries the clients saw (it counts a write just after the client may read it), or
    after a few seconds."""
    deadline = time.monotonic() + 5
    while (seen := delivered(metrics_url) - before).count < received:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return seen


def _connected(load: subprocess.Popen[bytes], timeout_s: float, log: Path) -> int:
    """The number of clients the load process connected, once it says so."""
    assert load.stdout is not None
    ready, _, _ = select.select([load.stdout], [], [], timeout_s)
    line = load.stdout.readline().decode() if ready else ""
    if not line.startswith("connected "):
        raise BenchError(f"the clients did not connect within {timeout_s:.0f}s; see {log}")
    return int(line.split()[1])


def _fanout_clients(gateway: RunningGateway) -> int:
    try:
        return int(httpx.get(f"{gateway.url}/healthz", timeout=5).json()["fanout"]["clients"])
    except httpx.HTTPError:
        return -1


def _measured(
    result: dict[str, Any], sent: dict[str, float], clients: int, connected: int, cpu_s: float
) -> Round:
    latencies: list[float] = []
    complete = 0
    failures: dict[str, int] = {}
    refused = sum(client["refused"] for client in result["clients"])
    for client in result["clients"]:
        times = {i: t for i, t in client["received"].items() if i in sent}
        latencies += [(t - sent[i]) * 1000 for i, t in times.items()]
        if len(times) == len(sent):
            complete += 1
        else:
            reason = client["error"] or "missed some"
            failures[reason] = failures.get(reason, 0) + 1
    return Round(clients, connected, complete, refused, sorted(latencies), cpu_s,
                 result["cpu_s"], failures)  # fmt: skip


def _result(rounds: Sequence[Round]) -> dict[str, Any]:
    held = [r for r in rounds if r.complete == r.clients]
    prompt = [r for r in held if percentile(r.latencies_ms, 0.99) <= 1000]
    failed = next((r for r in rounds if r.complete < r.clients), None)
    return {
        "burst": BURST,
        "rounds": [r.figures() for r in rounds],
        "largest_complete": max((r.clients for r in held), default=0),
        "largest_p99_within_1s": max((r.clients for r in prompt), default=0),
        "failed_beyond": failed.figures() if failed else None,
    }


_COLUMNS = ("clients", "received all", "p50 ms", "p99 ms", "max ms", "gateway CPU s",
            "503s on connect")  # fmt: skip


def _row(figures: dict[str, Any]) -> str:
    row = (
        f"clients {figures['clients']}: {figures['received_all']} received all {BURST}; "
        f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
    )
    if figures["gateway_deliveries"] is not None:
        row += (
            f"; the gateway's metrics: {figures['gateway_deliveries']} deliveries, "
            f"{figures['gateway_delivery_mean_ms']} ms mean since arrival"
        )
    return row


def table(result: dict[str, Any]) -> str:
    """One row per number of clients, then the largest the machine held."""
    rows = [_COLUMNS] + [
        (str(r["clients"]), f"{r['received_all']}/{r['clients']}", f"{r['p50_ms']}",
         f"{r['p99_ms']}", f"{r['max_ms']}", f"{r['gateway_cpu_s']}", f"{r['refused_503']}")
        for r in result["rounds"]
    ]  # fmt: skip
    width = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, width, strict=True)) for row in rows]
    lines.append(f"largest number of clients that all received the burst: "
                 f"{result['largest_complete']}; with p99 within 1 s: "
                 f"{result['largest_p99_within_1s']}")  # fmt: skip
    failed = result["failed_beyond"]
    if failed is not None:
        lines.append(f"beyond, {failed['clients']} clients: " + json.dumps(failed["failures"]))
    return "\n".join(lines)
