"""Alerts Kafka deleted before the gateway read them are named and counted, never
skipped in silence."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from streams.dev.broker import spawn_broker
from streams.dev.gateways import running_gateway
from streams.dev.redis_server import free_port
from streams.dev.workers import wait_until
from streams.topics import topic_specs
from tests.integration.gateway_support import gateway_settings, make_alert, publish
from tests.integration.support import log_start


def ingested(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/healthz", timeout=5).json()["ingest"]  # type: ignore[no-any-return]


def test_alerts_deleted_before_the_gateway_read_them_are_one_error_and_a_count(
    redis_url: str, tmp_path: Path
) -> None:
    settings = gateway_settings(redis_url, alerts_partitions=1, gateway_port=free_port())
    broker = spawn_broker(topic_specs(settings))
    settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    log = tmp_path / "gateway.log"
    try:
        with running_gateway(settings, log) as gateway:
            publish(settings, [make_alert("FIRST", 0)])
            wait_until(lambda: ingested(gateway.url)["added"] == 1, 30, "the first alert", log)
        # While no gateway runs, more than the embedded broker keeps (about 5 MB).
        padding = "x" * 2_000
        flood = [
            make_alert("FLOOD", n).model_copy(update={"message": f"{n} {padding}"})
            for n in range(4_000)
        ]
        publish(settings, flood)
        lost = log_start(settings, settings.topic_alerts) - 1
        assert lost > 0  # the broker dropped alerts the gateway had not read
        with running_gateway(settings, log) as gateway:
            wait_until(
                lambda: ingested(gateway.url)["added"] == len(flood) - lost,  # this process
                60, "the rest of the flood", log,
            )  # fmt: skip
            assert ingested(gateway.url)["lost"] == lost
    finally:
        broker.stop()
    errors = re.findall(r"\[0\]: offsets (\d+) to (\d+) \((\d+) messages\) were deleted by "
                        r"Kafka before the gateway read them", log.read_text())  # fmt: skip
    assert errors == [("1", str(lost), str(lost))], log.read_text()[-3000:]
