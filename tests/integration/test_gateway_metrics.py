"""The gateway's /metrics as Prometheus scrapes it: a real `tickwatch gateway`, the embedded
broker, Redis, real SSE and WebSocket clients; the page counts what they did, and
promtool accepts it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streams.dev.gateways import add_user
from tests.documented_metrics import undocumented
from tests.integration.gateway_support import (
    Gateway,
    bearer,
    gateway_settings,
    make_alert,
    metric_samples,
    publish,
    running_gateway,
)

STREAM = "/v1/alerts/stream"
INSTRUMENT = "METRICS"


@pytest.fixture(scope="module")
def gateway(redis_url: str) -> Iterator[Gateway]:
    with running_gateway(gateway_settings(redis_url)) as running:
        yield running


@pytest.fixture(scope="module")
def token(gateway: Gateway) -> str:
    return add_user(gateway.settings.redis_url or "", gateway.settings.key_prefix, "alice")


async def scrape(gateway: Gateway) -> dict[str, float]:
    assert gateway.metrics_url is not None
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(gateway.metrics_url)
    assert page.status_code == 200
    return metric_samples(page.text)


async def scraped_until(
    gateway: Gateway, wanted: Callable[[dict[str, float]], bool], timeout_s: float = 10
) -> dict[str, float]:
    """The metrics once `wanted(samples)`: the gateway counts a write after the client may
    already have read it, and a hang-up when it notices."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await scrape(gateway)
        if wanted(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


def connections(samples: dict[str, float]) -> tuple[float, float]:
    return (
        samples["tickwatch_gateway_connections{transport=sse}"],
        samples["tickwatch_gateway_connections{transport=ws}"],
    )


def deliveries(samples: dict[str, float]) -> tuple[float, float]:
    return (
        samples["tickwatch_gateway_deliveries_total{transport=sse}"],
        samples["tickwatch_gateway_deliveries_total{transport=ws}"],
    )


async def sse_alerts(lines: AsyncIterator[str], count: int) -> list[str]:
    """The ids of the next `count` alert events."""
    ids: list[str] = []
    while len(ids) < count:
        line = await anext(lines)
        if line.startswith("id: "):
            ids.append(line.removeprefix("id: "))
    return ids


async def test_the_metrics_count_what_clients_and_the_ingest_did(
    gateway: Gateway, token: str
) -> None:
    alerts = [make_alert(INSTRUMENT, n) for n in range(3)]
    only = {"instrument": INSTRUMENT}
    ws_url = gateway.ws_url(f"/v1/alerts/ws?instrument={INSTRUMENT}")
    async with (
        asyncio.timeout(30),
        httpx.AsyncClient(base_url=gateway.url, headers=bearer(token), timeout=10) as client,
        client.stream("GET", STREAM, params=only) as stream,
        connect(ws_url, additional_headers=bearer(token)) as socket,
    ):
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        open_now = await scraped_until(gateway, lambda s: connections(s) == (1, 1))
        assert connections(open_now) == (1, 1)
        assert deliveries(open_now) == (0, 0)
        # One alert twice (kept once) and a message that is not an alert.
        await asyncio.to_thread(
            publish, gateway.settings, [alerts[0], alerts[0], b"not json", *alerts[1:]], INSTRUMENT
        )
        assert len(await sse_alerts(lines, 3)) == 3
        assert len([orjson.loads(await socket.recv()) for _ in alerts]) == 3
        after = await scraped_until(gateway, lambda s: deliveries(s) == (3, 3))
    assert deliveries(after) == (3, 3)
    ingested = "tickwatch_gateway_alerts_ingested_total{outcome=%s}"
    assert after[ingested % "added"] == 3
    assert after[ingested % "duplicate"] == 1
    assert after[ingested % "invalid"] == 1
    assert after[ingested % "old"] == 0
    assert after["tickwatch_gateway_alerts_lost_total{}"] == 0
    for transport in ("sse", "ws"):
        latency = "tickwatch_gateway_delivery_seconds"
        assert after[f"{latency}_count{{transport={transport}}}"] == 3
        assert after[f"{latency}_bucket{{le=+Inf,transport={transport}}}"] == 3
        # Live, published once the clients followed: within seconds of their arrival.
        assert 0 < after[f"{latency}_sum{{transport={transport}}}"] < 3 * 5

    closed = await scraped_until(gateway, lambda s: connections(s) == (0, 0))
    assert connections(closed) == (0, 0)
    # Each handshake once, under its route: the stream's 200, the socket's 101.
    requests = "tickwatch_gateway_http_requests_total{code=%s,route=%s}"
    assert closed[requests % ("200", STREAM)] == 1
    assert closed[requests % ("101", "/v1/alerts/ws")] == 1


async def test_requests_parts_and_partitions(gateway: Gateway, token: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        assert (await client.get("/v1/alerts")).status_code == 401
        assert (await client.get("/v1/alerts", headers=bearer(token))).status_code == 200
        assert (await client.get("/no/such/page", headers=bearer(token))).status_code == 404
    refused = gateway.ws_url("/v1/alerts/ws")
    async with asyncio.timeout(10), connect(refused, additional_headers=bearer("tw_x")) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    samples = await scrape(gateway)
    requests = "tickwatch_gateway_http_requests_total{code=%s,route=%s}"
    assert samples[requests % ("401", "/v1/alerts")] == 1
    assert samples[requests % ("401", "/v1/alerts/ws")] == 1
    assert samples[requests % ("200", "/v1/alerts")] >= 1
    assert samples[requests % ("404", "unmatched")] == 1
    assert not [name for name in samples if "/no/such/page" in name]
    for part in ("ingest", "fanout", "bars", "redis"):
        assert samples[f"tickwatch_gateway_part_up{{part={part}}}"] == 1, part
    assert samples["tickwatch_gateway_partitions_assigned{}"] == gateway.settings.alerts_partitions
    build = [name for name in samples if name.startswith("tickwatch_build_info{")]
    assert len(build) == 1 and "component=gateway," in build[0]
    assert samples["process_open_fds{}"] > 0


def test_promtool_accepts_the_page(gateway: Gateway) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is needed (Debian's prometheus package)"
    assert gateway.metrics_url is not None
    page = httpx.get(gateway.metrics_url, timeout=10).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=30
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    assert undocumented(page) == {}, "export nothing the README's metric tables do not list"


def test_the_metrics_have_a_port_of_their_own(gateway: Gateway) -> None:
    # No token on /metrics: the traders' port does not serve it.
    assert gateway.metrics_url is not None
    assert httpx.URL(gateway.metrics_url).port != httpx.URL(gateway.url).port
    assert httpx.get(gateway.url + "/metrics", timeout=10).status_code == 401


def test_with_metrics_off_there_is_no_endpoint(redis_url: str) -> None:
    with running_gateway(gateway_settings(redis_url, metrics_enabled=False)) as gateway:
        assert gateway.metrics_url is None
        told = gateway.log.read_text()
        assert "tickwatch gateway: serving http://" in told and "metrics" not in told
