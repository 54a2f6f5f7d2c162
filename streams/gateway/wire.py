"""Alerts on the wire: each stream entry encoded once (SSE bytes, WebSocket text), for every client.

A burst to a thousand clients hands the same entries to each of them: encoding an entry
per client was most of the gateway's CPU per delivered alert. Entries never change once
in the stream, so the encoding is kept by position, for the newest few thousand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from alerts.delivery.stream import Entry

#: Entries kept encoded: a burst, and the clients catching up just behind it.
_KEPT = 4096

#: What SSE reads as the end of a line: a data line cannot hold one.
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class Wire:
    """The encoded forms of stream entries, made on first use and kept by position."""

    def __init__(self, kept: int = _KEPT) -> None:
        self._kept = kept
        self._sse: dict[str, bytes] = {}
        self._ws: dict[str, str] = {}

    def sse(self, entries: Sequence[Entry]) -> bytes:
        """The entries as one chunk of `event: alert` Server-Sent Events."""
        cache = self._sse
        encoded = []
        for entry in entries:
            event = cache.get(entry.position)
            if event is None:
                event = cache[entry.position] = sse_event(entry)
                _bound(cache, self._kept)
            encoded.append(event)
        return b"".join(encoded)

    def ws(self, entry: Entry) -> str:
        """The entry as one WebSocket message: `{"position": ..., "alert": {...}}`."""
        message = self._ws.get(entry.position)
        if message is None:
            message = self._ws[entry.position] = ws_message(entry)
            _bound(self._ws, self._kept)
        return message


def sse_event(entry: Entry) -> bytes:
    """`id`, `event: alert` and the alert's bytes as published (one `data:` line per line,
    as SSE requires: a reader joins them back with newlines)."""
    data = b"".join(b"data: " + line + b"\n" for line in _LINE_BREAK.split(entry.alert))
    return b"id: " + entry.position.encode() + b"\nevent: alert\n" + data + b"\n"


def ws_message(entry: Entry) -> str:
    # The alert's bytes as published, not parsed and dumped again.
    return f'{{"position":"{entry.position}","alert":{entry.alert.decode()}}}'


def _bound(cache: dict[str, bytes] | dict[str, str], kept: int) -> None:
    if len(cache) > kept:
        # Oldest first (dicts keep insertion order): entries come in stream order.
        del cache[next(iter(cache))]
