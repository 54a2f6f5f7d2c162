"""Gateway processes for development: `tickwatch gateway` started as a child, awaited
until it answers, its demo user made.

The demo, the gateway benchmark and the kill tests run a real gateway process (tied to
its parent by streams/dev/children.py) and wait on what it tells: its /healthz.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis

from alerts.delivery.access import Users
from schemas.errors import TickwatchError
from schemas.settings import Settings
from streams.dev.children import last_lines, metrics_urls, spawn_tickwatch, stop_child
from streams.dev.redis_server import free_port


class GatewayError(TickwatchError):
    """The gateway did not start; the message names its log."""


@dataclass
class RunningGateway:
    """A `tickwatch gateway` child, the URL it answers on, and its Prometheus endpoint
    (`metrics_url`, None when metrics are off)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    settings: Settings
    metrics_url: str | None = None


def port_for(settings: Settings) -> int:
    """settings.gateway_port when nothing listens there, else a free port."""
    port = settings.gateway_port
    if port == 0:
        return free_port()
    family = socket.AF_INET6 if ":" in settings.gateway_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the gateway binds: a port another process only lingers on is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.gateway_host, port))
        except OSError:
            return free_port()
    return port


def local_url(settings: Settings) -> str:
    """Where this machine reaches the gateway (a wildcard address is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(
        settings.gateway_host, settings.gateway_host
    )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if settings.gateway_ssl_certfile else "http"
    return f"{scheme}://{host}:{settings.gateway_port}"


def start_gateway(settings: Settings, log_path: Path, timeout_s: float = 30.0) -> RunningGateway:
    """`tickwatch gateway` on settings.gateway_port (not 0), once /healthz answers, its
    metrics on any free port unless settings chose one; its output appended to log_path.
    GatewayError, naming the log, if it exits or stays mute."""
    with log_path.open("ab") as log:
        process = spawn_tickwatch(["gateway"], settings, log)
    gateway = RunningGateway(process, local_url(settings), log_path, settings)
    deadline = time.monotonic() + timeout_s
    while not _answers(gateway.url):
        if process.poll() is not None:
            said = "; ".join(last_lines(log_path, 1)) or "(no output)"
            raise GatewayError(
                f"the gateway exited with code {process.returncode}: {said}; see {log_path}"
            )
        if time.monotonic() > deadline:
            stop_child(process, timeout_s=5)
            raise GatewayError(
                f"the gateway did not answer within {timeout_s:.0f}s; see {log_path}"
            )
        time.sleep(0.05)
    if settings.metrics_enabled:
        # Announced before it serves, so there by now; the last one is this run's (a
        # restarted gateway appends to the log of the one before).
        announced = metrics_urls(log_path, "gateway")
        gateway.metrics_url = announced[-1] if announced else None
    return gateway


@contextmanager
def running_gateway(
    settings: Settings, log_path: Path, timeout_s: float = 30.0
) -> Iterator[RunningGateway]:
    """A started gateway, stopped on exit (SIGTERM, then SIGKILL)."""
    gateway = start_gateway(settings, log_path, timeout_s)
    try:
        yield gateway
    finally:
        stop_child(gateway.process)


def _answers(url: str) -> bool:
    try:
        # Our own child on this machine, asked only whether it is up: a self-signed
        # certificate of the user's is no reason to wait.
        return httpx.get(f"{url}/healthz", timeout=2, verify=False).status_code == 200
    except httpx.HTTPError:
        return False


def add_user(redis_url: str, prefix: str, name: str) -> str:
    """A new gateway user; its token."""

    async def add() -> str:
        redis = Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
        try:
            return await Users(redis, prefix).add(name)
        finally:
            await redis.aclose()

    return asyncio.run(add())
