"""Faust agents: thin loops that turn Kafka events into engine batches."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from alerts.engine import Engine
from alerts.messages import Incoming
from schemas.settings import Settings

log = logging.getLogger(__name__)


def register(
    app: faust.App,
    ticks: faust.TopicT,
    settings: Settings,
    make_engine: Callable[[], Awaitable[Engine]],
) -> None:
    engines: list[Engine] = []

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: Any, **_: Any) -> None:
        for engine in engines:
            engine.forget()

    @app.agent(ticks, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        engine = await make_engine()
        engines.append(engine)
        await engine.start()
        try:
            async for events in stream.take_events(  # type: ignore[attr-defined]
                settings.batch_max, within=settings.batch_within_s
            ):
                batch = [
                    Incoming(e.message.partition, e.message.offset, e.message.value) for e in events
                ]
                result = await engine.process(batch)
                log.info(
                    "batch of %d: %d applied, %d duplicates, %d rejected, ignored %s, %d alerts",
                    len(batch),
                    result.applied,
                    result.duplicates,
                    result.rejected,
                    result.ignored or "none",
                    len(result.alerts),
                )
        finally:
            await engine.close()
