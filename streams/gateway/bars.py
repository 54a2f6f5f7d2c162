"""Minute bars for the page's chart: the ticks topic read again, folded, kept in Redis, served.

The gateway's second consumer (group `{app_id}-gateway-bars`). It decodes and places ticks
as the worker does (alerts/core/decode.py), so index levels the worker publishes back as
ticks of the index have bars too. At least once: offsets are committed after Redis has the
bars, and a tick applied twice leaves its bar as it was (bar_store's merge).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Annotated

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from redis import Redis, RedisError

from alerts.core.decode import Incoming, Rejected, TickAt, route
from alerts.core.market import Market
from alerts.core.minute_bars import BarKey, Ohlc, SessionClock, fold, priced
from alerts.delivery.kafka_offsets import group_reader, ready_messages
from schemas.gateway import Bars
from schemas.settings import Settings
from streams.gateway.auth import current_user
from streams.gateway.backoff import pause_s
from streams.gateway.bar_store import BarWriter, read_bars
from streams.market_files import load_market
from streams.redis_ready import DEFAULT_REDIS_URL

log = logging.getLogger(__name__)

_POLL_S = 0.5
_MESSAGES_PER_POLL = 1000
# The bars can wait: no 0.2 s first step.
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class BarsIngest:
    """The thread that keeps minute bars from the ticks topic; `start()`, then `stop()`."""

    def __init__(self, settings: Settings, market: Market | None = None) -> None:
        self._settings = settings
        self._market = market if market is not None else load_market(settings)
        self._redis = Redis.from_url(
            settings.redis_url or DEFAULT_REDIS_URL, socket_timeout=10, socket_connect_timeout=5
        )
        self._writer = BarWriter(self._redis, settings.key_prefix)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-bars", daemon=True)
        #: What it did, for /healthz and tests: ticks folded, messages skipped by reason,
        #: Redis and Kafka errors seen.
        self.ticks = 0
        self.skipped: Counter[str] = Counter()
        self.redis_errors = 0
        self.kafka_errors = 0
        #: The last Redis or Kafka trouble, None once a poll works again.
        self.trouble: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current poll; bars not yet written are read again next time."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._redis.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _consumer(self) -> Consumer:
        s = self._settings
        # The first start reads every tick kept (the group has no position yet).
        consumer = group_reader(s, f"{s.app_id}-gateway-bars")
        consumer.subscribe([s.topic_ticks])
        return consumer

    def _run(self) -> None:
        consumer: Consumer | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                messages = ready_messages(consumer, _MESSAGES_PER_POLL, _POLL_S)
                if messages and self.apply(messages):
                    consumer.commit(asynchronous=True)
                failures, self.trouble = 0, None
            except KafkaException as error:
                self.kafka_errors += 1
                failures += 1
                self.trouble = f"Kafka: {error}"
                log.warning("bars: Kafka: %s; retrying", error)
                self._stopping.wait(pause_s(failures, _BACKOFF_S))
            except Exception as error:  # a bug must not end the chart's bars for good
                failures += 1
                self.trouble = f"poll: {error}"
                log.exception("bars: a poll failed; its ticks are skipped")
                self._stopping.wait(pause_s(failures, _BACKOFF_S))
        if consumer is not None:
            consumer.close()

    def apply(self, messages: Sequence[Message]) -> bool:
        """Fold the messages into bars and write them (the thread's step for each poll);
        False if stopped before Redis took them."""
        placed: list[TickAt] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.kafka_errors += 1
                    log.warning("bars: Kafka: %s", error)
                continue
            incoming = Incoming(message.partition() or 0, message.offset() or 0, message.value())
            for item in route(incoming, self._market):
                if isinstance(item, TickAt):
                    placed.append(item)
                elif isinstance(item, Rejected):
                    # The worker dead-letters these with their reason; here they are counted.
                    self.skipped[item.reason] += 1
        ticks, clocks = priced(placed, self._market.instruments.open_grace_minutes)
        bars = fold(ticks)
        if self._write(bars, clocks):
            self.ticks += len(ticks)
            return True
        return False

    def _write(
        self, bars: dict[BarKey, dict[str, Ohlc]], clocks: dict[BarKey, SessionClock]
    ) -> bool:
        failures = 0
        while True:
            try:
                self._writer.write(bars, clocks)
                if failures:
                    log.warning("bars: Redis answers again")
                return True
            except RedisError as error:
                self.redis_errors += 1
                failures += 1
                self.trouble = f"Redis: {error}"
                if failures == 1:
                    log.warning("bars: Redis: %s; retrying until it answers", error)
                if self._stopping.wait(pause_s(failures, _BACKOFF_S)):
                    return False


# A tick's symbol, as schemas/ticks.py accepts it.
_SYMBOL = r"^[A-Za-z0-9._:\-^]+$"


def bars_routes() -> APIRouter:
    """`GET /v1/bars/{instrument}?session=YYYY-MM-DD`: the chart's minute bars."""
    router = APIRouter(tags=["bars"])

    @router.get(
        "/v1/bars/{instrument}",
        response_model=Bars,
        responses={404: {"description": "No bars for that instrument and session."}},
    )
    async def bars(
        request: Request,
        user: Annotated[str, Depends(current_user)],
        instrument: Annotated[str, Path(min_length=1, max_length=64, pattern=_SYMBOL)],
        session: Annotated[
            date | None, Query(description="Default: the newest session with bars.")
        ] = None,
    ) -> Bars:
        """The instrument's minute bars in one session, in time order (exchange local minutes)."""
        found = await read_bars(
            request.app.state.redis, request.app.state.settings.key_prefix, instrument, session
        )
        if found is None:
            raise HTTPException(404, detail=f"no bars for {instrument}")
        return found

    return router
