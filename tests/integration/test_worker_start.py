"""A worker started before its broker waits for it, then works; its log has no escape codes."""

from __future__ import annotations

import socket
import threading
from datetime import date
from pathlib import Path

from schemas.alerts import Alert
from schemas.settings import Settings
from streams.dev.broker import spawn_broker
from streams.dev.children import stop_child
from streams.dev.redis_server import free_port
from streams.dev.workers import start_worker, wait_until
from streams.replay import publish_ticks
from streams.topics import topic_specs
from tests.integration.support import processed_all, read_topic
from tests.integration.test_worker import ticks_of


class Relay:
    """A port that starts accepting when the relay is made, and relays every connection
    to target: a broker coming up at the address a worker was given.

    (The embedded broker picks its own port, so the worker is pointed here.)
    """

    def __init__(self, port: int, target: str) -> None:
        host, _, target_port = target.rpartition(":")
        self._target = (host, int(target_port))
        self._server = socket.create_server(("127.0.0.1", port))
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._server.close()
        for sock in self._open:
            sock.close()


def test_a_worker_started_before_its_broker_waits_then_works(
    base_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    # Level warn, the default: Faust's spinner is on, and must stay out of the log file.
    early = base_settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{port}", "kafka_wait_s": 120, "log_level": "warn"}
    )
    log = tmp_path / "worker.log"
    worker = start_worker(early, log)
    broker, relay = None, None
    try:
        wait_until(lambda: "(attempt 2)" in log.read_text(), 60, "a second attempt", log)
        broker = spawn_broker(topic_specs(base_settings))
        relay = Relay(port, broker.bootstrap)
        settings = base_settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
        ticks = ticks_of(
            [
                ("2025-09-17T02:00", "BIDU", 100.0),
                ("2025-09-17T07:59", "BIDU", 101.0),
                ("2025-09-18T03:00", "BIDU", 105.2),
            ]
        )
        ends = publish_ticks(ticks, settings.kafka_bootstrap, settings.topic_ticks)
        wait_until(processed_all(settings, ends), 90, "the worker to commit every tick", log)
        alerts = [
            Alert.model_validate_json(m.value())
            for m in read_topic(settings.kafka_bootstrap, settings.topic_alerts)
        ]
        assert worker.poll() is None
    finally:
        stop_child(worker)
        if relay is not None:
            relay.close()
        if broker is not None:
            broker.stop()
    assert [(a.instrument, a.session, a.price) for a in alerts] == [
        ("BIDU", date(2025, 9, 18), 105.2)
    ]
    text = log.read_text()
    assert "Kafka at 127.0.0.1:" in text and "not ready (attempt 1): not reachable" in text
    assert "\x1b" not in text, "terminal escape codes in a worker log file"
