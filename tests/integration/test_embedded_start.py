"""The embedded broker and Redis: each failure to start is one line naming what to fix."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from streams import cli
from streams.dev.broker import BrokerError, spawn_broker
from streams.dev.redis_server import RedisServerError, start_redis_server
from streams.topics import TopicSpec
from tests.e2e.test_cli import TICKWATCH


def test_a_broker_that_exits_early_says_why_and_where_to_look() -> None:
    with pytest.raises(BrokerError) as caught:
        spawn_broker([TopicSpec("ticks", 0)])  # refused by `tickwatch broker` itself
    message = str(caught.value)
    assert "exited with code 2 before listening" in message
    assert "'ticks:0' is not NAME:PARTITIONS" in message
    log = message.rsplit("(see ", 1)[1].rstrip(")")
    assert Path(log).name == "broker.log" and "ticks:0" in Path(log).read_text()


def test_redis_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RedisServerError) as caught:
            start_redis_server(port, str(tmp_path))
    message = str(caught.value)
    assert f"could not start on port {port}" in message
    assert "Address already in use" in message
    assert "TICKWATCH_REDIS_URL" in message


def test_the_broker_command_reports_its_failure_in_one_line(tmp_path: Path) -> None:
    where = tmp_path / "missing" / "bootstrap"
    done = subprocess.run(
        [*TICKWATCH, "broker", "--topic", "t:1", "--bootstrap-file", str(where)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"tickwatch broker: error: cannot write --bootstrap-file {where}")
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_demo_without_a_redis_server_binary_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TICKWATCH_REDIS_URL", raising=False)
    # SIGTERM is pytest's to handle, not the demo's, in this process.
    monkeypatch.setattr("streams.cli.unwind_on_sigterm", lambda: None, raising=False)
    missing = str(tmp_path / "no-redis-server")
    monkeypatch.setattr("streams.dev.redis_server.redis_server_binary", lambda: missing)
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("2025-01-06T10:00:00-05:00,ACME,9.5\n")
    assert cli.main(["demo", "--ticks", str(ticks)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tickwatch demo: error: cannot run {missing}: ")
    assert "TICKWATCH_REDIS_URL" in err and len(err.strip().splitlines()) == 1
