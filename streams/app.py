"""The Faust app, built from Settings: consumes ticks, hands batches to the engine."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import faust
from redis.asyncio import Redis

from alerts.catalog import Market
from alerts.delivery.kafka import KafkaPublisher
from alerts.engine import Engine, Topics
from alerts.state import StateStore
from schemas.errors import ConfigError
from schemas.instruments import load_instruments
from schemas.rules import load_rules
from schemas.settings import Settings
from streams import agents

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def bundled(name: str) -> Path:
    """A file shipped with tickwatch in streams/data/."""
    return Path(str(resources.files("streams") / "data" / name))


def load_market(settings: Settings) -> Market:
    """Instruments and rules from their files (or the bundled ones); ConfigError if bad."""
    instruments = load_instruments(settings.instruments_file or bundled("instruments.yaml"))
    rules = load_rules(settings.rules_file or bundled("rules.yaml"))
    market = Market(instruments, tuple(rules.rules))
    for exchange in {spec.exchange for spec in instruments.instruments} | (
        {instruments.default_exchange} if instruments.default_exchange else set()
    ):
        market.calendar(exchange)  # build calendars now, not on the first tick
    return market


def create_app(settings: Settings) -> faust.App:
    """A Faust app that declares no topics itself (they come from `tickwatch topics`)."""
    app = faust.App(
        settings.app_id,
        broker=";".join(f"kafka://{host}" for host in settings.bootstrap_servers),
        store="memory://",
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
    )
    ticks = app.topic(settings.topic_ticks, key_serializer="raw", value_serializer="raw")

    market = load_market(settings)

    async def make_engine() -> Engine:
        redis = Redis.from_url(settings.redis_url or DEFAULT_REDIS_URL)
        await redis.ping()
        return Engine(
            StateStore(redis, settings.key_prefix),
            KafkaPublisher(settings.kafka_bootstrap, client_id=f"{settings.app_id}-alerts"),
            market,
            Topics(settings.topic_ticks, settings.topic_alerts, settings.topic_dlq),
        )

    agents.register(app, ticks, settings, make_engine)
    return app


def check_redis(url: str) -> None:
    """Fail fast, in one line, when Redis cannot be reached."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        raise ConfigError(
            f"cannot reach Redis at {url} (set TICKWATCH_REDIS_URL): {error}"
        ) from None
    finally:
        client.close()


def run_worker(settings: Settings) -> Any:
    """Run one worker until SIGINT/SIGTERM (Faust's own worker loop)."""
    check_redis(settings.redis_url or DEFAULT_REDIS_URL)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    return worker.execute_from_commandline()
