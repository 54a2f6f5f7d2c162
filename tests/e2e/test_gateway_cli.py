"""`tickwatch gateway` as an operator runs it: HTTPS from a certificate, a graceful stop on
SIGTERM, and one line (exit 2) for a busy port or a missing certificate."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from streams.dev.children import settings_env
from tests.integration.gateway_support import bearer, gateway_settings, running_gateway


def tickwatch_gateway(redis_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Any free metrics port unless a test picks one: never another gateway's 9109.
    settings = gateway_settings(redis_url, gateway_metrics_port=0)
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **settings_env(settings), **env},
    )


def test_a_busy_port_or_a_missing_certificate_is_one_line(redis_url: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = tickwatch_gateway(redis_url, "--port", port)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    missing = str(tmp_path / "cert.pem")
    done = tickwatch_gateway(
        redis_url,
        TICKWATCH_GATEWAY_SSL_CERTFILE=missing,
        TICKWATCH_GATEWAY_SSL_KEYFILE=missing,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"no such file: {missing}" in done.stderr
    done = tickwatch_gateway(redis_url, TICKWATCH_GATEWAY_SSL_CERTFILE=missing)
    assert done.returncode == 2 and "go together" in done.stderr


def test_a_busy_metrics_port_is_one_line_naming_its_setting(redis_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = tickwatch_gateway(redis_url, TICKWATCH_GATEWAY_METRICS_PORT=port)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "(set TICKWATCH_GATEWAY_METRICS_PORT)" in done.stderr
    assert "serving" not in done.stdout


def self_signed(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a certificate with")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def test_https_and_a_graceful_stop(redis_url: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = gateway_settings(
        redis_url, gateway_ssl_certfile=cert, gateway_ssl_keyfile=key, gateway_heartbeat_s=5
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    with running_gateway(settings, verify=trusted) as gateway:
        assert gateway.url.startswith("https://127.0.0.1:")
        with pytest.raises(httpx.ConnectError):  # a client that does not trust it
            httpx.get(gateway.url + "/healthz")
        token = subprocess.run(
            [sys.executable, "-m", "streams.cli", "users", "add", "alice"],
            capture_output=True, text=True, timeout=60, check=True,
            env={**os.environ, **settings_env(gateway.settings)},
        ).stdout.split()[-1]  # fmt: skip

        async def stream_until_stopped() -> float:
            async with (
                httpx.AsyncClient(base_url=gateway.url, verify=trusted) as client,
                client.stream("GET", "/v1/alerts/stream", headers=bearer(token)) as response,
            ):
                assert response.status_code == 200
                lines = response.aiter_lines()
                assert await anext(lines) == "retry: 2000"
                gateway.process.send_signal(signal.SIGTERM)
                stopped = time.monotonic()
                async with asyncio.timeout(10):
                    async for _ in lines:
                        pass  # the stream ends, it is not cut
                return time.monotonic() - stopped

        assert asyncio.run(stream_until_stopped()) < 3
        code = gateway.process.wait(timeout=10)
        # uvicorn ends by the signal it stopped for, once stopped: -15, as a shell's 143.
        assert code in (0, -signal.SIGTERM), code
        assert "Traceback" not in gateway.log.read_text()
