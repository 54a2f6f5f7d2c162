"""A broken feed on the live ticks topic: every malformed message is dead-lettered with
its reason, every good tick is applied, and the worker never restarts.

40,000 good ticks and 2,000 malformed messages of some thirty kinds go straight onto
the `ticks` topic with a plain producer, in bursts of 1,000, two at most unread (the
embedded broker keeps only a few MB per partition, so the test never runs far ahead
of the worker; smaller bursts only add waits for the worker's commits).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from redis import Redis

from alerts.core.sessions import get_calendar
from alerts.delivery.kafka import BULK_FEED, producer_for
from alerts.delivery.kafka_offsets import GroupOffsets
from schemas.alerts import Alert
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.broker import BrokerProcess
from streams.dev.children import stop_child
from streams.dev.workers import start_worker, wait_until
from streams.market_files import load_market
from streams.partitioner import partition_of
from tests.integration.support import processed_all, read_topic
from tests.oracle import compare, oracle

SYMBOLS = [f"S{n:02d}" for n in range(40)]
TICKS_PER_DAY = 500  # per symbol: 40 symbols x 2 days x 500 = 40,000 good ticks
DAY1 = datetime(2025, 9, 17, tzinfo=UTC)
DAY2 = datetime(2025, 9, 18, tzinfo=UTC)
BAD_MESSAGES = 2_000
BURST = 1000
PARTITIONS = 3
ONE_MB = 1_048_000  # just below a real Kafka topic's default max.message.bytes


def good_ticks() -> list[Tick]:
    """Day 1 ends at 100; on day 2 a quarter of the symbols close beyond +5%, a quarter
    touch +4.5% and fall back, a quarter fall beyond -4.5%, a quarter stay within 1%."""
    rng = random.Random(20250918)
    ticks = []
    for day, start in ((1, DAY1), (2, DAY2)):
        for k in range(TICKS_PER_DAY):
            frac = k / (TICKS_PER_DAY - 1)
            for i, symbol in enumerate(SYMBOLS):
                noise = rng.uniform(-0.1, 0.1)
                if day == 1:
                    price = 100.0 if k == TICKS_PER_DAY - 1 else 100.0 + 5 * noise
                else:
                    move = (5.6 * frac, 4.6 * math.sin(math.pi * frac), -4.6 * frac, 0.0)[i % 4]
                    price = 100.0 * (1 + move / 100) + noise
                ts = start + timedelta(seconds=k * 170 + i * 2)
                seq = (day - 1) * TICKS_PER_DAY + k if i % 2 else None
                ticks.append(Tick(symbol=symbol, price=round(price, 4), ts=ts, seq=seq))
    return ticks


def wire(tick: Tick, style: int) -> bytes:
    """The tick as a feed would write it: ISO-8601 with an offset, or epoch milliseconds."""
    body: dict[str, object] = {"symbol": tick.symbol, "price": tick.price}
    if style % 3 == 0:
        body["ts"] = tick.ts_ms
    elif style % 3 == 1:
        body["ts"] = tick.ts.astimezone(UTC).isoformat()
        body["volume"] = 100 + style % 7
    else:
        body["ts"] = (tick.ts + timedelta(hours=8)).replace(tzinfo=None).isoformat() + "+08:00"
    if tick.seq is not None:
        body["seq"] = tick.seq
    return orjson.dumps(body)


@dataclass(frozen=True)
class Letter:
    """One dead letter expected for a message: its reason, and its body."""

    reason: str
    body: bytes | None  # None: the message's own value, unchanged
    in_batch: int | None = None  # the bad tick's index in a batch message


@dataclass
class Message:
    value: bytes | None
    key: bytes | None
    partition: int | None
    letters: list[Letter]
    good: int = 0  # good ticks it carries
    kind: str = ""
    at: tuple[int, int] | None = None  # (partition, offset), once delivered


ISO = "2025-09-18T10:00:00+00:00"


def tick_json(**fields: object) -> bytes:
    return json.dumps({"symbol": "S01", "price": 101.5, "ts": ISO, **fields}).encode()


def invalid(reason: str = "invalid_tick") -> list[Letter]:
    return [Letter(reason, None)]


# Each kind: a malformed message and the dead letters it must produce.
SINGLE_KINDS: dict[str, Callable[[random.Random], tuple[bytes | None, list[Letter]]]] = {
    "nan": lambda r: (tick_json().replace(b"101.5", b"NaN"), invalid()),
    "infinity": lambda r: (tick_json().replace(b"101.5", b"-Infinity"), invalid()),
    "zero price": lambda r: (tick_json(price=0), invalid()),
    "negative price": lambda r: (tick_json(price=-r.uniform(1, 100)), invalid()),
    "1e309": lambda r: (tick_json().replace(b"101.5", b"1e309"), invalid()),
    "missing field": lambda r: (
        json.dumps({"symbol": "S02", "price": 1.0} if r.random() < 0.5 else {"ts": ISO}).encode(),
        invalid(),
    ),
    "null field": lambda r: (tick_json(**{r.choice(["symbol", "price", "ts"]): None}), invalid()),
    "wrong type": lambda r: (
        tick_json(
            **r.choice(
                [
                    {"price": "abc"},
                    {"price": [1]},
                    {"price": True},
                    {"symbol": 7},
                    {"ts": {"ms": 1}},
                    {"volume": "lots"},
                    {"seq": False},
                ]
            )
        ),
        invalid(),
    ),
    "not json": lambda r: (b"symbol=S01,price=101.5,ts=" + ISO.encode(), invalid("invalid_json")),
    "json array": lambda r: (b"[" + tick_json() + b"]", invalid()),
    "json scalar": lambda r: (r.choice([b"42", b"null", b'"S01"', b"true"]), invalid()),
    "empty": lambda r: (b"", invalid("invalid_json")),
    "no value": lambda r: (None, invalid("invalid_json")),  # a tombstone
    "whitespace": lambda r: (b" \n\t ", invalid("invalid_json")),
    "binary garbage": lambda r: (
        b"\xff\x00" + r.randbytes(r.randint(1, 300)),
        invalid("invalid_json"),
    ),
    "utf-16": lambda r: (tick_json().decode().encode("utf-16"), invalid("invalid_json")),
    "non-utf-8 symbol": lambda r: (
        tick_json(symbol="S0").replace(b'S0"', b'S0\xff"'),
        invalid("invalid_json"),
    ),
    "truncated": lambda r: (tick_json()[: r.randint(1, 40)], invalid("invalid_json")),
    "deeply nested": lambda r: (b"[" * 5000 + b"]" * 5000, invalid("invalid_json")),
    "naive ts": lambda r: (tick_json(ts="2025-09-18T10:00:00"), invalid()),
    "ts decades ahead": lambda r: (
        tick_json(ts="2071-09-18T10:00:00+00:00"),
        invalid("beyond_calendar"),
    ),
    "ts decades ago": lambda r: (tick_json(ts=-1_000_000_000_000), invalid("beyond_calendar")),
    "ts out of range": lambda r: (
        r.choice(
            [
                tick_json(ts=1e20),
                tick_json(ts="9" * 20),
                tick_json().replace(ISO.encode(), b"Infinity"),
            ]
        ),
        invalid(),
    ),
    "unknown symbol": lambda r: (
        tick_json(symbol=f"ZZ{r.randint(0, 99)}"),
        invalid("unknown_instrument"),
    ),
    "saturday in Hong Kong": lambda r: (
        tick_json(symbol="HKA", ts="2025-09-20T10:00:00+08:00"),
        invalid("outside_session"),
    ),
    "extra field": lambda r: (tick_json(bid=101.4), invalid()),
    "huge seq": lambda r: (tick_json(seq=10**30), invalid()),
    "unknown type": lambda r: (tick_json(type="trade"), invalid()),
    "session_end of an unknown exchange": lambda r: (
        b'{"type":"session_end","exchange":"XMARS","session":"2025-09-18"}',
        invalid("unknown_exchange"),
    ),
    "session_end of an unknown symbol": lambda r: (
        b'{"type":"session_end","exchange":"24/7","session":"2025-09-18","symbol":"ZZ1"}',
        invalid("unknown_instrument"),
    ),
    "session_end decades ahead": lambda r: (
        b'{"type":"session_end","exchange":"24/7","session":"2071-09-18"}',
        invalid("beyond_calendar"),
    ),
    "batch without ticks": lambda r: (
        r.choice(
            [
                b'{"type":"batch","ticks":[]}',
                b'{"type":"batch","ticks":null}',
                b'{"type":"batch"}',
                b'{"type":"batch","ticks":{"0":1}}',
            ]
        ),
        invalid(),
    ),
    "batch with an unknown field": lambda r: (
        b'{"type":"batch","source":"x","ticks":[' + tick_json(price=500.0) + b"]}",
        invalid(),
    ),
    "nested batch": lambda r: (
        b'{"type":"batch","ticks":[{"type":"batch","ticks":[' + tick_json(price=500.0) + b"]}]}",
        [Letter("invalid_tick", b'{"type":"batch","ticks":[' + tick_json(price=500.0) + b"]}", 0)],
    ),
}
#: Malformed messages bound for the partition of a good tick's symbol (batches).
BAD_IN_BATCH = [
    (b'{"symbol":"S03","price":NaN,"ts":1758189600000}', "invalid_tick"),
    (b'{"symbol":"S03","price":1e309,"ts":1758189600000}', "invalid_tick"),
    (b'{"symbol":"ZZ9","price":10,"ts":1758189600000}', "unknown_instrument"),
    (b'{"symbol":"S03","price":0,"ts":1758189600000}', "invalid_tick"),
    (b'"S03"', "invalid_tick"),
    (b'{"symbol":"HKA","price":10,"ts":"2025-09-20T10:00:00+08:00"}', "outside_session"),
]


def plan(ticks: list[Tick]) -> list[Message]:
    """The good ticks in order, with the malformed messages spread among them."""
    rng = random.Random(12)
    pending = list(ticks)
    pending.reverse()  # pop() takes the next one
    kinds = list(SINGLE_KINDS)
    special = {  # the rare big ones, by their number among the malformed messages
        300: "oversized",
        900: "oversized batch",
        1400: "oversized",
        1900: "oversized",
    }
    out: list[Message] = []
    bad = 0
    every = (len(ticks) + BAD_MESSAGES) // BAD_MESSAGES
    n = 0
    while pending or bad < BAD_MESSAGES:
        n += 1
        if (n % every == 0 or not pending) and bad < BAD_MESSAGES:
            kind = special.get(bad) or kinds[bad % len(kinds)]
            if bad % 40 == 7 and pending:
                kind = "mixed batch"
            out.append(malformed(kind, rng, pending))
            bad += 1
            continue
        tick = pending.pop()
        # A key that is not the symbol, on the symbol's partition: still a good tick.
        odd_key = n % 97 == 0
        key = b"not-the-symbol" if odd_key else tick.symbol.encode()
        partition = partition_of(tick.symbol.encode(), PARTITIONS) if odd_key else None
        out.append(Message(wire(tick, n), key, partition, [], good=1, kind="good"))
    assert bad == BAD_MESSAGES, bad
    return out


def malformed(kind: str, rng: random.Random, pending: list[Tick]) -> Message:
    if kind == "mixed batch":
        return mixed_batch(rng, pending)
    if kind == "oversized":
        value = tick_json(pad="x" * (ONE_MB - 80))
        return Message(value, b"S01", None, invalid(), kind=kind)
    if kind == "oversized batch":  # 10,001 ticks: one more than a batch may carry
        value = b'{"type":"batch","ticks":[' + b",".join([tick_json(price=500.0)] * 10_001) + b"]}"
        return Message(value, None, partition_of(b"S01", PARTITIONS), invalid(), kind=kind)
    value, letters = SINGLE_KINDS[kind](rng)
    key = rng.choice([b"S01", b"S02", None, b"\xff\xfe"])
    return Message(value, key, None, letters, kind=kind)


def mixed_batch(rng: random.Random, pending: list[Tick]) -> Message:
    """The next good ticks of one partition, with malformed ones among them."""
    first = pending[-1]
    partition = partition_of(first.symbol.encode(), PARTITIONS)
    window = pending[-200:]
    ahead = reversed(window)
    mine = [t for t in ahead if partition_of(t.symbol.encode(), PARTITIONS) == partition][:4]
    # Taken out of the window by identity: list.remove would compare them (pydantic
    # __eq__) with most of the 40,000 ticks, some 4 s in all.
    taken = {id(t) for t in mine}
    pending[-200:] = [t for t in window if id(t) not in taken]
    items = [wire(t, i) for i, t in enumerate(mine)]
    letters = []
    for bad, reason in rng.sample(BAD_IN_BATCH, 3):
        at = rng.randint(0, len(items))
        items.insert(at, bad)
        letters = [
            Letter(
                x.reason,
                x.body,
                x.in_batch + 1 if x.in_batch is not None and x.in_batch >= at else x.in_batch,
            )
            for x in letters
        ]
        letters.append(Letter(reason, bad, at))
    value = b'{"type":"batch","ticks":[' + b",".join(items) + b"]}"
    return Message(value, None, partition, letters, good=len(mine), kind="mixed batch")


def canonical(body: bytes | None) -> object:
    """A dead-lettered tick of a batch is re-encoded: compare what it says, not its bytes."""
    return json.dumps(json.loads(body or b"null"), sort_keys=True)


@dataclass
class Feed:
    """A plain producer, as a broken feed would use, remembering where each message went."""

    bootstrap: str
    producer: Producer = field(init=False)
    ends: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # librdkafka's own message.max.bytes (1,000,000) would refuse the largest ones.
        self.producer = producer_for(BULK_FEED, self.bootstrap, max_message_bytes=4 * ONE_MB)

    def send(self, topic: str, messages: list[Message]) -> None:
        for message in messages:

            def delivered(err, msg, message: Message = message) -> None:  # type: ignore[no-untyped-def]
                if err is not None:
                    self.failures.append(f"{message.kind}: {err}")
                    return
                message.at = (msg.partition(), msg.offset())
                self.ends[msg.partition()] = max(
                    self.ends.get(msg.partition(), 0), msg.offset() + 1
                )

            extra = {} if message.partition is None else {"partition": message.partition}
            self.producer.produce(
                topic, value=message.value, key=message.key, on_delivery=delivered, **extra
            )
            self.producer.poll(0)
        assert self.producer.flush(30) == 0
        assert not self.failures, self.failures[:3]


def committed_at_least(group: GroupOffsets, topic: str, ends: dict[int, int]) -> Callable[[], bool]:
    def check() -> bool:
        found = group.committed(topic, list(ends))
        return all((found.get(p) or 0) >= end for p, end in ends.items())

    return check


def bursts(messages: list[Message]) -> Iterator[list[Message]]:
    for start in range(0, len(messages), BURST):
        yield messages[start : start + BURST]


def expected_letters(messages: list[Message]) -> Counter[tuple[int, int, str, int | None, object]]:
    out: Counter[tuple[int, int, str, int | None, object]] = Counter()
    for m in messages:
        assert m.at is not None
        for letter in m.letters:
            body = canonical(letter.body) if letter.in_batch is not None else None
            out[(*m.at, letter.reason, letter.in_batch, body)] += 1
    return out


def dead_letters(
    settings: Settings, messages: list[Message]
) -> Counter[tuple[int, int, str, int | None, object]]:
    """The dead-letter topic, as (partition, offset, reason, index in a batch, body)."""
    by_place = {m.at: m for m in messages}
    out: Counter[tuple[int, int, str, int | None, object]] = Counter()
    for letter in read_topic(settings.kafka_bootstrap, settings.topic_dlq):
        headers = {k: v.decode() for k, v in letter.headers() or []}
        at = (int(headers["partition"]), int(headers["offset"]))
        found = re.match(r"ticks\.(\d+): ", headers["error"])
        in_batch = int(found.group(1)) if found and headers["reason"] != "internal_error" else None
        body: object = None
        if in_batch is not None:
            body = canonical(letter.value())
        else:
            original = by_place[at].value if at in by_place else b"?"
            value = letter.value()
            if "truncated" in headers:  # too large for the dead-letter topic: its start
                assert value is not None and original is not None
                assert int(headers["truncated"]) == len(original) > len(value) > 0
                assert original.startswith(value)
            elif value != original:
                body = f"changed: {(value or b'')[:80]!r}"
        out[(*at, headers["reason"], in_batch, body)] += 1
    return out


@pytest.mark.slow
def test_a_broken_feed_is_dead_lettered_message_by_message_and_nothing_else_is_lost(
    base_settings: Settings, broker: BrokerProcess, tmp_path: Path
) -> None:
    instruments = tmp_path / "instruments.yaml"  # no default_exchange: unknown symbols are bad
    lines = [f"  - {{symbol: {s}, exchange: '24/7'}}" for s in SYMBOLS]
    lines += ["  - {symbol: HKA, exchange: XHKG}"]
    instruments.write_text("\n".join(["instruments:", *lines]) + "\n")
    settings = base_settings.model_copy(
        update={"kafka_bootstrap": broker.bootstrap, "instruments_file": instruments}
    )
    assert settings.ticks_partitions == PARTITIONS
    ticks = good_ticks()
    messages = plan(ticks)
    assert sum(m.good for m in messages) == len(ticks) == 40_000
    assert len({m.kind for m in messages if m.letters}) >= 30

    feed = Feed(settings.kafka_bootstrap)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    pid = worker.pid
    group = GroupOffsets(settings.kafka_bootstrap, settings.app_id)
    try:
        previous: dict[int, int] = {}
        for burst in bursts(messages):
            # One burst in flight at most: the embedded broker drops what it cannot keep.
            done = committed_at_least(group, settings.topic_ticks, previous)
            wait_until(done, 60, f"the worker to commit up to {previous}", log)
            assert worker.poll() is None, log.read_text()[-3000:]
            previous = dict(feed.ends)
            feed.send(settings.topic_ticks, burst)
        end = b'{"type":"session_end","exchange":"24/7","session":"2025-09-18"}'
        for partition in range(PARTITIONS):
            feed.send(settings.topic_ticks, [Message(end, b"24/7", partition, [], kind="end")])
        wait_until(processed_all(settings, feed.ends), 120, "the worker to commit everything", log)
        assert worker.poll() is None and worker.pid == pid
    finally:
        group.close()
        stop_child(worker)

    # The embedded broker kept every dead letter (it drops the oldest beyond a few MB).
    lows = GroupOffsets(settings.kafka_bootstrap, "lows")
    for p in range(PARTITIONS):
        assert lows.log_start(settings.topic_dlq, p) == 0, "dead letters dropped"
    lows.close()

    # The dead-letter topic holds exactly the malformed set, each with its reason.
    got, want = dead_letters(settings, messages), expected_letters(messages)
    kinds = {m.at: m.kind for m in messages}
    missing, unexpected = want - got, got - want
    assert not missing and not unexpected, (
        f"missing {sum(missing.values())}: "
        + str(sorted(Counter(kinds.get(k[:2], "?") for k in missing).items()))
        + f"; unexpected {sum(unexpected.values())}: "
        + str(sorted(Counter((kinds.get(k[:2], "?"), k[2]) for k in unexpected).items()))
        + f"; e.g. {list(missing)[:2]} / {list(unexpected)[:2]}"
    )

    # Every good tick was applied, once.
    text = log.read_text()
    applied = sum(int(n) for n in re.findall(r"ticks batch of \d+: (\d+) applied", text))
    assert applied == len(ticks)
    redis = Redis.from_url(settings.redis_url or "")
    for symbol in SYMBOLS:
        state = orjson.loads(redis.hget(f"{settings.key_prefix}:{{{symbol}}}:state", "s") or b"{}")
        last = [t for t in ticks if t.symbol == symbol][-1]
        assert (state.get("session"), state.get("last")) == ("2025-09-18", last.price), symbol
    redis.close()

    # The alerts are those of the good ticks alone.
    market = load_market(settings)
    calendar = get_calendar("24/7")
    expected = [
        e
        for s in SYMBOLS
        for e in oracle(s, "stock", calendar, market.rules, [], [t for t in ticks if t.symbol == s])
    ]
    assert len(expected) >= 60
    assert {(e.rule, e.stage) for e in expected} >= {
        ("daily_gain", "intraday"), ("daily_gain", "close"), ("daily_loss", "intraday")
    }  # fmt: skip
    alerts = [Alert.model_validate_json(m.value()) for m in read_topic(
        settings.kafka_bootstrap, settings.topic_alerts)]  # fmt: skip
    problems = compare(alerts, expected)
    assert problems == {"missing": [], "duplicate": [], "unexpected": [], "mismatched": []}

    # The worker never crashed, restarted an agent, or logged a traceback.
    for sign in ("Traceback", "Crashed reason", "Restarting dead", "internal_error", "failed;"):
        assert sign not in text, text[text.index(sign) - 2000 : text.index(sign) + 2000]
