"""Faust agents: thin loops that turn Kafka events into engine batches."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust

from alerts.engine import Engine
from alerts.index_engine import IndexEngine
from alerts.messages import Incoming
from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engines:
    """What the agents of one worker share: the ingest engine and the index engine."""

    ingest: Engine
    index: IndexEngine


def _incoming(events: Any) -> list[Incoming]:
    return [Incoming(e.message.partition, e.message.offset, e.message.value) for e in events]


def register(
    app: faust.App,
    settings: Settings,
    engines: Callable[[], Awaitable[Engines]],
) -> None:
    ticks = app.topic(settings.topic_ticks, key_serializer="raw", value_serializer="raw")
    constituents = app.topic(
        settings.topic_constituents, key_serializer="raw", value_serializer="raw"
    )
    started: list[Engines] = []

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: Any, **_: Any) -> None:
        for both in started:
            both.ingest.forget()
            both.index.forget()

    @app.agent(ticks, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        both = await engines()
        started.append(both)
        try:
            async for events in stream.take_events(  # type: ignore[attr-defined]
                settings.batch_max, within=settings.batch_within_s
            ):
                result = await both.ingest.process(_incoming(events))
                log.info(
                    "ticks batch of %d: %d applied, %d duplicates, %d rejected, ignored %s, "
                    "%d alerts",
                    len(events),
                    result.applied,
                    result.duplicates,
                    result.rejected,
                    result.ignored or "none",
                    len(result.alerts),
                )
        finally:
            await both.ingest.close()

    @app.agent(constituents, name="index")
    async def index(stream: faust.StreamT[bytes]) -> None:
        both = await engines()
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.batch_max, within=settings.batch_within_s
        ):
            result = await both.index.process(_incoming(events))
            log.info(
                "constituents batch of %d: %d applied, %d duplicates, %d index messages out",
                len(events),
                result.applied,
                result.duplicates,
                len(result.emitted),
            )
