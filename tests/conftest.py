"""Real infrastructure for tests: a Redis server and the embedded Kafka-protocol broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from streams.dev.redis_server import embedded_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """TICKWATCH_REDIS_URL when set (CI runs a Redis), else an embedded real server."""
    url = os.environ.get("TICKWATCH_REDIS_URL")
    if url:
        yield url
    else:
        with embedded_redis() as embedded:
            yield embedded


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"twtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
