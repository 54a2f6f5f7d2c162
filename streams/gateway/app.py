"""The gateway's FastAPI app: its parts started and stopped together, its routes and guards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from alerts.delivery.access import Subscriptions, Users
from alerts.delivery.stream import AlertStream
from schemas.settings import Settings
from streams.gateway.account_api import account_routes
from streams.gateway.alerts_api import alerts_routes
from streams.gateway.auth import TokenGate
from streams.gateway.bars import BarsIngest, bars_routes
from streams.gateway.fanout import Fanout
from streams.gateway.guards import QueryLimit, SecurityHeaders
from streams.gateway.health import healthz
from streams.gateway.ingest import AlertIngest
from streams.gateway.metrics import GatewayMetrics
from streams.gateway.request_counts import RequestCounts
from streams.gateway.wire import Wire
from streams.redis_ready import DEFAULT_REDIS_URL

log = logging.getLogger(__name__)

#: Redis connections the gateway's requests and streams share (the fan-out holds one).
_REDIS_CONNECTIONS = 50

PAGE = Path(__file__).parent / "page"

_DESCRIPTION = """Alerts pushed to traders: a live stream (Server-Sent Events or WebSocket),
history, saved filters and minute bars. Every /v1 endpoint needs
`Authorization: Bearer <token>` (from `tickwatch users add NAME`). An alert is the JSON
published on the alerts topic, described by `schemas/json/alert.schema.json`."""


def create_app(settings: Settings, metrics: GatewayMetrics | None = None) -> FastAPI:
    """The gateway app; its lifespan connects Redis and starts the ingest and fan-out.
    With `metrics`, it counts its requests, client streams and deliveries there."""
    app = FastAPI(
        title="tickwatch gateway",
        version="1",
        description=_DESCRIPTION,
        lifespan=_lifespan,
        redoc_url=None,
        max_body_size=settings.gateway_max_body_bytes,
    )
    # Made here, started in the lifespan: a bad instruments file is a one-line error
    # before the server starts, not a traceback inside it.
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.ingest = AlertIngest(settings)
    app.state.bars = BarsIngest(settings)
    app.include_router(alerts_routes())
    app.include_router(account_routes())
    app.include_router(bars_routes())
    app.add_exception_handler(RedisError, _storage_unavailable)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.mount("/page", StaticFiles(directory=PAGE, check_dir=False), name="page")
    # add_middleware wraps what is there: the last added runs first.
    app.add_middleware(TokenGate)
    origins = [o.strip() for o in settings.gateway_cors_origins.split(",") if o.strip()]
    if origins:
        # Outside the gate: a browser's preflight carries no token.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(QueryLimit)
    app.add_middleware(SecurityHeaders)
    if metrics is not None:
        # Outermost: it sees the answers of every guard too.
        app.add_middleware(RequestCounts, metrics=metrics)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # The fan-out's blocking read waits 1 s: the socket timeout must exceed it.
    # A blocking pool: hundreds of clients connecting at once (after a restart, say)
    # wait their turn for one of its connections instead of being refused with a 503.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url or DEFAULT_REDIS_URL,
        max_connections=_REDIS_CONNECTIONS,
        timeout=20,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    redis = Redis(connection_pool=pool)
    stream = AlertStream(
        redis,
        settings.key_prefix,
        settings.gateway_stream_max_len,
        settings.gateway_stream_max_age_s,
    )
    state = app.state
    state.redis, state.stream = redis, stream
    state.users, state.subscriptions = (
        Users(redis, settings.key_prefix),
        Subscriptions(redis, settings.key_prefix),
    )
    state.fanout = Fanout(stream)
    state.wire = Wire()
    await state.fanout.start()
    threads: list[AlertIngest | BarsIngest] = [state.ingest, state.bars]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        # The threads leave their consumer groups, so their partitions move at once.
        await asyncio.gather(*(asyncio.to_thread(t.stop) for t in threads))
        await state.fanout.stop()
        await redis.aclose(close_connection_pool=True)


async def _storage_unavailable(request: Request, error: Exception) -> JSONResponse:
    # Redis down is the gateway's trouble, said in one line, not a 500 with a traceback.
    log.warning("%s %s: Redis: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": "the gateway's storage is unavailable"}, status_code=503)


async def page() -> FileResponse:
    """The live page."""
    index = PAGE / "index.html"
    if not index.is_file():
        raise HTTPException(404, detail="the page is not installed")
    return FileResponse(index)
