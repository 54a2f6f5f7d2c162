"""What the ingest worker tells the index agent: a batch's constituent prices, in order.

Prices are gathered per (index, partition) into one message each; a session end for
a partition first flushes that partition's prices, so the index agent always sees a
partition's prices before its end of the session. Each message says whether the batch
left its partition behind (its reader had more to read), so that the index agent waits
for a lagging partition however far, and rolls over only an idle one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from alerts.core.market import Market
from alerts.core.outgoing import Record
from schemas.constituents import ConstituentSessionEnd
from schemas.ticks import SessionEnd, Tick


class Forwarding:
    """Collects one batch's messages for the constituents topic."""

    def __init__(
        self, market: Market, topic: str, behind: Mapping[int, bool] | None = None
    ) -> None:
        self._market = market
        self._topic = topic
        self._behind = behind or {}  # by ticks partition; unknown counts as caught up
        self._prices: dict[tuple[str, int], list[tuple[str, float, int, int]]] = {}
        # Every partition `behind` names is heard of, even one whose ticks were all
        # rejected or ignored, or one the batch did not read (not read yet, say).
        self._watermarks = dict.fromkeys(self._behind, -1)
        self._records: list[Record] = []

    def price(self, tick: Tick, partition: int, position: int) -> None:
        ts_ms = tick.ts_ms
        if ts_ms > self._watermarks.get(partition, -1):
            self._watermarks[partition] = ts_ms
        for index in self._market.indices_of(tick.symbol):
            self._prices.setdefault((index, partition), []).append(
                (tick.symbol, tick.price, ts_ms, position)
            )

    def session_end(self, end: SessionEnd, partition: int) -> None:
        if end.symbol is not None:
            return
        indices = [s.symbol for s in self._market.indices.indices if s.exchange == end.exchange]
        if not indices:
            return
        self._flush(partition)
        for index in indices:
            message = ConstituentSessionEnd(
                index=index, exchange=end.exchange, session=end.session,
                source_partition=partition, behind=self._behind.get(partition, False),
            )  # fmt: skip
            self._records.append(
                Record(self._topic, index.encode(), message.model_dump_json().encode())
            )

    def records(self) -> Sequence[Record]:
        """Everything gathered; each index hears each partition's event time once."""
        for partition in sorted(self._watermarks):
            for spec in self._market.indices.indices:
                prices = self._prices.pop((spec.symbol, partition), [])
                self._records.append(self._message(spec.symbol, partition, prices))
        return self._records

    def _flush(self, partition: int) -> None:
        for index in [i for i, p in self._prices if p == partition]:
            prices = self._prices.pop((index, partition))
            self._records.append(self._message(index, partition, prices))

    def _message(
        self, index: str, partition: int, prices: list[tuple[str, float, int, int]]
    ) -> Record:
        body = {
            "type": "prices",
            "index": index,
            "source_partition": partition,
            "prices": prices,
            "watermark_ms": max(self._watermarks.get(partition, 0), 0),
            "behind": self._behind.get(partition, False),
        }
        return Record(self._topic, index.encode(), orjson.dumps(body))
