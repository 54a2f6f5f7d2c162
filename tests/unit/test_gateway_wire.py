"""Alerts on the wire (streams/gateway/wire.py): the SSE and WebSocket forms of an entry, made
once and handed to every client, byte for byte the alert as published."""

from __future__ import annotations

import json

from alerts.delivery.stream import Entry
from streams.gateway.wire import Wire

ALERT = b'{"alert_id":"a-1","message":"BIDU +4.2%"}'


def entry(n: int, alert: bytes = ALERT) -> Entry:
    return Entry(f"{n}-0", f"a-{n}", "BIDU", "daily_move", "gain", "intraday", alert)


def test_a_batch_is_one_chunk_of_events_with_the_alert_bytes_as_published() -> None:
    chunk = Wire().sse([entry(1), entry(2)])
    assert chunk == (
        b"id: 1-0\nevent: alert\ndata: " + ALERT + b"\n\n"
        b"id: 2-0\nevent: alert\ndata: " + ALERT + b"\n\n"
    )


def test_a_line_break_in_the_alert_is_one_data_line_each() -> None:
    chunk = Wire().sse([entry(1, b'{\n"a": 1\r\n}')])
    assert chunk == b'id: 1-0\nevent: alert\ndata: {\ndata: "a": 1\ndata: }\n\n'


def test_each_entry_is_encoded_once_for_every_client() -> None:
    wire = Wire()
    first, again = entry(1), entry(1)  # the same position, read twice from Redis
    assert wire.sse([first]) == wire.sse([again])
    assert wire.ws(first) is wire.ws(again)
    assert json.loads(wire.ws(first)) == {"position": "1-0", "alert": json.loads(ALERT)}


def test_only_the_newest_are_kept() -> None:
    wire = Wire(kept=3)
    for n in range(1, 6):
        wire.sse([entry(n)])
    assert wire.sse([entry(1, b"{}")]).endswith(b"data: {}\n\n")  # 1 was let go: made anew
    assert wire.sse([entry(5, b"{}")]).endswith(b"data: " + ALERT + b"\n\n")  # 5 is kept
