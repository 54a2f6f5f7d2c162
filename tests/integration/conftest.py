"""Per-test embedded broker (a fresh log) and Settings pointing at it and at Redis."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from alerts.store.instruments import StateStore
from schemas.settings import Settings
from streams.dev.broker import BrokerProcess, spawn_broker
from streams.topics import topic_specs


@pytest.fixture
def base_settings(redis_url: str, key_prefix: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        app_id=f"tickwatch-test-{uuid.uuid4().hex[:6]}",
        ticks_partitions=3,
        alerts_partitions=2,
        commit_interval_s=0.2,
        log_level="info",
    )


@pytest.fixture
def broker(base_settings: Settings) -> Iterator[BrokerProcess]:
    process = spawn_broker(topic_specs(base_settings))
    yield process
    process.stop()


@pytest.fixture
def settings(base_settings: Settings, broker: BrokerProcess) -> Settings:
    return base_settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})


@pytest.fixture
def redis_folder() -> Iterator[str]:
    """A folder for a Redis server of the test's own (one it can stop, flush, restart)."""
    folder = tempfile.mkdtemp(prefix="tickwatch-redis-test-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def store(redis: Redis, key_prefix: str) -> StateStore:
    return StateStore(redis, key_prefix)
