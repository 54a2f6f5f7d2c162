"""The gateway benchmark's clients: many Server-Sent Events readers in one asyncio process.

Run by streams/dev/bench_gateway.py as
`python -m streams.dev.sse_load URL TOKEN CLIENTS ALERTS OUT WAIT_S`: it connects CLIENTS
clients to URL/v1/alerts/stream, prints `connected N FAILED` once every one has its
response headers (or failed; a 503 is tried again after a pause, as
real clients do), reads until each has ALERTS alerts or WAIT_S seconds have
passed, then writes to OUT (JSON) each client's receive time per alert_id and why it
stopped, and its own CPU seconds. Times are time.monotonic(): one clock for every
process of the machine (CLOCK_MONOTONIC), the one the publisher notes its sends with.

A raw socket reader (HTTP/1.1 chunks, then SSE lines, only `data:` looked at) keeps the
clients' CPU low: they share the machine's cores with the gateway they measure.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

#: Connections opened at once: a burst of SYNs beyond the listen backlog is dropped.
_CONNECTING = 100
_CONNECT_TIMEOUT_S = 20.0
_BUSY_PAUSE_S = 0.5
_ALERT_ID = b'"alert_id":"'


@dataclass
class Client:
    """What one client received: alert_id -> receive time, and why it stopped early (a
    kind of failure, the same words for every client it happens to)."""

    received: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    refused: int = 0  # 503s before it got the stream


class LoadError(Exception):
    """The gateway answered a client with something else than an event stream."""


class Busy(LoadError):
    """503: the client comes back after a pause, as the live page does (a browser's own
    EventSource would give up)."""


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(host: str, port: int, path: str, token: str) -> Stream:
    """A connection with the response's headers read (the writer is kept: once collected,
    it closes the connection)."""
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    )
    writer.write(request.encode())
    status = await reader.readline()
    if b" 503 " in status:
        writer.close()
        raise Busy()
    if b" 200 " not in status:
        raise LoadError(f"answered {status.decode(errors='replace').strip()!r}")
    chunked = False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        chunked = chunked or line.lower().startswith(b"transfer-encoding: chunked")
    if not chunked:
        raise LoadError("the stream is not sent in chunks")
    return reader, writer


async def _read(reader: asyncio.StreamReader, client: Client, alerts: int) -> None:
    pending = b""
    while len(client.received) < alerts:
        size = int((await reader.readline()).split(b";")[0] or b"0", 16)
        if size == 0:
            raise LoadError("the gateway ended the stream")
        chunk = await reader.readexactly(size + 2)  # and the chunk's CRLF
        now = time.monotonic()
        *lines, pending = (pending + chunk[:-2]).split(b"\n")
        for line in lines:
            found = line.find(_ALERT_ID) if line.startswith(b"data: ") else -1
            if found >= 0:
                start = found + len(_ALERT_ID)
                client.received[line[start : line.index(b'"', start)].decode()] = now


async def _run(url: str, token: str, count: int, alerts: int, wait_s: float) -> list[Client]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    clients = [Client() for _ in range(count)]
    gate = asyncio.Semaphore(_CONNECTING)

    async def connect(client: Client) -> Stream | None:
        deadline = time.monotonic() + _CONNECT_TIMEOUT_S
        while True:
            try:
                async with gate:
                    return await asyncio.wait_for(
                        _open(host, port, "/v1/alerts/stream", token), _CONNECT_TIMEOUT_S
                    )
            except Busy:
                client.refused += 1
                if time.monotonic() < deadline:
                    await asyncio.sleep(_BUSY_PAUSE_S)
                    continue
                client.error = "connect: 503 on every attempt"
            except LoadError as error:
                client.error = f"connect: {error}"
            except (OSError, TimeoutError) as error:
                client.error = f"connect: {type(error).__name__}"
            return None

    streams = await asyncio.gather(*(connect(c) for c in clients))
    failed = sum(s is None for s in streams)
    print(f"connected {count - failed} {failed}", flush=True)

    async def follow(client: Client, stream: Stream) -> None:
        try:
            await _read(stream[0], client, alerts)
        except LoadError as error:
            client.error = f"read: {error}"
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            client.error = f"read: {type(error).__name__}"

    tasks = [asyncio.create_task(follow(c, s)) for c, s in zip(clients, streams, strict=True)
             if s is not None]  # fmt: skip
    if tasks:
        _, late = await asyncio.wait(tasks, timeout=wait_s)
        for task in late:
            task.cancel()
    for client in clients:
        if client.error is None and len(client.received) < alerts:
            client.error = "timed out"
    return clients


def main(argv: list[str]) -> int:
    url, token, count, alerts, out, wait_s = argv
    clients = asyncio.run(_run(url, token, int(count), int(alerts), float(wait_s)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "wb") as file:
        file.write(
            orjson.dumps(
                {
                    "clients": [
                        {"received": c.received, "error": c.error, "refused": c.refused}
                        for c in clients
                    ],
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
