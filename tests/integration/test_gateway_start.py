"""Starting a `tickwatch gateway` child for the demo and the benchmark: the port it takes,
and a gateway that cannot start told in one line that names its log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from schemas.settings import Settings
from streams.dev.gateways import GatewayError, port_for, start_gateway


def test_the_configured_port_is_taken_when_free_and_another_when_busy() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        other = port_for(Settings(gateway_port=taken))
        assert other not in (taken, 0)
    assert port_for(Settings(gateway_port=taken)) == taken
    assert port_for(Settings(gateway_port=0)) != 0


def test_a_gateway_that_cannot_start_is_one_line_naming_its_log(
    tmp_path: Path, redis_url: str
) -> None:
    log = tmp_path / "gateway.log"
    missing = tmp_path / "no-cert.pem"
    settings = Settings(
        redis_url=redis_url,
        gateway_port=port_for(Settings(gateway_port=0)),
        gateway_ssl_certfile=missing,
        gateway_ssl_keyfile=missing,
    )
    with pytest.raises(GatewayError) as raised:
        start_gateway(settings, log, timeout_s=30)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("the gateway exited with code 2: ")
    assert f"no such file: {missing}" in message
    assert message.endswith(f"; see {log}")
