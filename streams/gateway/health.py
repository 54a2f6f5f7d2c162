"""Whether the gateway's parts work: one reading for /healthz and for the metric
`tickwatch_gateway_part_up`, so the two never disagree."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from redis import Redis
from redis.exceptions import RedisError
from starlette.datastructures import State

from streams.gateway.bars import BarsIngest
from streams.gateway.fanout import Fanout
from streams.gateway.ingest import AlertIngest

#: The parts, as the metric's `part` label names them.
PARTS = ("ingest", "fanout", "bars", "redis")

#: Seconds a Redis PING may take before Redis counts as down.
PING_TIMEOUT_S = 2.0


def parts_up(state: State, redis_ok: bool) -> dict[str, bool]:
    """Each part: True when it runs and its last try worked. Before the app's start
    (no fan-out yet) and after its stop, the parts that are not running are down."""
    ingest: AlertIngest = state.ingest
    bars: BarsIngest = state.bars
    fanout: Fanout | None = getattr(state, "fanout", None)
    return {
        "ingest": ingest.running and ingest.trouble is None,
        "fanout": fanout is not None and fanout.running and fanout.trouble is None,
        "bars": bars.running and bars.trouble is None,
        "redis": redis_ok,
    }


class RedisPing:
    """Whether Redis answers a PING, asked from a thread (the metrics scrape's), on a
    connection of its own; `close()` at the end."""

    def __init__(self, redis_url: str) -> None:
        timeout = PING_TIMEOUT_S
        self._redis = Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def __call__(self) -> bool:
        try:
            return bool(self._redis.ping())
        except (RedisError, OSError):
            return False

    def close(self) -> None:
        self._redis.close()


async def healthz(request: Request) -> dict[str, Any]:
    """Whether the gateway's parts work; no alert data."""
    state = request.app.state
    try:
        redis_ok = bool(await asyncio.wait_for(state.redis.ping(), PING_TIMEOUT_S))
    except (RedisError, OSError, TimeoutError):
        redis_ok = False
    up = parts_up(state, redis_ok)
    ingest: AlertIngest = state.ingest
    fanout: Fanout = state.fanout
    bars: BarsIngest = state.bars
    return {
        "status": "ok" if all(up.values()) else "degraded",
        "redis": redis_ok,
        "ingest": {
            "running": ingest.running,
            "partitions": ingest.partitions,
            "added": ingest.added,
            "duplicates": ingest.duplicates,
            "invalid": ingest.invalid,
            "lost": ingest.lost,
            "trouble": ingest.trouble,
        },
        "fanout": {"running": fanout.running, "clients": fanout.clients},
        "bars": {"running": bars.running, "trouble": bars.trouble},
    }
